"""Wait timing in the contact's timezone: durations, windows and date targets across DST changes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaskad.engine.timing import after, after_local, date_target, local_instant, next_window, parse_date, zone
from kaskad.flow.model import TimeWindow

UTC = timezone.utc
BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(moment: datetime, tz: str) -> datetime:
    return moment.astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def window(start: str, end: str, days=None) -> TimeWindow:
    return TimeWindow(from_=start, to=end, days=days)


# ---------------------------------------------------------------- zone


def test_zone_falls_back_for_unknown_missing_and_malformed_names():
    assert zone("Europe/Berlin") == ZoneInfo("Europe/Berlin")
    assert zone(None) == ZoneInfo("UTC")
    assert zone("") == ZoneInfo("UTC")
    assert zone("Mars/Olympus") == ZoneInfo("UTC")
    assert zone("../../etc/passwd") == ZoneInfo("UTC")
    assert zone("Nowhere/At_All", default="Asia/Tokyo") == ZoneInfo("Asia/Tokyo")
    assert zone(None, default="Not/AZone") == ZoneInfo("UTC")


# ---------------------------------------------------------------- local_instant


def test_local_instant_in_spring_gap_is_the_end_of_the_gap():
    # Berlin skips 02:00-03:00 on 2026-03-29; the change is at 01:00 UTC
    assert local_instant(datetime(2026, 3, 29, 2, 30), BERLIN) == utc(2026, 3, 29, 1, 0)
    assert local_instant(datetime(2026, 3, 29, 2, 0), BERLIN) == utc(2026, 3, 29, 1, 0)
    # New York skips 02:00-03:00 on 2026-03-08; the change is at 07:00 UTC
    assert local_instant(datetime(2026, 3, 8, 2, 59), NEW_YORK) == utc(2026, 3, 8, 7, 0)


def test_local_instant_when_ambiguous_is_the_first_occurrence():
    # Berlin repeats 02:00-03:00 on 2026-10-25: first at +02:00, then at +01:00
    assert local_instant(datetime(2026, 10, 25, 2, 30), BERLIN) == utc(2026, 10, 25, 0, 30)
    # New York repeats 01:00-02:00 on 2026-11-01: first at -04:00
    assert local_instant(datetime(2026, 11, 1, 1, 30), NEW_YORK) == utc(2026, 11, 1, 5, 30)


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        after(datetime(2026, 1, 1), "P1D")


# ---------------------------------------------------------------- durations


def test_after_adds_utc_durations_with_calendar_months():
    assert after(utc(2026, 1, 31, 10), "P1M") == utc(2026, 2, 28, 10)
    assert after(utc(2026, 3, 28, 12), "P1D") == utc(2026, 3, 29, 12)
    assert after(utc(2026, 3, 28, 12), "PT90M") == utc(2026, 3, 28, 13, 30)
    # an aware non-UTC input comes back in UTC
    out = after(datetime(2026, 3, 28, 12, tzinfo=ZoneInfo(BERLIN)), "PT1H")
    assert out == utc(2026, 3, 28, 12) and out.tzinfo == UTC


@pytest.mark.parametrize(
    "tz, start, duration, expected",
    [
        # spring forward: the local day is 23 hours long, 10:00 stays 10:00
        (BERLIN, utc(2026, 3, 28, 9), "P1D", utc(2026, 3, 29, 8)),
        (NEW_YORK, utc(2026, 3, 7, 15), "P1D", utc(2026, 3, 8, 14)),
        # fall back: the local day is 25 hours long
        (BERLIN, utc(2026, 10, 24, 8), "P1D", utc(2026, 10, 25, 9)),
        (NEW_YORK, utc(2026, 10, 31, 14), "P1D", utc(2026, 11, 1, 15)),
        # a week and a month keep the clock time too
        (BERLIN, utc(2026, 3, 25, 9), "P1W", utc(2026, 4, 1, 8)),
        (BERLIN, utc(2026, 3, 15, 9), "P1M", utc(2026, 4, 15, 8)),
        # hours are exact elapsed time, even across the change
        (BERLIN, utc(2026, 3, 29, 0, 30), "PT2H", utc(2026, 3, 29, 2, 30)),
        (BERLIN, utc(2026, 3, 28, 9), "P1DT2H", utc(2026, 3, 29, 10)),
        (BERLIN, utc(2026, 3, 28, 9), "PT24H", utc(2026, 3, 29, 9)),  # 24 hours is not a calendar day
        (NEW_YORK, utc(2026, 10, 31, 14), "PT24H", utc(2026, 11, 1, 14)),
        (BERLIN, utc(2026, 3, 29, 8), "-P1DT1H", utc(2026, 3, 28, 8)),
        # a negative duration goes back on the wall clock
        (BERLIN, utc(2026, 3, 29, 8), "-P1D", utc(2026, 3, 28, 9)),
    ],
)
def test_after_local_keeps_the_wall_clock_for_calendar_parts(tz, start, duration, expected):
    out = after_local(start, duration, tz)
    assert out == expected and out.tzinfo == UTC


def test_after_local_landing_in_a_gap_moves_to_the_end_of_the_gap():
    # 02:30 Berlin on Mar 28 + P1D would be 02:30 on Mar 29, which does not exist
    start = local_instant(datetime(2026, 3, 28, 2, 30), BERLIN)
    assert after_local(start, "P1D", BERLIN) == utc(2026, 3, 29, 1, 0)
    assert local(after_local(start, "P1D", BERLIN), BERLIN) == datetime(2026, 3, 29, 3, 0)


def test_after_local_with_unknown_timezone_is_utc():
    assert after_local(utc(2026, 3, 28, 9), "P1D", "Bogus/Zone") == utc(2026, 3, 29, 9)
    assert after_local(utc(2026, 3, 28, 9), "P1D", None) == utc(2026, 3, 29, 9)


# ---------------------------------------------------------------- windows


def test_inside_the_window_is_now():
    now = utc(2026, 11, 25, 10)  # Wed 11:00 Berlin
    assert next_window(now, BERLIN, window("09:00", "18:00")) == now
    assert next_window(now, BERLIN, window("11:00", "18:00")) == now  # from is inclusive


def test_before_and_after_the_window():
    now = utc(2026, 11, 25, 6)  # Wed 07:00 Berlin
    assert next_window(now, BERLIN, window("09:00", "18:00")) == utc(2026, 11, 25, 8)
    late = utc(2026, 11, 25, 17)  # Wed 18:00 Berlin: to is exclusive
    assert next_window(late, BERLIN, window("09:00", "18:00")) == utc(2026, 11, 26, 8)


def test_weekdays_are_the_contacts_local_weekdays():
    fri_evening = utc(2026, 11, 27, 19)  # Fri 20:00 Berlin
    got = next_window(fri_evening, BERLIN, window("09:00", "18:00", ["mon", "tue", "wed", "thu", "fri"]))
    assert got == utc(2026, 11, 30, 8)  # Monday 09:00
    sat = utc(2026, 11, 28, 10)  # Sat 11:00
    assert next_window(sat, BERLIN, window("09:00", "18:00", ["sat"])) == sat
    assert next_window(sat, BERLIN, window("09:00", "18:00", ["fri"])) == utc(2026, 12, 4, 8)


def test_window_wrapping_midnight():
    night = window("22:00", "02:00")
    assert next_window(utc(2026, 11, 25, 23, 30), BERLIN, night) == utc(2026, 11, 25, 23, 30)  # 00:30 local
    assert next_window(utc(2026, 11, 25, 21, 30), BERLIN, night) == utc(2026, 11, 25, 21, 30)  # 22:30 local
    assert next_window(utc(2026, 11, 25, 12), BERLIN, night) == utc(2026, 11, 25, 21)  # 13:00 -> 22:00
    assert next_window(utc(2026, 11, 26, 1), BERLIN, night) == utc(2026, 11, 26, 21)  # 02:00 is outside


def test_wrapping_window_belongs_to_the_day_it_opens():
    fri_night = window("22:00", "02:00", ["fri"])
    sat_1am = utc(2026, 11, 28, 0)  # Sat 01:00 Berlin: still Friday's night
    assert next_window(sat_1am, BERLIN, fri_night) == sat_1am
    sun_1am = utc(2026, 11, 29, 0)  # Sun 01:00: Saturday's night, not allowed
    assert next_window(sun_1am, BERLIN, fri_night) == utc(2026, 12, 4, 21)


def test_contacts_at_utc_plus_14_and_minus_11_near_midnight():
    # 2026-11-25 10:30 UTC is Thu 00:30 in Kiritimati (+14) and Tue 23:30 in Pago Pago (-11)
    now = utc(2026, 11, 25, 10, 30)
    assert local(now, "Pacific/Kiritimati") == datetime(2026, 11, 26, 0, 30)
    assert local(now, "Pacific/Pago_Pago") == datetime(2026, 11, 24, 23, 30)
    thursday_morning = window("09:00", "12:00", ["thu"])
    assert next_window(now, "Pacific/Kiritimati", thursday_morning) == utc(2026, 11, 25, 19)  # Thu 09:00 +14
    assert next_window(now, "Pacific/Pago_Pago", thursday_morning) == utc(2026, 11, 26, 20)  # Thu 09:00 -11
    tuesday_late = window("23:00", "23:59", ["tue"])
    assert next_window(now, "Pacific/Pago_Pago", tuesday_late) == now
    assert next_window(now, "Pacific/Kiritimati", tuesday_late) == utc(2026, 12, 1, 9)


def test_window_across_spring_forward():
    morning = window("09:00", "10:00")
    # Sat 2026-03-28 20:00 Berlin (+01:00) -> Sun 09:00 at +02:00
    assert next_window(utc(2026, 3, 28, 19), BERLIN, morning) == utc(2026, 3, 29, 7)
    # New York: Sat 2026-03-07 20:00 EST -> Sun 09:00 EDT
    assert next_window(utc(2026, 3, 8, 1), NEW_YORK, morning) == utc(2026, 3, 8, 13)


def test_window_across_fall_back():
    morning = window("09:00", "10:00")
    assert next_window(utc(2026, 10, 24, 19), BERLIN, morning) == utc(2026, 10, 25, 8)
    assert next_window(utc(2026, 11, 1, 0), NEW_YORK, morning) == utc(2026, 11, 1, 14)


def test_window_opening_in_the_spring_gap_opens_at_the_end_of_the_gap():
    w = window("02:30", "04:00")
    # Sun 2026-03-29 00:30 Berlin: 02:30 does not exist that night; the window opens at 03:00 CEST
    got = next_window(utc(2026, 3, 28, 23, 30), BERLIN, w)
    assert got == utc(2026, 3, 29, 1, 0)
    assert local(got, BERLIN) == datetime(2026, 3, 29, 3, 0)
    # and at 03:30 CEST the contact is inside it
    assert next_window(utc(2026, 3, 29, 1, 30), BERLIN, w) == utc(2026, 3, 29, 1, 30)


def test_window_opening_at_an_ambiguous_time_opens_at_the_first_occurrence():
    w = window("02:15", "02:45")
    got = next_window(utc(2026, 10, 24, 22), BERLIN, w)  # Sun 00:00 CEST
    assert got == utc(2026, 10, 25, 0, 15)  # 02:15 CEST, the first of the two
    # during the repeated hour (02:20 CET, the second pass) the wall clock is inside again
    second = utc(2026, 10, 25, 1, 20)
    assert next_window(second, BERLIN, w) == second


def test_window_without_days_never_opens_is_an_error():
    with pytest.raises(ValueError, match="no days"):
        next_window(utc(2026, 1, 1), BERLIN, window("09:00", "10:00", []))


ZONES = ["Europe/Berlin", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago", "Australia/Lord_Howe", "UTC"]
TIMES = [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 15, 30, 59)]


@settings(max_examples=300, deadline=None)
@given(
    now=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)),
    tz=st.sampled_from(ZONES),
    start=st.sampled_from(TIMES),
    end=st.sampled_from(TIMES),
    days=st.none() | st.sets(st.sampled_from(["mon", "tue", "wed", "thu", "fri", "sat", "sun"]), min_size=1).map(sorted),
)
def test_next_window_is_not_before_now_and_is_inside_the_window(now, tz, start, end, days):
    w = window(start, end, days)
    got = next_window(now, tz, w)
    assert got >= now and got.tzinfo == UTC
    assert got - now <= timedelta(days=8)
    if got == now:
        return
    # It opened at `from` on an allowed day, or at the end of a DST gap that swallowed `from`.
    wall = local(got, tz)
    opening = datetime.combine(wall.date(), datetime.strptime(start, "%H:%M").time())
    assert local_instant(opening, tz) == got
    assert days is None or wall.strftime("%a").lower() in days
    # nothing earlier was inside: one minute before, the contact was outside (or before now)
    before = got - timedelta(minutes=1)
    assert before < now or next_window(before, tz, w) != before


# ---------------------------------------------------------------- date targets


def test_parse_date_accepts_dates_and_datetimes_only():
    assert str(parse_date("1990-06-04")) == "1990-06-04"
    assert str(parse_date("1990-06-04T23:30:00+05:00")) == "1990-06-04"  # the written date
    assert str(parse_date("1990-06-04T23:30:00Z")) == "1990-06-04"
    for bad in (None, "", "tomorrow", "1990-13-01", "1990-02-30", "04.06.1990", "19900604", 19900604, ["1990-06-04"]):
        assert parse_date(bad) is None, bad


def test_yearly_date_target_this_year_or_next():
    # birthday June 4, 10:00 Berlin (CEST, +02:00)
    assert date_target(utc(2026, 5, 1), BERLIN, "1990-06-04", "P0D", "10:00", True) == utc(2026, 6, 4, 8)
    assert date_target(utc(2026, 6, 4, 8), BERLIN, "1990-06-04", "P0D", "10:00", True) == utc(2026, 6, 4, 8)
    assert date_target(utc(2026, 6, 4, 8, 1), BERLIN, "1990-06-04", "P0D", "10:00", True) == utc(2027, 6, 4, 8)


def test_offsets_before_and_after():
    now = utc(2026, 5, 1)
    assert date_target(now, BERLIN, "1990-06-04", "-P3D", "10:00", True) == utc(2026, 6, 1, 8)
    assert date_target(now, BERLIN, "1990-06-04", "P7D", "09:30", True) == utc(2026, 6, 11, 7, 30)
    assert date_target(now, BERLIN, "1990-06-04", "-P1M", "10:00", True) == utc(2026, 5, 4, 8)
    # three days before Jan 2 is Dec 30 of the year before the anniversary
    assert date_target(utc(2026, 12, 1), "UTC", "1991-01-02", "-P3D", "10:00", True) == utc(2026, 12, 30, 10)
    # a week after Dec 28 is in the next calendar year, and is still ahead in early January
    assert date_target(utc(2027, 1, 2), "UTC", "1991-12-28", "P7D", "10:00", True) == utc(2027, 1, 4, 10)


def test_feb_29_falls_on_feb_28_in_common_years():
    assert date_target(utc(2026, 1, 1), "UTC", "2000-02-29", "P0D", "10:00", True) == utc(2026, 2, 28, 10)
    assert date_target(utc(2027, 3, 1), "UTC", "2000-02-29", "P0D", "10:00", True) == utc(2028, 2, 29, 10)
    assert date_target(utc(2027, 3, 1), "UTC", "2000-02-29", "-P1D", "10:00", True) == utc(2028, 2, 28, 10)


def test_one_off_date_target_may_be_in_the_past():
    assert date_target(utc(2026, 5, 1), BERLIN, "2026-07-01", "-P1D", "09:00", False) == utc(2026, 6, 30, 7)
    assert date_target(utc(2026, 5, 1), BERLIN, "2026-01-10", "P0D", "09:00", False) == utc(2026, 1, 10, 8)
    # a datetime attribute contributes its date only
    assert date_target(utc(2026, 5, 1), BERLIN, "2026-07-01T23:59:00+09:00", "P0D", "09:00", False) == utc(2026, 7, 1, 7)


def test_date_target_in_a_dst_gap_or_fold():
    # the 'at' time falls into Berlin's skipped hour on 2026-03-29
    assert date_target(utc(2026, 1, 1), BERLIN, "1980-03-29", "P0D", "02:30", True) == utc(2026, 3, 29, 1, 0)
    # and into New York's repeated hour on 2026-11-01: first occurrence (EDT)
    assert date_target(utc(2026, 1, 1), NEW_YORK, "1980-11-01", "P0D", "01:30", True) == utc(2026, 11, 1, 5, 30)


def test_date_target_uses_the_contacts_local_year_near_new_year():
    # 2026-12-31 11:00 UTC is already 2027-01-01 01:00 in Kiritimati (+14)
    now = utc(2026, 12, 31, 11)
    assert date_target(now, "Pacific/Kiritimati", "2000-01-01", "P0D", "10:00", True) == utc(2026, 12, 31, 20)
    # for Pago Pago (-11) it is still Dec 31; Jan 1 10:00 there is 21:00 UTC on Jan 1
    assert date_target(now, "Pacific/Pago_Pago", "2000-01-01", "P0D", "10:00", True) == utc(2027, 1, 1, 21)


@pytest.mark.parametrize("garbage", [None, "", "soon", "2026-02-30", "31/12/2026", 42, {"date": "2026-01-01"}])
def test_garbage_values_give_none(garbage):
    assert date_target(utc(2026, 5, 1), BERLIN, garbage, "P0D", "10:00", True) is None
    assert date_target(utc(2026, 5, 1), BERLIN, garbage, "P0D", "10:00", False) is None


@settings(max_examples=200, deadline=None)
@given(
    now=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)),
    tz=st.sampled_from(ZONES),
    day=st.dates(min_value=datetime(1950, 1, 1).date(), max_value=datetime(2010, 12, 31).date()),
    offset_days=st.integers(min_value=-40, max_value=40),
    at=st.sampled_from(TIMES),
)
def test_yearly_target_is_the_next_occurrence(now, tz, day, offset_days, at):
    offset = f"-P{-offset_days}D" if offset_days < 0 else f"P{offset_days}D"
    got = date_target(now, tz, day.isoformat(), offset, at, True)
    assert got is not None and got >= now and got.tzinfo == UTC
    assert got - now <= timedelta(days=367)
