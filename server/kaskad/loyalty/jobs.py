"""Loyalty's periodic work. Each job is safe to run twice: what it did is recorded
on the rows it touched (a lot's remaining, ``warned_at``, a code's ``steps_announced``)
and every event it writes has an idempotency key."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from kaskad import periodic
from kaskad.loyalty import ledger, orders, program, tiers
from kaskad.loyalty.models import LoyaltyAccount, LoyaltyCode
from kaskad.store.engine import transaction

#: "Your points expire in 7 days" / "your discount drops tomorrow": how far ahead.
EXPIRY_WARNING = timedelta(days=7)
STEP_WARNING = timedelta(days=1)


def expire_points(session, now: datetime) -> int:
    ledger.warn_expiring(session, now, EXPIRY_WARNING)
    return ledger.expire_due(session, now)


def announce_steps(session, now: datetime) -> int:
    """A ``discount_step`` event one day before each boundary of a melting discount
    (at issue when the step is shorter), and ``discount_expired`` at its end."""
    rows = session.scalars(
        select(LoyaltyCode)
        .where(LoyaltyCode.kind == "melting", LoyaltyCode.valid_until > now - timedelta(days=2))
        .with_for_update(skip_locked=True)
    ).all()
    written = 0
    for code in rows:
        steps = code.details.get("steps", [])
        while code.steps_announced < len(steps):
            i = code.steps_announced
            boundary = datetime.fromisoformat(steps[i]["until"])
            if boundary - STEP_WARNING > now:
                break
            nxt = steps[i + 1]["percent"] if i + 1 < len(steps) else None
            ledger.emit(
                session, code.contact_id, "discount_step",
                {"code": code.code, "percent_now": steps[i]["percent"], "percent_next": nxt,
                 "step_at": boundary.isoformat(), "final": nxt is None},
                key=f"loyalty:discount_step:{code.id}:{i}", at=now,
            )
            code.steps_announced += 1
            written += 1
    return written


def recompute_tiers(session, now: datetime) -> int:
    rules = program.load(session)
    if not rules.tiers:
        return 0
    ids = session.scalars(select(LoyaltyAccount.contact_id).where(LoyaltyAccount.tier.is_not(None))).all()
    for cid in ids:
        tiers.recompute(session, cid, rules, now, f"daily:{now.date().isoformat()}")
    return len(ids)


@periodic.every(60, name="loyalty.expiry")
def expiry_job(runtime, now):
    with transaction(runtime.sessions) as session:
        expire_points(session, now)


@periodic.every(60, name="loyalty.melting_steps")
def steps_job(runtime, now):
    with transaction(runtime.sessions) as session:
        announce_steps(session, now)


@periodic.every(30, name="loyalty.orders")
def orders_job(runtime, now):
    with transaction(runtime.sessions) as session:
        orders.accrue_paid_orders(session, now)
        orders.reverse_refunded_orders(session, now)


@periodic.every(3600, name="loyalty.tiers")
def tiers_job(runtime, now):
    with transaction(runtime.sessions) as session:
        recompute_tiers(session, now)


__all__ = ["expire_points", "announce_steps", "recompute_tiers"]
