"""Reads of personal data, recorded: who saw which customer's data, which fields, why.

Each unmasked read is its own small aggregate with one event, so recording a read
never changes the customer's version (and so never invalidates an ETag).
The values read are never recorded, only the field names.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from eventsourcing.domain import event

from ticketflow.domain.base import TicketflowAggregate


class DataAccess(TicketflowAggregate):
    @dataclass(frozen=True)
    class Recorded(TicketflowAggregate.Created):
        customer_id: UUID
        fields: list[str]
        purpose: str
        request_id: str
        resource: str

    @event(Recorded)
    def __init__(self, customer_id: UUID, fields: list[str], purpose: str, request_id: str, resource: str) -> None:
        self.customer_id = customer_id
        self.fields = list(fields)
        self.purpose = purpose
        self.request_id = request_id
        self.resource = resource
