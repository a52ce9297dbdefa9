"""``ticketflow account``: console accounts (create the first admin, reset passwords, disable).

Passwords are read from standard input (``--password-stdin``, one line) or asked for twice at a
prompt; never from the command line, where they would end up in the shell's history."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from uuid import UUID

import typer

from projections.integrity.sealer import sealing_on_close
from ticketflow.accounts.service import ACCOUNT_ROLES, account_id_for
from ticketflow.application import TicketDesk
from ticketflow.commands.accounts import CreateAccount, DisableAccount, EnableAccount, SetPassword
from ticketflow.domain.values import Channel, Role
from ticketflow.errors import NotFound, ValidationFailed
from ticketflow.metadata import Caller
from ticketflow_cli import output

account_app = output.group(help="Console accounts: who signs in to the web console.")
OPERATOR = Caller("cli-admin", Role.ADMIN, Channel.CLI)

PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input (one line).")]


@contextmanager
def _operator_desk(ctx: typer.Context) -> Iterator[TicketDesk]:
    """The desk for one operator command; what it wrote is sealed when it closes."""
    desk = sealing_on_close(TicketDesk(ctx.obj))
    try:
        yield desk
    finally:
        desk.close()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise ValidationFailed("--password-stdin: standard input is empty")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ValidationFailed("give the password on standard input with --password-stdin (no terminal to ask on)")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@account_app.command("create")
def create(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The sign-in name (e.g. li.wei).")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ACCOUNT_ROLES)}.")],
    name: Annotated[str, typer.Option("--name", help="The person's name as shown in the console (e.g. 李伟).")],
    agent: Annotated[str | None, typer.Option("--agent", "--agent-id", help="Agents and supervisors: the team member the"
                                              " account belongs to (their teams come from team membership).")] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a console account with its first password (the first admin, too)."""
    if role not in {r.value for r in ACCOUNT_ROLES}:
        raise ValidationFailed(f"role {role!r} is not one of {', '.join(ACCOUNT_ROLES)}")
    command = CreateAccount(username=username, display_name=name, role=Role(role), agent_id=agent)
    password = _password(password_stdin)
    with _operator_desk(ctx) as desk:
        result = desk.create_account(command, OPERATOR, password)
    print(json.dumps({"account_id": str(result.object_id), "username": command.username, "role": role,
                      "agent_id": agent}, ensure_ascii=False))


@account_app.command("reset-password")
def reset_password(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The sign-in name.")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a new password; the account's open sessions end."""
    password = _password(password_stdin)
    with _operator_desk(ctx) as desk:
        desk.set_password(SetPassword(account_id=_existing(desk, username), reason="reset"), OPERATOR, password)
    print(f"password reset for {username}", file=sys.stderr)


@account_app.command("disable")
def disable(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="The sign-in name.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the account's history).")] = "",
) -> None:
    """Disable an account: it cannot sign in and its sessions end at once."""
    with _operator_desk(ctx) as desk:
        desk.disable_account(DisableAccount(account_id=_existing(desk, username), reason=reason), OPERATOR)
    print(f"disabled {username}", file=sys.stderr)


@account_app.command("enable")
def enable(ctx: typer.Context, username: Annotated[str, typer.Argument(help="The sign-in name.")]) -> None:
    """Enable a disabled account again."""
    with _operator_desk(ctx) as desk:
        desk.enable_account(EnableAccount(account_id=_existing(desk, username)), OPERATOR)
    print(f"enabled {username}", file=sys.stderr)


@account_app.command("list")
def list_accounts(ctx: typer.Context) -> None:
    """Every account, one JSON object per line (never a password or its hash)."""
    desk = TicketDesk(ctx.obj)
    try:
        for account in desk.list_accounts():
            print(json.dumps({"username": account.username, "name": account.display_name, "role": account.role,
                              "agent_id": account.agent_id, "disabled": account.disabled}, ensure_ascii=False))
    finally:
        desk.close()


def _existing(desk: TicketDesk, username: str) -> UUID:
    account = desk.find_account(username)
    if account is None:
        raise NotFound("account", username)
    return account_id_for(username)
