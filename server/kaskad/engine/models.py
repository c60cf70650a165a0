"""Engine tables beside the core ones (journey_runs, run_steps, outbox live in kaskad.store.models)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from kaskad.store.models import Base
from kaskad.store.types import BigIntPK


class NodeCount(Base):
    """Append-only counters per flow version, node and port, written once per batch.

    ``port`` is a port name ("next", "case:0", "path:A"…) or one of ``@entered`` and
    ``@failed``. Appending deltas instead of updating one row per node keeps
    concurrent batches from queuing on the same row lock; the stats endpoint sums
    them and :func:`kaskad.engine.stats.compact_counts` folds old deltas together.
    """

    __tablename__ = "node_counts"
    __table_args__ = (Index("ix_node_counts_version_node", "flow_version_id", "node_id"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    flow_version_id: Mapped[int]
    node_id: Mapped[str] = mapped_column(String(120))
    port: Mapped[str] = mapped_column(String(80))
    n: Mapped[int]
    at: Mapped[datetime]
