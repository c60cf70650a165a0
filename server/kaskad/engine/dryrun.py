"""Test mode: walk one contact through a flow without writing or sending anything.

The same node handlers run, inside a transaction that is always rolled back;
waits are passed through (and say how long they would wait), send nodes say
what would be sent to whom after consent, caps and quiet hours, and awards are
made and undone so that templates show real codes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from kaskad import clock
from kaskad.engine.batch import BatchContext, Run, load_contacts, new_token, walk
from kaskad.engine.plan import build_plan
from kaskad.flow import model
from kaskad.store.models import Contact


class DryRunError(LookupError):
    pass


def dry_run(runtime: Any, flow: model.Flow, external_id: str) -> dict[str, Any]:
    vid = -new_token()  # a version id no stored version has: this unsaved document, for this call only
    plan = build_plan(flow, flow_id=0, version_id=vid)
    with runtime.sessions() as session:
        session.begin()
        try:
            cid = session.scalar(select(Contact.id).where(Contact.external_id == external_id, Contact.erased_at.is_(None)))
            if cid is None:
                raise DryRunError(f"no contact with external_id {external_id!r}")
            now = clock.now()
            run = Run(id=0, flow_id=0, version_id=vid, contact_id=cid, node_id=plan.start, entered_at=now,
                      attempts=0, context={})
            ctx = BatchContext(session=session, runtime=runtime, now=now, contacts=load_contacts(session, {cid}),
                               dry_run=True)
            import kaskad.engine.plan as plans

            key = plans.cache_key(session, vid)
            plans._cache[key] = plan
            try:
                walk(ctx, [run])
            finally:
                plans._cache.pop(key, None)
        finally:
            session.rollback()
    outcome = {"claimed": "waiting", "waiting": "waiting"}.get(run.status, run.status)
    kinds = {n.id: getattr(n, "kind", None) or type(n).__struct_config__.tag for n in flow.nodes}
    path = [{"node": s["node"], "kind": kinds.get(s["node"]), "port": s["port"], "note": s["note"]}
            for s in ctx.notes.get(0, [])]
    return {"path": path, "outcome": outcome, "error": run.error, "sent": ctx.sent}
