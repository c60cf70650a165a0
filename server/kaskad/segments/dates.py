"""Yearly date triggers (birthday 3 days before / on the day / after) in the contact's timezone.

A contact whose date attribute is ``1990-02-29`` has its day on Feb 28 in
non-leap years. The dedupe key (``<attribute>:<offset>:<year of the anniversary>``)
makes a job that runs twice, or across midnight in two timezones, fire once.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from kaskad.store.models import Contact


def anniversary(d: date, year: int) -> date:
    if d.month == 2 and d.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return date(year, d.month, d.day)


def _zone(tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz or "UTC")
    except (ValueError, KeyError):  # an unknown zone name: the contact's day is the UTC day
        return ZoneInfo("UTC")


def due_key(value: date, offset_days: int, now: datetime, tz: str | None, attribute: str, *,
            at: time | None = None, yearly: bool = True) -> str | None:
    """The dedupe key if the trigger fires on the contact's local today (from local time ``at`` on), else None."""
    local = now.astimezone(_zone(tz))
    if at is not None and local.time() < at:
        return None
    today = local.date()
    if not yearly:
        return f"{attribute}:{offset_days}:once" if value + timedelta(days=offset_days) == today else None
    for year in (today.year - 1, today.year, today.year + 1):  # an offset can cross New Year
        if anniversary(value, year) + timedelta(days=offset_days) == today:
            return f"{attribute}:{offset_days}:{year}"
    return None


def date_due(session: Session, attribute: str, offset_days: int, now: datetime, *,
             at: time | None = None, yearly: bool = True) -> list[tuple[int, str]]:
    """(contact id, dedupe key) of contacts whose date attribute + offset is their local today
    (and whose local time has reached ``at``; a job running all day fires each contact once, by the key).

    Reads contacts that have the attribute in batches; the check is per contact
    because "today" depends on each contact's timezone.
    """
    out = []
    q = select(Contact.id, Contact.timezone, Contact.attributes[attribute].as_string()).where(
        Contact.erased_at.is_(None), Contact.attributes[attribute].as_string().is_not(None)
    )
    for cid, tz, raw in session.execute(q.execution_options(yield_per=10000)):
        try:
            value = date.fromisoformat(raw[:10])
        except ValueError:
            continue  # a malformed date never fires
        key = due_key(value, offset_days, now, tz, attribute, at=at, yearly=yearly)
        if key:
            out.append((cid, key))
    return out
