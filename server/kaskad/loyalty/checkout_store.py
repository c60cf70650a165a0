"""The statements behind a till's quote and redeem, as few as the checks allow.

Every sale calls these. On PostgreSQL they are SQL text run on the connection's own psycopg
connection (same transaction, if any): SQLAlchemy's execution layer costs several times
the driver's own work per statement, and a till's redeem is nothing but a couple of small
statements. They are prepared on the server from their first call, not psycopg's fifth
(every connection of every process starts cold after a deploy). Elsewhere (SQLite, the embedded
default) they are Core statements built once. Rows come back as plain rows with the
columns as attributes, which is all :mod:`kaskad.loyalty.codes` and the checkout need.

Locks are those the ledger documents: the customer's account row first, then the
rows of codes that have a use limit or a balance, in id order. The optimistic redeem's
checked write (:func:`write_redeem` with ``remaining``) takes the account row first too,
then the lots it spends from and those codes, each in id order.
"""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec
from psycopg.rows import namedtuple_row
from sqlalchemy import and_, bindparam, exists, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Row

from kaskad.loyalty.models import CodeUse, LedgerEntry, LoyaltyAccount, LoyaltyCode, Operation, PointLot, Reservation
from kaskad.store.models import Contact

_accounts, _contacts = LoyaltyAccount.__table__, Contact.__table__
_codes, _lots, _ops = LoyaltyCode.__table__, PointLot.__table__, Operation.__table__

#: The contact by external id, its account row locked, and a stored result under ``key`` if any.
#: The result is read in the same statement as the lock; when the lock had to wait, it may
#: predate a concurrent first call with the same key, which the caller catches by the
#: unique key on insert (see :func:`kaskad.loyalty.checkout.redeem`).
#: Whether the contact has cashback offers (rare: a journey issues them); without any, and
#: without codes entered, a checkout reads no codes at all.
_OFFERS = exists().where(_codes.c.contact_id == _contacts.c.id, _codes.c.kind == "cashback")
_READ_CONTACT = (
    select(_accounts.c.contact_id, select(_ops.c.result).where(_ops.c.key == bindparam("key")).scalar_subquery(), _OFFERS)
    .join_from(_accounts, _contacts, _contacts.c.id == _accounts.c.contact_id)
    .where(_contacts.c.external_id == bindparam("ext"))
)
_LOCK_CONTACT = _READ_CONTACT.with_for_update(of=_accounts)
_CONTACT = select(_contacts.c.id, _OFFERS).where(_contacts.c.external_id == bindparam("ext"))
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


def _conn(db) -> Connection:
    """``db`` is a Core connection (the checkout's hot paths) or a Session."""
    return db if isinstance(db, Connection) else db.connection()


def _pg(conn: Connection):
    """The psycopg connection under ``conn`` (the session's transaction) on PostgreSQL, else None."""
    return conn.connection.driver_connection if conn.dialect.name == "postgresql" else None


def lock_contact(session, external_id: str, key: str) -> tuple[int, dict | None, bool]:
    """Lock the customer's account (created if missing) and read a stored result under ``key``;
    also whether the customer has cashback offers. An unknown customer is a 404."""
    from kaskad.loyalty.ledger import LoyaltyError

    conn = _conn(session)
    pg = _pg(conn)
    if pg is not None:
        row = pg.execute(_PG["lock_contact"], (key, external_id), prepare=True).fetchone()
    else:
        row = conn.execute(_LOCK_CONTACT, {"ext": external_id, "key": key}).first()
    if row is not None:
        return row[0], row[1], row[2]
    cid, offers, _, _ = contact(session, external_id)
    if cid is None:
        raise LoyaltyError("unknown_contact", f"no contact with external_id {external_id!r}", 404)
    conn.execute(_upserts(conn.dialect.name)["account"], {"cid": cid})  # the first loyalty call for this contact
    return cid, stored_result(session, key), offers


