"""Stored, versioned segment definitions, and where a segment key is looked up.

- Saving a valid definition whose document differs from the current version
  creates version N+1 and makes it current; saving the same document again
  changes nothing. A definition with any error is not stored: the errors are
  all reported, each with its path (``$.condition.conditions[1].value``).
- There are no drafts: a segment is a query, not a journey, and a stored
  version is immediately what counts and triggers use.
- A key is looked up in this order: those registered in process with
  :func:`kaskad.segments.define` (code: tests, plugins; such a key cannot be
  stored), stored definitions, then the shipped files in ``flows/segments/*.json``.
  A shipped segment is a read-only built-in until a definition with the same key
  is stored, which then takes its place.
"""

from __future__ import annotations

import re
import time
import typing
from pathlib import Path
from typing import Any, Callable

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kaskad import clock
from kaskad.segments import model as m
from kaskad.segments.compile import SegmentError, compile_segment
from kaskad.segments.models import SegmentDefinition, SegmentVersion

SHIPPED_DIR = Path(__file__).resolve().parents[3] / "flows" / "segments"
SCHEMA = "kaskad.segment/1"
_KEY = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_LEAVES = {t.__struct_config__.tag: t for t in (m.Attribute, m.Tag, m.Reachable, m.Orders, m.Bought, m.Performed, m.Rfm, m.InSegment)}
_KINDS = ", ".join(["all", "any", "not", *_LEAVES])
_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_encoder = msgspec.json.Encoder(order="deterministic")

#: Stored definitions are read again after this many seconds: a version saved in another
#: process applies there within this time (in the saving process at once).
STORED_TTL = 5.0
_STORED: dict[tuple[str, str], tuple[float, str | None]] = {}

#: registered in process (tests, plugins) by :func:`kaskad.segments.define`
DEFINED: dict[str, m.Segment] = {}
_shipped: dict[str, m.Segment] | None = None


class SaveResult(msgspec.Struct, kw_only=True):
    key: str
    version: int
    changed: bool


def canonical(segment: m.Segment) -> str:
    return (msgspec.json.format(_encoder.encode(segment), indent=2) + b"\n").decode()


def shipped() -> dict[str, m.Segment]:
    global _shipped
    if _shipped is None:
        found = {}
        for p in sorted(SHIPPED_DIR.glob("*.json")) if SHIPPED_DIR.is_dir() else []:
            s = m.decode(p.read_bytes())
            found[s.key] = s
        _shipped = found
    return _shipped


def _choices(struct: type, field: str) -> list:
    """The allowed values of a Literal field (for "Invalid enum value" messages)."""
    def literals(t):
        if typing.get_origin(t) is typing.Literal:
            return list(typing.get_args(t))
        return [v for a in typing.get_args(t) for v in literals(a)]

    return literals(typing.get_type_hints(struct, include_extras=True).get(field, type(None)))


def _structure(node: Any, path: str, errors: list[tuple[str, str]]) -> None:
    """Collect every structural error of a condition tree (msgspec alone stops at the first)."""
    if not isinstance(node, dict):
        errors.append((path, "a condition is an object with a kind"))
        return
    kind = node.get("kind")
    if kind in ("all", "any", "not"):
        field = "condition" if kind == "not" else "conditions"
        for extra in sorted(set(node) - {"kind", field}):
            errors.append((f"{path}.{extra}", f"unknown field for kind {kind!r}"))
        inner = node.get(field)
        if kind == "not":
            _structure(inner, f"{path}.condition", errors)
        elif not isinstance(inner, list) or not inner:
            errors.append((f"{path}.conditions", "a non-empty list of conditions"))
        else:
            for i, c in enumerate(inner):
                _structure(c, f"{path}.conditions[{i}]", errors)
    elif kind in _LEAVES:
        try:
            msgspec.convert(node, _LEAVES[kind])
        except msgspec.ValidationError as exc:
            hit = _AT.match(str(exc))
            where, msg = hit.group("path") or "", hit.group("msg")
            choices = _choices(_LEAVES[kind], where.lstrip("."))
            if msg.startswith("Invalid enum value") and choices:
                msg += f"; one of {', '.join(map(repr, choices))}"
            errors.append((path + where, msg))
    else:
        errors.append((f"{path}.kind", f"unknown condition kind {kind!r}; one of {_KINDS}"))


