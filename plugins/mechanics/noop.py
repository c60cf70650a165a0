"""The ``noop`` mechanic: awards nothing, remembers that it was asked. For tests and demos."""

from __future__ import annotations

from collections import deque
from typing import Annotated

import msgspec
from msgspec import Meta

from kaskad import hookimpl
from kaskad.mechanics import AwardContext, Mechanic


class NoopConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    label: Annotated[str, Meta(title="Label", description="Free text echoed back to templates")] = ""


#: Idempotency keys awarded in this process: the latest 10,000 (a long-running worker must not
#: grow with every award it ever made, as it did by 35 MB a process over a million runs).
AWARDED: deque[str] = deque(maxlen=10_000)


class NoopMechanic(Mechanic):
    name = "noop"
    title = "No-op (for tests)"
    config_type = NoopConfig

    def award(self, session, ctx: AwardContext, config: NoopConfig) -> dict:
        AWARDED.append(ctx.idempotency_key)
        return {"label": config.label}


@hookimpl
def register_mechanics(register):
    register(NoopMechanic())
