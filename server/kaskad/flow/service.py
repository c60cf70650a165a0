"""Flow versions: save drafts, publish, read, restore, export.

- Saving creates a draft. While the newest version is a draft, saving again
  updates that draft in place (editor autosave must not mint hundreds of
  versions). After a publish, the next save creates version N+1.
- A draft may be invalid (the editor never loses work), but it must be a JSON
  object with a valid ``key`` and the right ``schema``.
- Publishing requires validity, freezes the version forever and makes it the
  flow's ``current_version``. Re-publishing an older published version makes it
  current again (a rollback). Older versions stay readable.
- Saving a document identical to the newest published version changes nothing
  (an import retried after ``--publish`` does not mint an empty draft).
- A version is stored as :func:`kaskad.flow.model.canonical_json` whenever it
  decodes into the model's Structs (valid, or invalid only in its rules such as
  a loose edge or an unknown channel); a draft that does not decode is stored
  as its JSON with sorted keys and the same indentation. Either way
  export → import → export is byte-identical.
"""

from __future__ import annotations

import re

import msgspec
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kaskad import clock
from kaskad.flow import model
from kaskad.flow.validate import FlowError, decode_stored, parse_document, validate
from kaskad.store.models import Flow as FlowRow
from kaskad.store.models import FlowVersion

_KEY = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,119}$")
_sorted = msgspec.json.Encoder(order="sorted")


class FlowServiceError(Exception):
    """Base of the errors below; ``errors`` lists the flow errors, if any."""

    def __init__(self, message: str, errors: list[FlowError] | None = None):
        super().__init__(message)
        self.errors = errors or []


class DocumentRejected(FlowServiceError):
    """The document cannot be stored even as a draft (not an object, bad key or schema)."""


class FlowNotFound(FlowServiceError, LookupError):
    pass


class FlowInvalid(FlowServiceError, ValueError):
    """Publishing a version that does not validate."""


class SaveResult(msgspec.Struct, kw_only=True):
    key: str
    version: int
    status: str
    valid: bool
    errors: list[FlowError] = []


def stored_form(data: dict, flow: model.Flow | None) -> bytes:
    """The bytes a version is stored and exported as."""
    if flow is None:
        try:  # an invalid draft whose every part still decodes (a loose edge, an unknown channel)
            flow = decode_stored(msgspec.json.encode(data))
        except (msgspec.ValidationError, msgspec.DecodeError, KeyError, TypeError, AttributeError):
            return msgspec.json.format(_sorted.encode(data), indent=2) + b"\n"
    return model.canonical_json(flow)


def _check_storable(data: dict | None, errors: list[FlowError]) -> dict:
    if data is None:
        raise DocumentRejected(errors[0].message, errors)
    problems = []
    if data.get("schema") != model.SCHEMA_VERSION:
        problems.append(FlowError(node=None, path="schema", message=f"schema must be {model.SCHEMA_VERSION!r}, got {data.get('schema')!r}"))
    key = data.get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        problems.append(FlowError(node=None, path="key", message=f"key must be lowercase letters, digits, - or _ (at most 120), got {key!r}"))
    if problems:
        raise DocumentRejected("; ".join(f"{e.path}: {e.message}" for e in problems), problems)
    return data


def _flow_row(session: Session, key: str, lock: bool = False) -> FlowRow | None:
    q = select(FlowRow).where(FlowRow.key == key)
    if lock:
        q = q.with_for_update()
    return session.scalars(q).one_or_none()


def _newest(session: Session, flow_id: int) -> FlowVersion | None:
    return session.scalars(
        select(FlowVersion).where(FlowVersion.flow_id == flow_id).order_by(FlowVersion.version.desc()).limit(1)
    ).one_or_none()


def _version(session: Session, key: str, version: int | None) -> tuple[FlowRow, FlowVersion]:
    row = _flow_row(session, key)
    if row is None:
        raise FlowNotFound(f"no flow with key {key!r}")
    if version is None:
        v = _newest(session, row.id)
    else:
        v = session.scalars(select(FlowVersion).where(FlowVersion.flow_id == row.id, FlowVersion.version == version)).one_or_none()
    if v is None:
        raise FlowNotFound(f"flow {key!r} has no version {version}" if version is not None else f"flow {key!r} has no versions")
    return row, v


def _name(data: dict, key: str) -> str:
    name = data.get("name")
    return name[:300] if isinstance(name, str) and name else key


