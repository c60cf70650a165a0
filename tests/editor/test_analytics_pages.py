"""The journey report and the base-health page in the browser, on a small seeded data set.

Contacts, orders and events go in through the API; the journey's runs, steps and messages are
rows as the engine and channels write them (tests/analytics/data.py); then the analytics tables
are rebuilt (kaskad.analytics.jobs) and both pages are opened. The right answers are worked out
here from the seeded data, not read back from the API.

Dates: M0 is the first day of the month before last, M1 of last month; the journey's runs entered
on M1 + 10 days. Everything is in the past, whatever today is.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone
from statistics import NormalDist

import pytest

from tests.editor.conftest import ARTIFACTS, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("editor-browser")]

FLOW = {
    "schema": "kaskad.flow/1",
    "key": "report-demo",
    "name": "Report demo",
    "entry": {"kind": "api"},
    "nodes": [
        {"kind": "send", "id": "mail", "channel": "test", "message": {"text": "Hello"}, "next": "pause"},
        {"kind": "wait", "id": "pause", "for": "P3D", "next": "end"},
        {"kind": "exit", "id": "end"},
    ],
    "layout": {"mail": {"x": 0, "y": 0}, "pause": {"x": 0, "y": 160}, "end": {"x": 0, "y": 320}},
}


def _months() -> tuple[datetime, datetime]:
    first = datetime.now(timezone.utc).replace(day=1, hour=10, minute=0, second=0, microsecond=0)
    m1 = (first - timedelta(days=1)).replace(day=1)
    m0 = (m1 - timedelta(days=1)).replace(day=1)
    return m0, m1


M0, M1 = _months()
J = M1 + timedelta(days=10)  # the runs' entry
TREATED = ["a", "b", "c", "d"]
HOLDOUT = ["e", "f", "g", "h"]
# (contact, placed, amount): two before the journey, two during it by entrants, one by a holdout contact.
ORDERS = [
    ("a", M0 + timedelta(days=5), 100), ("b", M0 + timedelta(days=10), 20),
    ("c", M1 + timedelta(days=3), 60),
    ("a", J + timedelta(days=2), 40), ("b", J + timedelta(days=3), 60), ("e", J + timedelta(days=1), 30),
]


@pytest.fixture(scope="module")
def seeded(editor_server):
    from sqlalchemy import select

    from kaskad.analytics import jobs
    from kaskad.config import Settings
    from kaskad.runtime import Runtime
    from kaskad.store.engine import transaction
    from kaskad.store.models import Flow, FlowVersion
    from tests.analytics.data import Data

    s = editor_server
    assert s.api("POST", "/flows", json=FLOW).status_code == 200
    assert s.api("POST", f"/flows/{FLOW['key']}/publish").status_code == 200
    r = s.api("POST", "/contacts", role="integrator",
              json={"contacts": [{"external_id": c, "email": f"{c}@example.com"} for c in TREATED + HOLDOUT]})
    assert r.status_code == 200, r.text
    orders = [{"id": f"o{i}", "contact": c, "status": "paid", "currency": "EUR", "placed_at": at.isoformat(), "amount": str(amount)}
              for i, (c, at, amount) in enumerate(ORDERS)]
    r = s.api("POST", "/orders", role="integrator", json={"orders": orders})
    assert r.status_code == 200, r.text
    r = s.api("POST", "/events", role="integrator",
              json={"events": [{"contact": c, "name": "viewed_menu", "time": (J + timedelta(hours=2)).isoformat()} for c in "ab"]})
    assert r.status_code == 200, r.text

    runtime = Runtime.create(Settings.from_env({**s.env}))
    try:
        with transaction(runtime.sessions) as session:
            flow_id = session.scalar(select(Flow.id).where(Flow.key == FLOW["key"]))
            version_id = session.scalar(select(FlowVersion.id).where(FlowVersion.flow_id == flow_id, FlowVersion.status == "published"))
            d = Data(session, prefix="ed")
            flow = (flow_id, version_id)
            events = {"a": ("delivered", "opened", "clicked"), "b": ("delivered",), "c": ("delivered",), "d": ("unsubscribed",)}
            for c in TREATED:
                cid = d.contact_id(c)
                rid = d.run(flow, cid, entered=J, steps={"mail": J, "pause": J + timedelta(minutes=1)})
                d.message(rid, flow, cid, "mail", "email", sent=J, cost="0.02", events=events[c])
            for c in HOLDOUT:
                d.run(flow, d.contact_id(c), entered=J, status="holdout", split={"node": "split", "path": "control"})
        with transaction(runtime.sessions) as session:
            now = datetime.now(timezone.utc)
            jobs.refresh_journeys(session, now)
            jobs.refresh_base(session, now)
    finally:
        runtime.close()
    return s


def _period() -> str:
    return f"from={M0.date()}&to={(J + timedelta(days=20)).date()}&group=month"


def test_journey_report_shows_the_funnel_figures_and_uplift(page, seeded):
    sign_in(page, seeded, "marketer", path=f"/editor/flows/{FLOW['key']}/report?{_period()}")
    page.wait_for_selector("[data-testid=figure-entered]")
    page.wait_for_selector("[data-testid=funnel-mail]")

    figures = {k: page.locator(f"[data-testid=figure-{k}]").inner_text() for k in (
        "entered", "sent", "delivered", "opened", "clicked", "converted", "conversion_rate", "revenue", "cost", "roi",
        "cost_per_conversion")}
    # 4 entrants, one email each (0.02); a and b bought inside the 7-day window (40 + 60).
    assert figures == {"entered": "4", "sent": "4", "delivered": "3", "opened": "1", "clicked": "1", "converted": "2",
                       "conversion_rate": "50.0%", "revenue": "100.00", "cost": "0.08",
                       "roi": f"+{round((100 - 0.08) / 0.08 * 100)}%", "cost_per_conversion": "0.04"}

    # The funnel on the canvas: both mail and pause reached by all 4, 2 converted after each; end never reached.
    assert page.locator("[data-testid=funnel-mail]").inner_text().split("\n") == ["reached 4", "converted 2", "sent 4"]
    assert page.locator("[data-testid=funnel-pause]").inner_text().split("\n") == ["reached 4", "converted 2"]
    assert page.locator("[data-testid=funnel-end]").inner_text().split("\n") == ["reached 0", "converted 0"]

    # Uplift: entrants 2/4 bought, holdout 1/4; Wald interval of the difference.
    p_t, p_c, z = 2 / 4, 1 / 4, NormalDist().inv_cdf(0.975)
    se = math.sqrt(p_t * (1 - p_t) / 4 + p_c * (1 - p_c) / 4)
    low, high = (p_t - p_c - z * se) * 100, (p_t - p_c + z * se) * 100
    assert page.locator("[data-testid=uplift-repeat_purchase_rate-difference]").inner_text() == "+25.0 pp"
    assert page.locator("[data-testid=uplift-repeat_purchase_rate-interval]").inner_text() == f"{low:+.1f} pp to {high:+.1f} pp"
    assert page.locator("[data-testid=uplift-repeat_purchase_rate-verdict]").inner_text().startswith("Not significant yet")
    # revenue per contact: 100/4 against 30/4
    assert page.locator("[data-testid=uplift-revenue_per_contact-difference]").inner_text() == "+17.50"
    shot(page, "journey-report")

    # The per-node figures download as CSV, as the API gives them.
    with page.expect_download() as download:
        page.click("[data-testid=report-csv]")
    lines = open(download.value.path()).read().splitlines()
    header = lines[0].split(",")
    mail = dict(zip(header, next(line for line in lines if line.startswith("mail,")).split(",")))
    assert (mail["reached"], mail["converted"], mail["revenue"]) == ("4", "2", "100.00")

    # The report is one click from the editor and from the flow list (the period falls back to the last 30 days).
    page.click("text=← Edit")
    page.wait_for_selector('.react-flow__node[data-id="pause"]')
    page.click("[data-testid=open-report]")
    page.wait_for_selector("[data-testid=figure-entered]")
    assert page.url.endswith(f"/editor/flows/{FLOW['key']}/report")
    page.goto(f"{seeded.url}/editor/")
    page.click(f"[data-testid=report-{FLOW['key']}]")
    page.wait_for_selector("[data-testid=funnel-mail]")


def _chart(page, cid: str) -> tuple[list[list[str]], list]:
    """The table under a chart (rows of cells) and the numbers chart.js drew."""
    page.wait_for_selector(f"[data-testid=chart-{cid}][data-series]")
    rows = page.locator(f"[data-testid=table-{cid}] tbody tr").evaluate_all(
        "rs => rs.map(r => [...r.cells].map(c => c.textContent))")
    drawn = json.loads(page.locator(f"[data-testid=chart-{cid}]").get_attribute("data-series"))
    # something was painted: the canvas is not blank
    painted = page.locator(f"[data-testid=chart-{cid}]").evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }")
    assert painted > 500, f"{cid}: the canvas is blank"
    return rows, drawn


def test_base_health_draws_the_charts_with_the_right_numbers(page, seeded):
    sign_in(page, seeded, "marketer", path="/editor/")
    page.click("[data-testid=open-health]")
    page.wait_for_selector("[data-testid=health]")
    # up to today: the snapshots (RFM segments, churn) are taken on the day the refresh runs
    page.goto(f"{seeded.url}/editor/health?from={M0.date()}&to={datetime.now(timezone.utc).date()}&group=month")
    page.wait_for_selector("[data-testid=chart-customers][data-series]")

    m0, m1 = str(M0.date()), str(M1.date())
    rows, drawn = _chart(page, "customers")
    by_month = {r[0]: r[1:] for r in rows}
    # M0: a, b buy for the first time. M1: c and e for the first time; a and b again.
    assert by_month[m0] == ["2", "0"] and by_month[m1] == ["2", "2"]
    i0, i1 = [r[0] for r in rows].index(m0), [r[0] for r in rows].index(m1)
    assert (drawn[0][i0], drawn[1][i0], drawn[0][i1], drawn[1][i1]) == (2, 0, 2, 2)

    rows, drawn = _chart(page, "average-check")
    check = {r[0]: r[1] for r in rows}
    assert check[m0] == "60" and check[m1] == "47.50"  # (100 + 20) / 2; (60 + 40 + 60 + 30) / 4
    assert drawn[0][i0] == 60 and drawn[0][i1] == 47.5

    rows, drawn = _chart(page, "ltv")
    ltv = {r[0]: r[1:] for r in rows}
    cohorts = page.locator("[data-testid=table-ltv] thead th").all_inner_texts()[1:]
    first, second = cohorts.index(m0[:7]), cohorts.index(m1[:7])
    # cohort M0 (a, b): 120 in its first month, 100 more in its second; cohort M1 (c, e): 90.
    assert ltv["month 0"][first] == "60" and ltv["month 1"][first] == "110"
    assert ltv["month 0"][second] == "45"
    assert drawn[first][:2] == [60, 110] and drawn[second][0] == 45

    rows, drawn = _chart(page, "fatigue")
    assert rows[0] == ["1/week", "25.0%"]  # 4 contacts got one email that week; d unsubscribed
    assert drawn == [[0.25]]

    # The snapshot of today: 8 contacts, 4 of them customers, nobody churned yet.
    rows, drawn = _chart(page, "churned")
    assert rows[-1][1] == "0.0%" and drawn[0][-1] == 0
    rows, drawn = _chart(page, "segments")
    segment_total = sum(series[-1] for series in drawn)
    assert segment_total == 4  # every customer (a, b, c, e) sits in exactly one RFM segment
    for row_i, row in enumerate(rows):
        assert [int(c) for c in row[1:]] == [series[row_i] for series in drawn]
    rows, drawn = _chart(page, "base-size")
    assert rows[-1][1] == "8" and drawn[0][-1] == 8  # all 8 contacts were created today, through the API
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "editor-base-health.png"), full_page=True)
