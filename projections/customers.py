"""Customer 360: the profile, every ticket and interaction, and the figures of the "5 P" analysis."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from projections.erasure import erased_customer, overwrite
from projections.sql import Batch, Db, Table, dumps, loads, parse_ts, preload, ts, uid, uuid_text
from projections.tickets import is_first_reply_candidate, status_after
from projections.view import Event, Positioned, View
from ticketflow.domain import Customer, Ticket
from ticketflow.domain.customer import ERASED
from ticketflow.domain.values import Status, TicketType

CUSTOMERS = Table(
    "tf_customers",
    columns=(
        "customer_id TEXT NOT NULL",
        "name TEXT",
        "email TEXT",
        "phone TEXT",
        "im_handle TEXT",
        "company TEXT",
        "job_title TEXT",
        "preferred_language TEXT",
        "tier TEXT",
        "consents TEXT",
        "note_count INTEGER",
        "registered_at TEXT",
        "updated_at TEXT",
        "version INTEGER",
    ),
    key=("customer_id",),
    indexes=(("tier",),),
)

CUSTOMER_TICKETS = Table(
    "tf_customer_tickets",
    columns=(
        "ticket_id TEXT NOT NULL",
        "customer_id TEXT",
        "subject TEXT",
        "ticket_type TEXT",
        "category TEXT",
        "priority TEXT",
        "channel TEXT",
        "status TEXT",
        "created_at TEXT",
        "first_reply_at TEXT",
        "solved_at TEXT",
        "closed_at TEXT",
        "satisfaction INTEGER",
        "interaction_count INTEGER",
        "updated_at TEXT",
    ),
    key=("ticket_id",),
    indexes=(("customer_id", "created_at"),),
)

CUSTOMER_INTERACTIONS = Table(
    "tf_customer_interactions",
    columns=(
        "ticket_id TEXT NOT NULL",
        "version INTEGER NOT NULL",
        "customer_id TEXT",
        "occurred_at TEXT",
        "kind TEXT",
        "direction TEXT",
        "channel TEXT",
        "author_id TEXT",
        "body TEXT",
    ),
    key=("ticket_id", "version"),
    indexes=(("customer_id", "occurred_at"),),
)

PROFILE = ("name", "email", "phone", "im_handle", "company", "job_title")


class CustomersView(View):
    name = "customers"
    purges_personal_data = True
    tables = (CUSTOMERS, CUSTOMER_TICKETS, CUSTOMER_INTERACTIONS)
    event_types = (Customer.Event, Ticket.Event)

    def prepare(self, batch: Batch, events: Sequence[Positioned]) -> None:
        preload(batch, CUSTOMERS, "customer_id", {uuid_text(e.originator_id) for e, _ in events if isinstance(e, Customer.Event)})
        preload(batch, CUSTOMER_TICKETS, "ticket_id", {uuid_text(e.originator_id) for e, _ in events if isinstance(e, Ticket.Event)})

    def apply(self, batch: Batch, event: Event, position: int) -> None:
        if (customer_id := erased_customer(event)) is not None:
            self._erase(batch, customer_id)
        if isinstance(event, Customer.Event):
            self._customer(batch, event)
        elif isinstance(event, Ticket.Event):
            self._ticket(batch, event)

    @staticmethod
    def _erase(batch: Batch, customer_id: str) -> None:
        """Drop the customer's plaintext: profile, their tickets' subjects, their interactions' bodies."""
        overwrite(batch, CUSTOMERS, PROFILE, "customer_id = ?", (customer_id,))
        overwrite(batch, CUSTOMER_TICKETS, ("subject",), "customer_id = ?", (customer_id,))
        overwrite(batch, CUSTOMER_INTERACTIONS, ("body",), "customer_id = ?", (customer_id,))

    def _customer(self, batch: Batch, event: Event) -> None:
        key = uuid_text(event.originator_id)
        when = ts(event.occurred_at)
        if isinstance(event, Customer.Registered):
            batch.put(
                CUSTOMERS,
                {
                    "customer_id": key,
                    **{name: getattr(event, name) for name in PROFILE},
                    "preferred_language": event.preferred_language,
                    "tier": event.tier,
                    "consents": dumps(sorted(event.consents)),
                    "note_count": 0,
                    "registered_at": when,
                    "updated_at": when,
                    "version": event.originator_version,
                },
            )
            return
        row = batch.get(CUSTOMERS, key)
        if row is None:  # pragma: no cover
            return
        row.update(updated_at=when, version=event.originator_version)
        match event:
            case Customer.ProfileUpdated():
                # (a dict: the erased form of an erased customer's change keeps the field names)
                for name, value in (event.changes if isinstance(event.changes, dict) else {}).items():
                    row[name] = value or None
            case Customer.LanguageChanged():
                row["preferred_language"] = event.preferred_language
            case Customer.TierChanged():
                row["tier"] = event.tier
            case Customer.ConsentGiven():
                row["consents"] = dumps(sorted({*loads(row["consents"]), event.purpose}))
            case Customer.ConsentWithdrawn():
                row["consents"] = dumps(sorted(set(loads(row["consents"])) - {event.purpose}))
            case Customer.NoteAdded():
                row["note_count"] += 1
        batch.touch(CUSTOMERS, row)

    def _ticket(self, batch: Batch, event: Event) -> None:
        key = uuid_text(event.originator_id)
        when = ts(event.occurred_at)
        if isinstance(event, Ticket.Opened):
            batch.put(
                CUSTOMER_TICKETS,
                {
                    "ticket_id": key,
                    "customer_id": uid(event.requester_id),
                    "subject": event.subject,
                    "ticket_type": event.ticket_type,
                    "category": event.category,
                    "priority": event.priority,
                    "channel": event.channel,
                    "status": Status.NEW.value,
                    "created_at": when,
                    "first_reply_at": None,
                    "solved_at": None,
                    "closed_at": None,
                    "satisfaction": None,
                    "interaction_count": 0,
                    "updated_at": when,
                },
            )
            return
        row = batch.get(CUSTOMER_TICKETS, key)
        if row is None:  # pragma: no cover
            return
        row["updated_at"] = when
        status = status_after(event)
        if status is not None:
            row["status"] = status.value
        match event:
            case Ticket.Solved():
                row["solved_at"] = when
            case Ticket.Reopened():
                row["solved_at"] = None
                row["closed_at"] = None  # imported history may reopen a closed ticket
            case Ticket.Closed() | Ticket.MergedInto():
                row["closed_at"] = when
            case Ticket.Recategorised():
                row["category"] = event.category
                row["ticket_type"] = event.ticket_type
            case Ticket.PriorityChanged():
                row["priority"] = event.priority
            case Ticket.Routed() if event.priority is not None:
                row["priority"] = event.priority
            case Ticket.Rated():
                row["satisfaction"] = event.score
            case Ticket.Interaction():
                row["interaction_count"] += 1
                if is_first_reply_candidate(event) and row["first_reply_at"] is None:
                    row["first_reply_at"] = when
                batch.put(
                    CUSTOMER_INTERACTIONS,
                    {
                        "ticket_id": key,
                        "version": event.originator_version,
                        "customer_id": str(event.customer_id),
                        "occurred_at": when,
                        "kind": event.kind.value,
                        "direction": event.direction,
                        "channel": event.channel,
                        "author_id": event.author_id,
                        "body": event.body,
                    },
                )
        batch.touch(CUSTOMER_TICKETS, row)


