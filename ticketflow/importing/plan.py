"""Planning one case: the commands that replay it on a ticket, valid in the order they run.

A :class:`TicketPlan` follows the ticket's status, team, assignee and priority
the way the domain will (status changes come from the lifecycle table), so every
command it plans is accepted when it runs. A row that would change nothing, or
that the lifecycle cannot carry (anything after ``closed``, which is final here),
is not sent: it is counted under a reason instead.

Each row maps to one :class:`Kind` of step; formats translate their activities
into kinds and call the matching :class:`TicketPlan` method.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from uuid import UUID

from ticketflow.commands import (
    AddNote,
    AssignTicket,
    ChangePriority,
    CloseTicket,
    Command,
    HoldTicket,
    LogInteraction,
    MarkTicketOpen,
    OpenTicket,
    PendTicket,
    ReopenTicket,
    SolveTicket,
    TicketCommand,
    TransferTicket,
)
from ticketflow.domain.lifecycle import Action, next_status
from ticketflow.domain.values import Channel, Direction, InteractionKind, Priority, Status, TicketType
from ticketflow.importing.directory import Directory, DirectoryIds, command_id, person_caller
from ticketflow.importing.xes import RESOURCE, Case, Row
from ticketflow.metadata import Caller


class Kind(Enum):
    """What a source row does to its ticket."""

    OPEN = "open"  # the ticket was created (only meaningful as a case's first row)
    WORK = "work"  # someone takes or works the ticket
    QUEUE = "queue"  # back in a team's queue, awaiting assignment
    PEND = "pend"  # waiting on the customer
    HOLD = "hold"  # waiting on a third party
    RESUME = "resume"  # the wait is over
    SOLVE = "solve"
    CLOSE = "close"
    CANCEL = "cancel"
    CALL = "call"
    NOTE = "note"
    PRIORITY = "priority"
    IGNORE = "ignore"


#: Kinds that show the source system worked the ticket again after a "closed".
REVIVING = frozenset({Kind.WORK, Kind.QUEUE, Kind.PEND, Kind.HOLD, Kind.RESUME, Kind.SOLVE, Kind.CALL})


def revived_after(kinds: Sequence[Kind], index: int) -> bool:
    """True when a row after ``index`` works the ticket again (so a close there is not final)."""
    return any(kind in REVIVING for kind in kinds[index + 1 :])


def settled_after(kinds: Sequence[Kind], index: int) -> bool:
    """True when no row after ``index`` changes the ticket's status (it ends as it is there)."""
    return not any(kind in REVIVING or kind in (Kind.CLOSE, Kind.CANCEL) for kind in kinds[index + 1 :])


class Reason:
    """Why a row (or part of one) wrote nothing: the keys of the summary's ``skipped``."""

    AFTER_CLOSE = "after the ticket was closed (closed is final here)"
    SAME_ASSIGNEE = "already assigned to that person and open"
    SAME_QUEUE = "already queued with that team"
    PENDING = "already pending"
    ON_HOLD = "already on hold"
    OPEN = "already open"
    SOLVED = "already solved"
    CLOSED = "already closed"
    REOPENED_LATER = "closed in the source, then worked again there: left solved"
    SAME_PRIORITY = "priority unchanged"


class NotInDirectory(LookupError):
    """A case needs a team or requester the directory could not create (its command was refused)."""


@dataclass(frozen=True)
class Step:
    """One planned command; a ticket command gets its ticket id once the ticket exists."""

    command_type: type[Command]
    fields: dict[str, Any]
    caller: Caller
    row: Row

    @property
    def command_id(self) -> UUID:
        value: UUID = self.fields["command_id"]
        return value

    def build(self, ticket_id: UUID | None) -> Command:
        if issubclass(self.command_type, TicketCommand):
            if ticket_id is None:
                raise ValueError(f"{self.command_type.__name__} needs the ticket's id")
            return self.command_type(ticket_id=ticket_id, **self.fields)
        return self.command_type(**self.fields)


@dataclass
class TicketState:
    team: str
    priority: Priority
    status: Status = Status.NEW
    assignee: str | None = None


