"""ISO-8601 durations (``P3D``, ``PT2H30M``, ``-P1M``) with calendar-aware months."""

from __future__ import annotations

import calendar
import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

_RE = re.compile(
    r"^(?P<sign>-)?P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
#: The JSON Schema pattern published for duration fields.
PATTERN = _RE.pattern


@dataclass(frozen=True)
class Duration:
    months: int = 0
    delta: timedelta = timedelta(0)

    def add_to(self, moment: datetime) -> datetime:
        """``moment`` plus this duration; months clamp to the month's last day."""
        if self.months:
            total = moment.year * 12 + (moment.month - 1) + self.months
            year, month = divmod(total, 12)
            day = min(moment.day, calendar.monthrange(year, month + 1)[1])
            moment = moment.replace(year=year, month=month + 1, day=day)
        return moment + self.delta

    def approx(self) -> timedelta:
        """A timedelta approximation (30-day months) for ordering and caps."""
        return self.delta + timedelta(days=30 * self.months)


class DurationError(ValueError):
    pass


@functools.lru_cache(maxsize=1024)  # flows and programs reuse a handful of texts; a Duration is frozen
def parse_duration(text: str) -> Duration:
    m = _RE.match(text or "")
    if not m:
        raise DurationError(f"{text!r} is not an ISO-8601 duration such as P3D, PT2H or P1M")
    g = {k: int(v) if v and k != "sign" else v for k, v in m.groupdict().items()}
    sign = -1 if g["sign"] else 1
    months = (g["years"] or 0) * 12 + (g["months"] or 0)
    delta = timedelta(
        weeks=g["weeks"] or 0,
        days=g["days"] or 0,
        hours=g["hours"] or 0,
        minutes=g["minutes"] or 0,
        seconds=g["seconds"] or 0,
    )
    return Duration(months=sign * months, delta=sign * delta)
