"""Analytics: the journey report, channels and base health, as JSON or CSV.

Every endpoint takes ``from`` and ``to`` (ISO dates, inclusive; default the last 30
days), ``group`` (``day``, ``week`` or ``month``) and ``format`` (``json`` or ``csv``;
``Accept: text/csv`` works too). A CSV holds one section of the answer, chosen with
``section`` (the sections are the answer's lists). Any valid token may read.
"""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any, Callable

from litestar import Request, Response, get
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import Parameter

from kaskad import clock
from kaskad.analytics import report
from kaskad.api.auth import ANY_ROLE
from kaskad.runtime import Runtime

GROUPS = ("day", "week", "month")
MAX_DAYS = 3660


def _range(start: str | None, end: str | None, group: str) -> tuple[date, date]:
    if group not in GROUPS:
        raise HTTPException(status_code=400, detail=f"group: {group!r} is not one of day, week, month")
    try:
        to = date.fromisoformat(end) if end else clock.now().date()
    except ValueError:
        raise HTTPException(status_code=400, detail=f"to: {end!r} is not a date like 2026-03-31") from None
    try:
        frm = date.fromisoformat(start) if start else to - timedelta(days=29)
    except ValueError:
        raise HTTPException(status_code=400, detail=f"from: {start!r} is not a date like 2026-03-01") from None
    if frm > to:
        raise HTTPException(status_code=400, detail=f"from ({frm}) is after to ({to})")
    if (to - frm).days > MAX_DAYS:
        raise HTTPException(status_code=400, detail=f"the range is {(to - frm).days} days; at most {MAX_DAYS}")
    return frm, to


def _flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = "" if v is None else v
    return out


def to_csv(rows: list[dict[str, Any]]) -> str:
    """Rows (nested objects become dotted columns) as CSV, columns in first-seen order."""
    flat = [_flatten(r) for r in rows]
    columns: dict[str, None] = {}
    for r in flat:
        columns.update(dict.fromkeys(r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return buf.getvalue()


def _answer(request: Request, data: dict[str, Any], fmt: str | None, section: str | None, name: str) -> Any:
    wants_csv = fmt == "csv" or (fmt is None and "text/csv" in request.headers.get("accept", ""))
    if fmt not in (None, "json", "csv"):
        raise HTTPException(status_code=400, detail=f"format: {fmt!r} is not json or csv")
    if not wants_csv:
        return data
    sections = [k for k, v in data.items() if isinstance(v, list)]
    if section is None and len(sections) == 1:
        section = sections[0]
    if section not in sections:
        raise HTTPException(status_code=400, detail=f"section: choose one of {', '.join(sections)} for a CSV"
                                                    + ("" if section is None else f" ({section!r} is not one)"))
    return Response(to_csv(data[section]), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}-{section}.csv"'})


def _read(runtime: Runtime, fn: Callable, *args) -> dict[str, Any]:
    with runtime.sessions() as session:
        return fn(session, *args)


@get("/analytics/flows/{key:str}", guards=[ANY_ROLE], sync_to_thread=True, tags=["analytics"])
def flow_analytics(
    runtime: Runtime, request: Request, key: str,
    start: str | None = Parameter(query="from", default=None), end: str | None = Parameter(query="to", default=None),
    group: str = "day", format: str | None = None, section: str | None = None,
) -> Any:
    """A journey's report: totals, series per period, nodes, messages, channels, the holdout
    comparison with uplift, and split paths. Figures are filed under the runs' entry day."""
    frm, to = _range(start, end, group)
    try:
        data = _read(runtime, report.flow_report, key, frm, to, group)
    except report.FlowNotFound as exc:
        raise NotFoundException(str(exc)) from None
    return _answer(request, data, format, section, f"flow-{key}")


@get("/analytics/channels", guards=[ANY_ROLE], sync_to_thread=True, tags=["analytics"])
def channel_analytics(
    runtime: Runtime, request: Request,
    start: str | None = Parameter(query="from", default=None), end: str | None = Parameter(query="to", default=None),
    group: str = "day", format: str | None = None, section: str | None = None,
) -> Any:
    """Each channel across every flow, per period."""
    frm, to = _range(start, end, group)
    return _answer(request, _read(runtime, report.channel_report, frm, to, group), format, section, "channels")


@get("/analytics/base", guards=[ANY_ROLE], sync_to_thread=True, tags=["analytics"])
def base_analytics(
    runtime: Runtime, request: Request,
    start: str | None = Parameter(query="from", default=None), end: str | None = Parameter(query="to", default=None),
    group: str = "month", format: str | None = None, section: str | None = None,
) -> Any:
    """Base health: base size and buying per period, RFM segments and churn over time,
    LTV per cohort, unsubscribe rate against messages received per week."""
    frm, to = _range(start, end, group)
    return _answer(request, _read(runtime, report.base_report, frm, to, group), format, section, "base")


routes = [flow_analytics, channel_analytics, base_analytics]
