"""The statements behind a till's quote and redeem, as few as the checks allow.

Every sale calls these, so they are Core statements built once (SQLAlchemy caches their
compiled SQL, psycopg prepares them on the server) instead of ORM queries built and
loaded into objects per call. Rows come back as plain rows with the columns as
attributes, which is all :mod:`kaskad.loyalty.codes` and the checkout need.

Locks are those the ledger documents: the customer's account row first, then the
rows of codes that have a use limit or a balance, in id order.
"""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
from sqlalchemy import BigInteger, String, and_, bindparam, func, insert, or_, select, text, update
from sqlalchemy.engine import Connection, Row

from kaskad.loyalty.models import CodeUse, LedgerEntry, LoyaltyAccount, LoyaltyCode, Operation, PointLot, Reservation
from kaskad.store.models import Contact
from kaskad.store.types import UTCDateTime

_accounts, _contacts = LoyaltyAccount.__table__, Contact.__table__
_codes, _lots, _ops = LoyaltyCode.__table__, PointLot.__table__, Operation.__table__

#: The contact by external id, its account row locked, and a stored result under ``key`` if any.
#: The result is read in the same statement as the lock; when the lock had to wait, it may
#: predate a concurrent first call with the same key, which the caller catches by the
#: unique key on insert (see :func:`kaskad.loyalty.checkout.redeem`).
_LOCK_CONTACT = (
    select(_accounts.c.contact_id, select(_ops.c.result).where(_ops.c.key == bindparam("key")).scalar_subquery())
    .join_from(_accounts, _contacts, _contacts.c.id == _accounts.c.contact_id)
    .where(_contacts.c.external_id == bindparam("ext"))
    .with_for_update(of=_accounts)
)
_CONTACT = select(_contacts.c.id).where(_contacts.c.external_id == bindparam("ext"))
_RESULT = select(_ops.c.result).where(_ops.c.key == bindparam("key"))
#: The codes entered, and the customer's cashback offers (which apply without being entered).
_CODES = select(_codes).where(
    or_(
        _codes.c.code.in_(bindparam("codes", expanding=True)),
        and_(_codes.c.contact_id == bindparam("cid"), _codes.c.kind == "cashback"),
    )
)
_LOCK_CODES = select(_codes).where(_codes.c.id.in_(bindparam("ids", expanding=True))).order_by(_codes.c.id).with_for_update()
_LIVE = and_(
    _lots.c.contact_id == bindparam("cid"),
    _lots.c.remaining > 0,
    _lots.c.available_at <= bindparam("now"),
    or_(_lots.c.expires_at.is_(None), _lots.c.expires_at > bindparam("now")),
)
_LIVE_LOTS = select(_lots.c.id, _lots.c.remaining).where(_LIVE).order_by(_lots.c.expires_at.asc().nulls_last(), _lots.c.id)
_BALANCE = select(func.coalesce(func.sum(_lots.c.remaining), 0)).where(_LIVE)

_SPEND_LOT = update(_lots).where(_lots.c.id == bindparam("lot")).values(remaining=_lots.c.remaining - bindparam("part"))
_ENTRY = insert(LedgerEntry.__table__)
_CODE_USE = insert(CodeUse.__table__)
_OPERATION = insert(_ops).returning(_ops.c.id)
_COUNT_USE = (
    update(_codes).where(_codes.c.id == bindparam("code_id"))
    .values(uses=_codes.c.uses + 1, balance=_codes.c.balance - bindparam("taken"))
)


@functools.cache
def _upserts(dialect: str) -> dict[str, Any]:
    """Statements whose conflict clause differs between PostgreSQL and SQLite."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    account = dialect_insert(_accounts).values(contact_id=bindparam("cid"))
    return {
        "account": account.on_conflict_do_update(
            index_elements=["contact_id"], set_={"contact_id": account.excluded.contact_id}
        ),
        "reservation": dialect_insert(Reservation.__table__).on_conflict_do_nothing(index_elements=["key"])
        .returning(Reservation.__table__.c.id),
    }


def _conn(session) -> Connection:
    return session.connection()


def lock_contact(session, external_id: str, key: str) -> tuple[int, dict | None]:
    """Lock the customer's account (created if missing) and read a stored result under ``key``.
    An unknown customer is a 404."""
    from kaskad.loyalty.ledger import LoyaltyError

    conn = _conn(session)
    row = conn.execute(_LOCK_CONTACT, {"ext": external_id, "key": key}).first()
    if row is not None:
        return row[0], row[1]
    cid = conn.execute(_CONTACT, {"ext": external_id}).scalar()
    if cid is None:
        raise LoyaltyError("unknown_contact", f"no contact with external_id {external_id!r}", 404)
    conn.execute(_upserts(conn.dialect.name)["account"], {"cid": cid})  # the first loyalty call for this contact
    return cid, stored_result(session, key)


def contact_id(session, external_id: str) -> int | None:
    return _conn(session).execute(_CONTACT, {"ext": external_id}).scalar()


def stored_result(session, key: str) -> dict | None:
    return _conn(session).execute(_RESULT, {"key": key}).scalar()


def codes_and_offers(session, entered: list[str], contact_id: int | None, lock: bool) -> tuple[dict[str, Row], list[Row]]:
    """The entered codes that exist, by code, and the contact's cashback offers.
    With ``lock``, the entered codes that a redeem changes (use limit, gift-card balance)
    are locked and read again at their latest committed state."""
    from kaskad.loyalty.codes import counted

    if not entered and contact_id is None:
        return {}, []
    conn = _conn(session)
    rows = conn.execute(_CODES, {"codes": entered, "cid": contact_id}).all()
    wanted = set(entered)
    found = {r.code: r for r in rows if r.code in wanted}
    offers = [r for r in rows if r.kind == "cashback" and r.contact_id == contact_id]
    if lock:
        ids = [r.id for r in found.values() if counted(r)]
        if ids:
            found.update((r.code, r) for r in conn.execute(_LOCK_CODES, {"ids": ids}).all())
    return found, offers


def live_lots(session, contact_id: int, now: datetime) -> list[Row]:
    """The contact's live lots ``(id, remaining)``, soonest-expiring first (no expiry last)."""
    return _conn(session).execute(_LIVE_LOTS, {"cid": contact_id, "now": now}).all()