def save(session: Session, registry, document: bytes | str | dict, author: str | None = None) -> SaveResult:
    """Store ``document`` as the flow's draft (see the module docstring for the rules)."""
    data, errors = parse_document(document)
    data = _check_storable(data, errors)
    flow, errors = validate(data, registry)
    stored = stored_form(data, flow).decode()
    key = data["key"]
    now = clock.now()
    row = _flow_row(session, key, lock=True)
    if row is None:
        try:
            with session.begin_nested():  # two first saves of one key race on flows.key
                row = FlowRow(key=key, name=_name(data, key), created_at=now, updated_at=now)
                session.add(row)
        except IntegrityError:
            row = _flow_row(session, key, lock=True)
    newest = _newest(session, row.id)
    if newest is not None and newest.status == "draft":
        if newest.document != stored:
            newest.document = stored
            newest.created_by = author or newest.created_by
            row.updated_at = now
        target = newest
    elif newest is not None and newest.document == stored:
        target = newest  # identical to what is published: nothing to save
    else:
        target = FlowVersion(
            flow_id=row.id,
            version=(newest.version + 1) if newest else 1,
            status="draft",
            document=stored,
            created_at=now,
            created_by=author,
        )
        session.add(target)
        row.updated_at = now
    row.name = _name(data, key)
    session.flush()
    return SaveResult(key=key, version=target.version, status=target.status, valid=not errors, errors=errors)


def publish(session: Session, registry, key: str, version: int | None = None, author: str | None = None) -> int:
    """Publish ``version`` (default: the newest) and make it current; returns its number.

    Raises :class:`FlowInvalid` carrying every error when the version does not validate.
    """
    row = _flow_row(session, key, lock=True)
    if row is None:
        raise FlowNotFound(f"no flow with key {key!r}")
    _, v = _version(session, key, version)
    if v.status != "published":
        flow, errors = validate(v.document.encode(), registry)
        if errors:
            raise FlowInvalid(f"flow {key!r} version {v.version} has {len(errors)} error(s) and cannot be published", errors)
        v.document = model.canonical_json(flow).decode()
        v.status = "published"
        v.published_at = clock.now()
        if author:
            v.created_by = v.created_by or author
    row.current_version = v.version
    row.updated_at = clock.now()
    session.flush()
    return v.version


def load_version(session: Session, key: str, version: int | None = None) -> tuple[FlowVersion, model.Flow]:
    """A version row and its decoded flow; ``version=None`` is the current published one."""
    row = _flow_row(session, key)
    if row is None:
        raise FlowNotFound(f"no flow with key {key!r}")
    if version is None:
        if row.current_version is None:
            raise FlowNotFound(f"flow {key!r} has no published version")
        version = row.current_version
    _, v = _version(session, key, version)
    try:
        return v, decode_stored(v.document)
    except (msgspec.ValidationError, msgspec.DecodeError, KeyError, TypeError) as exc:
        raise FlowInvalid(f"flow {key!r} version {v.version} is an invalid draft: {exc}") from exc


def export(session: Session, key: str, version: int | None = None) -> bytes:
    """The stored bytes of ``version`` (default: the newest, draft or not)."""
    _, v = _version(session, key, version)
    return v.document.encode()


def restore(session: Session, key: str, version: int, author: str | None = None) -> int:
    """Copy ``version`` into a new draft (always a new version, so no draft is overwritten)."""
    row = _flow_row(session, key, lock=True)
    if row is None:
        raise FlowNotFound(f"no flow with key {key!r}")
    _, source = _version(session, key, version)
    newest = _newest(session, row.id)
    now = clock.now()
    draft = FlowVersion(
        flow_id=row.id, version=newest.version + 1, status="draft", document=source.document, created_at=now, created_by=author
    )
    session.add(draft)
    row.updated_at = now
    session.flush()
    return draft.version


def list_flows(session: Session) -> list[dict]:
    newest = (
        select(FlowVersion.flow_id, func.max(FlowVersion.version).label("v")).group_by(FlowVersion.flow_id).subquery()
    )
    q = (
        select(FlowRow, FlowVersion)
        .join(newest, newest.c.flow_id == FlowRow.id)
        .join(FlowVersion, (FlowVersion.flow_id == FlowRow.id) & (FlowVersion.version == newest.c.v))
        .order_by(FlowRow.key)
    )
    return [
        {
            "key": f.key,
            "name": f.name,
            "current_version": f.current_version,
            "latest_version": v.version,
            "latest_status": v.status,
            "updated_at": f.updated_at,
        }
        for f, v in session.execute(q)
    ]


def list_versions(session: Session, key: str) -> list[dict]:
    row = _flow_row(session, key)
    if row is None:
        raise FlowNotFound(f"no flow with key {key!r}")
    versions = session.scalars(select(FlowVersion).where(FlowVersion.flow_id == row.id).order_by(FlowVersion.version)).all()
    return [
        {
            "version": v.version,
            "status": v.status,
            "current": v.version == row.current_version,
            "created_at": v.created_at,
            "published_at": v.published_at,
            "created_by": v.created_by,
        }
        for v in versions
    ]