def read_contact(session, external_id: str, key: str, now: datetime | None = None, entered: list[str] = ()
                 ) -> tuple[int, dict | None, bool, list[Lot] | None, Codes | None] | None:
    """What :func:`lock_contact` returns, without the lock, and with ``now`` the live lots at
    ``now`` as :func:`live_lots` reads them; None when the customer or its account does not
    exist (the optimistic redeem leaves both to the locked one). On PostgreSQL one statement
    also reads the ``entered`` codes and the offers, as :func:`codes_and_offers` returns them
    without a lock; elsewhere that last item is None (the caller reads them)."""
    conn = _conn(session)
    pg = _pg(conn)
    if pg is None:
        row = conn.execute(_READ_CONTACT, {"ext": external_id, "key": key}).first()
        if row is None:
            return None
        return row[0], row[1], row[2], live_lots(session, row[0], now) if now is not None else None, None
    codes_sql, codes_params = _pg_codes_of_contact(entered)
    if now is None:
        row = pg.execute(_pg_read_contact(codes_sql, lots=False), (key, *codes_params, external_id), prepare=True).fetchone()
        lots = None
    else:
        row = pg.execute(_pg_read_contact(codes_sql, lots=True), (key, *codes_params, now, now, external_id),
                         prepare=True).fetchone()
        lots = [Lot(i, r) for i, r in zip(row[3] or [], row[4] or [])] if row is not None else None
    if row is None:
        return None
    codes = _split_codes(row[2], entered, row[0])
    return row[0], row[1], bool(codes[1]), lots, codes


class Lot(NamedTuple):
    id: int
    remaining: Decimal


class Contact(NamedTuple):
    """What :func:`contact` reads: the id (None if unknown), whether it has cashback offers,
    and on PostgreSQL, read in the same statement, the entered codes and the offers as
    :func:`codes_and_offers` returns them without a lock, and the live balance when asked
    (None elsewhere: the caller reads them)."""
    id: int | None
    offers: bool
    codes: Codes | None = None
    balance: Decimal | None = None


def contact(session, external_id: str, entered: list[str] = (), balance_at: datetime | None = None) -> Contact:
    """The contact by external id; with ``balance_at``, its live balance then (see :class:`Contact`)."""
    conn = _conn(session)
    pg = _pg(conn)
    if pg is None:
        row = conn.execute(_CONTACT, {"ext": external_id}).first()
        return Contact(row[0], row[1]) if row else Contact(None, False)
    codes_sql, codes_params = _pg_codes_of_contact(entered)
    if balance_at is None:
        row = pg.execute(_pg_contact(codes_sql, False), (*codes_params, external_id), prepare=True).fetchone()
    else:
        row = pg.execute(_pg_contact(codes_sql, True), (*codes_params, balance_at, balance_at, external_id),
                         prepare=True).fetchone()
    if row is None:
        return Contact(None, False)
    codes = _split_codes(row[1], entered, row[0])
    return Contact(row[0], bool(codes[1]), codes, Decimal(row[2]) if balance_at is not None else None)


class CodeRow(msgspec.Struct, frozen=True):
    """A ``loyalty_codes`` row read as JSON with the contact (same names and values as the table's columns)."""
    id: int
    code: str
    kind: str
    contact_id: int | None
    batch: str | None
    percent: Decimal | None
    balance: Decimal | None
    max_uses: int | None
    uses: int
    per_customer_limit: int | None
    combinable: bool
    min_order: Decimal | None
    valid_from: datetime
    valid_until: datetime | None
    details: dict
    steps_announced: int
    created_at: datetime


#: (the entered codes that exist, by code; the contact's cashback offers)
Codes = tuple[dict[str, Any], list[Any]]
_code_rows = msgspec.json.Decoder(list[CodeRow] | None)


def _split_codes(doc: bytes | str | None, entered: list[str], contact_id: int) -> Codes:
    rows = _code_rows.decode(doc) if doc is not None else None
    if not rows:
        return {}, []
    wanted = set(entered)
    return ({r.code: r for r in rows if r.code in wanted},
            [r for r in rows if r.kind == "cashback" and r.contact_id == contact_id])


def stored_result(session, key: str) -> dict | None:
    conn = _conn(session)
    pg = _pg(conn)
    if pg is not None:
        row = pg.execute(_PG["result"], (key,), prepare=True).fetchone()
        return row[0] if row else None
    return conn.execute(_RESULT, {"key": key}).scalar()


