"""The first event of a ticket, from the command that opens it (the desk's own and mail's intake)."""

from __future__ import annotations

from uuid import UUID

from ticketflow.commands import OpenTicket
from ticketflow.domain import Ticket


def opened_ticket(ticket_id: UUID, cmd: OpenTicket) -> Ticket:
    """The new ticket an ``OpenTicket`` command describes (its first event, ``Ticket.Opened``)."""
    return Ticket._create(
        Ticket.Opened,
        id=ticket_id,
        subject=cmd.subject,
        description=cmd.description,
        ticket_type=str(cmd.ticket_type),
        category=cmd.category,
        priority=str(cmd.priority),
        channel=str(cmd.channel),
        requester_id=cmd.requester_id,
        team_id=cmd.team_id,
        tags=sorted(set(cmd.tags)),
    )