def _hours(start: str | None, end: str | None) -> float | None:
    if start is None or end is None:
        return None
    a, b = parse_ts(start), parse_ts(end)
    assert a is not None and b is not None
    return (b - a).total_seconds() / 3600


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 3) if values else None


def customer_overview(db: Db, customer_id: str, *, interactions_limit: int = 200) -> dict[str, Any] | None:
    """The customer 360: profile, tickets, recent interactions and derived figures."""
    profile = db.one("SELECT * FROM {p}tf_customers WHERE customer_id = ?", (customer_id,))
    if profile is None:
        return None
    profile["consents"] = loads(profile["consents"])
    tickets = db.all(
        "SELECT * FROM {p}tf_customer_tickets WHERE customer_id = ? ORDER BY created_at, ticket_id", (customer_id,)
    )
    interactions = db.all(
        "SELECT * FROM {p}tf_customer_interactions WHERE customer_id = ? ORDER BY occurred_at DESC, ticket_id, version"
        " LIMIT ?",
        (customer_id, interactions_limit),
    )
    contact_times = db.one(
        "SELECT MIN(occurred_at) AS first, MAX(occurred_at) AS last, COUNT(*) AS n"
        " FROM {p}tf_customer_interactions WHERE customer_id = ?",
        (customer_id,),
    ) or {"first": None, "last": None, "n": 0}
    return {
        "profile": profile,
        "tickets": tickets,
        "interactions": interactions,
        "figures": figures(tickets, contact_times),
    }


def figures(tickets: list[dict[str, Any]], contact_times: dict[str, Any]) -> dict[str, Any]:
    by_type = Counter(t["ticket_type"] for t in tickets)
    scores = [t["satisfaction"] for t in tickets if t["satisfaction"] is not None]
    first_reply = [h for t in tickets if (h := _hours(t["created_at"], t["first_reply_at"])) is not None]
    resolution = [h for t in tickets if (h := _hours(t["created_at"], t["solved_at"])) is not None]
    opened = [t["created_at"] for t in tickets]
    first_contact = min(filter(None, [*opened, contact_times["first"]]), default=None)
    last_contact = max(filter(None, [*opened, contact_times["last"]]), default=None)
    tenure_days = None
    if first_contact and last_contact:
        tenure = datetime.fromisoformat(last_contact) - datetime.fromisoformat(first_contact)
        tenure_days = round(tenure.total_seconds() / 86400, 2)
    count = len(tickets)
    return {
        "ticket_count": count,
        "tickets_by_type": {t.value: by_type.get(t.value, 0) for t in TicketType},
        "complaint_rate": round(by_type.get(TicketType.COMPLAINT.value, 0) / count, 4) if count else None,
        "open_tickets": sum(1 for t in tickets if t["status"] not in (Status.SOLVED.value, Status.CLOSED.value)),
        "average_satisfaction": _mean([float(s) for s in scores]),
        "ratings": len(scores),
        "interaction_count": contact_times["n"],
        "first_contact": first_contact,
        "last_contact": last_contact,
        "tenure_days": tenure_days,
        "average_first_reply_hours": _mean(first_reply),
        "average_resolution_hours": _mean(resolution),
    }


def inactive_customers(db: Db, cutoff: str, limit: int = 100) -> list[str]:
    """Customers the retention rule erases: not erased yet, profile unchanged since ``cutoff``, and no
    ticket that is still open or changed since then (oldest id first)."""
    rows = db.all(
        "SELECT c.customer_id FROM {p}tf_customers c WHERE c.updated_at < ? AND c.name <> ? "
        "AND NOT EXISTS (SELECT 1 FROM {p}tf_customer_tickets t WHERE t.customer_id = c.customer_id "
        "AND (t.updated_at >= ? OR t.status <> 'closed')) ORDER BY c.customer_id LIMIT ?",
        (cutoff, ERASED, cutoff, limit),
    )
    return [row["customer_id"] for row in rows]
