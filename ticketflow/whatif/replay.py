"""The what-if replay: a period's recorded history, decided again in memory under other policies.

**Semantics.** Customer and staff actions stay as recorded, at their recorded business
time (replies are not moved). What policies decide is decided again, by the desk's own
decision code (:func:`ticketflow.automation.route_by_policy`,
:func:`ticketflow.automation.first_matching_sla_policy`, :func:`ticketflow.sla.measure.measure`,
:func:`ticketflow.sla.decide.marks_due`, :func:`ticketflow.automation.escalate_breach`), on
in-memory tickets: routing (team, agent, the rule that matched, the priority and tags it
sets), the SLA policy that applies, its clocks, pauses, warnings, breaches and escalations.
The automation is replayed as it runs on a live desk: it looks at a ticket right after
each change, and again when a warning or breach falls due.

Two scenarios are replayed side by side in one pass: *recorded* (the policies in force
at each point of the log: policies are versioned events) and *candidate* (the same, with
what the candidate file defines put in their place). For live history the recorded
scenario reproduces the automation's recorded decisions exactly (the identity property,
``tests/whatif``); any ticket where it does not is reported (``fidelity``). Imported
history was never worked by the live automation (and predates the desk's policies): its
recorded scenario is measured under the policies the desk has at the end of the log.

The log is read once, page by page. The period's recorded steps and the other tickets' load
moves (agents' open-ticket loads feed least-loaded routing) are spilled as they are read to a
private temporary SQLite database (:class:`Timeline`; personal fields stay sealed there as in the
store), and given back in business-time order one at a time: what is held in memory is, per
ticket of the period, what the comparison needs, and the tickets still open in the replay.
The live log is never written.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import heapq
import mmap
import multiprocessing
import os
import pickle
import selectors
import signal
import struct
import sys
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from ticketflow import metadata
from ticketflow.application import TicketDesk
from ticketflow.automation import (
    calendar_from_spec,
    escalate_breach,
    first_matching_sla_policy,
    placement_team,
    route_by_policy,
    sla_terms_of,
)
from ticketflow.domain import (
    Customer,
    Reminder,
    RoutingPolicy,
    ServiceCalendar,
    SlaPolicy,
    Team,
    Ticket,
    TicketflowAggregate,
)
from ticketflow.domain.values import Direction, Status
from ticketflow.errors import TicketflowError
from ticketflow.sla.calendar import BusinessCalendar
from ticketflow.sla.decide import SlaMark, marks_due, targets_of
from ticketflow.sla.measure import ClockRun, Measurement, Metric, Target, measure_clocks
from ticketflow.whatif.candidate import Candidate
from ticketflow.whatif.reading import LogReader

PAGE = 1000
AUTOMATION = "automation"
#: Events the automation writes: its decisions, replayed rather than copied.
DECISIONS = (
    Ticket.Routed,
    Ticket.SlaApplied,
    Ticket.SlaWarned,
    Ticket.SlaBreached,
    Ticket.SlaFulfilled,
    Ticket.PriorityChanged,
    Ticket.Transferred,
    Ticket.MarkedOpen,
)
#: Events after which the automation does not look at the ticket again (see projections.workflow).
QUIET = (
    Ticket.SlaApplied,
    Ticket.SlaWarned,
    Ticket.SlaBreached,
    Ticket.SlaFulfilled,
    Ticket.SurveyIssued,
    Ticket.ResolutionRecorded,
)
OPEN_STATUSES = frozenset({Status.NEW, Status.OPEN, Status.PENDING, Status.ON_HOLD})
MAX_LOOKS = 20  # looks at one ticket in one pass (each look that changes it brings another)
_CHECK_SKIPS = False  # True: run each skipped look and check that it decides nothing (tests)


#: The garbage collector's first threshold during a what-if (see :func:`fewer_collections`).
BULK_GC_THRESHOLD = 20_000


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect garbage less often while a what-if reads the log and replays it: it keeps hundreds of
    thousands of decoded events, steps and tickets alive, which the collector would traverse (and
    promote, then traverse again in full collections) every 700 allocations, for almost nothing
    (a BPIC what-if leaves a few dozen cyclic objects): a fifth of its CPU. Garbage cycles wait a little
    longer (a collection every 20,000 allocations). Restored after (unless changed meanwhile); a
    forked replay inherits it."""
    first, *rest = gc.get_threshold()
    raised = max(first, BULK_GC_THRESHOLD)
    gc.set_threshold(raised, *rest)
    try:
        yield
    finally:
        if gc.get_threshold()[0] == raised:
            gc.set_threshold(first, *rest)


def is_decision(event: TicketflowAggregate.Event) -> bool:
    """True for an event the live automation wrote as a decision (replayed, never copied)."""
    return event.actor_id == AUTOMATION and isinstance(event, DECISIONS)


# ------------------------------------------------------------------ policies in force
@dataclass(frozen=True)
class Policies:
    """What was in force at one point of the log."""

    routing: RoutingPolicy | None
    sla: dict[UUID, SlaPolicy]
    calendars: dict[UUID, ServiceCalendar]
    teams: dict[UUID, Team]

    def overlaid(self, candidate: Candidate) -> Policies:
        return Policies(
            routing=candidate.routing or self.routing,
            sla={**self.sla, **candidate.sla_policies},
            calendars={**self.calendars, **candidate.calendars},
            teams=candidate.overlay_teams(self.teams),  # strategies and rotation: the router's agent choice
        )


