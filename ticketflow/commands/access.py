"""Commands on API tokens and on the record of personal-data reads."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from ticketflow.commands.base import ChangeCommand, Command, Line, Name, ShortText
from ticketflow.access import Permission
from ticketflow.domain.values import Role


class IssueToken(Command):
    """Issue a token. Agents and supervisors: ``agent_id`` (a team member; their teams come from the
    directory). Integrations: optional ``team_ids`` and ``permissions`` (default: open tickets,
    register customers, read the export)."""

    name: Name | None = None
    role: Role
    agent_id: Name | None = None
    team_ids: list[UUID] = Field(default_factory=list, max_length=50)
    permissions: list[Permission] | None = Field(default=None, max_length=30)


class RevokeToken(ChangeCommand):
    token_id: UUID
    reason: ShortText = ""


class RecordDataAccess(Command):
    """Record that personal data of a customer was read unmasked (field names, never values)."""

    customer_id: UUID
    fields: list[Name] = Field(min_length=1, max_length=50)
    purpose: Line
    request_id: Line
    resource: Line
