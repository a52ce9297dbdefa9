"""Reminders and follow-ups (提醒, 回访): something to do about a ticket or a customer, by a due time.

A reminder is for an agent or a team. When it falls due it fires (once): it shows in that
agent's or team's queue and sends a notification; it stays there until done or cancelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar
from uuid import UUID

from eventsourcing.domain import event

from ticketflow.domain.base import TicketflowAggregate
from ticketflow.errors import RuleViolation


class Reminder(TicketflowAggregate):
    @dataclass(frozen=True)
    class Scheduled(TicketflowAggregate.Created):
        personal_fields: ClassVar[frozenset[str]] = frozenset({"note"})
        data_subject: ClassVar[str | None] = "customer_id"

        kind: str  # "reminder" or "follow_up"
        ticket_id: UUID | None
        customer_id: UUID | None
        agent_id: str | None
        team_id: UUID | None
        due_at: datetime
        note: str

    @dataclass(frozen=True)
    class Fired(TicketflowAggregate.Event):
        """Due now: who should act, and on what (a notification receiver needs no other read)."""

        due_at: datetime
        kind: str
        agent_id: str | None
        team_id: UUID | None
        ticket_id: UUID | None
        customer_id: UUID | None

    @dataclass(frozen=True)
    class Done(TicketflowAggregate.Event):
        personal_fields: ClassVar[frozenset[str]] = frozenset({"outcome"})
        data_subject: ClassVar[str | None] = "customer_id"

        outcome: str
        customer_id: UUID | None

    @dataclass(frozen=True)
    class Cancelled(TicketflowAggregate.Event):
        personal_fields: ClassVar[frozenset[str]] = frozenset({"reason"})
        data_subject: ClassVar[str | None] = "customer_id"

        reason: str
        customer_id: UUID | None

    @event(Scheduled)
    def __init__(
        self,
        kind: str,
        ticket_id: UUID | None,
        customer_id: UUID | None,
        agent_id: str | None,
        team_id: UUID | None,
        due_at: datetime,
        note: str,
    ) -> None:
        self.kind = kind
        self.ticket_id = ticket_id
        self.customer_id = customer_id
        self.agent_id = agent_id
        self.team_id = team_id
        self.due_at = due_at
        self.note = note
        self.state = "scheduled"  # -> fired -> done | cancelled

    def fire(self) -> None:
        if self.state != "scheduled":
            raise RuleViolation(f"reminder {self.id} is {self.state}, not scheduled")
        self._fired(
            due_at=self.due_at, kind=self.kind, agent_id=self.agent_id, team_id=self.team_id,
            ticket_id=self.ticket_id, customer_id=self.customer_id,
        )

    def complete(self, outcome: str) -> None:
        if self.state in ("done", "cancelled"):
            raise RuleViolation(f"reminder {self.id} is already {self.state}")
        self._done(outcome=outcome, customer_id=self.customer_id)

    def cancel(self, reason: str) -> None:
        if self.state in ("done", "cancelled"):
            raise RuleViolation(f"reminder {self.id} is already {self.state}")
        self._cancelled(reason=reason, customer_id=self.customer_id)

    @event(Fired)
    def _fired(
        self, due_at: datetime, kind: str, agent_id: str | None, team_id: UUID | None,
        ticket_id: UUID | None, customer_id: UUID | None,
    ) -> None:
        self.state = "fired"

    @event(Done)
    def _done(self, outcome: str, customer_id: UUID | None) -> None:
        self.state = "done"

    @event(Cancelled)
    def _cancelled(self, reason: str, customer_id: UUID | None) -> None:
        self.state = "cancelled"
