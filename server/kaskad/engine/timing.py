"""When a wait ends: durations, local time windows and date targets in the contact's timezone.

Every function takes and returns timezone-aware datetimes and returns UTC. Local
wall-clock arithmetic goes through :mod:`zoneinfo`, so daylight-saving changes
are handled the way a person reading a clock expects:

- a local time that does not exist (the hour skipped when clocks spring forward)
  resolves to the first valid instant after the gap (02:30 on the spring-forward
  day in Berlin becomes 03:00 CEST);
- a local time that happens twice (clocks fall back) resolves to its first
  occurrence.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kaskad.flow.durations import Duration, parse_duration
from kaskad.flow.model import TimeWindow
from kaskad.segments.dates import anniversary  # Feb 29 -> Feb 28 in common years, as segment triggers do

__all__ = ["zone", "after", "after_local", "next_window", "date_target", "local_instant", "parse_date"]

UTC = timezone.utc
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def zone(name: str | None, default: str = "UTC") -> ZoneInfo:
    """The contact's timezone; an unknown or missing name falls back to ``default`` (then UTC)."""
    for candidate in (name, default):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):  # ValueError: malformed keys such as "../x"
                continue
    return ZoneInfo("UTC")


def _tz(tz: str | tzinfo | None) -> tzinfo:
    return tz if isinstance(tz, tzinfo) else zone(tz)


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got naive {now.isoformat()}")
    return now


def after(now: datetime, duration: str) -> datetime:
    """``now`` plus an ISO-8601 duration, in UTC (months are calendar months of the UTC date)."""
    return parse_duration(duration).add_to(_aware(now).astimezone(UTC))


def local_instant(wall: datetime, tz: str | tzinfo | None) -> datetime:
    """The UTC instant of a naive local wall time in ``tz``.

    A wall time skipped by a spring-forward change resolves to the first valid
    instant after the gap; an ambiguous one (fall back) to its first occurrence.
    """
    tzi = _tz(tz)
    wall = wall.replace(tzinfo=None)
    first = wall.replace(tzinfo=tzi, fold=0)
    if first.astimezone(UTC).astimezone(tzi).replace(tzinfo=None) == wall:
        return first.astimezone(UTC)
    # In a gap: fold=1 maps with the offset after the change (an instant before the
    # transition), fold=0 with the offset before it (an instant after). The transition
    # is the first instant in between whose offset is the new one; search to the second.
    lo = wall.replace(tzinfo=tzi, fold=1).astimezone(UTC)
    hi = first.astimezone(UTC)
    if lo > hi:  # pragma: no cover - zoneinfo always orders them this way for gaps
        lo, hi = hi, lo
    after_offset = hi.astimezone(tzi).utcoffset()
    while hi - lo > timedelta(seconds=1):
        mid = lo + (hi - lo) / 2
        if mid.astimezone(tzi).utcoffset() == after_offset:
            hi = mid
        else:
            lo = mid
    return hi.replace(microsecond=0)  # transitions fall on whole seconds, and lie in (lo, hi]


def _split(text: str) -> tuple[Duration, timedelta]:
    """The calendar part (years to days) and the clock part (hours to seconds) of a duration.

    Split on the text, not the parsed value: ``PT24H`` is a day of elapsed time, ``P1D`` a calendar day.
    """
    parse_duration(text)  # validates the whole text, with its error message
    sign = "-" if text.startswith("-") else ""
    calendar_part, _, clock_part = text.lstrip("-")[1:].partition("T")
    calendar = parse_duration(f"{sign}P{calendar_part}") if calendar_part else Duration()
    clock = parse_duration(f"{sign}PT{clock_part}").delta if clock_part else timedelta(0)
    return calendar, clock


def after_local(now: datetime, duration: str, tz: str | tzinfo | None) -> datetime:
    """``now`` plus a duration whose calendar parts follow the contact's wall clock.

    Years, months, weeks and days are added to the local date, so ``P1D`` from
    10:00 is 10:00 the next day even across a DST change (23 or 25 hours later);
    hours, minutes and seconds are exact elapsed time.
    """
    tzi = _tz(tz)
    calendar, clock = _split(duration)
    moment = _aware(now).astimezone(UTC)
    if calendar.months or calendar.delta:
        wall = calendar.add_to(moment.astimezone(tzi).replace(tzinfo=None))
        moment = local_instant(wall, tzi)
    return moment + clock


