"""Published flow versions as the engine reads them, cached: a published version never changes."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaskad.flow import model
from kaskad.flow.validate import decode_stored
from kaskad.store.models import Flow as FlowRow
from kaskad.store.models import FlowVersion


@dataclass(frozen=True)
class FlowPlan:
    """One published flow version: its document and nodes by id."""

    flow_id: int
    version_id: int
    version: int
    key: str
    flow: model.Flow
    nodes: dict[str, Any] = field(default_factory=dict)

    @property
    def start(self) -> str:
        return self.flow.start_id

    def node(self, node_id: str) -> Any:
        return self.nodes.get(node_id)


#: Keyed by (database URL, version id): one process may talk to several databases (tests, tools).
_cache: dict[tuple[str, int], FlowPlan] = {}
_lock = threading.RLock()


def plan_for_version(session: Session, version_id: int) -> FlowPlan:
    """The plan of a flow version by its row id (cached: published versions are immutable)."""
    key = cache_key(session, version_id)
    plan = _cache.get(key)
    if plan is not None:
        return plan
    with _lock:  # msgspec's first decode of a type is not thread-safe (seen: a segfault); one at a time
        plan = _cache.get(key)
        if plan is None:
            plan = _load(session, version_id)
            if len(_cache) > 2000:
                _cache.clear()
            _cache[key] = plan
    return plan


def cache_key(session: Session, version_id: int) -> tuple[str, int]:
    return str(session.get_bind().url), version_id


def _load(session: Session, version_id: int) -> FlowPlan:
    row = session.execute(
        select(FlowVersion.document, FlowVersion.version, FlowVersion.flow_id, FlowRow.key)
        .join(FlowRow, FlowRow.id == FlowVersion.flow_id)
        .where(FlowVersion.id == version_id)
    ).one()
    return build_plan(decode_stored(row.document), flow_id=row.flow_id, version_id=version_id, version=row.version)


def build_plan(flow: model.Flow, *, flow_id: int = 0, version_id: int = 0, version: int = 0) -> FlowPlan:
    return FlowPlan(flow_id=flow_id, version_id=version_id, version=version, key=flow.key, flow=flow,
                    nodes={n.id: n for n in flow.nodes})


def current_plan(session: Session, flow_key: str) -> FlowPlan | None:
    """The plan of the flow's current published version, or None if it has none."""
    vid = session.scalar(
        select(FlowVersion.id)
        .join(FlowRow, FlowRow.id == FlowVersion.flow_id)
        .where(FlowRow.key == flow_key, FlowVersion.version == FlowRow.current_version)
    )
    return None if vid is None else plan_for_version(session, vid)


def published_plans(session: Session) -> list[FlowPlan]:
    """Every flow's current published version."""
    ids = session.scalars(
        select(FlowVersion.id)
        .join(FlowRow, FlowRow.id == FlowVersion.flow_id)
        .where(FlowVersion.version == FlowRow.current_version)
    ).all()
    return [plan_for_version(session, vid) for vid in ids]
