"""API tokens: who may call the HTTP API, in which role, for which teams.

Only a hash of the secret is stored; the token itself is shown once, when issued.
"""

from __future__ import annotations

from dataclasses import dataclass

from eventsourcing.domain import event

from ticketflow.domain.base import TicketflowAggregate
from ticketflow.errors import RuleViolation


class ApiToken(TicketflowAggregate):
    @dataclass(frozen=True)
    class Issued(TicketflowAggregate.Created):
        name: str
        role: str
        team_ids: list[str]
        secret_hash: str

    @dataclass(frozen=True)
    class Revoked(TicketflowAggregate.Event):
        reason: str

    @event(Issued)
    def __init__(self, name: str, role: str, team_ids: list[str], secret_hash: str) -> None:
        self.name = name
        self.role = role
        self.team_ids = list(team_ids)
        self.secret_hash = secret_hash
        self.revoked = False

    def revoke(self, reason: str) -> None:
        if self.revoked:
            raise RuleViolation(f"token {self.id} is already revoked")
        self._revoked(reason=reason)

    @event(Revoked)
    def _revoked(self, reason: str) -> None:
        self.revoked = True
