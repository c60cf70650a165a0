"""GET /api/v1/analytics/…: roles, ranges and grouping, CSV export, clear errors."""

from __future__ import annotations

import csv
import io

import pytest

from kaskad.analytics import jobs
from kaskad.store.engine import transaction

from .data import at
from .test_base_health import build_base
from .test_journeys import build_cascade

FLOW = "/api/v1/analytics/flows/winback?from=2026-03-01&to=2026-03-31"


@pytest.fixture
def loaded(api, runtime):
    with transaction(runtime.sessions) as s:
        build_cascade(s)
        build_base(s)
    with transaction(runtime.sessions) as s:
        jobs.refresh_all(s, at(30))
    return api


@pytest.mark.parametrize("role", ["admin", "marketer", "integrator"])
def test_any_valid_token_reads(loaded, role):
    r = loaded.get(FLOW, role)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totals"]["converted"] == 3 and body["refreshed_at"]["journeys"].startswith("2026-04-01")
    assert loaded.get("/api/v1/analytics/base", role).status_code == 200


def test_no_token_no_figures(loaded):
    r = loaded.client.get(FLOW)
    assert r.status_code == 401


def test_range_and_grouping(loaded):
    body = loaded.get(FLOW + "&group=month").json()
    assert [p["period"] for p in body["series"]] == ["2026-03-01"]
    assert loaded.get("/api/v1/analytics/flows/winback?from=2026-03-03&to=2026-03-31").json()["totals"]["entered"] == 0
    base = loaded.get("/api/v1/analytics/base?from=2026-02-01&to=2026-02-28&group=month").json()
    assert [p["period"] for p in base["series"]] == ["2026-02-01"]
    ch = loaded.get("/api/v1/analytics/channels?from=2026-03-01&to=2026-03-31&group=week").json()
    assert {(c["channel"], c["period"], c["sent"]) for c in ch["channels"]} == {("email", "2026-03-02", 5), ("sms", "2026-03-02", 2)}


@pytest.mark.parametrize("query, says", [
    ("group=year", "group: 'year' is not one of day, week, month"),
    ("from=yesterday", "from: 'yesterday' is not a date"),
    ("to=2026-13-01", "to: '2026-13-01' is not a date"),
    ("from=2026-03-10&to=2026-03-01", "from (2026-03-10) is after to (2026-03-01)"),
    ("from=2000-01-01&to=2026-03-01", "the range is"),
    ("format=xml", "format: 'xml' is not json or csv"),
    ("format=csv", "section: choose one of series, nodes, messages, channels, paths, uplift for a CSV"),
    ("format=csv&section=totals", "('totals' is not one)"),
])
def test_bad_parameters_are_named(loaded, query, says):
    r = loaded.get(f"/api/v1/analytics/flows/winback?{query}")
    assert r.status_code == 400
    assert says in r.json()["detail"]


def test_unknown_flow(loaded):
    r = loaded.get("/api/v1/analytics/flows/nope")
    assert r.status_code == 404 and "no flow with key 'nope'" in r.json()["detail"]


def test_csv_export(loaded):
    r = loaded.get(FLOW + "&format=csv&section=messages")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="flow-winback-messages.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["node"], x["channel"], x["sent"], x["converted"], x["revenue"]) for x in rows] == [
        ("mail", "email", "5", "2", "140.00"), ("mail", "sms", "2", "1", "50.00")]
    # Accept: text/csv works as well; nested objects become dotted columns
    r = loaded.get("/api/v1/analytics/base?from=2026-03-01&to=2026-04-30&section=snapshots", headers={"Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(r.text)))
    segments = {k: int(v) for k, v in rows[0].items() if k.startswith("segments.") and v}
    assert segments and sum(segments.values()) == int(rows[0]["customers"])
    r = loaded.get(FLOW + "&format=csv&section=uplift")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert {x["metric"] for x in rows} == {"repeat-purchase rate", "revenue per contact"}
    assert rows[0]["verdict"].startswith("No repeat-purchase rate comparison yet")
