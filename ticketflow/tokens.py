"""API tokens as a list for the admin: each token folded from its own events (``ApiToken.Issued``,
``ApiToken.Revoked``) — who it is for, its teams and permissions, when and by whom it was issued and
revoked. Never its secret hash: the record has no field for it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from ticketflow.access import PERSON_ROLES, Permission, granted
from ticketflow.domain import ApiToken
from ticketflow.domain.values import Role


@dataclass(frozen=True)
class TokenRecord:
    token_id: UUID
    name: str  # the actor on what it writes (an agent's or supervisor's: their agent id)
    role: str
    agent_id: str | None  # agents and supervisors: the team member it belongs to
    team_ids: tuple[str, ...]  # integrations: the teams it is limited to (none: every team)
    permissions: tuple[str, ...] | None  # integrations: what it carries (in Permission's order); others: None (the role's)
    issued_at: datetime
    issued_by: str
    issued_by_role: str
    version: int
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def bound_to_person(self) -> bool:
        """Its teams come from the person's team membership at each request, not from the token."""
        return Role(self.role) in PERSON_ROLES


def token_record(events: Iterable[Any]) -> TokenRecord:
    """One token from its events, oldest first (the first is its ``Issued``)."""
    record: TokenRecord | None = None
    for event in events:
        if isinstance(event, ApiToken.Issued):
            role = Role(event.role)
            given = granted(role, event.permissions)
            permissions = tuple(str(p) for p in Permission if p in given) if role is Role.INTEGRATION else None
            record = TokenRecord(
                token_id=event.originator_id, name=event.name, role=event.role, agent_id=event.agent_id,
                team_ids=tuple(event.team_ids), permissions=permissions, issued_at=event.occurred_at,
                issued_by=event.actor_id, issued_by_role=event.actor_role, version=event.originator_version,
            )
        elif isinstance(event, ApiToken.Revoked) and record is not None:
            record = replace(record, revoked_at=event.occurred_at, revoked_by=event.actor_id, revoke_reason=event.reason,
                             version=event.originator_version)
    if record is None:
        raise ValueError("a token's events start with ApiToken.Issued")
    return record