def codes_and_offers(session, entered: list[str], contact_id: int | None, lock: bool,
                     offers: bool = True) -> tuple[dict[str, Row], list[Row]]:
    """The entered codes that exist, by code, and the contact's cashback offers (not looked
    for when ``offers`` is false: the caller knows there are none). With ``lock``, the entered codes that a redeem changes (use limit, gift-card balance)
    are locked and read again at their latest committed state."""
    from kaskad.loyalty.codes import counted

    if not offers:
        contact_id = None
    if not entered and contact_id is None:
        return {}, []
    conn = _conn(session)
    pg = _pg(conn)
    if pg is not None:
        rows = pg.cursor(row_factory=namedtuple_row).execute(*_pg_codes(entered, contact_id), prepare=True).fetchall()
    else:
        rows = conn.execute(_CODES, {"codes": entered, "cid": contact_id}).all()
    wanted = set(entered)
    found = {r.code: r for r in rows if r.code in wanted}
    cashback = [r for r in rows if r.kind == "cashback" and r.contact_id == contact_id]
    if lock:
        ids = [r.id for r in found.values() if counted(r)]
        if ids and pg is not None:
            found.update((r.code, r) for r in pg.cursor(row_factory=namedtuple_row).execute(_PG["lock_codes"], (ids,), prepare=True))
        elif ids:
            found.update((r.code, r) for r in conn.execute(_LOCK_CODES, {"ids": ids}).all())
    return found, cashback


def live_lots(session, contact_id: int, now: datetime) -> list[Row]:
    """The contact's live lots ``(id, remaining)``, soonest-expiring first (no expiry last)."""
    conn = _conn(session)
    pg = _pg(conn)
    if pg is not None:
        return pg.cursor(row_factory=namedtuple_row).execute(_PG["live_lots"], (contact_id, now, now), prepare=True).fetchall()
    return conn.execute(_LIVE_LOTS, {"cid": contact_id, "now": now}).all()


def balance(session, contact_id: int, now: datetime) -> Decimal:
    conn = _conn(session)
    pg = _pg(conn)
    if pg is not None:
        return Decimal(pg.execute(_PG["balance"], (contact_id, now, now), prepare=True).fetchone()[0])
    return Decimal(conn.execute(_BALANCE, {"cid": contact_id, "now": now}).scalar())


def write_redeem(session, r: dict) -> int | None:
    """Write a checked redeem: the reservation (its unique ``key`` settles two first calls
    racing), the operation with its result (:func:`redeemed` and the reservation id), the spends from
    each lot with their ledger entries, the code uses and the counted codes' uses and
    balances. Returns the reservation id, or None when a reservation with this key exists
    (then nothing was written).

    ``r`` has: key, op_key, contact_id, order_ref, quote, net, points_spent, reason, now,
    spends ``[{"lot", "part"}]``, uses ``[{"code_id", "amount"}]``, counted ``[{"code_id", "taken",
    "uses", "balance"}]`` and ``remaining`` (``{lot id: remaining}`` or None).
    On PostgreSQL this is one statement; elsewhere one per table.

    With ``remaining`` (PostgreSQL only; the optimistic redeem, which read without locks) the
    statement first locks the account, then the lots spent from and the counted codes, and
    writes only if each still holds the ``remaining``, ``uses`` and ``balance`` it was read
    with; None then also means that something changed in between.
    """
    conn = _conn(session)
    pg = _pg(conn)
    checked = r.get("remaining") is not None
    if checked and pg is None:
        raise ValueError("the optimistic redeem's checked write is PostgreSQL's")
    if pg is not None:
        row = pg.execute(*pg_write_redeem(r), prepare=True).fetchone()
        return row[0] if row else None
    res_id = conn.execute(_upserts(conn.dialect.name)["reservation"], {
        "key": r["key"], "contact_id": r["contact_id"], "order_ref": r["order_ref"], "status": "reserved",
        "quote": r["quote"], "net": r["net"], "points_spent": r["points_spent"], "created_at": r["now"]}).scalar()
    if res_id is None:
        return None
    op_id = conn.execute(_OPERATION, {"key": r["op_key"], "kind": "redeem", "contact_id": r["contact_id"],
                                      "result": {"reservation": res_id, **redeemed(r["quote"])}, "created_at": r["now"]}).scalar_one()
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