class TicketPlan:
    """The commands replaying one case on one ticket, and the rows that wrote nothing."""

    def __init__(self, source: str, case_id: str, ids: DirectoryIds) -> None:
        self.source = source
        self.case_id = case_id
        self.ids = ids
        self.correlation_id = f"import:{source}:{case_id}"
        self.steps: list[Step] = []
        self.skipped: Counter[str] = Counter()
        self._state: TicketState | None = None

    @property
    def state(self) -> TicketState:
        if self._state is None:
            raise RuntimeError("open the ticket first")
        return self._state

    # ----------------------------------------------------------------- steps
    def open(
        self,
        row: Row,
        *,
        subject: str,
        team: str,
        requester: str,
        priority: Priority,
        ticket_type: TicketType,
        category: str,
        channel: Channel,
        description: str = "",
    ) -> None:
        self._add(
            row, "open", OpenTicket,
            subject=subject, description=description, ticket_type=ticket_type, category=category,
            priority=priority, channel=channel, requester_id=self._id(self.ids.customers, requester),
            team_id=self._id(self.ids.teams, team),
        )
        self._state = TicketState(team=team, priority=priority)

    def work(self, row: Row, agent: str | None, team: str | None = None) -> None:
        """``agent`` takes (or keeps working) the ticket, in ``team`` when given: it ends theirs and open."""
        if not self._workable(row):
            return
        state = self.state
        acted = self._revive(row)
        if team is not None and team != state.team:
            self._add(
                row, "transfer", TransferTicket, team_id=self._id(self.ids.teams, team), assignee_id=agent,
                reason=f"reassigned to {team} in the source system",
            )
            state.team, state.assignee = team, agent
            if agent is not None and state.status is Status.NEW:
                state.status = Status.OPEN  # the domain opens a new ticket given to someone
            acted = True
        elif agent is not None and agent != state.assignee:
            self._add(row, "assign", AssignTicket, assignee_id=agent)
            state.assignee = agent
            if state.status is Status.NEW:
                state.status = Status.OPEN
            acted = True
        if state.status in (Status.PENDING, Status.ON_HOLD):
            self._mark_open(row, "work resumed in the source system")
            acted = True
        if not acted:
            self.skip(Reason.SAME_ASSIGNEE)

    def queue(self, row: Row, team: str) -> None:
        """The ticket waits in ``team``'s queue for someone to take it."""
        if not self._workable(row):
            return
        state = self.state
        acted = self._revive(row)
        if team != state.team:
            self._add(
                row, "transfer", TransferTicket, team_id=self._id(self.ids.teams, team),
                reason=f"queued for {team} in the source system",
            )
            state.team, state.assignee = team, None
            acted = True
        if state.status in (Status.PENDING, Status.ON_HOLD):
            self._mark_open(row, "queued for assignment in the source system")
            acted = True
        if not acted:
            self.skip(Reason.SAME_QUEUE)

    def pend(self, row: Row, reason: str) -> None:
        self._wait(row, Action.PEND, PendTicket, reason)

    def hold(self, row: Row, reason: str) -> None:
        self._wait(row, Action.HOLD, HoldTicket, reason)

    def resume(self, row: Row, reason: str) -> None:
        if not self._workable(row) or self._revive(row):
            return
        if self.state.status is Status.OPEN:
            self.skip(Reason.OPEN)
        else:
            self._mark_open(row, reason)

    def solve(self, row: Row, resolution: str) -> None:
        if not self._workable(row):
            return
        if self.state.status is Status.SOLVED:
            self.skip(Reason.SOLVED)
            return
        self._add(row, "solve", SolveTicket, resolution=resolution)
        self._move(Action.SOLVE)

    def close(self, row: Row, *, final: bool, resolution: str) -> None:
        """Close (solving first if needed); a close the source later undid leaves the ticket solved."""
        if self.state.status is Status.CLOSED:
            self.skip(Reason.CLOSED)
            return
        if self.state.status is not Status.SOLVED:
            self.solve(row, resolution)
        if not final:
            self.skip(Reason.REOPENED_LATER)
            return
        self._add(row, "close", CloseTicket)
        self._move(Action.CLOSE)

    def call(self, row: Row, body: str) -> None:
        """A phone call from the customer (inbound: it wakes a pending or solved ticket, as here)."""
        if not self._workable(row):
            return
        self._add(
            row, "call", LogInteraction, kind=InteractionKind.CALL, direction=Direction.INBOUND, body=body
        )
        if self.state.status in (Status.PENDING, Status.SOLVED):
            self.state.status = Status.OPEN

    def note(self, row: Row, body: str) -> None:
        if self._workable(row):
            self._add(row, "note", AddNote, body=body)

    def priority(self, row: Row, priority: Priority, reason: str) -> None:
        if not self._workable(row):
            return
        if priority is self.state.priority:
            self.skip(Reason.SAME_PRIORITY)
            return
        self._add(row, "priority", ChangePriority, priority=priority, reason=reason)
        self.state.priority = priority

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    # -------------------------------------------------------------- plumbing
    def _wait(self, row: Row, action: Action, command: type[PendTicket | HoldTicket], reason: str) -> None:
        if not self._workable(row):
            return
        self._revive(row)
        target = next_status(Status.OPEN, action)
        if self.state.status is target:
            self.skip(Reason.PENDING if action is Action.PEND else Reason.ON_HOLD)
            return
        self._add(row, str(action), command, reason=reason)
        self._move(action)

    def _workable(self, row: Row) -> bool:
        if self.state.status is Status.CLOSED:
            self.skip(Reason.AFTER_CLOSE)
            return False
        return True

    def _revive(self, row: Row) -> bool:
        """Reopen a solved ticket the source kept working; True when it did."""
        if self.state.status is not Status.SOLVED:
            return False
        self._add(row, "reopen", ReopenTicket, reason="worked again in the source system")
        self._move(Action.REOPEN)
        return True

    def _mark_open(self, row: Row, reason: str) -> None:
        self._add(row, "resume", MarkTicketOpen, reason=reason)
        self._move(Action.MARK_OPEN)

    def _move(self, action: Action) -> None:
        target = next_status(self.state.status, action)
        if target is None:  # pragma: no cover - a planning bug, caught by the import tests
            raise AssertionError(f"planned {action} from {self.state.status} in case {self.case_id}")
        self.state.status = target

    @staticmethod
    def _id(ids: dict[str, UUID], key: str) -> UUID:
        try:
            return ids[key]
        except KeyError:
            raise NotInDirectory(key) from None

    def _add(self, row: Row, step: str, command: type[Command], **fields: Any) -> None:
        fields.update(command_id=command_id(self.source, self.case_id, row.index, step), occurred_at=row.at)
        caller = person_caller(row[RESOURCE], self.source, self.correlation_id)
        self.steps.append(Step(command, fields, caller, row))


@dataclass(frozen=True)
class Format:
    """One kind of source log: its columns, its directory, and how a case becomes a ticket."""

    name: str
    title: str
    columns: tuple[str, ...]
    directory: Callable[[Sequence[Case]], Directory] = field(repr=False)
    translate: Callable[[Case, TicketPlan], None] = field(repr=False)