def check(document: bytes | str | dict, resolve: Callable[[str], m.Segment]) -> tuple[m.Segment | None, list[tuple[str, str]]]:
    """The decoded segment and every error in it, each as (path, message)."""
    if not isinstance(document, dict):
        try:
            document = msgspec.json.decode(document)
        except msgspec.DecodeError as exc:
            return None, [("$", f"not valid JSON: {exc}")]
    if not isinstance(document, dict):
        return None, [("$", "a segment is a JSON object")]
    errors: list[tuple[str, str]] = []
    for extra in sorted(set(document) - {"schema", "key", "name", "condition"}):
        errors.append((f"$.{extra}", "unknown field"))
    if document.get("schema", SCHEMA) != SCHEMA:
        errors.append(("$.schema", f"must be {SCHEMA!r}"))
    key = document.get("key")
    if not isinstance(key, str) or not _KEY.match(key) or len(key) > 120:
        errors.append(("$.key", "lowercase letters, digits and -, starting with a letter or digit (at most 120)"))
    name = document.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 300:
        errors.append(("$.name", "a non-empty string of at most 300 characters"))
    if "condition" not in document:
        errors.append(("$.condition", "required"))
    else:
        _structure(document["condition"], "$.condition", errors)
    if errors:
        return None, errors
    segment = msgspec.convert(document, m.Segment)
    try:
        compile_segment(segment, now=clock.now(), resolve=lambda k: segment if k == segment.key else resolve(k))
    except SegmentError as exc:
        return None, exc.errors
    return segment, []


class Definitions:
    """Segment lookups inside one session (see the module docstring for the order)."""

    def __init__(self, session: Session):
        self.session = session
        self._cache: dict[str, m.Segment] = {}

    def _row(self, key: str) -> SegmentDefinition | None:
        return self.session.scalars(select(SegmentDefinition).where(SegmentDefinition.key == key)).one_or_none()

    def stored(self, key: str, version: int | None = None) -> tuple[SegmentDefinition, SegmentVersion] | None:
        row = self._row(key)
        if row is None:
            return None
        v = self.session.scalars(select(SegmentVersion).where(
            SegmentVersion.segment_id == row.id, SegmentVersion.version == (version or row.current_version))).one_or_none()
        return (row, v) if v is not None else None

    def _current_document(self, key: str) -> str | None:
        """The stored current document of ``key``, through a short per-process cache: the engine
        asks for a segment in every branch batch, and a lookup there is one query per batch."""
        ck = (str(self.session.get_bind().url), key)
        hit = _STORED.get(ck)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        doc = self.session.scalar(
            select(SegmentVersion.document)
            .join(SegmentDefinition, SegmentDefinition.id == SegmentVersion.segment_id)
            .where(SegmentDefinition.key == key, SegmentVersion.version == SegmentDefinition.current_version)
        )
        _STORED[ck] = (time.monotonic() + STORED_TTL, doc)
        return doc

    def get(self, key: str) -> m.Segment:
        """The current definition of ``key``; KeyError when there is none."""
        if key not in self._cache:
            doc = None if key in DEFINED else self._current_document(key)
            if key in DEFINED:
                self._cache[key] = DEFINED[key]
            elif doc is not None:
                self._cache[key] = m.decode(doc)
            else:
                self._cache[key] = shipped()[key]
        return self._cache[key]

    def keys(self) -> list[str]:
        stored = self.session.scalars(select(SegmentDefinition.key)).all()
        return sorted({*stored, *DEFINED, *shipped()})

    def save(self, document: bytes | str | dict, author: str | None = None) -> SaveResult:
        """Store a new version if the document is valid and differs; raises :class:`SegmentError` with every error."""
        segment, errors = check(document, self.get)
        if segment is not None and segment.key in DEFINED:
            errors = [("$.key", f"{segment.key!r} is defined in code (a plugin); choose another key")]
        if errors:
            raise SegmentError(errors[0][0], errors[0][1], errors)
        text = canonical(segment)
        now = clock.now()
        row = self._row(segment.key)
        if row is None:
            try:
                with self.session.begin_nested():  # two first saves of one key race on the unique key
                    row = SegmentDefinition(key=segment.key, name=segment.name, current_version=0, created_at=now, updated_at=now)
                    self.session.add(row)
            except IntegrityError:
                row = self._row(segment.key)
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.refresh(row, with_for_update=True)
        current = self.stored(segment.key)
        if current is not None and current[1].document == text:
            return SaveResult(key=segment.key, version=row.current_version, changed=False)
        row.current_version += 1
        row.name = segment.name
        row.updated_at = now
        self.session.add(SegmentVersion(segment_id=row.id, version=row.current_version, document=text, created_at=now,
                                        created_by=author))
        self.session.flush()
        self._cache.pop(segment.key, None)
        _STORED.pop((str(self.session.get_bind().url), segment.key), None)
        return SaveResult(key=segment.key, version=row.current_version, changed=True)

    def listing(self) -> list[dict[str, Any]]:
        rows = {r.key: r for r in self.session.scalars(select(SegmentDefinition))}
        out = []
        for key in self.keys():
            r = rows.get(key)
            source = "defined" if key in DEFINED else "stored" if r else "shipped"
            out.append({"key": key, "name": r.name if r else self.get(key).name, "source": source,
                        "version": r.current_version if r else None, "updated_at": r.updated_at if r else None})
        return out

    def versions(self, key: str) -> list[dict[str, Any]]:
        row = self._row(key)
        if row is None:
            return []
        vs = self.session.scalars(select(SegmentVersion).where(SegmentVersion.segment_id == row.id).order_by(SegmentVersion.version))
        return [{"version": v.version, "current": v.version == row.current_version, "created_at": v.created_at,
                 "created_by": v.created_by} for v in vs]
