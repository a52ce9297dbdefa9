"""Who may do what: roles, permissions, team scope and personal-data masking rules.

The HTTP layer asks these questions; the answers live here so the CLI, the API
and any later interface apply the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller


class Permission(StrEnum):
    TICKETS_READ = "tickets:read"
    TICKETS_WRITE = "tickets:write"
    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_WRITE = "customers:write"
    TEAMS_READ = "teams:read"
    TEAMS_WRITE = "teams:write"
    REPORTS_READ = "reports:read"
    AUDIT_READ = "audit:read"
    EVENTS_READ = "events:read"
    PII_UNMASK = "pii:unmask"  # with a stated purpose; every such read is recorded
    ACCESS_LOG_READ = "access-log:read"
    IMPORT = "import"
    POLICIES_READ = "policies:read"  # routing rules, SLA policies, business calendars
    POLICIES_WRITE = "policies:write"
    REMINDERS_READ = "reminders:read"
    REMINDERS_WRITE = "reminders:write"
    WEBHOOKS_MANAGE = "webhooks:manage"
    PII_ERASE = "pii:erase"  # the right to erasure (compliance)


P = Permission
_READ_ALL = {
    P.TICKETS_READ, P.CUSTOMERS_READ, P.TEAMS_READ, P.REPORTS_READ, P.AUDIT_READ, P.EVENTS_READ, P.POLICIES_READ,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.AGENT: frozenset(
        {P.TICKETS_READ, P.TICKETS_WRITE, P.CUSTOMERS_READ, P.CUSTOMERS_WRITE, P.TEAMS_READ, P.REPORTS_READ,
         P.AUDIT_READ, P.PII_UNMASK, P.POLICIES_READ, P.REMINDERS_READ, P.REMINDERS_WRITE}
    ),
    Role.SUPERVISOR: frozenset(
        {P.TICKETS_READ, P.TICKETS_WRITE, P.CUSTOMERS_READ, P.CUSTOMERS_WRITE, P.TEAMS_READ, P.TEAMS_WRITE,
         P.REPORTS_READ, P.AUDIT_READ, P.EVENTS_READ, P.PII_UNMASK, P.POLICIES_READ, P.POLICIES_WRITE,
         P.REMINDERS_READ, P.REMINDERS_WRITE}
    ),
    Role.ADMIN: frozenset(Permission),
    Role.AUDITOR: frozenset(_READ_ALL),
    Role.COMPLIANCE: frozenset({*_READ_ALL, P.PII_UNMASK, P.ACCESS_LOG_READ, P.PII_ERASE}),
    Role.INTEGRATION: frozenset({P.TICKETS_READ, P.TICKETS_WRITE, P.CUSTOMERS_READ, P.CUSTOMERS_WRITE, P.EVENTS_READ}),
    Role.CUSTOMER: frozenset(),
    Role.SYSTEM: frozenset(Permission),
}

#: Roles whose scope is every team (the others see only their tokens' teams).
ALL_TEAMS = frozenset({Role.ADMIN, Role.AUDITOR, Role.COMPLIANCE, Role.SYSTEM})

#: Roles a token may be issued for.
TOKEN_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR, Role.COMPLIANCE, Role.INTEGRATION)

MASK = "***"


@dataclass(frozen=True)
class Principal:
    """The holder of a token, as the API sees them."""

    token_id: UUID
    name: str
    role: Role
    team_ids: frozenset[UUID] = field(default_factory=frozenset)

    @property
    def permissions(self) -> frozenset[Permission]:
        return ROLE_PERMISSIONS[self.role]

    def may(self, permission: Permission) -> bool:
        return permission in self.permissions

    @property
    def all_teams(self) -> bool:
        return self.role in ALL_TEAMS or (self.role is Role.INTEGRATION and not self.team_ids)

    def sees_team(self, team_id: UUID | str | None) -> bool:
        """Object-level rule: a ticket is visible when its team is in the holder's scope."""
        if self.all_teams:
            return True
        if team_id is None:
            return self.role is Role.SUPERVISOR  # team-less tickets wait in the supervisors' triage
        return UUID(str(team_id)) in self.team_ids

    def caller(self, via: Channel = Channel.API, correlation_id: str | None = None) -> Caller:
        return Caller(self.name, self.role, via, correlation_id)
