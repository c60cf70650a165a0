"""Segments: who is in a group of contacts, as one SQL query per segment.

Definitions are :class:`kaskad.segments.model.Segment` documents. Until the
stored, versioned catalogue lands, they come from ``flows/segments/*.json`` and
from :func:`define` (tests, plugins).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaskad import clock
from kaskad.segments.compile import SegmentError, segment_query
from kaskad.segments.model import Segment, decode
from kaskad.store.models import Contact

__all__ = ["Segment", "SegmentError", "define", "get", "count", "members_among", "members", "load_dir", "decode"]

_defined: dict[str, Segment] = {}
_SHIPPED = Path(__file__).resolve().parents[3] / "flows" / "segments"


def define(segment: Segment) -> Segment:
    """Add or replace a definition (compiling it first, so a bad one changes nothing)."""
    segment_query(segment, now=clock.now(), resolve=lambda k: segment if k == segment.key else get(k))  # raises SegmentError
    _defined[segment.key] = segment
    return segment


def load_dir(path: Path = _SHIPPED) -> list[Segment]:
    out = [decode(p.read_bytes()) for p in sorted(Path(path).glob("*.json"))]
    for s in out:
        _defined.setdefault(s.key, s)
    return out


def get(key: str) -> Segment:
    if key not in _defined and _SHIPPED.is_dir():
        load_dir()
    return _defined[key]


def query(key: str, *, now=None, dialect: str = "sqlite", among=None):
    return segment_query(get(key), now=now or clock.now(), resolve=get, dialect=dialect, among=among)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def count(session: Session, segment_key: str, *, now=None) -> int:
    q = query(segment_key, now=now, dialect=_dialect(session)).subquery()
    return session.execute(select(func.count()).select_from(q)).scalar_one()


def members_among(session: Session, segment_key: str, contact_ids: Iterable[int], *, now=None) -> set[int]:
    """Which of ``contact_ids`` are in the segment: the segment's query restricted to those ids
    (the restriction reaches into every aggregate, so this reads only their rows)."""
    ids = sorted(set(contact_ids))
    found: set[int] = set()
    for i in range(0, len(ids), 5000):
        chunk = ids[i : i + 5000]
        q = query(segment_key, now=now, dialect=_dialect(session), among=chunk)
        found.update(session.execute(q.where(Contact.id.in_(chunk))).scalars())
    return found


def members(session: Session, segment_key: str, *, cursor: int = 0, limit: int = 100, now=None) -> list[int]:
    """A page of member ids above ``cursor``, ascending (the last id is the next cursor)."""
    q = query(segment_key, now=now, dialect=_dialect(session)).where(Contact.id > cursor).order_by(Contact.id).limit(limit)
    return list(session.execute(q).scalars())
