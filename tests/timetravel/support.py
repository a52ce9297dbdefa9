"""Helpers for the time-travel tests: a long-lived ticket written in bulk."""

from __future__ import annotations

import uuid

from ticketflow import metadata
from ticketflow.application import TicketDesk
from ticketflow.domain import Ticket
from ticketflow.domain.values import Direction, InteractionKind
from tests.support import AGENT

KINDS = (InteractionKind.NOTE, InteractionKind.REPLY, InteractionKind.CALL)


def grow(desk: TicketDesk, ticket_id: uuid.UUID, events: int, chunk: int = 500) -> None:
    """Append about ``events`` interactions to a ticket, ``chunk`` per save (snapshots are still
    taken every interval: the library snapshots at each multiple inside a save)."""
    written = 0
    while written < events:
        ticket: Ticket = desk.get_ticket(ticket_id)
        ctx = metadata.context_for(AGENT, uuid.uuid4(), desk.clock.now())
        with metadata.recording(ctx):
            for n in range(min(chunk, events - written)):
                kind = KINDS[n % len(KINDS)]
                direction = Direction.INTERNAL if kind is InteractionKind.NOTE else Direction.OUTBOUND
                ticket.record_interaction(kind, uuid.uuid4(), direction, AGENT.actor_id, "phone", f"entry {written + n}")
        desk.save(ticket)
        written += min(chunk, events - written)
