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
        at = event.occurred_at
        current = self.current
        if isinstance(event, Ticket.Opened):
            self.priority = event.priority
            for metric in (Metric.FIRST_REPLY, Metric.RESOLUTION):
                clock = current[metric] = Clock(metric, at)
                clock.run(at)
                self.clocks.append(clock)
            return
        if isinstance(event, Ticket.PriorityChanged):
            self.priority = event.priority
        elif isinstance(event, Ticket.Routed) and event.priority is not None:
            self.priority = event.priority  # a routing rule set it
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
        if isinstance(event, Ticket.Pended | Ticket.PutOnHold):
            self.paused = True
            for clock in current.values():
                clock.pause(at)
        elif isinstance(event, Ticket.MarkedOpen):
            self.paused = False
            for clock in current.values():
                clock.run(at)
        elif isinstance(event, Ticket.Solved):
            self.paused = True
            resolution = current.get(Metric.RESOLUTION)
            if resolution is not None:
                resolution.fulfil(at)
            for clock in current.values():
                clock.pause(at)
        elif isinstance(event, Ticket.Reopened):
            self.paused = False
            resolution = current.get(Metric.RESOLUTION)
            if resolution is not None:
                resolution.fulfilled_at, resolution.stopped = None, False
            for clock in current.values():
                clock.run(at)
        elif isinstance(event, Ticket.Closed | Ticket.MergedInto):
            for clock in current.values():
                clock.stop(at)


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
    elapsed = timedelta(0)
    breached_at: datetime | None = None
    warned_at: datetime | None = None
    warning = target.duration * warn_ratio
    for start, end in clock.segments:
        assert start is not None
        span = hours.between(start, end or now)
        # Strictly more than the target: a reply exactly at the deadline is on time.
        if breached_at is None and elapsed + span > target.duration:
            breached_at = hours.add(start, target.duration - elapsed)
        if warned_at is None and elapsed + span > warning:
            warned_at = hours.add(start, warning - elapsed)
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
