"""Read the materialised tables for a date range, group by day/week/month, derive rates.

Derived figures (``None`` where the denominator is zero):
conversion rate = converted / entered (per node: / reached; per message: / sent),
average order value = revenue / orders, cost = message cost + loyalty cost,
ROI = (revenue − cost) / cost, cost per conversion = cost / converted.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any, Iterable

import msgspec
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaskad.analytics import uplift
from kaskad.analytics.base import period_start
from kaskad.analytics.models import BasePeriod, Cohort, Fatigue, FlowDay, NodeDay, Refresh, Snapshot
from kaskad.store.models import Flow

SUMS = ("entered", "reached", "purchasers", "sent", "delivered", "opened", "clicked", "bounced", "unsubscribed",
        "converted", "orders", "revenue", "message_cost", "loyalty_cost", "revenue_sq")
_MONEY = ("revenue", "message_cost", "loyalty_cost", "cost", "average_order_value", "cost_per_conversion",
          "revenue_per_contact")


class FlowNotFound(LookupError):
    pass


def _ratio(a, b) -> Decimal | float | None:
    if not b:
        return None
    return Decimal(a) / Decimal(b) if isinstance(a, Decimal) or isinstance(b, Decimal) else a / b


def _round(value):
    if isinstance(value, Decimal):
        return str(value.quantize(Decimal("0.01")))
    if isinstance(value, float):
        return round(value, 6)
    return value


def derive(row: dict[str, Any], base: str) -> dict[str, Any]:
    """Add the rates and money figures to summed counters; ``base`` is the conversion denominator."""
    cost = row.get("message_cost", Decimal(0)) + row.get("loyalty_cost", Decimal(0))
    revenue = row.get("revenue", Decimal(0))
    out = {k: v for k, v in row.items() if k != "revenue_sq"}
    out["cost"] = cost
    rate = _ratio(row.get("converted", 0), row.get(base, 0))
    out["conversion_rate"] = float(rate) if rate is not None else None
    out["average_order_value"] = _ratio(revenue, row.get("orders", 0))
    roi = _ratio(revenue - cost, cost)
    out["roi"] = float(roi) if roi is not None else None
    out["cost_per_conversion"] = _ratio(cost, row.get("converted", 0))
    if "entered" in row:
        out["revenue_per_contact"] = _ratio(revenue, row["entered"])
        pr = _ratio(row.get("purchasers", 0), row["entered"])
        out["repeat_purchase_rate"] = float(pr) if pr is not None else None
    return {k: _round(v) for k, v in out.items()}


def _sum(rows: Iterable[Any], keys: tuple, fields: tuple[str, ...]) -> dict[tuple, dict]:
    """Sum ``fields`` of ORM rows by ``keys`` (attribute names or functions of the row)."""
    out: dict[tuple, dict] = {}
    for r in rows:
        k = tuple(f(r) if callable(f) else getattr(r, f) for f in keys)
        acc = out.setdefault(k, {})
        for f in fields:
            if hasattr(r, f):
                acc[f] = acc.get(f, 0) + (getattr(r, f) or 0)
    return out


def _aggregate(session: Session, model, keys: tuple[str, ...], *where) -> dict[tuple, dict]:
    """``SELECT keys, SUM(counter)… GROUP BY keys`` over a materialised table: the dashboard reads
    a handful of summed rows, never one row per day and node."""
    cols = [c for c in SUMS if hasattr(model, c)]
    q = (select(*[getattr(model, k) for k in keys], *[func.sum(getattr(model, c)) for c in cols])
         .where(*where).group_by(*[getattr(model, k) for k in keys]))
    out = {}
    for row in session.execute(q):
        values = {}
        for c, v in zip(cols, row[len(keys):]):
            if c in ("revenue", "message_cost", "loyalty_cost"):
                v = Decimal(str(v or 0)).quantize(Decimal("0.0001"))  # SQLite sums decimals as floats
            values[c] = v if v is not None else 0
        out[tuple(row[:len(keys)])] = values
    return out


def _merge(rows: dict[tuple, dict], key) -> dict[tuple, dict]:
    """Re-group summed rows by ``key(row key)`` (days into weeks or months)."""
    out: dict[tuple, dict] = {}
    for k, v in rows.items():
        acc = out.setdefault(key(k), {})
        for f, x in v.items():
            acc[f] = acc.get(f, 0) + x
    return out


def flow_id(session: Session, key: str) -> int:
    fid = session.scalar(select(Flow.id).where(Flow.key == key))
    if fid is None:
        raise FlowNotFound(f"no flow with key {key!r}")
    return fid


def refreshed_at(session: Session) -> dict[str, str]:
    return {part: at.isoformat() for part, at in session.execute(select(Refresh.part, Refresh.at))}


def _uplift_pair(t: dict, c: dict) -> dict[str, Any]:
    n_t, n_c = t.get("entered", 0), c.get("entered", 0)
    rate = uplift.proportion_uplift(t.get("purchasers", 0), n_t, c.get("purchasers", 0), n_c,
                                    metric="repeat-purchase rate")
    money = uplift.mean_uplift(float(t.get("revenue", 0)), t.get("revenue_sq", 0.0), n_t,
                               float(c.get("revenue", 0)), c.get("revenue_sq", 0.0), n_c)
    return {"repeat_purchase_rate": _rounded(rate), "revenue_per_contact": _rounded(money)}


def _rounded(u: uplift.Uplift) -> dict[str, Any]:
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in msgspec.to_builtins(u).items()}


def _empty() -> dict[str, Any]:
    return {c: (Decimal(0) if c in ("revenue", "message_cost", "loyalty_cost") else 0)
            for c in SUMS if c not in ("reached", "revenue_sq")}


def flow_report(session: Session, key: str, start: date, end: date, group: str) -> dict[str, Any]:
    """The journey report: totals, series by period, nodes, messages, channels, holdout and split paths."""
    fid = flow_id(session, key)
    in_flow = (FlowDay.flow_id == fid, FlowDay.day.between(start, end))
    in_nodes = (NodeDay.flow_id == fid, NodeDay.day.between(start, end))
    days = _aggregate(session, FlowDay, ("day", "holdout"), *in_flow)
    treated = {k: v for k, v in days.items() if not k[1]}
    total = _merge(treated, lambda k: ()).get((), {})
    series = _merge(treated, lambda k: (period_start(k[0], group),))
    nodes = _aggregate(session, NodeDay, ("node_id",), *in_nodes, NodeDay.channel == "")
    messages = _aggregate(session, NodeDay, ("node_id", "channel"), *in_nodes, NodeDay.channel != "")
    channels = _merge(messages, lambda k: (k[1],))
    groups = _merge(days, lambda k: (k[1],))
    by_path = _aggregate(session, FlowDay, ("path", "holdout"), *in_flow)
    paths = _merge(by_path, lambda k: (k[0],))
    # a path is compared with the holdout when there is one (its runs, whatever path they carry),
    # else with the first path by name
    holdout_path = next((p or "holdout" for p, h in by_path if h), None)
    path_names = sorted(p for (p,) in paths if p and p != holdout_path)
    if holdout_path is not None:
        baseline, base_row = holdout_path, groups[(True,)]
    elif path_names:
        baseline, base_row = path_names[0], paths[(path_names[0],)]
    else:
        baseline, base_row = None, None
    path_rows = []
    for p in path_names:
        row = {"path": p, "holdout": False, **derive(paths[(p,)], "entered")}
        if baseline is not None and p != baseline:
            row["against"] = baseline
            row["uplift"] = _uplift_pair(paths[(p,)], base_row)
        path_rows.append(row)
    if holdout_path is not None and path_rows:
        path_rows.append({"path": holdout_path, "holdout": True, **derive(groups[(True,)], "entered")})
    return {
        "flow": key,
        "from": start.isoformat(), "to": end.isoformat(), "group": group,
        "refreshed_at": refreshed_at(session),
        "totals": derive(total or _empty(), "entered"),
        "series": [{"period": p.isoformat(), **derive(v, "entered")} for (p,), v in sorted(series.items())],
        "nodes": [{"node": n, **derive(v, "reached")} for (n,), v in sorted(nodes.items())],
        "messages": [{"node": n, "channel": c, **derive(v, "sent")} for (n, c), v in sorted(messages.items())],
        "channels": [{"channel": c, **derive(v, "sent")} for (c,), v in sorted(channels.items())],
        "holdout": {
            "treatment": derive(groups.get((False,)) or _empty(), "entered"),
            "control": derive(groups.get((True,)) or _empty(), "entered"),
            "uplift": _uplift_pair(groups.get((False,), {}), groups.get((True,), {})),
        },
        "paths": path_rows,
        "uplift": _uplift_rows(groups, path_rows),
    }


def _uplift_rows(groups: dict, path_rows: list[dict]) -> list[dict[str, Any]]:
    """Every uplift of the report as flat rows (the CSV section ``uplift``)."""
    rows = [{"group": "entrants", "against": "holdout", **u}
            for u in _uplift_pair(groups.get((False,), {}), groups.get((True,), {})).values()]
    for p in path_rows:
        rows += [{"group": p["path"], "against": p["against"], **u} for u in p.get("uplift", {}).values()]
    return rows


def channel_report(session: Session, start: date, end: date, group: str) -> dict[str, Any]:
    """Every channel across all flows, by period (by the entry day of the runs)."""
    rows = _aggregate(session, NodeDay, ("channel", "day"), NodeDay.channel != "", NodeDay.day.between(start, end))
    sums = _merge(rows, lambda k: (k[0], period_start(k[1], group)))
    return {"from": start.isoformat(), "to": end.isoformat(), "group": group, "refreshed_at": refreshed_at(session),
            "channels": [{"channel": c, "period": p.isoformat(), **derive(v, "sent")} for (c, p), v in sorted(sums.items())]}


def base_report(session: Session, start: date, end: date, group: str) -> dict[str, Any]:
    """Base health: the base and its buying per period, RFM and churn snapshots, cohorts' LTV, fatigue."""
    periods = session.scalars(select(BasePeriod).where(
        BasePeriod.grain == group, BasePeriod.period.between(period_start(start, group), end)).order_by(BasePeriod.period)).all()
    series = []
    for p in periods:
        series.append({
            "period": p.period.isoformat(), "contacts": p.contacts, "new_contacts": p.new_contacts,
            "orders": p.orders, "revenue": _round(Decimal(p.revenue)), "buyers": p.buyers,
            "new_customers": p.new_customers, "returning_customers": p.buyers - p.new_customers,
            "average_check": _round(_ratio(Decimal(p.revenue), p.orders)),
            "purchase_frequency": _round(_ratio(p.orders, p.buyers)),
        })
    snaps = session.scalars(select(Snapshot).where(Snapshot.day.between(start, end)).order_by(Snapshot.day)).all()
    by_day: dict[date, dict] = defaultdict(lambda: {"segments": {}})
    for s in snaps:
        if s.kind == "rfm":
            by_day[s.day]["segments"][s.key] = s.value
        else:
            by_day[s.day][s.key] = s.value
    snapshots = []
    for d, v in sorted(by_day.items()):
        share = _ratio(v.get("churned", 0), v.get("customers", 0))
        snapshots.append({"day": d.isoformat(), "contacts": v.get("contacts", 0), "customers": v.get("customers", 0),
                          "churned": v.get("churned", 0), "churned_share": round(share, 6) if share is not None else None,
                          "segments": dict(sorted(v["segments"].items()))})
    cohorts = []
    acc: dict[date, Decimal] = defaultdict(Decimal)
    for c in session.scalars(select(Cohort).where(Cohort.cohort.between(period_start(start, "month"), end))
                             .order_by(Cohort.cohort, Cohort.age)).all():
        acc[c.cohort] += Decimal(c.revenue)
        cohorts.append({"cohort": c.cohort.isoformat()[:7], "age": c.age, "customers": c.customers, "buyers": c.buyers,
                        "revenue": _round(Decimal(c.revenue)), "ltv": _round(acc[c.cohort] / c.customers)})
    fatigue = _sum(session.scalars(select(Fatigue).where(Fatigue.week.between(period_start(start, "week"), end))).all(),
                   ("channel", "received"), ("contacts", "unsubscribed"))
    return {
        "from": start.isoformat(), "to": end.isoformat(), "group": group, "refreshed_at": refreshed_at(session),
        "series": series, "snapshots": snapshots, "cohorts": cohorts,
        "fatigue": [{"channel": ch, "received_per_week": f"{n}+" if n >= 5 else str(n), "contact_weeks": v["contacts"],
                     "unsubscribed": v["unsubscribed"], "unsubscribe_rate": _round(_ratio(v["unsubscribed"], v["contacts"]))}
                    for (ch, n), v in sorted(fatigue.items())],
    }
