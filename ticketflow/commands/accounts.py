"""Commands on staff accounts (the console's sign-in). Passwords are never part of a command:
the application takes them beside it, hashes them, and keeps the hash outside the event log."""

from __future__ import annotations

from uuid import UUID

from pydantic import StringConstraints
from typing import Annotated, Literal

from ticketflow.commands.base import ChangeCommand, Command, Line, Name, ShortText
from ticketflow.domain.values import Role

#: A sign-in name: letters of any script, digits and ._@- (case-insensitive: stored lower-cased).
Username = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, pattern=r"^[\w.@\-]{2,64}$")]


class CreateAccount(Command):
    """A named person's account. Agents and supervisors: ``agent_id``, a team member (their teams
    come from team membership); admins, auditors and compliance reviewers: no agent id."""

    username: Username
    display_name: Line
    role: Role
    agent_id: Name | None = None


class SetPassword(ChangeCommand):
    """Set an account's password: ``reset`` by an admin, ``changed`` by its holder."""

    account_id: UUID
    reason: Literal["reset", "changed"] = "reset"


class DisableAccount(ChangeCommand):
    """Disable an account: its sessions end at once and it cannot sign in."""

    account_id: UUID
    reason: ShortText = ""


class EnableAccount(ChangeCommand):
    account_id: UUID