class PolicyLog:
    """Policies and teams as the log goes: a new snapshot each time one of them changes.

    A snapshot nobody has taken yet (:attr:`current` not read since it was made) is changed in
    place: a desk's setup (teams, members, calendars) is hundreds of events, and copying an
    aggregate for each would dominate the read. A snapshot taken stays as it was."""

    def __init__(self) -> None:
        self.snapshots: list[Policies] = [Policies(None, {}, {}, {})]
        self._taken = True
        self._owned: set[int] = set()  # ids of aggregates only the latest, untaken snapshot holds

    @property
    def current(self) -> int:
        self._taken = True
        self._owned.clear()
        return len(self.snapshots) - 1

    def apply(self, event: TicketflowAggregate.Event) -> bool:
        last = self.snapshots[-1]
        if isinstance(event, RoutingPolicy.Event):
            routing = self._mutated(last.routing, event)
            assert isinstance(routing, RoutingPolicy)
            snapshot = Policies(routing, last.sla, last.calendars, last.teams)
        elif isinstance(event, SlaPolicy.Event):
            snapshot = Policies(last.routing, self._with(last.sla, event), last.calendars, last.teams)
        elif isinstance(event, ServiceCalendar.Event):
            snapshot = Policies(last.routing, last.sla, self._with(last.calendars, event), last.teams)
        elif isinstance(event, Team.Event):
            snapshot = Policies(last.routing, last.sla, last.calendars, self._with(last.teams, event))
        else:
            return False
        if self._taken:
            self.snapshots.append(snapshot)
            self._taken = False
        else:
            self.snapshots[-1] = snapshot
        return True

    def _mutated(self, aggregate: Any, event: TicketflowAggregate.Event) -> Any:
        """A changed copy (snapshots taken before stay as they were), or the aggregate itself if none took it."""
        if aggregate is not None and id(aggregate) not in self._owned:
            aggregate = copy.deepcopy(aggregate)
        changed = event.mutate(aggregate)
        self._owned.add(id(changed))
        return changed

    def _with(self, objects: dict[UUID, Any], event: TicketflowAggregate.Event) -> dict[UUID, Any]:
        changed = dict(objects)
        changed[event.originator_id] = self._mutated(objects.get(event.originator_id), event)
        return changed


# ------------------------------------------------------------------ what the log holds
@dataclass(slots=True)
class Step:
    """One recorded event of a replayed ticket, with what was in force when it was written."""

    event: Ticket.Event
    position: int
    snapshot: int  # -1: imported history, measured under the final policies
    tier: str | None
    language: str


@dataclass
class Recorded:
    """A ticket of the period as the log has it."""

    ticket_id: UUID
    steps: int = 0  # recorded steps (in the history's timeline)
    decisions: list[Ticket.Event] = field(default_factory=list)  # what the live automation decided
    imported: bool = False
    #: The automation's follow-ups (回访) scheduled on it, by recipient: (team, agent), as recorded.
    follow_ups: list[tuple[UUID | None, str | None]] = field(default_factory=list)
    #: Reminders fired on it: (kind, team, agent), as recorded ("reminder" set by staff, or "follow_up").
    fired: list[tuple[str, UUID | None, str | None]] = field(default_factory=list)


@dataclass(order=True)
class Move:
    """A change of who holds a ticket outside the period (agents' loads, round-robin rotation)."""

    at: datetime
    position: int
    agent: str | None = field(compare=False)
    delta: int = field(compare=False)
    team: UUID | None = field(compare=False, default=None)  # set: the router assigned ``agent`` in ``team``


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_MOVE, _STEP = 0, 1
#: Items of a spilled run pickled together in one block (a run is read back a block at a time).
_BLOCK = 512


def _instant(at: datetime) -> int:
    """An aware datetime as microseconds since 1970 UTC: exact, ordered and equal as the datetimes are."""
    return (at - _EPOCH) // _MICROSECOND


#: Items a timeline holds in memory; past this it writes them, sorted, to disk (about 2 kB each).
SPILL_AFTER = 100_000


class Timeline:
    """The period's recorded steps and the others' load moves, given back in business-time order.

    Items come back ordered by business time, then log position, moves before steps, then as
    they were added, one at a time. Up to ``spill_after`` items are held in memory; each time more
    are, they are sorted and written to disk as one *run*, and the timeline is read back by merging
    the runs and the items still held (an external merge sort: each run is read in order, one block
    at a time, so memory does not grow with the log, and nothing is sorted again on disk). The runs
    go to a private temporary file, opened in a directory only this user can read and whose name is
    removed at once (the system frees it when the last process holding it closes it; nothing is left
    behind); a forked process reads it through the descriptor it inherits (``os.pread``: no shared
    file offset), see :meth:`share`. There, a step whose event class has personal fields is kept as
    the store keeps it (those fields sealed) and decoded again when it comes back; any other item is
    kept pickled. Iterating it consumes it: it is closed once read."""

    def __init__(self, decode: Callable[[StoredEvent], Any], spill_after: int = SPILL_AFTER) -> None:
        self._decode = decode
        self.spill_after = spill_after
        self._held: list[tuple[int, int, int, int, Any]] = []  # (at, position, kind, seq, item)
        self._held_ordered = False  # held sorted, last first (popped from the end)
        self._fd: int | None = None
        self._path = ""  # the file's name while it had one
        self._written = 0  # bytes written to the file
        self._runs: list[list[tuple[int, int]]] = []  # each run's blocks: (offset, length), in order
        self.size = 0
        self.closed = False

    @property
    def spilled(self) -> bool:
        return bool(self._runs)

    def add_step(
        self,
        notification: StoredEvent,
        event: Ticket.Event,
        position: int,
        snapshot: int,
        tier: str | None,
        language: str,
    ) -> None:
        sealed = notification if type(event).personal_fields else None
        step = Step(event, position, snapshot, tier, language)
        self._add(_instant(event.occurred_at), position, _STEP, (event.originator_id, step, sealed))

    def add_move(self, move: Move) -> None:
        self._add(_instant(move.at), move.position, _MOVE, move)

    def _add(self, at: int, position: int, kind: int, item: Any) -> None:
        self.size += 1
        self._held.append((at, position, kind, self.size, item))  # seq (self.size) is unique: never ties
        if len(self._held) > self.spill_after:
            self._spill()

    @staticmethod
    def _row(entry: tuple[int, int, int, int, Any]) -> tuple[int, int, int, int, Any]:
        """An item as a run keeps it: a step with personal fields as the store has it (sealed)."""
        at, position, kind, seq, item = entry
        if kind == _STEP:
            ticket_id, step, sealed = item
            if sealed is None:
                item = (ticket_id, step)
            else:
                item = (
                    ticket_id,
                    None,
                    sealed.state,
                    sealed.originator_version,
                    sealed.topic,
                    step.snapshot,
                    step.tier,
                    step.language,
                )
        return at, position, kind, seq, item

    def _spill(self) -> None:
        """Write the items held, sorted, as one more run."""
        if self._fd is None:
            directory = tempfile.mkdtemp(prefix="ticketflow-whatif-")
            self._path = os.path.join(directory, "timeline")
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            finally:
                with contextlib.suppress(OSError):
                    os.unlink(self._path)
                os.rmdir(directory)
        held, self._held = self._held, []
        held.sort()
        blocks: list[tuple[int, int]] = []
        for start in range(0, len(held), _BLOCK):
            data = pickle.dumps([self._row(e) for e in held[start : start + _BLOCK]], pickle.HIGHEST_PROTOCOL)
            view = memoryview(data)
            while view:
                view = view[os.pwrite(self._fd, view, self._written + len(data) - len(view)) :]
            blocks.append((self._written, len(data)))
            self._written += len(data)
        self._runs.append(blocks)

    def _order_held(self) -> None:
        if not self._held_ordered:
            self._held.sort(reverse=True)  # popped from the end: in order, and each let go as it goes
            self._held_ordered = True

    def share(self) -> None:
        """Ready the timeline to be read by this process and a forked one: the items held are put in
        order once, here (each process then reads its own copy of them; the runs, through the file
        descriptor both hold)."""
        self._order_held()

    def __iter__(self) -> Iterator[Move | tuple[UUID, Step]]:
        if self.closed:
            raise ValueError("a timeline is read once")
        try:
            self._order_held()
            if not self._runs:
                held = self._held
                while held:
                    yield self._item(held.pop())
            else:
                for entry in heapq.merge(self._drain_held(), *(self._read(run) for run in self._runs)):
                    yield self._item(entry)
        finally:
            self.close()

    def _drain_held(self) -> Iterator[tuple[int, int, int, int, Any]]:
        held = self._held
        while held:
            yield held.pop()

    def _read(self, blocks: list[tuple[int, int]]) -> Iterator[tuple[int, int, int, int, Any]]:
        """One run's entries, in order: a block read and unpickled at a time."""
        for offset, length in blocks:
            assert self._fd is not None
            data = os.pread(self._fd, length, offset)
            while len(data) < length:
                data += os.pread(self._fd, length - len(data), offset + len(data))
            yield from pickle.loads(data)

    def _item(self, entry: tuple[int, int, int, int, Any]) -> Move | tuple[UUID, Step]:
        item = entry[4]
        if entry[2] == _MOVE:
            return item  # type: ignore[no-any-return]
        if item[1] is not None:
            return item[0], item[1]
        ticket_id, _, state, version, topic, snapshot, tier, language = item
        event = self._decode(StoredEvent(ticket_id, version, topic, state))
        return ticket_id, Step(event, entry[1], snapshot, tier, language)

    def close(self) -> None:
        self.closed = True
        self._held, self._runs = [], []
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass
class History:
    """Everything the replay needs from the log, read once."""

    policies: PolicyLog
    tickets: dict[UUID, Recorded]
    timeline: Timeline
    horizon: datetime | None  # the latest business time of a ticket event in the log (the last look)
    log_position: int
    events_read: int
    opens_new: bool = (
        True  # the desk's TICKETFLOW_ASSIGN_OPENS_NEW: does routing to an agent open a new ticket
    )


