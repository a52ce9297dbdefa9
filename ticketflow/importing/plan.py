"""Planning one case: the ticket's opening, then the facts of its history, in time order.

A case opens its ticket with an :class:`OpenTicket` command (the ticket's first row);
every later row becomes facts (:class:`~ticketflow.commands.ImportedFact`) that the
desk records as they happened, at the row's time and by the row's person, without the
lifecycle's guards: an assignee before a team, a cleared group or assignee, work after
a close (a reopen), "new" with an assignee. The plan follows the ticket's status, team,
assignee and priority as the facts leave them, so it sends only facts that change
something; a row that changes nothing is counted under a reason instead.

Each row maps to one :class:`Kind`; formats translate their activities into kinds and
call the matching :class:`TicketPlan` method.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from enum import Enum
from typing import Any
from uuid import UUID

from ticketflow.commands import Command, ImportedFact, OpenTicket
from ticketflow.commands.imported import FactKind
from ticketflow.domain.values import Channel, Priority, Status, TicketType
from ticketflow.importing.directory import DirectoryIds, as_name, command_id, person_caller
from ticketflow.importing.xes import RESOURCE, Row
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


class Reason:
    """Why a row (or part of one) wrote nothing: the keys of the summary's ``skipped``."""

    SAME_ASSIGNEE = "already assigned to that person and open"
    SAME_QUEUE = "already queued with that team"
    PENDING = "already pending"
    ON_HOLD = "already on hold"
    OPEN = "already open"
    SOLVED = "already solved"
    CLOSED = "already closed"
    SAME_PRIORITY = "priority unchanged"


class NotInDirectory(LookupError):
    """A case needs a team or requester the directory could not create (its command was refused)."""


@dataclass(frozen=True)
class Step:
    """The planned opening command of a ticket."""

    command_type: type[Command]
    fields: dict[str, Any]
    caller: Caller
    row: Row

    @property
    def command_id(self) -> UUID:
        value: UUID = self.fields["command_id"]
        return value

    def build(self) -> Command:
        return self.command_type(**self.fields)


@dataclass(frozen=True)
class PlannedFact:
    """One fact of the ticket's history; built (and validated) by the runner before anything is written."""

    fields: dict[str, Any]
    row: Row

    @property
    def fact_id(self) -> UUID:
        value: UUID = self.fields["fact_id"]
        return value

    def build(self) -> ImportedFact:
        return ImportedFact(**self.fields)


@dataclass
class TicketState:
    team: str | None
    priority: Priority
    status: Status = Status.NEW
    assignee: str | None = None
    category: str = "general"


