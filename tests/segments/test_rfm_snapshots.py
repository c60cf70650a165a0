"""Dated RFM snapshots, the distribution and the transition matrix through the API; the rfm condition."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from kaskad import clock, periodic
from kaskad.segments import jobs, rfm_snapshots
from kaskad.segments.models import RfmSnapshot
from kaskad.store.engine import transaction

DAY1 = datetime(2026, 3, 1, 12, tzinfo=timezone.utc)
THRESHOLDS = {"recency": [7, 30, 60, 90], "frequency": [2, 3, 4, 5], "monetary": [100, 200, 300, 400]}


def _orders(api, contact, n, days_ago, now, amount="100"):
    orders = [{"id": f"{contact}-{now.date()}-{i}", "contact": contact, "status": "paid", "currency": "EUR", "amount": amount,
               "placed_at": (now - timedelta(days=days_ago + i)).isoformat()} for i in range(n)]
    assert api.post("/api/v1/orders", role="integrator", json={"orders": orders}).status_code == 200


def _snapshot(runtime, now):
    with transaction(runtime.sessions) as s:
        return rfm_snapshots.take(s, now, thresholds=THRESHOLDS)


def test_snapshots_distribution_and_transitions(api, runtime):
    _orders(api, "champ", 5, 1, DAY1, "100")   # R5 F5 M5
    _orders(api, "newbie", 1, 2, DAY1)         # R5 F1 M1: New
    assert _snapshot(runtime, DAY1) == 2
    day2 = DAY1 + timedelta(days=40)
    _orders(api, "late", 1, 0, day2)           # first order between the snapshots
    assert _snapshot(runtime, day2) == 3      # champ now 41 days ago: R3; newbie 42 days: R3 F1 -> About to sleep
    assert _snapshot(runtime, day2) == 3      # the same day again replaces, never duplicates

    got = api.get("/api/v1/rfm", role="integrator").json()
    assert got == {"taken_on": "2026-04-10", "total": 3, "segments": {"Loyal": 1, "About to sleep": 1, "New": 1},
                   "snapshots": ["2026-03-01", "2026-04-10"]}
    assert api.get("/api/v1/rfm?day=2026-03-01").json()["segments"] == {"Champions": 1, "New": 1}
    m = api.get("/api/v1/rfm/transitions?from=2026-03-01&to=2026-04-10", role="integrator").json()
    assert m == {"from": "2026-03-01", "to": "2026-04-10", "matrix": {
        "Champions": {"Loyal": 1}, "New": {"About to sleep": 1}, "(none)": {"New": 1}}}
    r = api.get("/api/v1/rfm/transitions?from=2026-03-02&to=2026-04-10")
    assert r.status_code == 404 and "2026-03-01, 2026-04-10" in r.json()["detail"]
    assert api.get("/api/v1/rfm/transitions?from=yesterday&to=2026-04-10").status_code == 400

    # the rfm condition reads the latest snapshot
    seg = {"key": "sleepy", "name": "s", "condition": {"kind": "rfm", "segments": ["About to sleep", "Lost"]}}
    assert api.post("/api/v1/segments", role="marketer", json=seg).status_code == 200
    assert [x["external_id"] for x in api.get("/api/v1/segments/sleepy/members").json()["members"]] == ["newbie"]
    seg = {"key": "frequent", "name": "f", "condition": {"kind": "rfm", "f_min": 4, "r_max": 3}}
    api.post("/api/v1/segments", json=seg)
    why = api.get("/api/v1/segments/frequent/explain/champ").json()
    assert why["member"] is True and why["conditions"][0]["value"] == "Loyal"
    bad = api.post("/api/v1/segments", json={"key": "b", "name": "b", "condition": {"kind": "rfm", "r_min": 6}})
    assert bad.json()["extra"]["errors"][0]["path"] == "$.condition.r_min"


def test_job_snapshots_today_and_prunes(runtime):
    periodic.load_jobs()
    assert periodic.JOBS["segments.rfm"].fn is jobs.rfm_job
    with transaction(runtime.sessions) as s:
        for d in (date(2025, 1, 1), date(2025, 1, 2), date(2026, 2, 20)):
            s.add(RfmSnapshot(taken_on=d, contact_id=_contact(s), r=1, f=1, m=1, segment="Lost"))
    with clock.travel(datetime(2026, 3, 1, tzinfo=timezone.utc)):
        jobs.rfm_job(runtime, clock.now())
    with runtime.sessions() as s:
        assert rfm_snapshots.days(s) == [date(2025, 1, 1), date(2026, 2, 20)]  # first of a month, and the recent one


def _contact(s):
    from kaskad.store.models import Contact

    c = s.query(Contact).filter_by(external_id="p").one_or_none()
    if c is None:
        c = Contact(external_id="p", attributes={}, tags=[])
        s.add(c)
        s.flush()
    return c.id