#: The events :func:`read_history` uses, by kind: policies and teams, follow-ups and reminders fired,
#: customers' tiers and languages, tickets. Any other is counted, not decoded.
_POLICY, _REMINDER, _CUSTOMER, _TICKET = range(4)
USED_EVENTS: tuple[tuple[type, ...], ...] = (
    (RoutingPolicy.Event, SlaPolicy.Event, ServiceCalendar.Event, Team.Event),
    (Reminder.Scheduled, Reminder.Fired),
    (Customer.Registered, Customer.TierChanged, Customer.LanguageChanged),
    (Ticket.Event,),
)


def read_history(
    desk: TicketDesk, since: datetime, until: datetime, spill_after: int = SPILL_AFTER
) -> History:
    """Stream the log once: policies as they change, the period's tickets, the others' loads
    (``spill_after``: steps and moves held in memory before the timeline goes to disk).

    Only the events it uses are decoded, and of their personal fields only those the replay reads are
    opened (:mod:`ticketflow.whatif.reading`)."""
    policies = PolicyLog()
    customers: dict[UUID, tuple[str | None, str]] = {}
    tickets: dict[UUID, Recorded] = {}
    requester: dict[UUID, UUID] = {}
    outside: dict[UUID, tuple[str | None, bool]] = {}  # ticket -> (assignee, open)
    reader = LogReader(desk, USED_EVENTS, PAGE)
    timeline = Timeline(reader.decode, spill_after)
    moves: list[Move] = []
    horizon: datetime | None = None
    end = desk.log_position()
    event: Any
    for kind, position, stored, event in reader.events(end):
        if kind == _POLICY:
            policies.apply(event)
        elif kind == _REMINDER:
            _reminder(tickets, event)
        elif kind == _CUSTOMER:
            _customer(customers, event)
        else:
            occurred = event.occurred_at
            if horizon is None or occurred > horizon:
                horizon = occurred  # not a policy or team defined after the tickets (imported history)
            ticket_id = event.originator_id
            if isinstance(event, Ticket.Opened):
                requester[ticket_id] = event.requester_id
                if since <= occurred < until:
                    tickets[ticket_id] = Recorded(ticket_id, imported=event.imported)
            recorded = tickets.get(ticket_id)
            if recorded is None:
                _outside(outside, moves, event, position)
                for move in moves:
                    timeline.add_move(move)
                moves.clear()
            elif is_decision(event):
                recorded.decisions.append(event)
            else:
                tier, language = customers.get(requester.get(ticket_id, ticket_id), (None, ""))
                snapshot = -1 if event.imported else policies.current
                timeline.add_step(stored, event, position, snapshot, tier, language)
                recorded.steps += 1
    return History(policies, tickets, timeline, horizon, end, reader.read, desk.settings.assign_opens_new)


def _reminder(tickets: dict[UUID, Recorded], event: Reminder.Event) -> None:
    """Note a follow-up scheduled, or a reminder fired, on a ticket of the period."""
    if isinstance(event, Reminder.Scheduled) and event.kind == "follow_up" and event.actor_id == AUTOMATION:
        recorded = tickets.get(event.ticket_id) if event.ticket_id is not None else None
        if recorded is not None:
            recorded.follow_ups.append((event.team_id, event.agent_id))
    elif isinstance(event, Reminder.Fired):
        recorded = tickets.get(event.ticket_id) if event.ticket_id is not None else None
        if recorded is not None:
            recorded.fired.append((event.kind, event.team_id, event.agent_id))


