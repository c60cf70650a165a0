"""Segments: stored definitions, counts, member pages, why a contact is in or out; RFM.

Any role may read; marketer and admin tokens write.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import Parameter
from sqlalchemy import select

from kaskad import clock, segments
from kaskad.api.auth import ANY_ROLE, MARKETER
from kaskad.segments import rfm_snapshots
from kaskad.segments.definitions import Definitions, SaveResult, canonical
from kaskad.runtime import Runtime
from kaskad.store.engine import transaction
from kaskad.store.models import Contact

MAX_PAGE = 1000


def _errors(exc: segments.SegmentError) -> list[dict[str, str]]:
    return [{"path": p, "message": msg} for p, msg in exc.errors]


def _known(defs: Definitions, key: str) -> None:
    try:
        defs.get(key)
    except KeyError:
        raise NotFoundException(f"no segment {key!r}") from None


@post("/segments", guards=[MARKETER], status_code=200, sync_to_thread=True, tags=["segments"])
def save_segment(runtime: Runtime, request: Request, body: bytes) -> SaveResult:
    """Create a segment or store a new version of it. Any error: 422 with every error and its path, nothing stored."""
    if not body.strip():
        raise HTTPException(status_code=400, detail="send the segment JSON document as the request body")
    try:
        with transaction(runtime.sessions) as session:
            return Definitions(session).save(body, author=f"{request.user} token {str(request.auth)[:8]}")
    except segments.SegmentError as exc:
        raise HTTPException(status_code=422, detail=f"the segment has {len(exc.errors)} error(s); nothing was stored",
                            extra={"errors": _errors(exc)}) from exc


@get("/segments", guards=[ANY_ROLE], sync_to_thread=True, tags=["segments"])
def list_segments(runtime: Runtime) -> list[dict[str, Any]]:
    """Every segment: stored ones with their current version, and the shipped built-ins."""
    with runtime.sessions() as session:
        return Definitions(session).listing()


@get("/segments/{key:str}", guards=[ANY_ROLE], sync_to_thread=True, tags=["segments"])
def export_segment(runtime: Runtime, key: str, version: int | None = None) -> Response:
    """The segment JSON (canonical); ``?version=N`` for an older stored version."""
    with runtime.sessions() as session:
        defs = Definitions(session)
        if version is not None:
            hit = defs.stored(key, version)
            if hit is None:
                raise NotFoundException(f"segment {key!r} has no stored version {version}")
            text = hit[1].document
        else:
            _known(defs, key)
            text = canonical(defs.get(key))
    return Response(content=text.encode(), media_type="application/json")


@get("/segments/{key:str}/versions", guards=[ANY_ROLE], sync_to_thread=True, tags=["segments"])
def segment_versions(runtime: Runtime, key: str) -> list[dict[str, Any]]:
    with runtime.sessions() as session:
        defs = Definitions(session)
        _known(defs, key)
        return defs.versions(key)


@get("/segments/{key:str}/count", guards=[ANY_ROLE], sync_to_thread=True, tags=["segments"])
def count_segment(runtime: Runtime, key: str) -> dict[str, Any]:
    """How many contacts are in the segment now."""
    now = clock.now()
    with runtime.sessions() as session:
        _known(Definitions(session), key)
        return {"segment": key, "count": segments.count(session, key, now=now), "at": now.isoformat()}


@get("/segments/{key:str}/members", guards=[ANY_ROLE], sync_to_thread=True, tags=["segments"])
def segment_members(runtime: Runtime, key: str, cursor: int = 0, limit: int = 100) -> dict[str, Any]:
    """A page of members by ascending id; pass ``next_cursor`` back as ``cursor`` for the next page."""
    if not 1 <= limit <= MAX_PAGE:
        raise HTTPException(status_code=400, detail=f"limit must be between 1 and {MAX_PAGE}")
    with runtime.sessions() as session:
        _known(Definitions(session), key)
        ids = segments.members(session, key, cursor=cursor, limit=limit)
        rows = {c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(ids)))} if ids else {}
    return {
        "segment": key,
        "members": [{"id": i, "external_id": rows[i].external_id, "email": rows[i].email, "phone": rows[i].phone} for i in ids],
        "next_cursor": ids[-1] if len(ids) == limit else None,
    }


@get("/segments/{key:str}/explain/{external_id:str}", guards=[ANY_ROLE], sync_to_thread=True, tags=["segments"])
def explain_member(runtime: Runtime, key: str, external_id: str) -> dict[str, Any]:
    """Why a contact is in or out: each condition's result and the value it read."""
    with runtime.sessions() as session:
        _known(Definitions(session), key)
        cid = session.scalars(select(Contact.id).where(Contact.external_id == external_id, Contact.erased_at.is_(None))).one_or_none()
        if cid is None:
            raise NotFoundException(f"no contact {external_id!r}")
        return {"contact": external_id, **segments.explain(session, key, cid)}


def _day(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(status_code=400, detail=f"{name} must be a date YYYY-MM-DD, got {value!r}") from None


@get("/rfm", guards=[ANY_ROLE], sync_to_thread=True, tags=["rfm"])
def rfm_distribution(runtime: Runtime, day: str | None = None) -> dict[str, Any]:
    """Contacts per named RFM segment in the latest snapshot (or ``?day=YYYY-MM-DD``), and the snapshot days."""
    with runtime.sessions() as session:
        return rfm_snapshots.summary(session, _day(day, "day") if day else None)


@get("/rfm/transitions", guards=[ANY_ROLE], sync_to_thread=True, tags=["rfm"])
def rfm_transitions(runtime: Runtime, from_: str = Parameter(query="from"), to: str = Parameter()) -> dict[str, Any]:
    """How contacts moved between named segments from one snapshot day to another: ``matrix[from][to]``."""
    before, after = _day(from_, "from"), _day(to, "to")
    with runtime.sessions() as session:
        have = set(rfm_snapshots.days(session))
        for d, name in ((before, "from"), (after, "to")):
            if d not in have:
                raise NotFoundException(f"no RFM snapshot on {d.isoformat()} ({name}); snapshot days: "
                                        f"{', '.join(x.isoformat() for x in sorted(have)) or 'none yet'}")
        return {"from": before.isoformat(), "to": after.isoformat(), "matrix": rfm_snapshots.transitions(session, before, after)}


@post("/rfm/snapshot", guards=[MARKETER], status_code=200, sync_to_thread=True, tags=["rfm"])
def rfm_snapshot(runtime: Runtime) -> dict[str, Any]:
    """Recompute RFM now and replace today's snapshot (the periodic job does this every few hours)."""
    now = clock.now()
    with transaction(runtime.sessions) as session:
        rfm_snapshots.take(session, now)
        return rfm_snapshots.summary(session, now.date())


routes = [save_segment, list_segments, export_segment, segment_versions, count_segment, segment_members, explain_member,
          rfm_distribution, rfm_transitions, rfm_snapshot]
