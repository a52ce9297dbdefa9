"""Mailboxes: where the desk receives mail, configured by admins (like webhooks).

A mailbox names the desk address it receives for, the team whose tickets its mail opens, and how
mail arrives: ``lmtp`` (the desk's mail server pipes it to ``ticketflow mailbox serve-lmtp``) or
``imap`` (fetched by the automation process). An IMAP password is never in an event: the mailbox
names the environment variable or the file that holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from ticketflow.domain.base import TicketflowAggregate
from ticketflow.errors import RuleViolation


class Mailbox(TicketflowAggregate):
    @dataclass(frozen=True)
    class Added(TicketflowAggregate.Created):
        name: str
        address: str  # the desk's own address (lower-cased): replies to its tickets go out from it
        team_id: UUID | None
        protocol: str  # "lmtp" or "imap"
        # host, port, username, folder, tls, security (ssl, starttls or plain; absent in mailboxes added
        # before it: tls True meant ssl), password_env or password_file
        imap: dict[str, Any] | None

    @dataclass(frozen=True)
    class Removed(TicketflowAggregate.Event):
        reason: str

    @event(Added)
    def __init__(
        self, name: str, address: str, team_id: UUID | None, protocol: str, imap: dict[str, Any] | None
    ) -> None:
        self.name = name
        self.address = address
        self.team_id = team_id
        self.protocol = protocol
        self.imap = imap
        self.active = True

    @property
    def imap_security(self) -> str:
        """ssl, starttls or plain (a mailbox added before the mode was recorded: from its ``tls`` flag)."""
        imap = self.imap or {}
        return str(imap.get("security") or ("ssl" if imap.get("tls", True) else "plain"))

    def remove(self, reason: str) -> None:
        if not self.active:
            raise RuleViolation(f"mailbox {self.name!r} is already removed")
        self._removed(reason=reason)

    @event(Removed)
    def _removed(self, reason: str) -> None:
        self.active = False