def _parse_clock(text: str) -> time:
    try:
        hh, mm = text.split(":")
        return time(int(hh), int(mm))
    except (ValueError, AttributeError):
        raise ValueError(f"{text!r} is not a local time HH:MM") from None


def _allowed_days(window: TimeWindow) -> set[int]:
    if window.days is None:
        return set(range(7))
    days = {_WEEKDAYS.index(d) for d in window.days if d in _WEEKDAYS}
    if not days:
        raise ValueError("the time window has no days, so it never opens; list at least one day or leave days out")
    return days


def _inside(wall: datetime, start: time, end: time, days: set[int]) -> bool:
    t = wall.time()
    if start < end:
        return start <= t < end and wall.weekday() in days
    # Wraps midnight: the night belongs to the day it starts on ("fri 22:00-02:00" includes Sat 01:00).
    # from == to (rejected by validation) reads as 24 hours from `from`, never as "never".
    if t >= start:
        return wall.weekday() in days
    return t < end and (wall - timedelta(days=1)).weekday() in days


def next_window(now: datetime, tz: str | tzinfo | None, window: TimeWindow) -> datetime:
    """``now`` if the contact's local time is inside the window, else the moment it next opens.

    The window is [from, to) in local time on the listed ``days`` (all days when
    not given). When ``from`` is later than ``to`` the window spans midnight and
    ``days`` names the day it opens on. Weekdays and times are read on the
    contact's wall clock, so the window follows DST changes; a start that falls
    into a spring-forward gap opens at the end of the gap.
    """
    tzi = _tz(tz)
    moment = _aware(now).astimezone(UTC)
    start, end = _parse_clock(window.from_), _parse_clock(window.to)
    days = _allowed_days(window)
    wall = moment.astimezone(tzi).replace(tzinfo=None)
    if _inside(wall, start, end, days):
        return moment
    for k in range(0, 9):
        day = wall.date() + timedelta(days=k)
        if day.weekday() not in days:
            continue
        opens = local_instant(datetime.combine(day, start), tzi)
        if opens > moment:
            return opens
    raise AssertionError("unreachable: some allowed weekday opens within 8 days")  # pragma: no cover


def parse_date(value: object) -> date | None:
    """The date of an attribute value: ``YYYY-MM-DD`` or a full ISO datetime (its written date).

    Anything else (missing, malformed, not a string) is ``None``.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or len(value) < 10 or not value[:4].isdigit() or value[4] != "-":
        return None
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value).date()
    except ValueError:
        return None


def date_target(
    now: datetime, tz: str | tzinfo | None, value: object, offset: str, at: str, yearly: bool
) -> datetime | None:
    """When a date attribute ± offset comes round, at local time ``at``, in UTC.

    ``value`` is the attribute (``YYYY-MM-DD`` or an ISO datetime, whose written
    date is used); a missing or malformed value gives ``None``. ``offset`` is an
    ISO duration, negative for "before" (``-P3D`` = three days before), added on
    the local wall clock.

    ``yearly=True`` (birthdays, anniversaries): the next occurrence at or after
    ``now`` — this year's if it has not passed, else next year's. A Feb 29 date
    falls on Feb 28 in common years. ``yearly=False``: the one target, even if it
    is in the past (the caller then proceeds at once).
    """
    base = parse_date(value)
    if base is None:
        return None
    tzi = _tz(tz)
    moment = _aware(now).astimezone(UTC)
    shift = parse_duration(offset)
    clock = _parse_clock(at)

    def target(day: date) -> datetime:
        return local_instant(shift.add_to(datetime.combine(day, clock)), tzi)

    if not yearly:
        return target(base)
    this_year = moment.astimezone(tzi).year
    reach = abs(shift.approx()).days // 365 + 1  # offsets longer than a year still find their year
    for year in range(this_year - reach, this_year + reach + 2):
        if year < 1 or year > 9998:
            continue
        when = target(anniversary(base, year))
        if when >= moment:
            return when
    return None  # pragma: no cover - only for dates at the end of the calendar