def balance(session, contact_id: int, now: datetime) -> Decimal:
    return Decimal(_conn(session).execute(_BALANCE, {"cid": contact_id, "now": now}).scalar())


def write_redeem(session, r: dict) -> int | None:
    """Write a checked redeem: the reservation (its unique ``key`` settles two first calls
    racing), the operation with its ``result`` (plus the reservation id), the spends from
    each lot with their ledger entries, the code uses and the counted codes' uses and
    balances. Returns the reservation id, or None when a reservation with this key exists
    (then nothing was written).

    ``r`` has: key, op_key, contact_id, order_ref, quote, result, net, points_spent, reason, now,
    spends ``[{"lot", "part"}]``, uses ``[{"code_id", "amount"}]``, counted ``[{"code_id", "taken"}]``.
    On PostgreSQL this is one statement; elsewhere one per table.
    """
    conn = _conn(session)
    if conn.dialect.name == "postgresql":
        params = {k: r[k] for k in ("key", "op_key", "contact_id", "order_ref", "net", "points_spent", "reason", "now")}
        params.update(quote=_json(r["quote"]), result=_json(r["result"]), spends=_json(r["spends"]),
                      uses=_json(r["uses"]), counted=_json(r["counted"]))
        return conn.execute(_PG_REDEEM, params).scalar()
    res_id = conn.execute(_upserts(conn.dialect.name)["reservation"], {
        "key": r["key"], "contact_id": r["contact_id"], "order_ref": r["order_ref"], "status": "reserved",
        "quote": r["quote"], "net": r["net"], "points_spent": r["points_spent"], "created_at": r["now"]}).scalar()
    if res_id is None:
        return None
    op_id = conn.execute(_OPERATION, {"key": r["op_key"], "kind": "redeem", "contact_id": r["contact_id"],
                                      "result": {"reservation": res_id, **r["result"]}, "created_at": r["now"]}).scalar_one()
    if r["spends"]:
        conn.execute(_SPEND_LOT, r["spends"])
        conn.execute(_ENTRY, [{"contact_id": r["contact_id"], "lot_id": s["lot"], "operation_id": op_id, "kind": "spend",
                               "amount": -s["part"], "reason": r["reason"], "created_at": r["now"]} for s in r["spends"]])
    if r["uses"]:
        conn.execute(_CODE_USE, [{"code_id": u["code_id"], "contact_id": r["contact_id"], "reservation_id": res_id,
                                  "status": "reserved", "amount": u["amount"], "created_at": r["now"]} for u in r["uses"]])
    if r["counted"]:
        conn.execute(_COUNT_USE, r["counted"])
    return res_id


def _json(value) -> str:
    return msgspec.json.encode(value).decode()


#: The write of :func:`write_redeem` as one PostgreSQL statement. Every step after the
#: reservation joins ``res``, so a key that exists already writes nothing at all.
_PG_REDEEM = text("""
WITH res AS (
    INSERT INTO loyalty_reservations (key, contact_id, order_ref, status, quote, net, points_spent, points_earned,
                                      refunded_amount, points_restored, points_reversed, gift_restored, created_at)
    VALUES (:key, :contact_id, :order_ref, 'reserved', CAST(:quote AS jsonb), :net, :points_spent, 0, 0, 0, 0, 0, :now)
    ON CONFLICT (key) DO NOTHING
    RETURNING id
), op AS (
    INSERT INTO loyalty_operations (key, kind, contact_id, result, created_at)
    SELECT :op_key, 'redeem', :contact_id, jsonb_build_object('reservation', res.id) || CAST(:result AS jsonb), :now
    FROM res
    RETURNING id
), spent AS (
    UPDATE loyalty_lots AS lot SET remaining = lot.remaining - s.part
    FROM jsonb_to_recordset(CAST(:spends AS jsonb)) AS s(lot bigint, part numeric), res
    WHERE lot.id = s.lot
    RETURNING lot.id, s.part
), entries AS (
    INSERT INTO loyalty_entries (contact_id, lot_id, operation_id, kind, amount, reason, created_at)
    SELECT :contact_id, spent.id, op.id, 'spend', -spent.part, :reason, :now FROM spent, op
), uses AS (
    INSERT INTO loyalty_code_uses (code_id, contact_id, reservation_id, status, amount, created_at)
    SELECT u.code_id, :contact_id, res.id, 'reserved', u.amount, :now
    FROM jsonb_to_recordset(CAST(:uses AS jsonb)) AS u(code_id bigint, amount numeric), res
), counted AS (
    UPDATE loyalty_codes AS code SET uses = code.uses + 1, balance = code.balance - c.taken
    FROM jsonb_to_recordset(CAST(:counted AS jsonb)) AS c(code_id bigint, taken numeric), res
    WHERE code.id = c.code_id
)
SELECT id FROM res
""").bindparams(bindparam("contact_id", type_=BigInteger), bindparam("order_ref", type_=String),
                bindparam("now", type_=UTCDateTime))
