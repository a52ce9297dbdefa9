"""Commands on teams (the directory routing and assignment use)."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field

from ticketflow.commands.base import ChangeCommand, Command, Line, Name, OptionalBody, ShortText
from ticketflow.domain.values import MemberRole


class FormTeam(Command):
    name: Line
    description: OptionalBody = ""


class TeamCommand(ChangeCommand):
    team_id: UUID


class RenameTeam(TeamCommand):
    name: Line


class AddTeamMember(TeamCommand):
    agent_id: Name
    role: MemberRole = MemberRole.AGENT
    skills: list[Name] = Field(default_factory=list, max_length=30)


class ChangeTeamMember(TeamCommand):
    agent_id: Name
    role: MemberRole | None = None
    skills: list[Name] | None = Field(default=None, max_length=30)


class DeactivateTeamMember(TeamCommand):
    agent_id: Name
    reason: ShortText = ""


class ReactivateTeamMember(TeamCommand):
    agent_id: Name