def redeemed(quote: dict) -> dict:
    """What a redeem answers (less the reservation id) and stores as its operation's result
    (with it): the quote, reserved. On PostgreSQL the statement builds the stored one from the
    reservation's quote (``jsonb_build_object(…) || quote``) rather than take the quote twice."""
    return {"status": "reserved", **quote}


def pg_write_redeem(r: dict) -> tuple[str, list]:
    """:func:`write_redeem`'s one PostgreSQL statement and its parameters."""
    checked = r.get("remaining") is not None
    params = []
    if checked:
        if r["contact_id"] is not None:
            params.append(r["contact_id"])
        for s in r["spends"]:
            params += (s["lot"], r["remaining"][s["lot"]])
        for c in r["counted"]:
            params += (c["code_id"], c["uses"], c["balance"])
    params += [r["key"], r["contact_id"], r["order_ref"], _json(r["quote"]), r["net"], r["points_spent"], r["now"],
               r["op_key"], r["reason"]]
    for s in r["spends"]:
        params += (s["lot"], s["part"])
    for u in r["uses"]:
        params += (u["code_id"], u["amount"])
    for c in r["counted"]:
        params += (c["code_id"], c["taken"])
    return _pg_redeem(len(r["spends"]), len(r["uses"]), len(r["counted"]),
                      checked=checked, account=r["contact_id"] is not None), params


def _json(value) -> str:
    return msgspec.json.encode(value).decode()


_CODE_COLUMNS = ", ".join(c.name for c in _codes.c)
_LIVE_SQL = ("contact_id = CAST(%s AS bigint) AND remaining > 0 AND available_at <= CAST(%s AS timestamptz) "
             "AND (expires_at IS NULL OR expires_at > CAST(%s AS timestamptz))")
_PG_OFFERS = "EXISTS (SELECT 1 FROM loyalty_codes k WHERE k.contact_id = c.id AND k.kind = 'cashback')"
#: The reads above as PostgreSQL text with ``%s`` parameters (``= ANY(array)`` for lists).
_PG = {
    "lock_contact": f"SELECT a.contact_id, (SELECT o.result FROM loyalty_operations o WHERE o.key = %s), {_PG_OFFERS} "
                    "FROM loyalty_accounts a JOIN contacts c ON c.id = a.contact_id WHERE c.external_id = %s "
                    "FOR UPDATE OF a",
    "result": "SELECT result FROM loyalty_operations WHERE key = %s",
    "lock_codes": f"SELECT {_CODE_COLUMNS} FROM loyalty_codes WHERE id = ANY(CAST(%s AS bigint[])) ORDER BY id FOR UPDATE",
    "live_lots": f"SELECT id, remaining FROM loyalty_lots WHERE {_LIVE_SQL} ORDER BY expires_at ASC NULLS LAST, id",
    "balance": f"SELECT coalesce(sum(remaining), 0) FROM loyalty_lots WHERE {_LIVE_SQL}",
}


def _pg_codes(entered: list[str], contact_id: int | None) -> tuple[str, list]:
    """The codes entered and the contact's cashback offers (either may be absent) as one statement.

    Up to :data:`_FEW_CODES` codes are one parameter each (``code IN (%s, %s)``), not an array:
    PostgreSQL plans ``= ANY($1)`` for an array of unknown length as if it held several, judges
    that generic plan dearer than one made for the actual array, and so planned the statement
    afresh on every call (about 150 µs, three times its execution); a list of known length gets
    the same plan as a custom one, which the prepared statement then keeps."""
    where, params = [], []
    if entered:
        condition, params = _entered(entered)
        where.append(condition)
    if contact_id is not None:
        where.append("(contact_id = CAST(%s AS bigint) AND kind = 'cashback')")
        params.append(contact_id)
    return f"SELECT {_CODE_COLUMNS} FROM loyalty_codes WHERE " + " OR ".join(where), params


