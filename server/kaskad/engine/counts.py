"""Per-node counters: appended as deltas, summed on read (see :class:`kaskad.engine.models.NodeCount`)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Iterable

from sqlalchemy.orm import Session

from kaskad.engine.models import NodeCount
from kaskad.store.bulk import bulk_insert


def add_counts(session: Session, deltas: Iterable[tuple[int, str, str, int]], now: datetime) -> None:
    """Append ``(flow_version_id, node_id, port, n)`` deltas, merged per key, zeros dropped."""
    merged: Counter = Counter()
    for version_id, node_id, port, n in deltas:
        merged[(version_id, node_id, port)] += n
    rows = [{"flow_version_id": v, "node_id": nd, "port": p, "n": n, "at": now} for (v, nd, p), n in sorted(merged.items()) if n]
    bulk_insert(session, NodeCount.__table__, rows)  # one statement, not one per row