def _customer(customers: dict[UUID, tuple[str | None, str]], event: Customer.Event) -> None:
    tier, language = customers.get(event.originator_id, (None, ""))
    if isinstance(event, Customer.Registered):
        tier, language = event.tier, event.preferred_language
    elif isinstance(event, Customer.TierChanged):
        tier = event.tier
    elif isinstance(event, Customer.LanguageChanged):
        language = event.preferred_language
    else:
        return
    customers[event.originator_id] = (tier, language)


_OPENING = {Ticket.Opened, Ticket.MarkedOpen, Ticket.Pended, Ticket.PutOnHold, Ticket.Reopened}
_ENDING = {Ticket.Solved, Ticket.Closed, Ticket.MergedInto}


def _outside(
    state: dict[UUID, tuple[str | None, bool]], moves: list[Move], event: Ticket.Event, position: int
) -> None:
    """Follow who holds a ticket outside the period, as load moves."""
    assignee, is_open = state.get(event.originator_id, (None, True))
    new_assignee, new_open = assignee, is_open
    if isinstance(event, Ticket.Routed | Ticket.Assigned | Ticket.Transferred):
        new_assignee = event.assignee_id
    elif isinstance(event, Ticket.Unassigned):
        new_assignee = None
    if type(event) in _OPENING:
        new_open = True
    elif type(event) in _ENDING:
        new_open = False
    state[event.originator_id] = (new_assignee, new_open)
    at = event.occurred_at
    if isinstance(event, Ticket.Routed) and event.assignee_id is not None:
        moves.append(Move(at, position, event.assignee_id, 0, event.team_id))
    if (assignee, is_open) != (new_assignee, new_open):
        if assignee is not None and is_open:
            moves.append(Move(at, position, assignee, -1))
        if new_assignee is not None and new_open:
            moves.append(Move(at, position, new_assignee, +1))


# ------------------------------------------------------------------ one scenario
_CLOSING = (Ticket.Solved, Ticket.Closed, Ticket.MergedInto)


# What :meth:`Replayed.add` notes of an event, by its class (bits worked out once per class, by ``isinstance``).
_OPENS, _CLOSES, _OPENED, _ROUTED, _CLOSED, _SOLVED, _WORK = 1, 2, 4, 8, 16, 32, 64
_NOTED: dict[type, int] = {}


def _noted_of(cls: type) -> int:
    bits = 0
    for bit, classes in (
        (_OPENS, Ticket.Opened | Ticket.Reopened),
        (_CLOSES, _CLOSING),
        (_OPENED, Ticket.Opened),
        (_ROUTED, Ticket.Routed),
        (_CLOSED, Ticket.Closed),
        (_SOLVED, Ticket.Solved),
        (_WORK, Ticket.Interaction | Ticket.WorkLogged),  # may be staff work (:func:`is_staff_work`)
    ):
        if issubclass(cls, classes):
            bits |= bit
    return bits


@dataclass(slots=True)  # one per ticket and scenario, kept to the end: slots keep it small
class Replayed:
    """One ticket as a scenario replayed it.

    Its events (recorded actions and this scenario's decisions) are not kept: each one runs
    its SLA clocks and notes what the comparison needs as it comes. Once the ticket has all its
    recorded steps and nothing falls due on it any more, it is :meth:`released`: its in-memory
    ticket and clocks are let go, and so are an imported ticket's decisions (a live one's stay:
    they are compared with the recorded ones); ``runs`` and ``escalations`` count them."""

    ticket: Ticket
    decisions: list[Ticket.Event] = field(default_factory=list)
    runs: dict[tuple[str, str], str] = field(default_factory=dict)  # (metric, cycle) -> "met" or "breached"
    escalations: int = 0  # priority raises and transfers decided on a breach
    complete: bool = False  # all its recorded steps are replayed
    #: Measurements of its clocks at rest, by clock: (the state measured, the measurement).
    measured: dict[int, tuple[tuple[Any, ...], list[Measurement]]] = field(default_factory=dict)
    tier: str | None = None
    language: str = ""
    imported: bool = False
    next_due: datetime | None = None
    snapshot: int = -1  # the policies in force at its latest recorded step
    placed_team: UUID | None = None
    placed_agent: str | None = None
    rule: str | None = None
    clock: ClockRun = field(default_factory=ClockRun)  # its SLA clocks, run as its events come
    opened_priority: str = "normal"
    routed_priority: str | None = None  # the priority the first routing that set one set
    staff_work: list[str] = field(default_factory=list)  # who did each piece of recorded staff work
    closed_spans: list[tuple[datetime, datetime]] = field(default_factory=list)  # open from, until
    open_since: datetime | None = None  # opened or reopened then, not solved, closed or merged since
    quiet: tuple[Any, ...] | None = None  # (terms, clocks) at its latest look, if that look decided nothing
    #: ((terms, clocks), instant) of its latest measured look, and the measurements it made.
    measured_at: tuple[tuple[Any, ...], list[Measurement]] | None = None
    auto_closes: list[UUID | None] = field(default_factory=list)  # its team at each close the automation made
    holder: tuple[UUID | None, str | None] | None = None  # (team, agent) it had when last solved

    def add(self, events: list[Ticket.Event]) -> None:
        for event in events:
            self.clock.feed(event)
            kind = _NOTED.get(type(event))
            if kind is None:
                kind = _NOTED[type(event)] = _noted_of(type(event))
            if not kind:
                continue  # nothing the comparison notes (assigned, transferred, ...)
            if kind & _OPENS and self.open_since is None:
                self.open_since = event.occurred_at
            elif kind & _CLOSES and self.open_since is not None:
                self.closed_spans.append((self.open_since, event.occurred_at))
                self.open_since = None
            if kind & _OPENED:
                self.opened_priority = event.priority  # type: ignore[attr-defined]
            elif kind & _ROUTED and event.priority is not None and self.routed_priority is None:  # type: ignore[attr-defined]
                self.routed_priority = event.priority  # type: ignore[attr-defined]
            if kind & _CLOSED and event.actor_id == AUTOMATION:
                self.auto_closes.append(self.ticket.team_id)  # auto-close: elapsed days after solving
            elif kind & _SOLVED:
                self.holder = (self.ticket.team_id, self.ticket.assignee_id)  # whom a follow-up goes to
            if kind & _WORK:
                who = is_staff_work(event)
                if who is not None:
                    self.staff_work.append(sys.intern(who))  # one string per person, not per action

    def decided(self, events: list[Ticket.Event]) -> None:
        """Note this scenario's decisions: kept, and counted as SLA runs and escalations."""
        self.decisions.extend(events)
        for event in events:
            if isinstance(event, Ticket.SlaBreached):
                self.runs[(event.metric, event.cycle)] = "breached"
            elif isinstance(event, Ticket.SlaFulfilled):
                self.runs.setdefault((event.metric, event.cycle), "met")
            elif isinstance(event, Ticket.PriorityChanged | Ticket.Transferred):
                self.escalations += 1

    @property
    def released(self) -> bool:
        return not hasattr(self, "ticket")

    def release(self) -> None:
        """Let go of what the replay no longer needs (see the class)."""
        del self.ticket, self.clock
        self.measured = {}
        self.measured_at = None
        if self.imported:
            self.decisions = []

    #: What the comparison reads of a released ticket, as :meth:`outcome` gives it to another process.
    OUTCOME = (
        "runs",
        "escalations",
        "complete",
        "imported",
        "placed_team",
        "placed_agent",
        "rule",
        "opened_priority",
        "routed_priority",
        "staff_work",
        "closed_spans",
        "open_since",
        "auto_closes",
        "holder",
    )

    def outcome(self) -> tuple[Any, ...]:
        """What the comparison reads of it (no ticket, no personal field, no decisions: plain values)."""
        return tuple(getattr(self, name) for name in self.OUTCOME)

    @classmethod
    def from_outcome(cls, values: tuple[Any, ...]) -> Replayed:
        """A released ticket with the :meth:`outcome` another process replayed."""
        replayed = cls.__new__(cls)
        for name in cls.__slots__:
            if name not in ("ticket", "clock"):
                setattr(replayed, name, None)
        replayed.decisions, replayed.measured, replayed.next_due, replayed.tier, replayed.language = (
            [],
            {},
            None,
            None,
            "",
        )
        replayed.snapshot = -1
        for name, value in zip(cls.OUTCOME, values, strict=True):
            setattr(replayed, name, value)
        return replayed

    @property
    def open_spans(self) -> list[tuple[datetime, datetime | None]]:
        """When the ticket was open (opened or reopened, until solved, closed or merged; None: still open)."""
        spans: list[tuple[datetime, datetime | None]] = list(self.closed_spans)
        return spans if self.open_since is None else [*spans, (self.open_since, None)]

    @property
    def priority(self) -> str:
        """The priority the ticket had once placed (a routing rule's, else the one it was opened with)."""
        return self.routed_priority or self.opened_priority