_FEW_CODES = 8


def _entered(entered: list[str], table: str = "") -> tuple[str, list]:
    """The condition on the codes' ``code`` column for the entered codes (``table`` its
    qualifier, e.g. ``"k."``), and its parameters: one each up to :data:`_FEW_CODES`."""
    if len(entered) <= _FEW_CODES:
        return table + _codes_in(len(entered)), list(entered)
    return f"{table}code = ANY(CAST(%s AS text[]))", [list(entered)]


def _pg_codes_of_contact(entered: list[str]) -> tuple[str, list]:
    """The condition on ``loyalty_codes k`` for the entered codes, to be followed by the offers
    of the contact ``c`` (the statement's), and its parameters."""
    if not entered:
        return "", []
    condition, params = _entered(entered, "k.")
    return condition + " OR ", params


@functools.cache
def _pg_codes_json(codes_sql: str) -> str:
    """The entered codes and the offers as a JSON array of rows (NULL when there are none)."""
    return (f"CAST((SELECT json_agg(k) FROM loyalty_codes k WHERE {codes_sql}"
            "(k.contact_id = c.id AND k.kind = 'cashback')) AS text)")  # text: decoded here, not by the driver


@functools.cache
def _pg_read_contact(codes_sql: str, lots: bool) -> str:
    """:func:`read_contact`'s statement: the account, the key's stored result, the codes as
    JSON and with ``lots`` the live lots as two arrays, in the order :func:`live_lots` reads them."""
    head = (f"SELECT a.contact_id, (SELECT o.result FROM loyalty_operations o WHERE o.key = %s), "
            f"{_pg_codes_json(codes_sql)}")
    if not lots:
        return head + " FROM loyalty_accounts a JOIN contacts c ON c.id = a.contact_id WHERE c.external_id = %s"
    return (head + ", lots.ids, lots.remaining "
            "FROM loyalty_accounts a JOIN contacts c ON c.id = a.contact_id LEFT JOIN LATERAL ("
            "SELECT array_agg(id ORDER BY expires_at ASC NULLS LAST, id) AS ids, "
            "array_agg(remaining ORDER BY expires_at ASC NULLS LAST, id) AS remaining "
            f"FROM loyalty_lots WHERE {_LIVE_SQL.replace('CAST(%s AS bigint)', 'a.contact_id')}) AS lots ON true "
            "WHERE c.external_id = %s")


@functools.cache
def _pg_contact(codes_sql: str, balance: bool) -> str:
    """:func:`contact`'s statement; with ``balance`` the live balance as :func:`balance` reads it."""
    live = (f", (SELECT coalesce(sum(remaining), 0) FROM loyalty_lots "
            f"WHERE {_LIVE_SQL.replace('CAST(%s AS bigint)', 'c.id')})") if balance else ""
    return f"SELECT c.id, {_pg_codes_json(codes_sql)}{live} FROM contacts c WHERE c.external_id = %s"


@functools.cache
def _codes_in(n: int) -> str:
    return "code IN (" + ", ".join(["CAST(%s AS varchar)"] * n) + ")"


