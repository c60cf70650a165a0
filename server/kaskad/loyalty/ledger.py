"""The points ledger: lots with their own expiry, append-only entries, idempotent operations.

Rules (docs/loyalty.md has the long form):

- A contact's points are lots. A lot is *live* when it has points left, its
  pending period is over and it has not expired. The balance is the sum of the
  live lots' ``remaining`` — nothing else is stored.
- Every change is an :class:`LedgerEntry` on one lot, so for every lot
  ``amount + sum(entries after the earn) == remaining``, and the sum of a
  contact's entries equals the sum of its lots' ``remaining``.
- Spending takes the soonest-expiring live lots first (no expiry last).
- Nothing ever goes negative: a spend larger than the balance fails whole.
- Every operation runs under the caller's idempotency key: the first result is
  stored and a repeat returns it without touching anything.
- All changes for one contact happen under a lock on its account row.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any, Callable

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy import insert as insert_stmt
from sqlalchemy.exc import IntegrityError

from kaskad import clock
from kaskad.loyalty.models import LedgerEntry, LoyaltyAccount, Operation, PointLot
from kaskad.store.models import Event

ZERO = Decimal(0)
POINT = Decimal(1)


class LoyaltyError(Exception):
    """A loyalty operation cannot be done; ``code`` is machine-readable, the message says why."""

    def __init__(self, code: str, message: str, status: int = 409):
        super().__init__(message)
        self.code = code
        self.status = status


def num(value) -> str:
    """A Decimal as plain text without trailing zeros: ``Decimal("40.0000")`` → ``"40"``."""
    text = format(Decimal(value).normalize(), "f")
    return text


def whole_points(value: Decimal) -> Decimal:
    """Points are whole: accruals round down (a customer never gets a point not earned)."""
    return Decimal(value).quantize(POINT, rounding=ROUND_DOWN)


def _insert(session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def lock_account(session, contact_id: int) -> int:
    """Create the contact's account if missing and lock its row until the transaction ends
    (one statement: an upsert takes the row lock). Returns the account id."""
    insert = _insert(session)
    stmt = insert(LoyaltyAccount).values(contact_id=contact_id)
    stmt = stmt.on_conflict_do_update(index_elements=["contact_id"], set_={"contact_id": stmt.excluded.contact_id})
    return session.execute(stmt.returning(LoyaltyAccount.id)).scalar_one()


def account(session, contact_id: int) -> LoyaltyAccount:
    """The contact's account row, locked."""
    lock_account(session, contact_id)
    return session.scalars(
        select(LoyaltyAccount).where(LoyaltyAccount.contact_id == contact_id).with_for_update()
    ).one()


