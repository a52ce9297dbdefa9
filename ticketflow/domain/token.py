"""API tokens: who may call the HTTP API, in which role, for which teams.

Only a hash of the secret is stored; the token itself is shown once, when issued.
An agent's or supervisor's token is bound to one team member (``agent_id``), whose
teams come from the directory; an integration token carries its own permissions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
        agent_id: str | None  # v2: the team member an agent's or supervisor's token belongs to
        permissions: list[str] | None  # v2: an integration token's permissions (None: the default)

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Tokens issued before v2 were bound to no one and carried their role's permissions."""
            state["agent_id"] = None
            state["permissions"] = None

    @dataclass(frozen=True)
    class Revoked(TicketflowAggregate.Event):
        reason: str

    @event(Issued)
    def __init__(
        self, name: str, role: str, team_ids: list[str], secret_hash: str, agent_id: str | None,
        permissions: list[str] | None,
    ) -> None:
        self.name = name
        self.role = role
        self.team_ids = list(team_ids)
        self.secret_hash = secret_hash
        self.agent_id = agent_id
        self.permissions = None if permissions is None else list(permissions)
        self.revoked = False

    def revoke(self, reason: str) -> None:
        if self.revoked:
            raise RuleViolation(f"token {self.id} is already revoked")
        self._revoked(reason=reason)

    @event(Revoked)
    def _revoked(self, reason: str) -> None:
        self.revoked = True
