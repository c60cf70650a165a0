"""Entrants against the holdout group, and A/B/n paths, on hand-made runs (both databases).

Flow ``promo`` has a split: path A (10 runs), path B (10 runs), holdout ``control`` (10 runs,
status holdout, nothing sent). Inside the 7-day window:
A: 5 buyers of 40 each; B: 2 buyers of 100 each; control: 1 buyer of 40.
"""

from __future__ import annotations

import math
from datetime import date
from statistics import NormalDist, mean, variance

import msgspec
import pytest

from kaskad.analytics import jobs, report, uplift
from kaskad.analytics.attribution import AttributionRules
from kaskad.store.engine import make_engine, make_sessionmaker, transaction

from .data import Data, at

GROUPS = {"A": [40] * 5 + [0] * 5, "B": [100] * 2 + [0] * 8, "control": [40] + [0] * 9}


def build_split(s) -> None:
    d = Data(s, prefix="p")
    flow = d.flow("promo")  # no goal: a paid order within 7 days
    for path, revenues in GROUPS.items():
        for i, amount in enumerate(revenues):
            cid = d.contact(f"{path}{i}")
            status = "holdout" if path == "control" else "exited"
            rid = d.run(flow, cid, status=status, split={"node": "split", "path": path})
            if path != "control":
                d.message(rid, flow, cid, "mail", "email", sent=at(0), cost="0.02")
            if amount:
                d.order(cid, at(3), str(amount))
            d.order(cid, at(8), "999")  # after the window: never counted


@pytest.fixture
def rep(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as s:
        build_split(s)
    with transaction(sessions) as s:
        jobs.refresh_journeys(s, at(30), rules=AttributionRules())
    with sessions() as s:
        out = report.flow_report(s, "promo", date(2026, 3, 1), date(2026, 3, 31), "month")
    engine.dispose()
    return out


def test_entrants_against_holdout(rep):
    treated = GROUPS["A"] + GROUPS["B"]
    control = GROUPS["control"]
    h = rep["holdout"]
    assert (h["treatment"]["entered"], h["treatment"]["purchasers"], h["treatment"]["revenue"]) == (20, 7, "400.00")
    assert (h["control"]["entered"], h["control"]["purchasers"], h["control"]["revenue"]) == (10, 1, "40.00")
    assert h["treatment"]["repeat_purchase_rate"] == pytest.approx(7 / 20)
    assert h["control"]["revenue_per_contact"] == "4.00"
    assert rep["totals"]["entered"] == 20  # the report's totals are the entrants only

    # independently: Wald interval of the difference in purchase rates, pooled z-test
    p_t, p_c = 7 / 20, 1 / 10
    se = math.sqrt(p_t * (1 - p_t) / 20 + p_c * (1 - p_c) / 10)
    z = NormalDist().inv_cdf(0.975)
    rate = h["uplift"]["repeat_purchase_rate"]
    assert rate["difference"] == pytest.approx(p_t - p_c, abs=1e-6)
    assert (rate["ci_low"], rate["ci_high"]) == (pytest.approx(p_t - p_c - z * se, abs=1e-6), pytest.approx(p_t - p_c + z * se, abs=1e-6))
    pooled = 8 / 30
    p_value = 2 * (1 - NormalDist().cdf((p_t - p_c) / math.sqrt(pooled * (1 - pooled) * (1 / 20 + 1 / 10))))
    # the answer rounds to 6 places
    assert rate["p_value"] == pytest.approx(p_value, abs=1e-6)
    assert rate["significant"] is (p_value < 0.05)
    assert rate["verdict"].startswith("Not significant yet") and "more" in rate["verdict"]

    # revenue per contact: Welch interval from the per-contact revenues, zeros included
    money = h["uplift"]["revenue_per_contact"]
    diff = mean(treated) - mean(control)
    se = math.sqrt(variance(treated) / 20 + variance(control) / 10)
    assert money["difference"] == pytest.approx(diff, abs=1e-6)
    assert money["ci_low"] == pytest.approx(diff - z * se, abs=1e-6)
    assert money["ci_high"] == pytest.approx(diff + z * se, abs=1e-6)


def test_paths_against_the_holdout(rep):
    paths = {p["path"]: p for p in rep["paths"]}
    assert set(paths) == {"A", "B", "control"}
    assert paths["control"]["holdout"] is True and "uplift" not in paths["control"]
    a, b = paths["A"], paths["B"]
    assert (a["entered"], a["purchasers"], a["revenue"], a["cost"], a["sent"]) == (10, 5, "200.00", "0.20", 10)
    assert (b["entered"], b["purchasers"], b["revenue"]) == (10, 2, "200.00")
    assert a["against"] == "control"
    want = msgspec.to_builtins(uplift.proportion_uplift(5, 10, 1, 10, metric="repeat-purchase rate"))
    got = a["uplift"]["repeat_purchase_rate"]
    assert got["verdict"] == want["verdict"] and got["needed_per_group"] == want["needed_per_group"]
    for k in ("difference", "ci_low", "ci_high", "p_value"):
        assert got[k] == pytest.approx(want[k], abs=1e-6)
    assert b["uplift"]["revenue_per_contact"]["difference"] == pytest.approx(20.0 - 4.0, abs=1e-6)
    rows = {(r["group"], r["metric"]) for r in rep["uplift"]}
    assert rows == {(g, m) for g in ("entrants", "A", "B") for m in ("repeat-purchase rate", "revenue per contact")}


def test_split_without_holdout_compares_with_the_first_path(db_url):
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with transaction(sessions) as s:
        d = Data(s)
        flow = d.flow("ab")
        for path, buyers in (("A", 1), ("B", 3), ("C", 0)):
            for i in range(4):
                cid = d.contact(f"ab{path}{i}")
                d.run(flow, cid, split={"node": "s", "path": path})
                if i < buyers:
                    d.order(cid, at(1), "10")
        jobs.refresh_journeys(s, at(30), rules=AttributionRules())
    with sessions() as s:
        rep = report.flow_report(s, "ab", date(2026, 3, 1), date(2026, 3, 31), "day")
    engine.dispose()
    paths = {p["path"]: p for p in rep["paths"]}
    assert "against" not in paths["A"]
    assert paths["B"]["against"] == "A" and paths["C"]["against"] == "A"
    assert paths["B"]["uplift"]["repeat_purchase_rate"]["difference"] == pytest.approx(3 / 4 - 1 / 4, abs=1e-6)
    assert rep["holdout"]["control"]["entered"] == 0
    assert rep["holdout"]["uplift"]["repeat_purchase_rate"]["verdict"].startswith("No repeat-purchase rate comparison yet")