class Scenario:
    """The automation's decisions, replayed under one set of policies."""

    def __init__(self, name: str, history: History, candidate: Candidate | None) -> None:
        self.name = name
        self.history = history
        self.candidate = candidate
        self.tickets: dict[UUID, Replayed] = {}
        self.loads: Counter[str] = Counter()
        self.rotation: dict[UUID, str] = {}
        # (when as an integer, ticket's order, ticket, when): integers compare faster than aware datetimes.
        self.due: list[tuple[int, int, UUID, datetime]] = []
        self._order: dict[UUID, int] = {}
        self._views: dict[int, Policies] = {}
        self._calendars: dict[tuple[Any, Any], BusinessCalendar] = {}
        self._terms: dict[tuple[Any, ...], dict[str, Any] | None] = {}
        self._target_cache: dict[tuple[Any, ...], dict[Metric, Target]] = {}

    def policies(self, snapshot: int) -> Policies:
        index = snapshot if snapshot >= 0 else self.history.policies.current
        view = self._views.get(index)
        if view is None:
            view = self.history.policies.snapshots[index]
            if self.candidate is not None:
                view = view.overlaid(self.candidate)
            self._views[index] = view
        return view

    # -------------------------------------------------------------- applying the log
    def move(self, move: Move) -> None:
        if move.team is not None and move.agent is not None:
            self.rotation[move.team] = move.agent
        if move.agent is not None:
            self.loads[move.agent] += move.delta

    def record(self, step: Step, recorded: Recorded) -> Replayed:
        event = step.event
        replayed = self.tickets.get(event.originator_id)
        if replayed is None:
            ticket = event.mutate(None)
            assert isinstance(ticket, Ticket)
            replayed = self.tickets[ticket.id] = Replayed(ticket, imported=recorded.imported)
            self._order[ticket.id] = len(self._order)
            self._load(ticket, +1)
        else:
            self._load(replayed.ticket, -1)
            replayed.ticket.version = event.originator_version - 1  # this scenario's decisions came between
            event.mutate(replayed.ticket)
            self._load(replayed.ticket, +1)
        replayed.add([event])
        replayed.tier, replayed.language, replayed.snapshot = step.tier, step.language, step.snapshot
        if (
            replayed.placed_team is None
            and replayed.ticket.team_id is not None
            and not isinstance(event, Ticket.Opened)
        ):
            replayed.placed_team, replayed.placed_agent = replayed.ticket.team_id, replayed.ticket.assignee_id
        return replayed

    def _load(self, ticket: Ticket, delta: int) -> None:
        if ticket.assignee_id is not None and ticket.status in OPEN_STATUSES:
            self.loads[ticket.assignee_id] += delta

    def _decide(
        self, replayed: Replayed, now: datetime, action: Callable[[Ticket], None], escalating: bool = False
    ) -> list[Ticket.Event]:
        """Run one decision on the in-memory ticket, as the automation's command would (all or nothing)."""
        ticket = replayed.ticket
        # The domain refuses before it changes anything, but an escalation is two changes: keep a copy.
        before = copy.deepcopy(ticket) if escalating else None
        context = metadata.RecordingContext(AUTOMATION, "system", "system", "whatif", "whatif", now)
        self._load(ticket, -1)
        try:
            with metadata.recording(context):
                action(ticket)
        except TicketflowError:
            ticket.collect_events()  # refused: the live command would have written nothing
            if before is not None:
                replayed.ticket = ticket = before
        self._load(ticket, +1)
        made = list(ticket.collect_events())
        if made:
            replayed.quiet = None
        for event in made:
            if isinstance(event, Ticket.Routed) and event.assignee_id is not None:
                self.rotation[event.team_id] = event.assignee_id
        replayed.add(made)  # type: ignore[arg-type]
        replayed.decided(made)  # type: ignore[arg-type]
        return made  # type: ignore[return-value]

    # -------------------------------------------------------------- the automation's pass
    def route(self, replayed: Replayed, snapshot: int, now: datetime) -> None:
        """The router's one attempt at a newly opened ticket."""
        if replayed.imported:
            return  # migrated history is not worked again
        view = self.policies(snapshot)
        policy = view.routing
        ticket = replayed.ticket
        if policy is None or ticket.created_at < policy.created_at:
            return  # no rules yet (a desk dispatching by hand), or the ticket is older than them
        try:
            team_id = (
                ticket.team_id
                if ticket.team_id is not None
                else placement_team(policy, ticket, replayed.tier, replayed.language)[0]
            )
        except TicketflowError:
            return
        team = view.teams.get(team_id)
        if team is None:
            return
        made = self._decide(
            replayed,
            now,
            lambda t: route_by_policy(
                t,
                policy,
                team,
                replayed.tier,
                replayed.language,
                last_assigned=self.rotation.get(team_id),
                open_tickets=self.loads,
                opens_new=self.history.opens_new,
            ),
        )
        for event in made:
            if isinstance(event, Ticket.Routed):
                replayed.placed_team, replayed.placed_agent, replayed.rule = (
                    event.team_id,
                    event.assignee_id,
                    event.rule,
                )

    def look(self, replayed: Replayed, snapshot: int, now: datetime, changed: bool) -> None:
        """The SLA clock's look at a ticket, repeated while its own decisions change the ticket."""
        for _ in range(MAX_LOOKS):
            made = self._evaluate(replayed, snapshot, now, changed)
            if not made or all(isinstance(e, QUIET) for e in made):
                return
            changed = True

    def _evaluate(
        self, replayed: Replayed, snapshot: int, now: datetime, changed: bool
    ) -> list[Ticket.Event]:
        if replayed.imported and snapshot >= 0:
            snapshot = -1
        ticket = replayed.ticket
        made: list[Ticket.Event] = []
        if changed and ticket.status != Status.CLOSED:
            matched = self._sla_terms(snapshot, ticket, replayed.tier)
            if matched is not None and (ticket.sla is None or _terms_key(ticket.sla) != _terms_key(matched)):
                chosen = dict(matched)
                made += self._decide(replayed, now, lambda t: t.apply_sla(chosen))
        ticket = replayed.ticket
        if ticket.sla is None:
            replayed.next_due = None
            return made
        terms = ticket.sla
        # A look that decided nothing, at the same terms and clocks, before anything falls due: no look in
        # between decides anything either (warnings and breaches happen at due instants, which the due heap
        # holds), and its next due instant stays the one already held. Skipped.
        looked = (_terms_key(terms), replayed.clock.state())
        state = None if made else looked
        if (
            state is not None
            and state == replayed.quiet
            and (replayed.next_due is None or now < replayed.next_due)
        ):
            if _CHECK_SKIPS:
                self._check_skip(replayed, terms, now)
            return made
        replayed.next_due = None
        marks, next_due = self._marks_due(replayed, terms, now, looked)
        for mark in marks:

            def act(t: Ticket, k: Any = mark) -> None:
                t.record_sla(k.kind, k.metric, k.cycle, k.moment, k.elapsed_minutes)
                if k.kind == "breached":
                    escalate_breach(t, k.metric)

            made += self._decide(replayed, now, act, escalating=mark.kind == "breached")
        if replayed.ticket.status != Status.CLOSED and next_due is not None:
            replayed.next_due = next_due
            heapq.heappush(self.due, (_instant(next_due), self._order[ticket.id], ticket.id, next_due))
        replayed.quiet = state if not made and replayed.ticket.status != Status.CLOSED else None
        return made

    def _check_skip(self, replayed: Replayed, terms: dict[str, Any], now: datetime) -> None:
        """(with ``_CHECK_SKIPS``, for tests) a skipped look decides nothing
        and looks next when the look it repeats said."""
        marks, next_due = self._marks_due(replayed, terms, now)
        assert not marks and next_due == replayed.next_due, (replayed.ticket.id, now, marks, next_due)

    def _marks_due(
        self, replayed: Replayed, terms: dict[str, Any], now: datetime, looked: tuple[Any, ...] | None = None
    ) -> tuple[list[SlaMark], datetime | None]:
        """What a look at ``now`` under ``terms`` marks on the ticket's clocks, and when it looks next.

        ``looked``: the terms and clocks' state (as the quiet memo has them). A look again at the same
        instant, terms and clocks (the look after one that recorded a mark: a mark runs no clock) measures
        the same: its measurements are those of the look before (only the marks recorded since differ)."""
        key = None if looked is None else (looked, now)
        kept = replayed.measured_at
        if key is not None and kept is not None and kept[0] == key:
            measurements = kept[1]
        else:
            measurements = self._measure(
                replayed,
                self._targets(terms, replayed.clock.priority),
                self._calendar(terms),
                now,
                terms["warn_at_percent"] / 100,
            )
            replayed.measured_at = None if key is None else (key, measurements)
        return marks_due(replayed.ticket, measurements, now)

    @staticmethod
    def _measure(
        replayed: Replayed,
        targets: dict[Metric, Target],
        calendar: BusinessCalendar,
        now: datetime,
        warn: float,
    ) -> list[Measurement]:
        """:func:`~ticketflow.sla.measure.measure_clocks` of the ticket's clocks as of ``now``.

        A clock that is not running measures the same whenever it is looked at (all its runs have
        ended): it is measured once per state (its runs, its end, targets, calendar, warning share)."""
        result: list[Measurement] = []
        kept = replayed.measured
        for n, clock in enumerate(replayed.clock.clocks):
            if clock.running:
                result += measure_clocks([clock], targets, calendar, now, warn)
                continue
            segments = clock.segments
            state = (
                len(segments),
                segments[-1][1] if segments else None,
                clock.fulfilled_at,
                clock.stopped,
                targets.get(clock.metric),
                id(calendar),
                warn,
            )
            found = kept.get(n)
            if found is None or found[0] != state:
                found = kept[n] = (state, measure_clocks([clock], targets, calendar, now, warn))
            result += found[1]
        return result

    def _sla_terms(self, snapshot: int, ticket: Ticket, tier: str | None) -> dict[str, Any] | None:
        """The terms of the SLA policy that matches the ticket (None: none does), decided once per
        policies in force and facts the match reads (:func:`ticketflow.automation.sla_facts`)."""
        index = snapshot if snapshot >= 0 else len(self.history.policies.snapshots) - 1
        # What sla_facts(ticket, tier) holds, as a key (str() of an enum value is the value: equal, same hash).
        key = (index, ticket.ticket_type, ticket.category, ticket.channel, ticket.priority, tier)
        if key in self._terms:
            return self._terms[key]
        view = self.policies(snapshot)
        terms: dict[str, Any] | None = None
        policy = first_matching_sla_policy(view.sla.values(), ticket, tier)
        if policy is not None:
            calendar = view.calendars.get(policy.calendar_id) if policy.calendar_id else None
            if policy.calendar_id is None or calendar is not None:
                terms = sla_terms_of(policy, calendar)
        self._terms[key] = terms
        return terms

    def _targets(self, terms: dict[str, Any], priority: str) -> dict[Metric, Target]:
        """The targets of an SLA decision for a priority, worked out once per policy version."""
        key = (_terms_key(terms), priority)
        targets = self._target_cache.get(key)
        if targets is None:
            targets = self._target_cache[key] = targets_of(terms)(priority)
        return targets

    def _calendar(self, terms: dict[str, Any]) -> BusinessCalendar:
        """The calendar of an SLA decision, built once per calendar version (and scenario)."""
        key = (terms["calendar_id"], terms["calendar_version"])
        calendar = self._calendars.get(key)
        if calendar is None:
            calendar = self._calendars[key] = calendar_from_spec(terms["calendar"])
        return calendar

    def fire_due(self, until: datetime, inclusive: bool, snapshot_of: Callable[[UUID], int]) -> None:
        """Look at every ticket whose warning or breach falls due before ``until`` (or at it)."""
        if not self.due or self.due[0][3] > until:
            return  # nothing falls due yet (most calls: one before and one after each recorded step)
        bound = _instant(until)
        while self.due and (self.due[0][0] < bound or inclusive and self.due[0][0] == bound):
            key, moment = self.due[0][0], self.due[0][3]
            batch: list[UUID] = []
            while self.due and self.due[0][0] == key:
                _, _, ticket_id, _ = heapq.heappop(self.due)
                if self.tickets[ticket_id].next_due == moment and ticket_id not in batch:
                    batch.append(ticket_id)
            for ticket_id in batch:
                replayed = self.tickets[ticket_id]
                self.look(replayed, snapshot_of(ticket_id), moment, changed=False)
                self._release_if_done(replayed)

    def settle(self, ticket_id: UUID) -> None:
        """All the ticket's recorded steps are replayed: let it go once nothing falls due on it."""
        replayed = self.tickets[ticket_id]
        replayed.complete = True
        self._release_if_done(replayed)

    @staticmethod
    def _release_if_done(replayed: Replayed) -> None:
        if replayed.complete and replayed.next_due is None and not replayed.released:
            replayed.release()


