"""Staff accounts: a named person who signs in to the console with a password.

An agent's or supervisor's account is bound to one team member (``agent_id``): its teams come
from team membership, like a person's API token. Admins, auditors and compliance reviewers are
named people with their role. The events say *that* a password was set, by whom and why —
never the hash, which lives in the credential store outside the log
(:mod:`ticketflow.accounts.store`).
"""

from __future__ import annotations

from dataclasses import dataclass

from eventsourcing.domain import event

from ticketflow.domain.base import TicketflowAggregate
from ticketflow.errors import RuleViolation


class StaffAccount(TicketflowAggregate):
    @dataclass(frozen=True)
    class Created(TicketflowAggregate.Created):
        username: str
        display_name: str
        role: str
        agent_id: str | None

    @dataclass(frozen=True)
    class PasswordSet(TicketflowAggregate.Event):
        reason: str  # created, reset (by an admin) or changed (by the holder)

    @dataclass(frozen=True)
    class Disabled(TicketflowAggregate.Event):
        reason: str

    @dataclass(frozen=True)
    class Enabled(TicketflowAggregate.Event):
        pass

    @event(Created)
    def __init__(self, username: str, display_name: str, role: str, agent_id: str | None) -> None:
        self.username = username
        self.display_name = display_name
        self.role = role
        self.agent_id = agent_id
        self.disabled = False
        self.password_serial = 0  # how many times a password was set (the credential store keeps the same number)

    def set_password(self, reason: str) -> None:
        self._password_set(reason=reason)

    @event(PasswordSet)
    def _password_set(self, reason: str) -> None:
        self.password_serial += 1

    def disable(self, reason: str) -> None:
        if self.disabled:
            raise RuleViolation(f"account {self.username!r} is already disabled")
        self._disabled(reason=reason)

    @event(Disabled)
    def _disabled(self, reason: str) -> None:
        self.disabled = True

    def enable(self) -> None:
        if not self.disabled:
            raise RuleViolation(f"account {self.username!r} is not disabled")
        self._enabled()

    @event(Enabled)
    def _enabled(self) -> None:
        self.disabled = False
