"""All tables' metadata: importing this module imports every model module.

A feature area that adds tables adds its module to ``MODEL_MODULES``; the
migration test fails when a model has no migration.
"""

from __future__ import annotations

import importlib

from kaskad.store.models import Base

MODEL_MODULES = [
    "kaskad.store.models",
    "kaskad.webpush.models",
    "kaskad.wallet.models",
    "kaskad.loyalty.models",
    "kaskad.segments.models",
    "kaskad.engine.models",
    "kaskad.analytics.models",
]

for _name in MODEL_MODULES:
    importlib.import_module(_name)

metadata = Base.metadata
