"""Per-flow and per-node figures for the editor's canvas and the API."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaskad.engine.models import NodeCount
from kaskad.store.models import FlowVersion, JourneyRun

STATUSES = ("active", "waiting", "claimed", "converted", "exited", "failed", "holdout")


def flow_stats(session: Session, flow_id: int, flow_key: str, version: int | None = None) -> dict[str, Any]:
    """Runs by status, and per node: entered, waiting now, failed, left by each port.

    ``version=None`` adds up every version (node ids are stable across versions).
    """
    versions = select(FlowVersion.id).where(FlowVersion.flow_id == flow_id)
    if version is not None:
        versions = versions.where(FlowVersion.version == version)
    version_ids = list(session.scalars(versions))
    by_status = dict.fromkeys(STATUSES, 0)
    waiting_at: dict[str, int] = {}
    if version_ids:
        for status, n in session.execute(
            select(JourneyRun.status, func.count()).where(JourneyRun.flow_version_id.in_(version_ids))
            .group_by(JourneyRun.status)
        ):
            by_status[status] = n
        for node_id, n in session.execute(
            select(JourneyRun.node_id, func.count()).where(
                JourneyRun.flow_version_id.in_(version_ids), JourneyRun.status == "waiting")
            .group_by(JourneyRun.node_id)
        ):
            waiting_at[node_id] = n
    nodes: dict[str, dict[str, Any]] = {}

    def node(nid: str) -> dict[str, Any]:
        return nodes.setdefault(nid, {"entered": 0, "waiting": 0, "failed": 0, "ports": {}})

    if version_ids:
        for nid, port, n in session.execute(
            select(NodeCount.node_id, NodeCount.port, func.sum(NodeCount.n))
            .where(NodeCount.flow_version_id.in_(version_ids)).group_by(NodeCount.node_id, NodeCount.port)
        ):
            n = int(n or 0)
            if port == "@entered":
                node(nid)["entered"] += n
            elif port == "@failed":
                node(nid)["failed"] += n
            else:
                node(nid)["ports"][port] = node(nid)["ports"].get(port, 0) + n
    for nid, n in waiting_at.items():
        node(nid)["waiting"] = n
    return {
        "flow": flow_key,
        "version": version,
        # claimed runs are in a worker's hands right now: still active for a marketer
        "active": by_status["active"] + by_status["claimed"] + by_status["waiting"],
        "waiting": by_status["waiting"],
        "converted": by_status["converted"],
        "exited": by_status["exited"],
        "failed": by_status["failed"],
        "holdout": by_status["holdout"],
        "nodes": nodes,
    }
