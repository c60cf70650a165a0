from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import select

from kaskad import clock
from kaskad.loyalty import balance, jobs, ledger
from kaskad.loyalty.ledger import LoyaltyError
from kaskad.store.engine import transaction
from kaskad.store.models import Event

from .helpers import check_invariants, contact

T0 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)


def test_spends_soonest_expiring_first_and_never_below_zero(runtime):
    cid = contact(runtime.sessions, "c1")
    with clock.travel(T0), transaction(runtime.sessions) as s:
        ledger.earn(s, cid, 100, "e-late", "late", expires_at=T0 + timedelta(days=90))
        ledger.earn(s, cid, 50, "e-never", "never")
        ledger.earn(s, cid, 30, "e-soon", "soon", expires_at=T0 + timedelta(days=10))
        r = ledger.spend(s, cid, 60, "s1", "test")
        # 30 from the soonest lot, then 30 from the 90-day lot; the lot without expiry is last.
        assert [Decimal(p) for _, p in r["lots"]] == [30, 30]
        with pytest.raises(LoyaltyError) as err:
            ledger.spend(s, cid, 121, "s2", "test")
        assert err.value.code == "insufficient_points"
        assert check_invariants(s, cid) == 120


def test_repeated_key_returns_first_result_and_changes_nothing(runtime):
    cid = contact(runtime.sessions, "c1")
    with transaction(runtime.sessions) as s:
        first = ledger.earn(s, cid, 10, "k", "x")
        again = ledger.earn(s, cid, 999, "k", "x")
        assert again == first
        sp = ledger.spend(s, cid, 4, "sp", "x")
        assert ledger.spend(s, cid, 4, "sp", "x") == sp
        assert check_invariants(s, cid) == 6


def test_pending_points_are_not_spendable_until_available(runtime):
    cid = contact(runtime.sessions, "c1")
    with clock.travel(T0) as now:
        with transaction(runtime.sessions) as s:
            ledger.earn(s, cid, 40, "e", "order", available_at=T0 + timedelta(days=14))
            b = balance(s, cid)
            assert (b["points"], b["pending"]) == ("0", "40")
            with pytest.raises(LoyaltyError):
                ledger.spend(s, cid, 1, "s", "x")
        now[0] = T0 + timedelta(days=14)
        with transaction(runtime.sessions) as s:
            assert balance(s, cid)["points"] == "40"
            ledger.spend(s, cid, 40, "s", "x")
            assert check_invariants(s, cid) == 0


def test_expiry_job_writes_entries_and_events_once(runtime):
    cid = contact(runtime.sessions, "c1")
    with clock.travel(T0) as now:
        with transaction(runtime.sessions) as s:
            ledger.earn(s, cid, 70, "e", "bonus", expires_at=T0 + timedelta(days=8))
            ledger.spend(s, cid, 20, "s", "x")
        for day in (1, 2):  # 7 days ahead: warned once
            now[0] = T0 + timedelta(days=day)
            with transaction(runtime.sessions) as s:
                jobs.expire_points(s, now[0])
        now[0] = T0 + timedelta(days=9)
        for _ in range(2):  # run twice: expires once
            with transaction(runtime.sessions) as s:
                jobs.expire_points(s, now[0])
        with transaction(runtime.sessions) as s:
            events = s.execute(select(Event.name, Event.properties).where(Event.contact_id == cid).order_by(Event.id)).all()
            assert [(n, p["points"]) for n, p in events] == [("points_expiring", "50"), ("points_expired", "50")]
            assert check_invariants(s, cid) == 0
            assert balance(s, cid)["lots"] == []