def _terms_key(terms: dict[str, Any]) -> tuple[Any, ...]:
    return (terms["policy_id"], terms["policy_version"], terms["calendar_id"], terms["calendar_version"])


# ------------------------------------------------------------------ both scenarios, one timeline
def _timeline(history: History) -> Iterator[tuple[datetime, int, Any]]:
    """The period's recorded steps and the others' load moves, in business-time order (read from
    the history's :class:`Timeline`, each let go once handed out)."""
    tickets = history.tickets
    for item in history.timeline:
        if isinstance(item, Move):
            yield item.at, item.position, item
        else:
            ticket_id, step = item
            yield step.event.occurred_at, step.position, (tickets[ticket_id], step)


def replay(
    history: History, scenarios: list[Scenario], progress: Callable[[int, int], None] | None = None
) -> None:
    """Replay the period: after each recorded command, each scenario's automation makes its pass.

    ``progress(done, total)``: tickets whose recorded steps are all replayed, out of the period's.
    The history's steps are consumed (each is let go once replayed): a history is replayed once."""
    total = len(history.tickets)
    left = {ticket_id: recorded.steps for ticket_id, recorded in history.tickets.items()}
    done = [sum(1 for n in left.values() if n == 0), 0]  # done, done when last told
    every = max(1, total // 100)

    def tell(force: bool = False) -> None:
        if progress is not None and (force or done[0] - done[1] >= every):
            done[1] = done[0]
            progress(done[0], total)

    tell(force=True)
    latest = [-1]  # the policies in force at the latest recorded step (live history)

    def snapshot_of(ticket_id: UUID) -> int:
        return latest[0]

    group: list[tuple[Recorded, Step]] = []
    group_key: tuple[datetime, str] | None = None

    def finish(at: datetime) -> None:
        for scenario in scenarios:
            touched: list[Replayed] = []
            opened: list[tuple[Replayed, Step]] = []
            for recorded, step in group:
                replayed = scenario.record(step, recorded)
                if isinstance(step.event, Ticket.Opened):
                    opened.append((replayed, step))
                if not isinstance(step.event, QUIET) and replayed not in touched:
                    touched.append(replayed)
            for replayed, step in opened:
                scenario.route(replayed, step.snapshot, at)
            for replayed in touched:
                scenario.look(replayed, replayed.snapshot, at, changed=True)
            scenario.fire_due(at, inclusive=True, snapshot_of=snapshot_of)
            for recorded, _ in group:
                if left[recorded.ticket_id] == 0 and not scenario.tickets[recorded.ticket_id].complete:
                    scenario.settle(recorded.ticket_id)
        group.clear()

    for at, _, item in _timeline(history):
        if isinstance(item, Move):
            if group:
                assert group_key is not None
                finish(group_key[0])
                group_key = None
            for scenario in scenarios:
                scenario.fire_due(at, inclusive=False, snapshot_of=snapshot_of)
                scenario.move(item)
            continue
        recorded, step = item
        key = (at, step.event.command_id)
        if group and key != group_key:
            assert group_key is not None
            finish(group_key[0])
        if not group:
            for scenario in scenarios:
                scenario.fire_due(at, inclusive=False, snapshot_of=snapshot_of)
        group_key = key
        latest[0] = max(latest[0], step.snapshot)
        group.append((recorded, step))
        left[recorded.ticket_id] -= 1
        if left[recorded.ticket_id] == 0:
            done[0] += 1
            tell()
    if group:
        assert group_key is not None
        finish(group_key[0])
    if history.horizon is not None:
        for scenario in scenarios:
            scenario.fire_due(history.horizon, inclusive=True, snapshot_of=snapshot_of)
    tell(force=True)


def is_staff_work(event: Ticket.Event) -> str | None:
    """Who did a piece of recorded staff work on a ticket (None: not staff work)."""
    if (
        isinstance(event, Ticket.Interaction)
        and event.direction != Direction.INBOUND
        and event.actor_role
        in (
            "agent",
            "supervisor",
            "admin",
        )
    ):
        return event.author_id
    if isinstance(event, Ticket.WorkLogged):
        return event.performer_id
    return None


# ------------------------------------------------------------------ two scenarios, two processes
#: Timeline items (steps and load moves) below which both scenarios replay in this process (a fork costs more).
APART_AFTER = 5_000
_POLL_SECONDS = 0.5


def can_fork() -> bool:
    """True where the two scenarios can be replayed in two processes (a forked child shares the history read)."""
    return hasattr(os, "fork") and "fork" in multiprocessing.get_all_start_methods()


def replay_apart(
    history: History,
    here: Scenario,
    there: Scenario,
    progress: Callable[[int, int], None] | None = None,
    in_child: Callable[[], None] | None = None,
) -> None:
    """:func:`replay` of two independent scenarios at once: ``here`` in this process, ``there`` in a
    forked one, which shares the history read (the log is read and decoded once) and sends back
    only each ticket's :meth:`Replayed.outcome` (plain values: no ticket, no personal field).

    A spilled timeline is read by both through the file descriptor they share (:meth:`Timeline.share`;
    its sealed steps are decoded again in each; ``in_child`` readies the child's decoding, e.g. a copy
    of the keys the parent already holds, since the child must not use the parent's connections).
    While it replays, this process keeps what it held before (the history read) out of the garbage
    collector's reach too (``gc.freeze``, undone after): it is not garbage, and traversing it at each
    full collection costs more as the log grows. The child collects no garbage at all while it replays,
    nor does this process when no other thread runs in it (the CLI, the bench; not a server's job worker):
    the replay makes almost no cyclic garbage, and the collections cost a sixth of its CPU at a million events. ``progress``
    tells the lesser of the two processes' progress. The child ends with ``os._exit`` (nothing
    of the parent's, such as its database connections, is closed or flushed by it). If this
    process stops (an exception, e.g. a job given back), the child is killed."""
    history.timeline.share()
    shared = mmap.mmap(-1, 8)  # the child's progress (done): anonymous shared memory, nothing on disk
    total = len(history.tickets)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected; the test checks its bytes
        code = 1
        try:
            os.close(read_end)
            # What the child inherited (the history read) is never garbage here: out of the collector's
            # reach, it is not traversed, nor its pages copied by the collector touching it. The child ends
            # with os._exit: nothing to give back. Nor does the child collect garbage while it replays: it
            # runs nothing else, its replay leaves a few dozen cyclic objects in all (``fewer_collections``),
            # and the collections it would still run cost a tenth of its CPU at a million events.
            gc.freeze()
            gc.disable()
            if in_child is not None:
                in_child()

            def child_progress(done: int, _total: int) -> None:
                struct.pack_into("q", shared, 0, done)

            replay(history, [there], child_progress)
            payload = pickle.dumps(
                ("ok", {i: r.outcome() for i, r in there.tickets.items()}), pickle.HIGHEST_PROTOCOL
            )
            code = 0
        except BaseException as exc:  # noqa: BLE001 - told to the parent, which raises it
            payload = pickle.dumps(("failed", f"{type(exc).__name__}: {exc}"))
        try:
            with os.fdopen(write_end, "wb") as out:
                out.write(payload)
        finally:
            os._exit(code)
    os.close(write_end)
    received = bytearray()
    finished = False
    try:

        def tell(done: int, _total: int) -> None:
            if progress is not None:
                progress(min(done, struct.unpack_from("q", shared, 0)[0]), total)

        gc.freeze()
        # A process that runs nothing else (the CLI, the bench: no other thread) does not collect garbage
        # while it replays either (see the child's); a server's job worker leaves its other threads' collections on.
        pause = gc.isenabled() and threading.active_count() == 1
        if pause:
            gc.disable()
        try:
            replay(history, [here], tell)
        finally:
            if pause:
                gc.enable()
            gc.unfreeze()
        while not _drain(read_end, received, _POLL_SECONDS):
            tell(total, total)
        finished = True
    finally:
        os.close(read_end)
        if not finished:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        history.timeline.close()
    answer: tuple[str, Any] = (
        pickle.loads(bytes(received)) if received else ("failed", f"exit status {status}")
    )
    if answer[0] != "ok":
        raise RuntimeError(f"the {there.name} scenario's replay failed in its process: {answer[1]}")
    there.tickets = {ticket_id: Replayed.from_outcome(values) for ticket_id, values in answer[1].items()}
    if progress is not None:
        progress(total, total)


def _drain(fd: int, into: bytearray, timeout: float) -> bool:
    """Read what the child has sent within ``timeout``; True once it has closed its end (all is sent).

    A selector, not ``select.select``: that one refuses descriptors numbered 1024 and above ("filedescriptor
    out of range in select()"), which a server holding many connections and files hands out."""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        ready = selector.select(timeout)
        while ready:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return True
            into += chunk
            ready = selector.select(0)
    return False


class _KnownKeys:
    """The keys a process has already read, for a forked child's decoding: a plain copy, no connection."""

    def __init__(self, keys: dict[UUID, bytes | None]) -> None:
        self._keys = keys

    def key_for(self, subject: UUID, create: bool) -> bytes | None:
        return self._keys.get(subject)


def known_keys_only(desk: TicketDesk) -> None:
    """In a forked child: the desk's mapper opens sealed fields with the keys the parent already read
    (it read every sealed step once), never through the parent's key store connections or locks."""
    keys = getattr(desk, "keys", None)
    if keys is None or not hasattr(keys, "_store"):
        return
    store = keys._store
    cache = dict(getattr(store, "_cache", {})) if store is not None else {}
    keys._store = _KnownKeys({subject: key for subject, (_, key) in cache.items()})
