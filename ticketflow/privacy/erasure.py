"""The right to erasure, by crypto-shredding: a mixin of :class:`~ticketflow.application.TicketDesk`.

Erasing a customer records the request, destroys the customer's key, drops every snapshot
that holds their data (the next read replays events, whose personal fields now read
``[erased]``), empties the in-process aggregate cache, and records completion. Neither event
holds personal data. The views act on ``Customer.Erased`` and purge their plaintext copies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ticketflow import metadata
from ticketflow.commands.privacy import EraseCustomer
from ticketflow.domain import Customer, Ticket
from ticketflow.domain.values import Role
from ticketflow.errors import PermissionDenied
from ticketflow.metadata import Caller
from ticketflow.privacy import ledger
from ticketflow.privacy.ledger import ErasureRecord
from ticketflow.privacy.mapper import SubjectErased

if TYPE_CHECKING:
    from ticketflow.application import CommandResult, TicketDesk

    _Base = TicketDesk
else:
    _Base = object

log = logging.getLogger("ticketflow.privacy")

_OPENED = "ticketflow.domain.ticket:Ticket.Opened"
_SCHEDULED = "ticketflow.domain.reminder:Reminder.Scheduled"


@dataclass(frozen=True)
class ErasureScope:
    """What erasing a customer destroys: shown before asking for confirmation (field names, never values)."""

    customer_id: UUID
    profile_fields: tuple[str, ...]
    tickets: int
    reminders: int
    already_erased: bool


class ErasureCommands(_Base):
    def erasure_scope(self, customer_id: UUID) -> ErasureScope:
        customer = self._load(Customer, customer_id)
        fields = ("name", "email", "phone", "im_handle", "company", "job_title")
        present = tuple(f for f in fields if getattr(customer, f, None) not in (None, ""))
        holders = self._holders_of(customer_id)
        tickets = sum(1 for h in holders if self._is(h, Ticket))
        return ErasureScope(customer_id, present, tickets, len(holders) - tickets, bool(customer.erased))

    def erase_customer(self, cmd: EraseCustomer, caller: Caller) -> CommandResult:
        if caller.role not in (Role.COMPLIANCE, Role.ADMIN, Role.SYSTEM):
            raise PermissionDenied(f"a {caller.role} may not erase a customer's personal data")
        self._change(Customer, cmd.customer_id, cmd, caller, lambda c: c.request_erasure(cmd.basis, cmd.reference))
        self._bump_erasures()  # commands that loaded before now put nothing in the cache (application._keep_cached)
        self.keys.destroy(cmd.customer_id)
        self.mail_store.forget(cmd.customer_id)  # their address's blind index entry and their raw mails
        holders = [cmd.customer_id, *self._holders_of(cmd.customer_id)]
        self._drop_snapshots(holders)
        for object_id in holders:  # nothing decrypted before the erasure stays in memory
            self._evict(object_id)
        self._bump_erasures()  # and nor do those that loaded from the cache before the holders left it
        tickets = sum(1 for h in holders[1:] if self._is(h, Ticket))
        with metadata.recording(self._context(cmd, caller)):
            customer = self._load(Customer, cmd.customer_id)
            customer.complete_erasure(cmd.basis, tickets)
            result = self._save(customer, ())
        if self.settings.erasure_ledger is not None:  # what a restore of an older backup re-applies
            erased_at = self.clock.now().astimezone(UTC).isoformat()
            ledger.append(self.settings.erasure_ledger, ErasureRecord(cmd.customer_id, cmd.basis, cmd.reference, erased_at))
        return result

    def _holders_of(self, customer_id: UUID) -> list[UUID]:
        """The tickets and reminders holding the customer's data, found in the log (erasure is rare)."""
        found: list[UUID] = []
        start = 1
        while True:
            page = self.recorder.select_notifications(start, 1000, topics=[_OPENED, _SCHEDULED])
            for notification in page:
                event: Any = self.mapper.to_domain_event(notification)
                owner = getattr(event, "requester_id", None) or getattr(event, "customer_id", None)
                if owner == customer_id:
                    found.append(notification.originator_id)
            if len(page) < 1000:
                return found
            start = page[-1].id + 1

    def _is(self, object_id: UUID, cls: type) -> bool:
        first = self.recorder.select_events(object_id, limit=1)
        return bool(first) and first[0].topic.startswith(f"{cls.__module__}:{cls.__qualname__}.")

    def _drop_snapshots(self, object_ids: list[UUID]) -> None:
        """Delete every snapshot of these aggregates: a snapshot holds decrypted-then-sealed state."""
        if self.snapshots is None:
            return
        recorder: Any = self.snapshots.recorder
        table = getattr(recorder, "events_table_name", None)
        if table is None:  # the in-memory store keeps snapshots in a dict
            for object_id in object_ids:
                recorder._stored_events_index.pop(str(object_id), None)  # noqa: SLF001
            return
        postgres = "Postgres" in type(recorder).__name__
        if postgres and recorder.datastore.schema:
            table = '"' + recorder.datastore.schema.replace('"', '""') + '".' + table
        placeholder = "%s" if postgres else "?"
        with recorder.datastore.transaction(commit=True) as cursor:
            for object_id in object_ids:
                cursor.execute(
                    f"DELETE FROM {table} WHERE originator_id = {placeholder}",
                    (object_id if postgres else object_id.hex,),
                )

    def take_snapshot(self, aggregate_id: UUID, version: int | None = None, projector_func: Any = None) -> None:
        """Snapshots of an erased customer's aggregates are not kept (their events replay as erased)."""
        try:
            if projector_func is None:
                super().take_snapshot(aggregate_id, version)  # type: ignore[misc]
            else:
                super().take_snapshot(aggregate_id, version, projector_func)  # type: ignore[misc]
        except SubjectErased as exc:
            log.info("no snapshot: %s", exc)

