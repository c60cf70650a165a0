"""Base health on a hand-made base, the right answers worked out in the comments (both databases).

| contact | created     | paid orders (net)                              | not counted                  |
|---------|-------------|------------------------------------------------|------------------------------|
| u1      | 2026-01-05  | 01-06 100, 02-07 (a Saturday) 50, 03-03 80−30  |                              |
| u2      | 2026-01-20  | 01-21 20                                       | 01-25 40 refunded in full    |
| u3      | 2026-02-10  | 02-11 60, 02-12 40                             | 02-13 10 cancelled           |
| u4      | 2026-02-15  | (erased: not in the base)                      |                              |
| u5      | 2026-03-01  | -                                              |                              |
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from kaskad.analytics import jobs, report
from kaskad.store.engine import make_engine, make_sessionmaker, transaction

from .data import Data


def t(month: int, day: int, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=timezone.utc)


def build_base(s) -> None:
    d = Data(s, prefix="b")
    u1, u2, u3 = d.contact("u1", t(1, 5)), d.contact("u2", t(1, 20)), d.contact("u3", t(2, 10))
    d.contact("u4", t(2, 15), erased=t(2, 20))
    u5 = d.contact("u5", t(3, 1))
    d.order(u1, t(1, 6), "100"), d.order(u1, t(2, 7), "50")
    d.order(u1, t(3, 3), "80", status="partially_refunded", refunded="30")
    d.order(u2, t(1, 21), "20"), d.order(u2, t(1, 25), "40", status="refunded", refunded="40")
    d.order(u3, t(2, 11), "60"), d.order(u3, t(2, 12), "40"), d.order(u3, t(2, 13), "10", status="cancelled")
    # messages: week of Mon 03-02: u1 3 emails (unsubscribed from one) + 1 SMS, u2 1 email, u3 6 emails;
    # week of 03-09: u1 1 email. u5 got nothing.
    for day in (2, 3, 4):
        d.broadcast(u1, "email", t(3, day), ("unsubscribed",) if day == 4 else ())
    d.broadcast(u1, "sms", t(3, 5))
    d.broadcast(u2, "email", t(3, 6))
    for hour in range(6):
        d.broadcast(u3, "email", t(3, 7, hour))
    d.broadcast(u1, "email", t(3, 10))
    del u5


@pytest.fixture
def sessions(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as s:
        build_base(s)
    with transaction(sessions) as s:
        jobs.refresh_base(s, t(3, 10), churn_days=30)
    yield sessions
    engine.dispose()


def _base(sessions, group, start=date(2026, 1, 1), end=date(2026, 4, 30)):
    with sessions() as s:
        return report.base_report(s, start, end, group)


def test_months(sessions):
    got = {r["period"]: r for r in _base(sessions, "month")["series"]}
    jan, feb, mar = got["2026-01-01"], got["2026-02-01"], got["2026-03-01"]
    assert (jan["contacts"], jan["new_contacts"], jan["orders"], jan["revenue"], jan["buyers"]) == (2, 2, 2, "120.00", 2)
    assert (jan["new_customers"], jan["returning_customers"], jan["average_check"], jan["purchase_frequency"]) == (2, 0, "60.00", 1.0)
    # February: u1 50, u3 60 + 40; u3 is new, u1 returns; u4 was erased
    assert (feb["contacts"], feb["new_contacts"], feb["orders"], feb["revenue"]) == (3, 1, 3, "150.00")
    assert (feb["new_customers"], feb["returning_customers"], feb["average_check"], feb["purchase_frequency"]) == (1, 1, "50.00", 1.5)
    assert (mar["contacts"], mar["orders"], mar["revenue"], mar["new_customers"], mar["returning_customers"]) == (4, 1, "50.00", 0, 1)


def test_weeks_and_days(sessions):
    weeks = {r["period"]: r for r in _base(sessions, "week")["series"]}
    assert (weeks["2026-02-02"]["orders"], weeks["2026-02-02"]["revenue"]) == (1, "50.00")  # Saturday 02-07
    assert (weeks["2026-02-09"]["orders"], weeks["2026-02-09"]["buyers"], weeks["2026-02-09"]["new_customers"]) == (2, 1, 1)
    days = {r["period"]: r for r in _base(sessions, "day", date(2026, 2, 11), date(2026, 2, 13))["series"]}
    assert set(days) == {"2026-02-11", "2026-02-12"}  # no paid order and no new contact on 02-13
    assert days["2026-02-12"]["new_customers"] == 0 and days["2026-02-12"]["buyers"] == 1


def test_cohorts_ltv(sessions):
    got = {(c["cohort"], c["age"]): c for c in _base(sessions, "month")["cohorts"]}
    # January cohort (u1, u2): 120 in January, u1's 50 in February and 50 in March
    assert [got[("2026-01", a)]["ltv"] for a in (0, 1, 2)] == ["60.00", "85.00", "110.00"]
    assert (got[("2026-01", 1)]["customers"], got[("2026-01", 1)]["buyers"]) == (2, 1)
    assert (got[("2026-02", 0)]["customers"], got[("2026-02", 0)]["ltv"]) == (1, "100.00")
    assert len(got) == 4


def test_snapshots_over_time(sessions):
    with transaction(sessions) as s:
        jobs.refresh_base(s, t(4, 20), churn_days=30)
        jobs.refresh_base(s, t(4, 20), churn_days=30)  # twice the same day: replaced, not doubled
    snaps = _base(sessions, "month")["snapshots"]
    assert [s["day"] for s in snaps] == ["2026-03-10", "2026-04-20"]
    first, second = snaps
    # on 03-10 with 30 days: u2 (last 01-21) churned; u3 (02-12, 26 days) and u1 not
    assert (first["contacts"], first["customers"], first["churned"]) == (4, 3, 1)
    assert first["churned_share"] == pytest.approx(1 / 3)
    assert (second["churned"], second["churned_share"]) == (3, 1.0)
    # RFM by rank quintile over 3 customers, score = 1 + 5·(rank−1)//3 → ranks 1, 2, 3 give 1, 2, 4:
    # u1 (latest, 3 orders, 200) 4/4/4 Champions; u3 (02-12, 2, 100) 2/2/2 Hibernating; u2 1/1/1 Lost
    assert first["segments"] == {"Champions": 1, "Hibernating": 1, "Lost": 1}


def test_fatigue(sessions):
    got = {(f["channel"], f["received_per_week"]): f for f in _base(sessions, "week", date(2026, 3, 1), date(2026, 3, 31))["fatigue"]}
    assert (got[("email", "1")]["contact_weeks"], got[("email", "1")]["unsubscribed"]) == (2, 0)  # u2 wk1, u1 wk2
    assert (got[("email", "3")]["contact_weeks"], got[("email", "3")]["unsubscribe_rate"]) == (1, 1.0)
    assert (got[("email", "5+")]["contact_weeks"], got[("email", "5+")]["unsubscribed"]) == (1, 0)
    assert (got[("sms", "1")]["contact_weeks"], got[("sms", "1")]["unsubscribed"]) == (1, 0)
    assert len(got) == 4