class TicketPlan:
    """The opening and the facts replaying one case on one ticket, and the rows that wrote nothing."""

    def __init__(self, source: str, case_id: str, ids: DirectoryIds, actor: str = RESOURCE,
                 counters_sent: dict[str, int] | None = None) -> None:
        self.source = source
        self.actor = actor  # the column naming a row's person
        self.case_id = case_id
        self.ids = ids
        self.correlation_id = f"import:{source}:{case_id}"
        self.opening: Step | None = None
        self.facts: list[PlannedFact] = []
        self.skipped: Counter[str] = Counter()
        self.unmapped: Counter[str] = Counter()  # "column 'value'" seen without a mapping
        self._state: TicketState | None = None
        #: The source's counters at the row being planned (set by the format); each fact keeps them.
        self.counters: dict[str, int] = {}
        #: The counters the ticket has already (a case continued from the desk's state): not sent again alone.
        self._counters_sent: dict[str, int] = dict(counters_sent or {})

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
        team: str | None,
        requester: str,
        priority: Priority,
        ticket_type: TicketType,
        category: str,
        channel: Channel,
        description: str = "",
    ) -> None:
        fields = {
            "subject": subject, "description": description, "ticket_type": ticket_type, "category": category,
            "priority": priority, "channel": channel, "requester_id": self._id(self.ids.customers, requester),
            "team_id": None if team is None else self._id(self.ids.teams, team),
            "command_id": command_id(self.source, self.case_id, row.index, "open"), "occurred_at": row.at,
        }
        caller = person_caller(row[self.actor], self.source, self.correlation_id)
        self.opening = Step(OpenTicket, fields, caller, row)
        self._state = TicketState(team=team, priority=priority, category=category)

    def work(self, row: Row, agent: str | None, team: str | None = None) -> None:
        """``agent`` takes (or keeps working) the ticket, in ``team`` when given: it ends theirs and open."""
        state = self.state
        if team is None or team == state.team:
            placed = self._place(row, state.team, agent or state.assignee, "")
        else:  # another team: with the row's person, or nobody when the row names none
            placed = self._place(row, team, agent, f"reassigned to {team} in the source system")
        moved = self._status(row, Status.OPEN, "worked in the source system")
        if not placed and not moved:
            self.skip(Reason.SAME_ASSIGNEE)

    def queue(self, row: Row, team: str | None) -> None:
        """The ticket waits in ``team``'s queue for someone to take it (a new ticket stays new)."""
        state = self.state
        placed = self._place(row, team, None, f"queued for {team} in the source system")
        moved = state.status is not Status.NEW and self._status(row, Status.OPEN, "queued for assignment in the source system")
        if not placed and not moved:
            self.skip(Reason.SAME_QUEUE)

    def follow(self, row: Row, team: str | None, agent: str | None) -> None:
        """The row shows the ticket in ``team`` (with ``agent``, or nobody when the row names none):
        a move the source made on a row that says something else (a wait, a resolution, a close)."""
        if team is not None and team != self.state.team:
            self._place(row, team, agent, f"in {team} in the source system")

    def pend(self, row: Row, reason: str) -> None:
        if not self._status(row, Status.PENDING, reason):
            self.skip(Reason.PENDING)

    def hold(self, row: Row, reason: str) -> None:
        if not self._status(row, Status.ON_HOLD, reason):
            self.skip(Reason.ON_HOLD)

    def resume(self, row: Row, reason: str) -> None:
        if not self._status(row, Status.OPEN, reason):
            self.skip(Reason.OPEN)

    def solve(self, row: Row, resolution: str) -> None:
        if not self._status(row, Status.SOLVED, resolution):
            self.skip(Reason.SOLVED)

    def close(self, row: Row, resolution: str) -> None:
        """Closed in the source (solved first, so the desk knows when it was solved); later rows may reopen it."""
        if self.state.status is Status.CLOSED:
            self.skip(Reason.CLOSED)
            return
        self._status(row, Status.SOLVED, resolution)
        self._status(row, Status.CLOSED, "")

    def call(self, row: Row, body: str) -> None:
        """A phone call from the customer (it changes no status by itself: the source's rows say what did)."""
        self._fact(row, "call", FactKind.CALL, body=body)

    def note(self, row: Row, body: str) -> None:
        self._fact(row, "note", FactKind.NOTE, body=body)

    def priority(self, row: Row, priority: Priority, reason: str) -> None:
        if priority is self.state.priority:
            self.skip(Reason.SAME_PRIORITY)
            return
        self._fact(row, "priority", FactKind.PRIORITY, priority=priority, reason=reason)
        self.state.priority = priority

    def place(self, row: Row, team: str | None, assignee: str | None, reason: str) -> bool:
        """The ticket is with ``team`` (None: no team) and ``assignee`` (None: nobody), as the source says."""
        return self._place(row, team, assignee, reason)

    def reach(self, row: Row, status: Status, reason: str) -> bool:
        """The ticket reaches ``status`` as the source says (from solved or closed: reopened first)."""
        state = self.state
        if status is state.status or status is Status.NEW:
            return False
        if state.status in (Status.SOLVED, Status.CLOSED) and status not in (Status.SOLVED, Status.CLOSED):
            self._status(row, Status.OPEN, reason)
        return self._status(row, status, reason)

    def category(self, row: Row, category: str) -> bool:
        if category == self.state.category:
            return False
        self._fact(row, "category", FactKind.CATEGORY, category=category)
        self.state.category = category
        return True

    def keep_counters(self, row: Row) -> bool:
        """The row changed only the source's counters: record them when they differ from the last sent."""
        if not self.counters or self.counters == self._counters_sent:
            return False
        self._fact(row, "counters", FactKind.COUNTERS)
        return True

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    # -------------------------------------------------------------- plumbing
    def _status(self, row: Row, status: Status, reason: str) -> bool:
        if self.state.status is status:
            return False
        self._fact(row, str(status), FactKind.STATUS, status=status, reason=reason[:500])
        self.state.status = status
        return True

    def _place(self, row: Row, team: str | None, assignee: str | None, reason: str) -> bool:
        state = self.state
        if (team, assignee) == (state.team, state.assignee):
            return False
        team_id = None if team is None else self._id(self.ids.teams, team)
        self._fact(row, "place", FactKind.PLACEMENT, team_id=team_id, assignee_id=assignee, reason=reason[:500])
        state.team, state.assignee = team, assignee
        return True

    @staticmethod
    def _id(ids: dict[str, UUID], key: str) -> UUID:
        try:
            return ids[key]
        except KeyError:
            raise NotInDirectory(key) from None

    def _fact(self, row: Row, step: str, kind: FactKind, **fields: Any) -> None:
        fields.update(
            fact_id=command_id(self.source, self.case_id, row.index, f"fact:{step}"), kind=kind, occurred_at=row.at,
            actor_id=as_name(row[self.actor]),
        )
        if self.counters:
            fields["source_counters"] = dict(self.counters)
            self._counters_sent = self.counters
        self.facts.append(PlannedFact(fields, row))