def emit(session, contact_id: int, name: str, properties: dict[str, Any], key: str, at: datetime | None = None) -> None:
    """Write a loyalty event into the core events table, once per ``key``."""
    insert = _insert(session)
    session.execute(
        insert(Event)
        .values(
            contact_id=contact_id,
            name=name,
            occurred_at=at or clock.now(),
            properties=properties,
            idempotency_key=key,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )


def once(session, key: str, kind: str, contact_id: int | None, work: Callable[[Operation], dict]) -> dict:
    """Run ``work`` once per idempotency ``key``; a repeat returns the first result.

    Runs in a savepoint so a concurrent first call with the same key (caught by
    the unique index) leaves the caller's transaction usable.
    """
    if not key:
        raise LoyaltyError("idempotency_key_required", "send an idempotency key with every loyalty operation", 422)
    if contact_id is not None:
        lock_account(session, contact_id)
    found = session.scalar(select(Operation).where(Operation.key == key))
    if found is not None:
        return found.result
    try:
        with session.begin_nested():
            # Core statements, not ORM objects: this runs on every till call.
            op = OperationRef(session.execute(
                insert_stmt(Operation)
                .values(key=key, kind=kind, contact_id=contact_id, result={}, created_at=clock.now())
                .returning(Operation.id)
            ).scalar_one())
            result = work(op)
            session.execute(update(Operation).where(Operation.id == op.id).values(result=result))
            return result
    except IntegrityError:
        found = session.scalar(select(Operation).where(Operation.key == key))
        if found is None:
            raise
        return found.result


class OperationRef:
    """What an operation's work needs to know about it: its id."""

    __slots__ = ("id",)

    def __init__(self, id: int):
        self.id = id


def _entry(session, op, lot: PointLot, kind: str, amount: Decimal, reason: str, now: datetime) -> None:
    session.execute(
        insert_stmt(LedgerEntry).values(
            contact_id=lot.contact_id, lot_id=lot.id, operation_id=op.id, kind=kind, amount=amount,
            reason=reason, created_at=now,
        )
    )


def add_lot(
    session,
    op: Operation,
    contact_id: int,
    points: Decimal,
    reason: str,
    available_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> PointLot:
    now = clock.now()
    lot = PointLot(
        contact_id=contact_id,
        amount=points,
        remaining=points,
        reason=reason,
        available_at=available_at or now,
        expires_at=expires_at,
        created_at=now,
    )
    session.add(lot)
    session.flush()
    _entry(session, op, lot, "earn", points, reason, now)
    return lot


def live_lots(session, contact_id: int, now: datetime):
    return session.scalars(
        select(PointLot)
        .where(
            PointLot.contact_id == contact_id,
            PointLot.remaining > 0,
            PointLot.available_at <= now,
            or_(PointLot.expires_at.is_(None), PointLot.expires_at > now),
        )
        .order_by(PointLot.expires_at.asc().nulls_last(), PointLot.id)
    ).all()


def points_balance(session, contact_id: int, now: datetime | None = None) -> Decimal:
    now = now or clock.now()
    total = session.scalar(
        select(func.coalesce(func.sum(PointLot.remaining), 0)).where(
            PointLot.contact_id == contact_id,
            PointLot.remaining > 0,
            PointLot.available_at <= now,
            or_(PointLot.expires_at.is_(None), PointLot.expires_at > now),
        )
    )
    return Decimal(total)


def take(session, op: Operation, contact_id: int, points: Decimal, reason: str) -> list[list]:
    """Spend ``points`` from live lots, soonest-expiring first; returns ``[[lot_id, points], …]``.
    The caller holds the account lock."""
    now = clock.now()
    if points < 0:
        raise LoyaltyError("invalid_points", "points to spend must not be negative", 422)
    lots = live_lots(session, contact_id, now)
    available = sum((lot.remaining for lot in lots), ZERO)
    if points > available:
        raise LoyaltyError("insufficient_points", f"the balance is {available} points; {points} were asked")
    taken, left = [], points
    for lot in lots:
        if left <= 0:
            break
        part = min(lot.remaining, left)
        lot.remaining -= part
        left -= part
        _entry(session, op, lot, "spend", -part, reason, now)
        taken.append([lot.id, num(part)])
    return taken


def put_back(session, op: Operation, taken: list[list], points: Decimal, reason: str,
             already: Decimal = ZERO) -> Decimal:
    """Give back up to ``points`` of an earlier :func:`take` into the lots they came from
    (latest-expiring first, so what is given back lives longest). ``already``: what earlier
    calls for the same take gave back (partial refunds), which filled the lots in the same
    order, so no lot gets back more than was taken from it. Returns what was put back."""
    now = clock.now()
    left, skip = points, already
    for lot_id, part in reversed(taken):
        if left <= 0:
            break
        room = Decimal(part)
        skipped = min(room, skip)
        skip -= skipped
        room -= skipped
        if room <= 0:
            continue
        lot = session.get(PointLot, lot_id)
        back = min(room, left)
        lot.remaining += back
        left -= back
        _entry(session, op, lot, "reverse_spend", back, reason, now)
    return points - left


def claw_back(session, op: Operation, contact_id: int, lot_id: int | None, points: Decimal, reason: str) -> Decimal:
    """Take back ``points`` earned into ``lot_id`` (pending or not); if some were spent
    already, take the rest from live lots. Never below zero: returns what could be taken."""
    now = clock.now()
    left = points
    lots = []
    if lot_id is not None:
        lots.append(session.get(PointLot, lot_id))
    lots += [lot for lot in live_lots(session, contact_id, now) if lot.id != lot_id]
    for lot in lots:
        if left <= 0:
            break
        part = min(lot.remaining, left)
        if part <= 0:
            continue
        lot.remaining -= part
        left -= part
        _entry(session, op, lot, "reverse_earn", -part, reason, now)
    return points - left


# -- idempotent public operations --------------------------------------------------------


def earn(
    session,
    contact_id: int,
    points: Decimal | int,
    key: str,
    reason: str,
    available_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> dict:
    points = whole_points(Decimal(points))
    if points <= 0:
        raise LoyaltyError("invalid_points", "points to earn must be positive", 422)

    def work(op):
        lot = add_lot(session, op, contact_id, points, reason, available_at, expires_at)
        return {
            "operation": op.id,
            "lot": lot.id,
            "points": num(points),
            "available_at": lot.available_at.isoformat(),
            "expires_at": lot.expires_at.isoformat() if lot.expires_at else None,
        }

    return once(session, key, "earn", contact_id, work)


def spend(session, contact_id: int, points: Decimal | int, key: str, reason: str) -> dict:
    points = Decimal(points)

    def work(op):
        return {"operation": op.id, "points": num(points), "lots": take(session, op, contact_id, points, reason)}

    return once(session, key, "spend", contact_id, work)


def undo_spend(session, contact_id: int, spend_key: str, key: str) -> dict:
    """Cancel an earlier :func:`spend` (found by its key) in full."""

    def work(op):
        first = session.scalar(select(Operation).where(Operation.key == spend_key))
        if first is None or first.kind != "spend":
            raise LoyaltyError("unknown_operation", f"no spend with key {spend_key!r}", 404)
        back = put_back(session, op, first.result["lots"], Decimal(first.result["points"]), f"cancel {spend_key}")
        return {"operation": op.id, "points": num(back)}

    return once(session, key, "undo_spend", contact_id, work)


def expire_due(session, now: datetime, limit: int = 1000) -> int:
    """Expire lots whose time has come (an ``expire`` entry and a ``points_expired`` event each)."""
    contacts = session.scalars(
        select(PointLot.contact_id)
        .where(PointLot.remaining > 0, PointLot.expires_at <= now)
        .distinct()
        .limit(limit)
    ).all()
    count = 0
    for contact_id in contacts:
        lock_account(session, contact_id)
        lots = session.scalars(
            select(PointLot).where(
                PointLot.contact_id == contact_id, PointLot.remaining > 0, PointLot.expires_at <= now
            )
        ).all()
        if not lots:
            continue
        op = Operation(
            key=f"expire:{contact_id}:{now.isoformat()}:{lots[0].id}", kind="expire", contact_id=contact_id,
            result={}, created_at=now,
        )
        session.add(op)
        session.flush()
        total = ZERO
        for lot in lots:
            part = lot.remaining
            lot.remaining = ZERO
            _entry(session, op, lot, "expire", -part, "expired", now)
            total += part
            emit(
                session, contact_id, "points_expired",
                {"points": num(part), "lot": lot.id, "expired_at": lot.expires_at.isoformat()},
                key=f"loyalty:points_expired:{lot.id}", at=now,
            )
        op.result = {"points": num(total), "lots": [lot.id for lot in lots]}
        count += len(lots)
    return count


def warn_expiring(session, now: datetime, within, limit: int = 1000) -> int:
    """A ``points_expiring`` event for each lot that expires within ``within`` (once per lot)."""
    lots = session.scalars(
        select(PointLot)
        .where(
            PointLot.remaining > 0,
            PointLot.warned_at.is_(None),
            and_(PointLot.expires_at > now, PointLot.expires_at <= now + within),
            PointLot.available_at <= now,
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for lot in lots:
        lot.warned_at = now
        emit(
            session, lot.contact_id, "points_expiring",
            {"points": num(lot.remaining), "lot": lot.id, "expires_at": lot.expires_at.isoformat()},
            key=f"loyalty:points_expiring:{lot.id}", at=now,
        )
    return len(lots)
