"""Straightforward recomputation of what each view should hold, from aggregates and stored events.

Deliberately written without the views' code: it loads each ticket and customer
through the repository (the write side's own replay) and walks stored events.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from projections.sql import ts
from ticketflow.application import TicketDesk
from ticketflow.domain import Customer, Ticket


def all_events(desk: TicketDesk) -> list[tuple[Any, int]]:
    notifications = desk.recorder.select_notifications(1, 10**9)
    return [(desk.mapper.to_domain_event(n), n.id) for n in notifications]


def expected_tickets(desk: TicketDesk) -> dict[str, dict[str, Any]]:
    events = all_events(desk)
    first_reply: dict[UUID, Any] = {}
    reassignments: dict[UUID, int] = {}
    breaches: dict[UUID, list[str]] = {}
    for event, _ in events:
        tid = event.originator_id
        if type(event).__qualname__ == "Ticket.SlaBreached":
            breaches.setdefault(tid, []).append(ts(event.due_at))
        if type(event).__qualname__ == "Ticket.Replied" and event.direction == "outbound":
            first_reply.setdefault(tid, event.occurred_at)
        if type(event).__qualname__ == "Ticket.Assigned" and event.previous_assignee_id is not None:
            reassignments[tid] = reassignments.get(tid, 0) + 1
        if type(event).__qualname__ == "Ticket.Transferred":
            reassignments[tid] = reassignments.get(tid, 0) + 1
    rows = {}
    for event, _ in events:
        if type(event).__qualname__ != "Ticket.Opened":
            continue
        ticket = desk.get_ticket(event.originator_id)
        assert isinstance(ticket, Ticket)
        rows[str(ticket.id)] = {
            "status": str(ticket.status),
            "priority": str(ticket.priority),
            "category": ticket.category,
            "ticket_type": str(ticket.ticket_type),
            "team_id": str(ticket.team_id) if ticket.team_id else None,
            "assignee_id": ticket.assignee_id,
            "customer_id": str(ticket.requester_id),
            "tags": ticket.tags,
            "reply_count": ticket.public_reply_count,
            "note_count": ticket.note_count,
            "interaction_count": ticket.interaction_count,
            "work_minutes": ticket.work_minutes,
            "reopen_count": ticket.reopen_count,
            "reassignment_count": reassignments.get(ticket.id, 0),
            "satisfaction": ticket.satisfaction["score"] if ticket.satisfaction else None,
            "merged_into": str(ticket.merged_into) if ticket.merged_into else None,
            "created_at": ts(ticket.created_at),
            "updated_at": ts(ticket.updated_at),
            "solved_at": ts(ticket.solved_at),
            "closed_at": ts(ticket.closed_at),
            "first_reply_at": ts(first_reply.get(ticket.id)),
            "sla_breached": int(ticket.id in breaches),
            "sla_breached_at": max(breaches[ticket.id]) if ticket.id in breaches else None,
            "version": ticket.version,
        }
    return rows


def expected_timeline(desk: TicketDesk) -> dict[str, list[tuple[int, str, str]]]:
    timeline: dict[str, list[tuple[int, str, str]]] = {}
    for event, _ in all_events(desk):
        name = type(event).__qualname__
        if name in {"Ticket.Replied", "Ticket.NoteAdded", "Ticket.CallLogged", "Ticket.EmailLogged",
                    "Ticket.ChatLogged", "Ticket.MeetingMinuted"}:
            timeline.setdefault(str(event.originator_id), []).append((event.originator_version, event.kind.value, event.body))
        elif name == "Ticket.WorkLogged":
            timeline.setdefault(str(event.originator_id), []).append((event.originator_version, "work", event.action))
    return timeline


def expected_audit(desk: TicketDesk) -> list[tuple[int, str, int, str, str, str]]:
    return [
        (position, str(e.originator_id), e.originator_version, type(e).__qualname__, e.actor_id, e.via)
        for e, position in all_events(desk)
    ]


def expected_customers(desk: TicketDesk) -> dict[str, dict[str, Any]]:
    tickets = expected_tickets(desk)
    result: dict[str, dict[str, Any]] = {}
    for event, _ in all_events(desk):
        if type(event).__qualname__ != "Customer.Registered":
            continue
        customer = desk.get_customer(event.originator_id)
        assert isinstance(customer, Customer)
        mine = {tid: t for tid, t in tickets.items() if t["customer_id"] == str(customer.id)}
        result[str(customer.id)] = {
            "name": customer.name,
            "company": customer.company,
            "tier": str(customer.tier),
            "consents": customer.consents,
            "ticket_statuses": {tid: t["status"] for tid, t in mine.items()},
            "interaction_count": sum(t["interaction_count"] for t in mine.values()),
        }
    return result
