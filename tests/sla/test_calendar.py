"""Business-hours arithmetic across weekends, holidays, make-up days and timezones."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ticketflow.errors import ValidationFailed
from ticketflow.sla.calendar import BusinessCalendar, weekly_hours

SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")

# 2026 National Day: Oct 1-7 off; Sun Sep 27 and Sat Oct 10 worked (调休) on Monday's hours.
CHINA = BusinessCalendar(
    "Asia/Shanghai",
    weekly_hours("mon-fri", "09:00", "18:00"),
    holidays=frozenset(date(2026, 10, d) for d in range(1, 8)),
    workdays={date(2026, 9, 27): 0, date(2026, 10, 10): 0},
)


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SHANGHAI)  # type: ignore[misc]


def test_time_inside_one_working_day() -> None:
    assert CHINA.add(sh(2026, 9, 22, 10, 0), timedelta(hours=3)) == sh(2026, 9, 22, 13, 0)


def test_time_rolls_over_nights_and_weekends() -> None:
    # Friday 17:00 + 2 h -> Monday 10:00 (Sat/Sun closed)
    assert CHINA.add(sh(2026, 9, 18, 17, 0), timedelta(hours=2)) == sh(2026, 9, 21, 10, 0)
    # a ticket opened on Saturday starts counting on Monday at 09:00
    assert CHINA.add(sh(2026, 9, 19, 11, 0), timedelta(minutes=30)) == sh(2026, 9, 21, 9, 30)


def test_holidays_are_closed_and_make_up_days_are_open() -> None:
    # Wed Sep 30 17:00 + 24 business hours: 1 h on Sep 30, Oct 1-7 closed, 9 h each on Oct 8 and 9,
    # and the last 5 h on Saturday Oct 10, a make-up working day.
    assert CHINA.add(sh(2026, 9, 30, 17, 0), timedelta(hours=24)) == sh(2026, 10, 10, 14, 0)
    assert CHINA.is_open(sh(2026, 9, 27, 10, 0))  # a Sunday worked
    assert not CHINA.is_open(sh(2026, 10, 5, 10, 0))  # a Monday off


def test_between_counts_only_open_hours() -> None:
    assert CHINA.between(sh(2026, 9, 18, 17, 0), sh(2026, 9, 21, 10, 0)) == timedelta(hours=2)
    assert CHINA.between(sh(2026, 9, 21, 10, 0), sh(2026, 9, 18, 17, 0)) == timedelta(0)


def test_timezones_are_respected() -> None:
    london = BusinessCalendar("Europe/London", weekly_hours("mon-fri", "09:00", "17:00"))
    start = datetime(2026, 9, 21, 7, 0, tzinfo=UTC)  # 08:00 in London (BST)
    assert london.add(start, timedelta(hours=1)) == datetime(2026, 9, 21, 9, 0, tzinfo=UTC)
    assert london.add(start, timedelta(hours=1)).astimezone(LONDON).hour == 10


def test_daylight_saving_change_keeps_wall_clock_hours() -> None:
    london = BusinessCalendar("Europe/London", weekly_hours("mon-sun", "09:00", "17:00"))
    # Clocks go back on Sun 25 Oct 2026: opening at 09:00 local is 09:00 UTC that day, 08:00 UTC before.
    before = london.add(datetime(2026, 10, 24, 16, 0, tzinfo=LONDON), timedelta(hours=2))
    assert before == datetime(2026, 10, 25, 10, 0, tzinfo=LONDON)
    assert before.astimezone(UTC).hour == 10


def test_always_open_is_calendar_time() -> None:
    start = datetime(2026, 1, 1, 23, 30, tzinfo=UTC)
    assert BusinessCalendar.always_open().add(start, timedelta(hours=25)) == start + timedelta(hours=25)


def test_bad_calendars_are_refused() -> None:
    with pytest.raises(ValidationFailed, match="unknown timezone"):
        BusinessCalendar("Mars/Olympus", weekly_hours("mon-fri", "09:00", "17:00"))
    with pytest.raises(ValidationFailed, match="ends before"):
        BusinessCalendar("UTC", {0: ((time(18), time(9)),)})
    with pytest.raises(ValidationFailed, match="needs some opening hours"):
        BusinessCalendar("UTC", {})
    with pytest.raises(ValidationFailed, match="overlap"):
        BusinessCalendar("UTC", {0: ((time(9), time(12)), (time(11), time(13)))})


moments = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC))
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=200))


@given(start=moments, duration=durations)
def test_add_and_between_agree(start: datetime, duration: timedelta) -> None:
    end = CHINA.add(start, duration)
    assert CHINA.between(start, end) == duration
    assert end >= start


# Around a daylight-saving change, with a night shift across local midnight and a split day.
LONDON_SHIFTS = BusinessCalendar(
    "Europe/London",
    {0: ((time(0, 30), time(2, 30)), (time(22), time.max)), 2: ((time(9), time(12)), (time(13), time(18)))},
    holidays=frozenset({date(2026, 3, 30)}),
    workdays={date(2026, 3, 29): 2},
)
# Open around the clock in a zone with daylight-saving changes: answered as elapsed time, without walking days.
LONDON_ALWAYS = BusinessCalendar("Europe/London", {d: ((time(0), time.max),) for d in range(7)})


def test_a_calendar_open_around_the_clock_counts_elapsed_time_across_a_daylight_saving_change() -> None:
    start = datetime(2026, 3, 28, 12, 0, tzinfo=LONDON)  # the clocks go forward on the 29th, 01:00 UTC
    assert LONDON_ALWAYS.add(start, timedelta(hours=48)) == start + timedelta(hours=48)
    assert LONDON_ALWAYS.between(start, start + timedelta(days=3)) == timedelta(days=3)
    assert LONDON_ALWAYS.between(start, start - timedelta(hours=1)) == timedelta(0)


@given(start=moments, span=st.timedeltas(min_value=timedelta(hours=-2), max_value=timedelta(days=120)))
def test_between_is_the_open_time_of_the_intervals_in_between(start: datetime, span: timedelta) -> None:
    # between() answers from a running sum of open time per day: it must equal the intervals' sum.
    for calendar in (CHINA, LONDON_SHIFTS, LONDON_ALWAYS):
        walked = sum((b - a for a, b in calendar.open_intervals(start, start + span)), timedelta(0))
        assert calendar.between(start, start + span) == (walked if span > timedelta(0) else timedelta(0))


@given(start=moments, duration=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)))
def test_add_lands_where_walking_the_open_intervals_does(start: datetime, duration: timedelta) -> None:
    # add() steps over whole days by their open time: it must land where the walk does.
    for calendar in (CHINA, LONDON_SHIFTS, LONDON_ALWAYS):
        remaining = duration
        for a, b in calendar.open_intervals(start):
            if remaining <= b - a:
                assert calendar.add(start, duration) == a + remaining
                break
            remaining -= b - a