@functools.cache
def _pg_redeem(spends: int, uses: int, counted: int, checked: bool = False, account: bool = True) -> str:
    """The write of :func:`write_redeem` as one PostgreSQL statement, for this many lot spends,
    code uses and counted codes. Every step after the reservation joins ``res``, so a key that
    exists already writes nothing at all. The rows are ``VALUES`` lists, not a JSON array
    unpacked in SQL: the planner then knows how few they are and updates lots and codes
    through their primary keys instead of scanning the tables.

    ``checked``: the reservation is written only from ``ok``, a row there only when the account
    (if ``account``) is locked and every lot and counted code, locked in that order, is as read.
    A row changed by a transaction that committed after this statement began is read again
    at its newest version when locked (READ COMMITTED), so the comparison sees it."""

    def values(n: int, types: tuple[str, ...]) -> str:
        row = "(" + ", ".join(f"CAST(%s AS {t})" for t in types) + ")"
        return ", ".join(row for _ in range(n))

    checks = []
    if checked:
        held = ", acc" if account else ""
        if account:
            checks.append("""acc AS (
    SELECT contact_id FROM loyalty_accounts WHERE contact_id = CAST(%s AS bigint) FOR UPDATE
)""")
        if spends:
            checks.append(f"""held_lots AS (
    SELECT lot.id FROM loyalty_lots AS lot, (VALUES {values(spends, ("bigint", "numeric"))}) AS e(id, remaining){held}
    WHERE lot.id = e.id AND lot.remaining = e.remaining ORDER BY lot.id FOR UPDATE OF lot
)""")
        if counted:
            checks.append(f"""held_codes AS (
    SELECT code.id FROM loyalty_codes AS code,
        (VALUES {values(counted, ("bigint", "integer", "numeric"))}) AS e(id, uses, balance){held}
    WHERE code.id = e.id AND code.uses = e.uses AND code.balance IS NOT DISTINCT FROM e.balance
    ORDER BY code.id FOR UPDATE OF code
)""")
        conditions = ([f"(SELECT count(*) FROM held_lots) = {spends}"] if spends else []) + (
            [f"(SELECT count(*) FROM held_codes) = {counted}"] if counted else [])
        checks.append("ok AS (\n    SELECT 1 AS one" + (" FROM acc" if account else "")
                      + ("\n    WHERE " + " AND ".join(conditions) if conditions else "") + "\n)")
    rows = ("SELECT %s, CAST(%s AS bigint), CAST(%s AS varchar), 'reserved', CAST(%s AS jsonb), CAST(%s AS numeric),\n"
            "           CAST(%s AS numeric), 0, 0, 0, 0, 0, CAST(%s AS timestamptz) FROM ok" if checked else
            "VALUES (%s, CAST(%s AS bigint), CAST(%s AS varchar), 'reserved', CAST(%s AS jsonb), CAST(%s AS numeric),\n"
            "            CAST(%s AS numeric), 0, 0, 0, 0, 0, CAST(%s AS timestamptz))")
    parts = [*checks, f"""res AS (
    INSERT INTO loyalty_reservations (key, contact_id, order_ref, status, quote, net, points_spent, points_earned,
                                      refunded_amount, points_restored, points_reversed, gift_restored, created_at)
    {rows}
    ON CONFLICT (key) DO NOTHING
    RETURNING id, contact_id, quote, created_at
), op AS (
    INSERT INTO loyalty_operations (key, kind, contact_id, result, created_at)
    SELECT %s, 'redeem', res.contact_id, jsonb_build_object('reservation', res.id, 'status', 'reserved') || res.quote,
           res.created_at
    FROM res
    RETURNING id, contact_id, created_at, CAST(%s AS varchar) AS reason
)"""]
    if spends:
        parts.append(f"""spent AS (
    UPDATE loyalty_lots AS lot SET remaining = lot.remaining - s.part
    FROM (VALUES {values(spends, ("bigint", "numeric"))}) AS s(lot, part), res
    WHERE lot.id = s.lot
    RETURNING lot.id, s.part
), entries AS (
    INSERT INTO loyalty_entries (contact_id, lot_id, operation_id, kind, amount, reason, created_at)
    SELECT op.contact_id, spent.id, op.id, 'spend', -spent.part, op.reason, op.created_at FROM spent, op
)""")
    if uses:
        parts.append(f"""uses AS (
    INSERT INTO loyalty_code_uses (code_id, contact_id, reservation_id, status, amount, created_at)
    SELECT u.code_id, res.contact_id, res.id, 'reserved', u.amount, res.created_at
    FROM (VALUES {values(uses, ("bigint", "numeric"))}) AS u(code_id, amount), res
)""")
    if counted:
        parts.append(f"""counted AS (
    UPDATE loyalty_codes AS code SET uses = code.uses + 1, balance = code.balance - c.taken
    FROM (VALUES {values(counted, ("bigint", "numeric"))}) AS c(code_id, taken), res
    WHERE code.id = c.code_id
)""")
    return "WITH " + ",\n".join(parts) + "\nSELECT id FROM res"
