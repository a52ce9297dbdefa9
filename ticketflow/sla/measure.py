"""SLA measurement: for one ticket's events, where each service-standard clock stands.

Metrics (Zendesk's conventions):

* **first reply time**: from the ticket's creation to the first public reply from the desk;
* **next reply time**: from each customer message that follows a desk reply to the desk's next
  public reply;
* **resolution time**: from creation to solved; a reopen resumes the same clock.

Every clock pauses while the ticket waits on the customer (pending) or a third party (on hold),
and stops for good when the ticket is closed. Elapsed time is counted in the calendar's business
hours or around the clock, per target. The measurement is a pure function of the events, the
targets and ``now``, so it replays exactly, as of any instant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ticketflow.domain import Ticket
from ticketflow.domain.values import Direction
from ticketflow.sla.calendar import BusinessCalendar


class Metric(StrEnum):
    FIRST_REPLY = "first_reply_time"
    NEXT_REPLY = "next_reply_time"
    RESOLUTION = "resolution_time"


class State(StrEnum):
    ACTIVE = "active"  # running, target not reached yet
    PAUSED = "paused"  # pending or on hold, target not reached yet
    FULFILLED = "fulfilled"  # met within target
    BREACHED = "breached"  # target passed (met late, or still running past it)


@dataclass(frozen=True)
class Target:
    duration: timedelta
    business_hours: bool = True


Targets = Mapping[Metric, Target]


@dataclass
class Clock:
    """One run of one metric: its running intervals, and how it ended."""

    metric: Metric
    started_at: datetime
    segments: list[list[datetime | None]] = field(default_factory=list)  # [start, end or None while running]
    fulfilled_at: datetime | None = None
    stopped: bool = False
    #: What :func:`_measure` worked out of its ended runs last time (see :func:`_ended_runs`).
    _ended: list[Any] | None = field(default=None, init=False, repr=False, compare=False)

    def run(self, at: datetime) -> None:
        if not self.stopped and (not self.segments or self.segments[-1][1] is not None):
            self.segments.append([at, None])

    def pause(self, at: datetime) -> None:
        if self.segments and self.segments[-1][1] is None:
            self.segments[-1][1] = at

    def fulfil(self, at: datetime) -> None:
        self.pause(at)
        self.fulfilled_at = at
        self.stopped = True

    def stop(self, at: datetime) -> None:
        self.pause(at)
        self.stopped = True

    @property
    def running(self) -> bool:
        return bool(self.segments) and self.segments[-1][1] is None


@dataclass(frozen=True)
class Measurement:
    metric: Metric
    state: State
    target: timedelta
    business_hours: bool
    started_at: datetime
    elapsed: timedelta
    due_at: datetime | None  # when the target is reached if the clock keeps running (None once ended)
    breached_at: datetime | None
    fulfilled_at: datetime | None
    warned_at: datetime | None = None  # when elapsed time passed the warning share of the target
    warn_due_at: datetime | None = None  # when it will, if the clock keeps running (None once passed or ended)


def _is_customer_message(event: Ticket.Event) -> bool:
    return isinstance(event, Ticket.Interaction) and event.direction == Direction.INBOUND


def _is_desk_reply(event: Ticket.Event) -> bool:
    return isinstance(event, Ticket.Replied) and event.direction == Direction.OUTBOUND


class ClockRun:
    """A ticket's metric clocks, fed one event at a time (a running clock, not a re-read of the ticket).

    :func:`clocks_of` feeds it a ticket's whole history; the what-if replay keeps one per ticket
    and feeds it each event as it happens."""

    def __init__(self) -> None:
        self.clocks: list[Clock] = []
        self.current: dict[Metric, Clock] = {}
        self.priority = "normal"
        self.replied = False
        self.paused = False

    def copy(self) -> ClockRun:
        """An independent copy (what ``copy.deepcopy`` gives, at a fraction of its cost: the automation
        copies a ticket's run at every look that feeds it events not saved yet). Instants, metrics and
        the priority are immutable and shared; the clocks and their segments are copied, and ``current``
        names the copies of the clocks it named."""
        copies = {
            id(c): Clock(c.metric, c.started_at, [list(s) for s in c.segments], c.fulfilled_at, c.stopped)
            for c in self.clocks
        }
        other = ClockRun()
        other.clocks = [copies[id(c)] for c in self.clocks]
        other.current = {
            metric: copies.get(id(c)) or Clock(c.metric, c.started_at, [list(s) for s in c.segments], c.fulfilled_at, c.stopped)
            for metric, c in self.current.items()
        }
        other.priority, other.replied, other.paused = self.priority, self.replied, self.paused
        return other

    def state(self) -> tuple[object, ...]:
        """What its measurement depends on besides the instant: equal states measure alike at any instant."""
        return (
            self.priority,
            tuple(
                (
                    c.metric,
                    c.started_at,
                    len(c.segments),
                    c.segments[-1][0] if c.segments else None,
                    c.segments[-1][1] if c.segments else None,
                    c.fulfilled_at,
                    c.stopped,
                )
                for c in self.clocks
            ),
        )

    def feed(self, event: Ticket.Event) -> None:
        kind = _KINDS.get(type(event))
        if kind is None:
            kind = _KINDS[type(event)] = _kind_of(type(event))
        if kind is _INERT:
            return  # an event that runs, pauses or ends no clock and sets no priority (assigned, transferred...)
        at = event.occurred_at
        current = self.current
        if kind is _OPENED:
            self.priority = event.priority  # type: ignore[attr-defined]
            for metric in (Metric.FIRST_REPLY, Metric.RESOLUTION):
                clock = current[metric] = Clock(metric, at)
                clock.run(at)
                self.clocks.append(clock)
            return
        if kind is _PRIORITY:
            self.priority = event.priority  # type: ignore[attr-defined]
            return
        if kind is _ROUTED:
            if event.priority is not None:  # type: ignore[attr-defined]
                self.priority = event.priority  # type: ignore[attr-defined]  # a routing rule set it
            return
        if kind is _MESSAGE:
            if _is_desk_reply(event):
                self.replied = True
                for metric in (Metric.FIRST_REPLY, Metric.NEXT_REPLY):
                    replying = current.get(metric)
                    if replying is not None and not replying.stopped:
                        replying.fulfil(at)
            elif _is_customer_message(event) and self.replied:
                waiting = current.get(Metric.NEXT_REPLY)
                if waiting is None or waiting.stopped:
                    waiting = current[Metric.NEXT_REPLY] = Clock(Metric.NEXT_REPLY, at)
                    self.clocks.append(waiting)
                    if not self.paused:
                        waiting.run(at)
            return
        if kind is _PAUSING:
            self.paused = True
            for clock in current.values():
                clock.pause(at)
        elif kind is _RUNNING:
            self.paused = False
            for clock in current.values():
                clock.run(at)
        elif kind is _SOLVING:
            self.paused = True
            resolution = current.get(Metric.RESOLUTION)
            if resolution is not None:
                resolution.fulfil(at)
            for clock in current.values():
                clock.pause(at)
        elif kind is _REOPENING:
            self.paused = False
            resolution = current.get(Metric.RESOLUTION)
            if resolution is not None:
                resolution.fulfilled_at, resolution.stopped = None, False
            for clock in current.values():
                clock.run(at)
        elif kind is _ENDING:
            for clock in current.values():
                clock.stop(at)


# What :meth:`ClockRun.feed` does with an event, by its class (worked out once per class, by ``isinstance``).
_INERT, _OPENED, _PRIORITY, _ROUTED, _MESSAGE = "inert", "opened", "priority", "routed", "message"
_PAUSING, _RUNNING, _SOLVING, _REOPENING, _ENDING = "pausing", "running", "solving", "reopening", "ending"
_KINDS: dict[type, str] = {}


def _kind_of(cls: type) -> str:
    """The one thing an event class does to the clocks (each ticket event class is at most one of these)."""
    kinds = [
        kind
        for kind, classes in (
            (_OPENED, Ticket.Opened),
            (_PRIORITY, Ticket.PriorityChanged),
            (_ROUTED, Ticket.Routed),
            (_MESSAGE, Ticket.Interaction),
            (_PAUSING, Ticket.Pended | Ticket.PutOnHold),
            (_RUNNING, Ticket.MarkedOpen),
            (_SOLVING, Ticket.Solved),
            (_REOPENING, Ticket.Reopened),
            (_ENDING, Ticket.Closed | Ticket.MergedInto),
        )
        if issubclass(cls, classes)
    ]
    if len(kinds) > 1:
        raise TypeError(f"{cls.__qualname__} would both {kinds}: the clocks cannot tell")
    return kinds[0] if kinds else _INERT


def clocks_of(events: Iterable[Ticket.Event], until: datetime) -> tuple[list[Clock], str]:
    """Replay a ticket's events (up to ``until``) into metric clocks; also the ticket's priority."""
    run = ClockRun()
    for event in events:
        if event.occurred_at > until:
            break
        run.feed(event)
    return run.clocks, run.priority


def measure(
    events: Iterable[Ticket.Event],
    targets_for: Callable[[str], Targets],
    calendar: BusinessCalendar,
    now: datetime,
    warn_ratio: float = 0.8,
) -> list[Measurement]:
    """Every metric clock of a ticket as of ``now`` (its events after ``now`` are ignored)."""
    clocks, priority = clocks_of(events, now)
    return measure_clocks(clocks, targets_for(priority), calendar, now, warn_ratio)


def _ended_runs(
    clock: Clock, target: Target, hours: BusinessCalendar, warning: timedelta, ended: int
) -> list[Any]:
    """The clock's first ``ended`` runs (segments with an end) measured against a target: [hours, target,
    warning, ended, elapsed, breached_at, warned_at, then where the running segment after them passes
    the target and the warning share, once known]. Ended runs never change (a clock only adds runs and
    ends its latest), so this is kept on the clock and worked out again only when one more run has ended,
    or for other targets or hours: a running clock looked at again and again measures each ended run once."""
    kept = clock._ended
    if (
        kept is not None
        and kept[0] is hours
        and kept[3] == ended
        and kept[1] == target
        and kept[2] == warning
    ):
        return kept
    elapsed = timedelta(0)
    breached_at: datetime | None = None
    warned_at: datetime | None = None
    for start, end in clock.segments[:ended]:
        assert start is not None and end is not None
        span = hours.between(start, end)
        # Strictly more than the target: a reply exactly at the deadline is on time.
        if breached_at is None and elapsed + span > target.duration:
            breached_at = hours.add(start, target.duration - elapsed)
        if warned_at is None and elapsed + span > warning:
            warned_at = hours.add(start, warning - elapsed)
        elapsed += span
    kept = clock._ended = [hours, target, warning, ended, elapsed, breached_at, warned_at, None, None]
    return kept


def measure_clocks(
    clocks: Iterable[Clock], targets: Targets, calendar: BusinessCalendar, now: datetime, warn_ratio: float = 0.8
) -> list[Measurement]:
    """Measure clocks already run (:class:`ClockRun`) against their targets as of ``now``."""
    result = []
    for clock in clocks:
        target = targets.get(clock.metric)
        if target is None:
            continue
        hours = calendar if target.business_hours else BusinessCalendar.always_open()
        result.append(_measure(clock, target, hours, now, warn_ratio))
    return result


def _measure(clock: Clock, target: Target, hours: BusinessCalendar, now: datetime, warn_ratio: float) -> Measurement:
    warning = target.duration * warn_ratio
    segments = clock.segments
    running = bool(segments) and segments[-1][1] is None
    ended = _ended_runs(clock, target, hours, warning, len(segments) - running)
    elapsed, breached_at, warned_at = ended[4], ended[5], ended[6]
    if running:
        start = segments[-1][0]
        assert start is not None
        span = hours.between(start, now)
        # Strictly more than the target: a reply exactly at the deadline is on time.
        if breached_at is None and elapsed + span > target.duration:
            if ended[7] is None:  # the moment it passes the target in this run: the same at every look
                ended[7] = hours.add(start, target.duration - elapsed)
            breached_at = ended[7]
        if warned_at is None and elapsed + span > warning:
            if ended[8] is None:
                ended[8] = hours.add(start, warning - elapsed)
            warned_at = ended[8]
        elapsed += span
    if breached_at is not None:
        state = State.BREACHED
    elif clock.fulfilled_at is not None:
        state = State.FULFILLED
    elif clock.running:
        state = State.ACTIVE
    else:
        state = State.PAUSED
    due_at = warn_due_at = None
    if state is State.ACTIVE:
        due_at = hours.add(now, target.duration - elapsed)
        if warned_at is None:
            warn_due_at = hours.add(now, warning - elapsed)
    return Measurement(
        metric=clock.metric, state=state, target=target.duration, business_hours=target.business_hours,
        started_at=clock.started_at, elapsed=elapsed, due_at=due_at, breached_at=breached_at,
        fulfilled_at=clock.fulfilled_at, warned_at=warned_at, warn_due_at=warn_due_at,
    )
