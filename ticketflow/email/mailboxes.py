"""Mailbox configuration: a mixin of :class:`~ticketflow.application.TicketDesk` (admins only)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

from ticketflow.commands.mailbox import AddMailbox, RemoveMailbox
from ticketflow.domain.mailbox import Mailbox
from ticketflow.domain.values import Role
from ticketflow.errors import NotFound, PermissionDenied, RuleViolation
from ticketflow.metadata import Caller

if TYPE_CHECKING:
    from ticketflow.application import CommandResult, TicketDesk

    _Base = TicketDesk
else:
    _Base = object


class MailboxCommands(_Base):
    def add_mailbox(self, cmd: AddMailbox, caller: Caller) -> CommandResult:
        _admins_only(caller)
        address = cmd.address.lower()
        for other in self.mailboxes():
            if other.name == cmd.name:
                raise RuleViolation(f"a mailbox named {cmd.name!r} exists already", field="name")
            if other.address == address:
                raise RuleViolation(f"mailbox {other.name!r} receives for {address} already", field="address")
        if cmd.team_id is not None:
            from ticketflow.domain import Team

            self._require_exists(Team, cmd.team_id)
        return self._create(
            Mailbox,
            cmd,
            caller,
            lambda mailbox_id: Mailbox._create(
                Mailbox.Added,
                id=mailbox_id,
                name=cmd.name,
                address=address,
                team_id=cmd.team_id,
                protocol=str(cmd.protocol),
                imap=cmd.imap_settings(),
            ),
        )

    def remove_mailbox(self, cmd: RemoveMailbox, caller: Caller) -> CommandResult:
        _admins_only(caller)
        return self._change(Mailbox, cmd.mailbox_id, cmd, caller, lambda m: m.remove(cmd.reason))

    def mailboxes(self, include_removed: bool = False) -> list[Mailbox]:
        found = [self._peek(Mailbox, i) for i in self._ids_of(Mailbox)]
        return sorted((m for m in found if include_removed or m.active), key=lambda m: m.name)

    def get_mailbox(self, mailbox_id: UUID) -> Mailbox:
        return self._load(Mailbox, mailbox_id)

    def find_mailbox(self, name_or_id: str) -> Mailbox:
        for mailbox in self.mailboxes():
            if mailbox.name == name_or_id or str(mailbox.id) == name_or_id:
                return mailbox
        raise NotFound("mailbox", name_or_id)

    def mailbox_for_address(self, address: str) -> Mailbox | None:
        address = address.strip().lower()
        return next((m for m in self.mailboxes() if m.address == address), None)


def imap_password(mailbox: Mailbox, environ: dict[str, str] | None = None) -> str:
    """The IMAP password from where the mailbox says it is; a clear error when it is not there."""
    imap = mailbox.imap or {}
    if imap.get("password_env"):
        value = (environ if environ is not None else dict(os.environ)).get(imap["password_env"])
        if not value:
            raise RuleViolation(
                f"mailbox {mailbox.name!r}: the environment variable {imap['password_env']} is not set"
            )
        return value
    path = Path(imap.get("password_file") or "")
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise RuleViolation(
            f"mailbox {mailbox.name!r}: cannot read the password file {path}: {exc.strerror}"
        ) from None


def _admins_only(caller: Caller) -> None:
    if caller.role not in (Role.ADMIN, Role.SYSTEM):
        raise PermissionDenied("only an admin may configure mailboxes")
