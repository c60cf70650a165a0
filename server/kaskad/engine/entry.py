"""Imported by each ``dramatiq`` worker process that ``kaskad worker`` starts."""

from kaskad.engine import broker
from kaskad.runtime import Runtime

runtime = Runtime.create(migrate=False)
broker.setup(runtime)
