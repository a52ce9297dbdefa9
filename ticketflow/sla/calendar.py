"""Business-hours calendars: when the desk's clock runs.

A calendar has a timezone, weekly opening hours, holidays (days closed), and
make-up working days (调休: a weekend day worked to compensate a public holiday,
on the weekly hours of a given weekday). All arithmetic is done on the
calendar's local wall-clock intervals converted to UTC, so daylight-saving
changes and offsets are handled by ``zoneinfo``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ticketflow.errors import ValidationFailed

#: Search at most this far ahead for open hours (a calendar with none would loop forever).
HORIZON_DAYS = 3 * 366

Interval = tuple[time, time]
#: Within this, :meth:`BusinessCalendar.add` on a calendar open around the clock finds its answer.
_ALWAYS_SPAN = timedelta(days=HORIZON_DAYS - 2)


@dataclass(frozen=True)
class BusinessCalendar:
    timezone: str
    weekly: Mapping[int, tuple[Interval, ...]]  # Monday=0 .. Sunday=6 -> open intervals
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: Mapping[date, int] = field(default_factory=dict)  # make-up day -> weekday whose hours apply
    #: Each local day's open intervals in UTC, worked out once (zone conversion is the costly part).
    _days: dict[date, tuple[tuple[datetime, datetime], ...]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    #: Open time from the first day asked about to the start of each local day (filled outward on demand).
    _prefix: dict[date, timedelta] = field(default_factory=dict, init=False, repr=False, compare=False)
    _open: dict[date, timedelta] = field(default_factory=dict, init=False, repr=False, compare=False)  # per day
    #: Each local day's (open intervals in UTC, open time), for :meth:`add`'s walk: one look-up a day.
    _spans: dict[date, tuple[tuple[tuple[datetime, datetime], ...], timedelta]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    #: (the ordinal of a day, open time of that day and the days before each later one), for :meth:`add`.
    _cumulative: tuple[int, list[timedelta]] = field(
        default_factory=lambda: (0, []), init=False, repr=False, compare=False
    )
    #: Open every minute of every day (each weekday 00:00-24:00, no holidays): business time is elapsed time.
    _always: bool = field(default=False, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory ("Asia"), a name too long
            raise ValidationFailed(f"unknown timezone {self.timezone!r}") from None
        for weekday, intervals in self.weekly.items():
            if not 0 <= weekday <= 6:
                raise ValidationFailed(f"weekday {weekday} is not 0 (Monday) to 6 (Sunday)")
            for start, end in intervals:
                if start >= end:
                    raise ValidationFailed(f"opening interval {start}-{end} ends before it starts")
            ordered = sorted(intervals)
            if any(a[1] > b[0] for a, b in pairwise(ordered)):
                raise ValidationFailed(f"opening intervals of weekday {weekday} overlap")
        if not any(self.weekly.values()) and not self.workdays:
            raise ValidationFailed("a business calendar needs some opening hours")
        whole_day = ((time(0), time.max),)
        always = not self.holidays and all(tuple(self.weekly.get(d, ())) == whole_day for d in range(7))
        object.__setattr__(self, "_always", always)

    @classmethod
    def always_open(cls) -> BusinessCalendar:
        """Calendar hours: every minute counts (24 x 7). One shared instance (it caches its days)."""
        return _always_open()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def _intervals_on(self, day: date) -> tuple[Interval, ...]:
        if day in self.holidays:
            return ()
        weekday = self.workdays.get(day, day.weekday())
        return tuple(sorted(self.weekly.get(weekday, ())))

    def _utc_intervals(self, day: date, zone: ZoneInfo) -> tuple[tuple[datetime, datetime], ...]:
        found = self._days.get(day)
        if found is None:
            found = self._days[day] = tuple(
                (
                    datetime.combine(day, open_, zone).astimezone(UTC),
                    (
                        datetime.combine(day + timedelta(days=1), time(0), zone)
                        if close == time.max
                        else datetime.combine(day, close, zone)
                    ).astimezone(UTC),
                )
                for open_, close in self._intervals_on(day)
            )
        return found

    def open_intervals(self, start: datetime, end: datetime | None = None) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals (UTC) from ``start`` on, clipped to ``[start, end)``."""
        if start.tzinfo is None:
            raise ValueError("times must be timezone-aware")
        zone = self.zone
        day = start.astimezone(zone).date() - timedelta(days=1)  # the previous day may run past midnight UTC
        last = day + timedelta(days=HORIZON_DAYS)
        while day <= last:
            for a, b in self._utc_intervals(day, zone):
                if end is not None and a >= end:
                    return
                a, b = max(a, start), b if end is None else min(b, end)
                if a < b:
                    yield a, b
            day += timedelta(days=1)
        if end is None:
            raise ValidationFailed(f"the calendar has no open hours within {HORIZON_DAYS} days of {start.isoformat()}")

    def add(self, start: datetime, duration: timedelta) -> datetime:
        """The moment ``duration`` of business time after ``start``.

        Whole days that cannot hold the rest are stepped over by their open time; within a day
        it is the open intervals from ``start`` on, as :meth:`open_intervals` gives them."""
        if duration < timedelta(0):
            raise ValueError("duration must not be negative")
        if start.tzinfo is None:
            raise ValueError("times must be timezone-aware")
        if self._always and duration < _ALWAYS_SPAN:
            return start + duration  # one open interval from the day before start on: start + duration
        zone = self.zone
        one = timedelta(days=1)
        day = start.astimezone(zone).date() - one  # as open_intervals: from the previous day
        last = day + timedelta(days=HORIZON_DAYS)
        remaining = duration
        spans = self._spans
        # From this day on, every day's hours are after start (a local day two days later than start's).
        after = day + 3 * one
        while day <= last:
            if day == after:
                # Whole days too short for what remains: stepped over by their open time.
                day, remaining = self._skip_days(day, remaining, zone)
                if day > last:
                    break
            found = spans.get(day)
            if found is None:
                found = spans[day] = (self._utc_intervals(day, zone), self._day_open(day, zone))
            intervals, open_time = found
            if intervals and intervals[0][0] >= start and open_time < remaining:
                remaining -= open_time  # the whole day is after start, and too short
            else:
                for a, b in intervals:
                    a = max(a, start)
                    if a < b:
                        if remaining <= b - a:
                            return a + remaining
                        remaining -= b - a
            day += one
        raise ValidationFailed(f"the calendar has no open hours within {HORIZON_DAYS} days of {start.isoformat()}")

    def _skip_days(self, day: date, remaining: timedelta, zone: ZoneInfo) -> tuple[date, timedelta]:
        """The first day from ``day`` on whose open time holds what remains of ``remaining`` after the days
        before it, and that rest: the days :meth:`add` would step over one by one (each wholly after its start,
        and too short), found by bisecting a running sum of open time by day (:attr:`_cumulative`: a list
        never changed once set, so a thread reading it meanwhile reads a whole one; a longer one replaces it)."""
        ordinal = day.toordinal()
        base, cumulative = self._cumulative
        first = ordinal - base
        if not cumulative or first < 0:
            base, cumulative, first = ordinal - 31, [timedelta(0)], 31  # (again) from a month before
        grown: list[timedelta] | None = None
        while first >= len(cumulative) or cumulative[-1] < cumulative[first] + remaining:
            if len(cumulative) - 1 - first > HORIZON_DAYS:  # not within the horizon: add refuses
                return date.fromordinal(ordinal + HORIZON_DAYS + 1), remaining
            if grown is None:
                grown = cumulative = list(cumulative)
            for _ in range(64):  # a few weeks at a time
                day_open = self._day_open(date.fromordinal(base + len(cumulative) - 1), zone)
                cumulative.append(cumulative[-1] + day_open)
        if grown is not None or base != self._cumulative[0]:
            object.__setattr__(self, "_cumulative", (base, cumulative))
        # cumulative[j]: open time of the days before base + j; the first j past ``first`` that reaches the
        # goal is the end of day j - 1: the day where what remains runs out.
        found = bisect_left(cumulative, cumulative[first] + remaining, first + 1) - 1
        return date.fromordinal(base + found), remaining - (cumulative[found] - cumulative[first])

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time elapsed from ``start`` to ``end`` (zero if ``end`` is not after ``start``)."""
        if end <= start:
            return timedelta(0)
        if self._always:
            if start.tzinfo is None:
                raise ValueError("times must be timezone-aware")
            return end - start
        if end - start > timedelta(days=HORIZON_DAYS - 2):  # past the horizon open_intervals looks at
            return sum((b - a for a, b in self.open_intervals(start, end)), timedelta(0))
        if start.tzinfo is None:
            raise ValueError("times must be timezone-aware")
        zone = self.zone
        return self._open_before(end, zone) - self._open_before(start, zone)

    def _open_before(self, moment: datetime, zone: ZoneInfo) -> timedelta:
        """Open time from the start of the first day asked about up to ``moment``.

        A local day's open intervals lie within that day, so this is the day's prefix plus the
        part of that day's intervals before ``moment``; differences of it are sums of intervals."""
        day = moment.astimezone(zone).date()
        total = self._day_prefix(day, zone)
        for a, b in self._utc_intervals(day, zone):
            if a >= moment:
                break
            if b > a:
                total += min(b, moment) - a
        return total

    def _day_open(self, day: date, zone: ZoneInfo) -> timedelta:
        found = self._open.get(day)
        if found is None:
            found = self._open[day] = sum((b - a for a, b in self._utc_intervals(day, zone) if b > a), timedelta(0))
        return found

    def _day_prefix(self, day: date, zone: ZoneInfo) -> timedelta:
        prefix = self._prefix
        found = prefix.get(day)
        if found is not None:
            return found
        if not prefix:
            prefix[day] = timedelta(0)
            return prefix[day]
        one = timedelta(days=1)
        if day > max(prefix):
            known = max(prefix)
            while known < day:
                prefix[known + one] = prefix[known] + self._day_open(known, zone)
                known += one
        else:
            known = min(prefix)
            while known > day:
                prefix[known - one] = prefix[known] - self._day_open(known - one, zone)
                known -= one
        return prefix[day]

    def is_open(self, moment: datetime) -> bool:
        return self.between(moment, moment + timedelta(microseconds=1)) > timedelta(0)


@cache
def _always_open() -> BusinessCalendar:
    return BusinessCalendar("UTC", {d: ((time(0), time.max),) for d in range(7)})


def weekly_hours(days: str, open_: str, close: str) -> dict[int, tuple[Interval, ...]]:
    """``weekly_hours("mon-fri", "09:00", "18:00")`` -> the weekly mapping."""
    names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    first, _, last = days.lower().partition("-")
    try:
        a, b = names.index(first), names.index(last or first)
        interval = (time.fromisoformat(open_), time.fromisoformat(close))
    except ValueError:
        raise ValidationFailed(f"cannot read opening hours {days} {open_}-{close}") from None
    return {d: (interval,) for d in range(a, b + 1)}
