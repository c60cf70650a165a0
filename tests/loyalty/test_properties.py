"""Random sequences of earn, spend, expire, checkout (confirm/cancel) and refund keep the
ledger's invariants."""

import itertools
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from kaskad import clock
from kaskad.loyalty import checkout, jobs, ledger
from kaskad.loyalty.ledger import LoyaltyError
from kaskad.loyalty.models import LedgerEntry, Operation, PointLot, Reservation
from kaskad.store.engine import transaction

from .helpers import check_invariants, contact

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
_ids = itertools.count()

op = st.one_of(
    st.tuples(st.just("earn"), st.integers(1, 80), st.sampled_from([None, 3, 10, 40]), st.sampled_from([0, 0, 5])),
    st.tuples(st.just("spend"), st.integers(1, 60)),
    st.tuples(st.just("days"), st.integers(1, 15)),
    st.tuples(st.just("order"), st.integers(1, 300), st.integers(0, 40), st.sampled_from(["confirm", "cancel", "keep"])),
    st.tuples(st.just("refund"), st.integers(0, 5), st.sampled_from([None, "0.3", "0.5"])),
    st.tuples(st.just("repeat"),),
)


def sum_live(session, cid, now):
    lots = session.scalars(select(PointLot).where(PointLot.contact_id == cid)).all()
    return sum((l.remaining for l in lots if l.available_at <= now and (l.expires_at is None or l.expires_at > now)), Decimal(0))


#: Found by the property test: two partial refunds of an order that spent from two lots gave
#: the first lot back what it lent twice (each refund filled the lots from the start again).
TWO_REFUNDS_TWO_LOTS = [("earn", 35, None, 0), ("spend", 1), ("spend", 1), ("earn", 74, 10, 0), ("spend", 58),
                        ("spend", 1), ("order", 127, 28, "confirm"), ("refund", 0, "0.5"), ("spend", 1),
                        ("refund", 0, None)]
EVERY_KIND = [("earn", 50, None, 0), ("order", 100, 10, "confirm"), ("days", 6), ("refund", 0, "0.5"),
              ("refund", 0, None), ("earn", 5, 3, 0), ("days", 4), ("order", 50, 5, "cancel"), ("repeat",)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=3, max_size=25))
@example(ops=EVERY_KIND)
@example(ops=TWO_REFUNDS_TWO_LOTS)
def test_random_sequences_keep_invariants(sqlite_url, tmp_path, ops):
    run_sequence(sqlite_url, tmp_path, ops)


@pytest.mark.postgres
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, min_size=3, max_size=25))
@example(ops=EVERY_KIND)
@example(ops=TWO_REFUNDS_TWO_LOTS)
def test_random_sequences_keep_invariants_on_postgresql(pg_url, tmp_path, ops):
    # Redeem writes in one statement on PostgreSQL and table by table elsewhere: both keep the ledger.
    run_sequence(pg_url, tmp_path, ops)


def run_sequence(sqlite_url, tmp_path, ops):
    from kaskad.testing.fixtures import make_runtime

    rt = make_runtime(sqlite_url, tmp_path)
    n = next(_ids)
    ext = f"p{n}"
    cid = contact(rt.sessions, ext)
    reservations: list[int] = []
    last = None
    with clock.travel(T0 + timedelta(days=400 * n)) as now:
        with transaction(rt.sessions) as s:
            from kaskad.loyalty import program
            program.save(s, program.ProgramRules(accrual=program.Accrual(points_per_unit=Decimal("0.1"), pending="P5D")))
        for i, step in enumerate(ops):
            key = f"{ext}:{i}"
            with transaction(rt.sessions) as s:
                before = ledger.points_balance(s, cid)
                try:
                    if step[0] == "earn":
                        _, pts, exp, pend = step
                        args = (cid, pts, key, "bonus", now[0] + timedelta(days=pend),
                                now[0] + timedelta(days=exp) if exp else None)
                        ledger.earn(s, *args)
                        last = ("earn", args)
                    elif step[0] == "spend":
                        # a refused operation leaves no trace: only a done one is repeated
                        ledger.spend(s, cid, step[1], key, "spend")
                        last = ("spend", (cid, step[1], key, "spend"))
                    elif step[0] == "days":
                        now[0] += timedelta(days=step[1])
                        jobs.expire_points(s, now[0])
                    elif step[0] == "order":
                        _, price, pts, then = step
                        red = checkout.redeem(s, checkout.Redeem(
                            items=[checkout.CartItem(sku="X", price=Decimal(price))], contact=ext,
                            points=Decimal(pts), idempotency_key=key))
                        reservations.append(red["reservation"])
                        if then == "confirm":
                            checkout.confirm(s, red["reservation"])
                        elif then == "cancel":
                            checkout.cancel(s, red["reservation"])
                    elif step[0] == "refund" and reservations:
                        rid = reservations[step[1] % len(reservations)]
                        res = s.get(Reservation, rid)
                        amount = None if step[2] is None else (res.net * Decimal(step[2])).quantize(Decimal("0.01"))
                        checkout.refund(s, checkout.Refund(reservation=rid, amount=amount or None, idempotency_key=key))
                    elif step[0] == "repeat" and last is not None:
                        # same key again: changes nothing
                        getattr(ledger, last[0])(s, *last[1])
                        assert ledger.points_balance(s, cid) == before
                except LoyaltyError:
                    pass
            with transaction(rt.sessions) as s:
                after = ledger.points_balance(s, cid)
                assert after == sum_live(s, cid, now[0]) == check_invariants(s, cid)
        with transaction(rt.sessions) as s:
            _check_reasons(s, cid)
            KINDS.update(s.scalars(select(LedgerEntry.kind).where(LedgerEntry.contact_id == cid)).all())
    rt.close()


KINDS: set[str] = set()


def test_the_example_sequence_exercises_every_entry_kind(sqlite_url, tmp_path):
    # The property test's @example is this sequence: it makes the test meaningful for every kind.
    KINDS.clear()
    run_sequence(sqlite_url, tmp_path, EVERY_KIND)
    assert KINDS == {"earn", "spend", "expire", "reverse_earn", "reverse_spend"}


def _check_reasons(s, cid):
    """Each operation's entries add up to what it says it did."""
    for res in s.scalars(select(Reservation).where(Reservation.contact_id == cid)).all():
        if res.status == "cancelled":
            assert _sum(s, f"cancel:{res.id}") == res.points_spent
        if res.status == "refunded":
            assert res.points_restored == res.points_spent
            assert res.points_reversed <= res.points_earned
        spent = s.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0)).join(Operation, Operation.id == LedgerEntry.operation_id)
                         .where(Operation.key == f"redeem:{res.key}"))
        assert -Decimal(spent) == res.points_spent


def _sum(s, key):
    return Decimal(s.scalar(select(func.coalesce(func.sum(LedgerEntry.amount), 0)).join(Operation, Operation.id == LedgerEntry.operation_id).where(Operation.key == key)))

