"""Contacts: bulk upsert by ``external_id`` with consents, and erasure."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import phonenumbers
from msgspec import Meta
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from kaskad import clock
from kaskad.ingest.batch import ItemError
from kaskad.store.dialect import driver_cursor, insert_for
from kaskad.store.models import Consent, Contact, Event, MessageEvent, Order, OutboxMessage

ExternalId = Annotated[str, Meta(min_length=1, max_length=200)]
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ConsentIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    channel: Annotated[str, Meta(min_length=1, max_length=64)]
    status: Literal["granted", "revoked"]
    topic: Annotated[str, Meta(min_length=1, max_length=64)] = "*"
    source: Annotated[str, Meta(max_length=64)] | None = None


class ContactIn(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    external_id: ExternalId
    email: str | None | msgspec.UnsetType = msgspec.UNSET
    phone: str | None | msgspec.UnsetType = msgspec.UNSET
    timezone: str | None | msgspec.UnsetType = msgspec.UNSET
    attributes: dict[str, Any] | msgspec.UnsetType = msgspec.UNSET
    tags: list[Annotated[str, Meta(min_length=1, max_length=100)]] | msgspec.UnsetType = msgspec.UNSET
    consents: list[ConsentIn] = []
    phone_region: Annotated[str, Meta(min_length=2, max_length=2)] | None = None


def normalise_phone(raw: str, region: str | None = None) -> str:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{raw!r} is not a phone number ({exc}); use the international form, e.g. +79161234567") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError(f"{raw!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def check_contact(item: ContactIn) -> tuple[str | None, str] | None:
    """Semantic checks msgspec cannot express; returns (field, message) or None."""
    if isinstance(item.email, str) and not _EMAIL.match(item.email):
        return "email", f"{item.email!r} is not an email address"
    if isinstance(item.phone, str):
        try:
            item.phone = normalise_phone(item.phone, item.phone_region)
        except ValueError as exc:
            return "phone", str(exc)
    if isinstance(item.timezone, str):
        try:
            ZoneInfo(item.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return "timezone", f"{item.timezone!r} is not an IANA timezone such as Europe/Moscow"
    return None


def _merge(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(current)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def _fields(item: ContactIn) -> dict[str, Any]:
    return {
        k: getattr(item, k) for k in ("email", "phone", "timezone", "tags") if getattr(item, k) is not msgspec.UNSET
    }


def upsert_contacts(session: Session, items: list[tuple[int, ContactIn]]) -> tuple[int, int, list[ItemError]]:
    """Create or update contacts; attributes are patched key by key (null removes a key)."""
    errors: list[ItemError] = []
    valid: list[tuple[int, ContactIn]] = []
    for index, item in items:
        problem = check_contact(item)
        if problem:
            errors.append(ItemError(index=index, field=problem[0], message=problem[1]))
        else:
            valid.append((index, item))
    if not valid:
        return 0, 0, errors
    # Last write wins within one batch for a repeated external_id.
    by_ext: dict[str, ContactIn] = {}
    for _, item in valid:
        prev = by_ext.get(item.external_id)
        if prev is not None and item.attributes is not msgspec.UNSET and prev.attributes is not msgspec.UNSET:
            item.attributes = _merge(prev.attributes, item.attributes)  # type: ignore[arg-type]
        by_ext[item.external_id] = item
    now = clock.now()
    existing = _lock_existing(session, list(by_ext))
    new = [e for e in by_ext if e not in existing]
    created = 0
    if new:
        rows = [
            {
                "external_id": e,
                "email": by_ext[e].email or None,
                "phone": by_ext[e].phone or None,
                "timezone": by_ext[e].timezone or None,
                "attributes": {k: v for k, v in (by_ext[e].attributes or {}).items() if v is not None},
                "tags": by_ext[e].tags or [],
                "created_at": now,
                "updated_at": now,
            }
            for e in new
        ]
        stmt = insert_for(session, Contact).on_conflict_do_nothing(index_elements=["external_id"]).returning(
            Contact.external_id
        )
        inserted = set(session.scalars(stmt, rows).all()) if rows else set()
        created = len(inserted)
        raced = [e for e in new if e not in inserted]
        if raced:  # created by a concurrent request meanwhile: apply as updates
            existing.update(_lock_existing(session, raced))
    updates = []
    for ext, row in existing.items():
        item = by_ext[ext]
        values = _fields(item)
        if item.attributes is not msgspec.UNSET:
            values["attributes"] = _merge(row["attributes"] or {}, item.attributes)  # type: ignore[arg-type]
        values["id"] = row["id"]
        values["updated_at"] = now
        updates.append(values)
    if updates:
        # Group by the set of columns so each executemany has one shape.
        shapes: dict[tuple[str, ...], list[dict]] = {}
        for u in updates:
            shapes.setdefault(tuple(sorted(u)), []).append(u)
        for rows in shapes.values():
            session.execute(update(Contact), rows)
    _store_consents(session, by_ext, now)
    return created, len(updates), errors


def _lock_existing(session: Session, external_ids: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(external_ids, 5000):
        q = select(Contact.id, Contact.external_id, Contact.attributes).where(Contact.external_id.in_(chunk))
        if session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update()
        for r in session.execute(q):
            out[r.external_id] = {"id": r.id, "attributes": r.attributes}
    return out


def _store_consents(session: Session, by_ext: dict[str, ContactIn], now: datetime) -> None:
    wanted = [(ext, c) for ext, item in by_ext.items() for c in item.consents]
    if not wanted:
        return
    ids = contact_ids(session, [ext for ext, _ in wanted])
    rows = {
        (ids[ext], c.channel, c.topic): {
            "contact_id": ids[ext], "channel": c.channel, "topic": c.topic, "status": c.status,
            "source": c.source, "updated_at": now,
        }
        for ext, c in wanted
    }
    stmt = insert_for(session, Consent)
    stmt = stmt.on_conflict_do_update(
        index_elements=["contact_id", "channel", "topic"],
        set_={"status": stmt.excluded.status, "source": stmt.excluded.source, "updated_at": stmt.excluded.updated_at},
    )
    session.execute(stmt, list(rows.values()))


def contact_ids(session: Session, external_ids: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    if session.get_bind().dialect.name == "postgresql":
        with driver_cursor(session) as cur:
            cur.execute("SELECT external_id, id FROM contacts WHERE external_id = ANY(%s)", (sorted(set(external_ids)),), binary=True)
            return dict(cur.fetchall())
    for chunk in _chunks(sorted(set(external_ids)), 5000):
        out.update(session.execute(select(Contact.external_id, Contact.id).where(Contact.external_id.in_(chunk))).all())
    return out


def ensure_contacts(session: Session, external_ids: list[str]) -> dict[str, int]:
    """Ids of these contacts, creating bare contacts for the unknown ones."""
    ids = contact_ids(session, external_ids)
    missing = sorted(set(external_ids) - set(ids))
    if missing:
        now = clock.now()
        stmt = insert_for(session, Contact).on_conflict_do_nothing(index_elements=["external_id"])
        session.execute(stmt, [{"external_id": e, "attributes": {}, "tags": [], "created_at": now, "updated_at": now} for e in missing])
        ids.update(contact_ids(session, missing))
    return ids


def _chunks(seq: list, n: int):
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def erase_contact(session: Session, external_id: str) -> bool:
    """Remove a contact's personal data; keep anonymised history. Idempotent."""
    contact = session.scalar(select(Contact).where(Contact.external_id == external_id).with_for_update())
    if contact is None:
        return False
    cid = contact.id
    contact.external_id = "erased:" + hashlib.sha256(f"{cid}:{external_id}".encode()).hexdigest()[:32]
    contact.email = contact.phone = contact.timezone = None
    contact.attributes, contact.tags = {}, []
    contact.erased_at = contact.erased_at or clock.now()
    contact.updated_at = clock.now()
    session.execute(delete(Consent).where(Consent.contact_id == cid))
    session.execute(update(Event).where(Event.contact_id == cid).values(properties={}))
    session.execute(update(OutboxMessage).where(OutboxMessage.contact_id == cid).values(payload={}))
    session.execute(update(MessageEvent).where(MessageEvent.contact_id == cid).values(detail={}))
    session.execute(update(Order).where(Order.contact_id == cid).values(attributes={}))
    return True
