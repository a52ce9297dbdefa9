"""The ticket timeline: every interaction and service-process entry of a ticket, in order."""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, uuid5

from projections.erasure import erased_customer, overwrite
from projections.sql import Batch, Db, Table, ts, uuid_text
from projections.view import Event, View
from ticketflow.domain import Customer, Ticket

TIMELINE = Table(
    "tf_timeline",
    columns=(
        "ticket_id TEXT NOT NULL",
        "version INTEGER NOT NULL",
        "position BIGINT",
        "occurred_at TEXT",
        "entry_type TEXT",  # reply, note, call, email, chat, meeting, work, attachment
        "entry_id TEXT",
        "author_id TEXT",
        "channel TEXT",
        "direction TEXT",
        "public INTEGER",
        "body TEXT",
        "minutes INTEGER",
        "result TEXT",
        "customer_id TEXT",
    ),
    key=("ticket_id", "version"),
    indexes=(("customer_id",),),
)


class TimelineView(View):
    name = "timeline"
    purges_personal_data = True
    tables = (TIMELINE,)
    event_types = (Ticket.Interaction, Ticket.AttachmentReceived, Ticket.WorkLogged, Customer.Erased)

    def apply(self, batch: Batch, event: Event, position: int) -> None:
        if (customer_id := erased_customer(event)) is not None:
            # Bodies, work actions and results: every entry of the customer's tickets names them.
            overwrite(batch, TIMELINE, ("body", "result"), "customer_id = ?", (customer_id,))
            return
        common = {
            "ticket_id": uuid_text(event.originator_id),
            "version": event.originator_version,
            "position": position,
            "occurred_at": ts(event.occurred_at),
        }
        if isinstance(event, Ticket.Interaction):
            batch.put(
                TIMELINE,
                {
                    **common,
                    "entry_type": event.kind.value,
                    "entry_id": str(event.interaction_id),
                    "author_id": event.author_id,
                    "channel": event.channel,
                    "direction": event.direction,
                    "public": int(event.public),
                    "body": event.body,
                    "minutes": getattr(event, "duration_minutes", 0),
                    "result": None,
                    "customer_id": str(event.customer_id),
                },
            )
        elif isinstance(event, Ticket.AttachmentReceived):
            # An attachment of the customer's mail, right after the mail's entry: its file name as the body
            # (personal: masked and erased like bodies); what it is and where to fetch it, the API adds.
            batch.put(
                TIMELINE,
                {
                    **common,
                    "entry_type": "attachment",
                    "entry_id": str(attachment_entry_id(uuid_text(event.originator_id), event.originator_version)),
                    "author_id": str(event.customer_id),
                    "channel": "email",
                    "direction": "inbound",
                    "public": 1,
                    "body": event.filename,
                    "minutes": 0,
                    "result": None,
                    "customer_id": str(event.customer_id),
                },
            )
        elif isinstance(event, Ticket.WorkLogged):
            batch.put(
                TIMELINE,
                {
                    **common,
                    "entry_type": "work",
                    "entry_id": str(event.entry_id),
                    "author_id": event.performer_id,
                    "channel": event.via,
                    "direction": "internal",
                    "public": 0,
                    "body": event.action,
                    "minutes": event.minutes,
                    "result": event.result,
                    "customer_id": str(event.customer_id),
                },
            )


def attachment_entry_id(ticket_id: str, version: int) -> Any:
    """The timeline entry id of the attachment recorded at this version of the ticket."""
    return uuid5(NAMESPACE_URL, f"https://ticketflow.dev/attachment/{ticket_id}/{version}")


def ticket_timeline(db: Db, ticket_id: str, *, public_only: bool = False) -> list[dict[str, Any]]:
    sql = "SELECT * FROM {p}tf_timeline WHERE ticket_id = ?"
    if public_only:
        sql += " AND public = 1"
    return db.all(sql + " ORDER BY version", (ticket_id,))
