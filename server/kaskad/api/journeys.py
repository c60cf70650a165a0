"""Running journeys: enroll contacts, per-node stats, test mode, and failed runs."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import get, post
from litestar.exceptions import HTTPException, NotFoundException
from msgspec import Meta
from sqlalchemy import select

from kaskad.api.auth import ANY_ROLE, roles
from kaskad.engine.dryrun import DryRunError, dry_run
from kaskad.engine.enroll import FlowNotLive, enroll, enroll_all
from kaskad.engine.stats import STATUSES, flow_stats
from kaskad.flow import service
from kaskad.flow.validate import decode_stored, validate
from kaskad.runtime import Runtime
from kaskad.store.engine import transaction
from kaskad.store.models import Contact, Flow, JourneyRun

ENROLLERS = roles("marketer", "integrator")


class EnrollRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    contacts: Annotated[list[str], Meta(max_length=10_000, description="external ids")] | None = None
    all: bool = False


class TestRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    contact: Annotated[str, Meta(min_length=1, description="external id of the contact to walk through")]
    document: dict[str, Any] | None = None
    version: int | None = None


def _decode(body: bytes, type_: type) -> Any:
    try:
        return msgspec.json.decode(body or b"{}", type=type_)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise HTTPException(status_code=400, detail=f"bad request body: {exc}") from exc


def _flow_id(session, key: str) -> int:
    fid = session.scalar(select(Flow.id).where(Flow.key == key))
    if fid is None:
        raise NotFoundException(f"no flow with key {key!r}")
    return fid


@post("/flows/{key:str}/enroll", guards=[ENROLLERS], status_code=200, sync_to_thread=True, tags=["journeys"])
def enroll_contacts(runtime: Runtime, key: str, body: bytes) -> dict[str, Any]:
    """Enroll contacts (``{"contacts": [external ids]}``) or everyone (``{"all": true}``) into the published flow."""
    req = _decode(body, EnrollRequest)
    if req.all == (req.contacts is not None):
        raise HTTPException(status_code=400, detail='send either {"contacts": [external ids]} or {"all": true}')
    try:
        if req.all:
            result = enroll_all(runtime.sessions, key)
            return {"enrolled": result.enrolled, "skipped": result.skipped, "unknown": []}
        with transaction(runtime.sessions) as session:
            found = dict(session.execute(
                select(Contact.external_id, Contact.id).where(Contact.external_id.in_(set(req.contacts)))).all())
            unknown = sorted(set(req.contacts) - set(found))
            result = enroll(session, runtime, key, [found[x] for x in req.contacts if x in found])
    except FlowNotLive as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from exc
    return {"enrolled": result.enrolled, "skipped": result.skipped, "unknown": unknown}


@get("/flows/{key:str}/stats", guards=[ANY_ROLE], sync_to_thread=True, tags=["journeys"])
def stats(runtime: Runtime, key: str, version: int | None = None) -> dict[str, Any]:
    """Runs by status and, per node, entered / waiting / failed / left by each port (all versions unless ``?version=N``)."""
    with runtime.sessions() as session:
        return flow_stats(session, _flow_id(session, key), key, version)


@post("/flows/{key:str}/test", guards=[ANY_ROLE], status_code=200, sync_to_thread=True, tags=["journeys"])
def test_flow(runtime: Runtime, key: str, body: bytes) -> dict[str, Any]:
    """Dry run: walk one contact through the flow (the given document, else the newest version); nothing is written or sent."""
    req = _decode(body, TestRequest)
    if req.document is not None:
        flow, errors = validate(msgspec.json.encode(req.document), runtime.registry)
        if errors:
            raise HTTPException(status_code=422, detail="the document has errors; fix them to test it",
                                extra={"errors": [msgspec.to_builtins(e) for e in errors]})
    else:
        with runtime.sessions() as session:
            try:
                _, flow = service.load_version(session, key, req.version) if req.version else _newest(session, key)
            except service.FlowNotFound as exc:
                raise NotFoundException(str(exc)) from exc
    try:
        return dry_run(runtime, flow, req.contact)
    except DryRunError as exc:
        raise NotFoundException(str(exc)) from exc


def _newest(session, key: str):
    try:
        return None, decode_stored(service.export(session, key))
    except (msgspec.ValidationError, msgspec.DecodeError, KeyError, TypeError) as exc:
        raise HTTPException(status_code=422, detail=f"the newest version of {key!r} does not decode: {exc}") from exc


@get("/flows/{key:str}/runs", guards=[ANY_ROLE], sync_to_thread=True, tags=["journeys"])
def list_runs(runtime: Runtime, key: str, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Runs of a flow, newest first; ``?status=failed`` lists failures with their reason."""
    if limit < 1:
        raise HTTPException(status_code=400, detail=f"limit must be at least 1 (at most 1000), got {limit}")
    if status is not None and status not in STATUSES:
        raise HTTPException(status_code=400, detail=f"unknown run status {status!r}; use one of {', '.join(STATUSES)}")
    with runtime.sessions() as session:
        q = (select(JourneyRun, Contact.external_id).join(Contact, Contact.id == JourneyRun.contact_id)
             .where(JourneyRun.flow_id == _flow_id(session, key)).order_by(JourneyRun.id.desc()).limit(min(limit, 1000)))
        if status:
            q = q.where(JourneyRun.status == status)
        return [{"id": r.id, "contact": ext, "node": r.node_id, "status": r.status, "error": r.error,
                 "entered_at": r.entered_at.isoformat(), "wake_at": r.wake_at.isoformat() if r.wake_at else None,
                 "finished_at": r.finished_at.isoformat() if r.finished_at else None}
                for r, ext in session.execute(q)]


routes = [enroll_contacts, stats, test_flow, list_runs]
