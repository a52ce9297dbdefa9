"""``ticketflow mailbox add | list | remove | receive | serve-lmtp``: where the desk receives mail."""

from __future__ import annotations

import json
import sys
import threading
from typing import Annotated
from uuid import UUID

import typer
from rich.table import Table

from projections.integrity.sealer import sealing_on_close
from ticketflow.application import TicketDesk
from ticketflow.commands.mailbox import AddMailbox, ImapSecurity, MailProtocol, RemoveMailbox
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller
from ticketflow_cli import output

mailbox_app = output.group(help="Mailboxes the desk receives mail for (LMTP or IMAP).")
CLI_ADMIN = Caller("cli-admin", Role.ADMIN, Channel.CLI)
MailboxArg = Annotated[str, typer.Argument(help="The mailbox's id or exact name.")]


@mailbox_app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A unique name, e.g. support or 技术支持邮箱.")],
    address: Annotated[str, typer.Argument(help="The desk address it receives for (the From of replies).")],
    team: Annotated[str | None, typer.Option(help="The team (id) whose tickets its mail opens.")] = None,
    protocol: Annotated[
        MailProtocol, typer.Option(help="lmtp: piped in by the mail server; imap: fetched.")
    ] = (MailProtocol.LMTP),
    imap_host: Annotated[str | None, typer.Option()] = None,
    imap_port: Annotated[
        int | None, typer.Option(help="Default: 993 for ssl, 143 for starttls and plain.")
    ] = None,
    imap_username: Annotated[str | None, typer.Option()] = None,
    imap_folder: Annotated[str, typer.Option()] = "INBOX",
    imap_security: Annotated[
        ImapSecurity, typer.Option(help="ssl (IMAPS), starttls, or plain (a trusted network only).")
    ] = ImapSecurity.SSL,
    password_env: Annotated[
        str | None, typer.Option(help="The environment variable holding the password.")
    ] = None,
    password_file: Annotated[str | None, typer.Option(help="An absolute path to a file holding it.")] = None,
) -> None:
    """Add a mailbox (the IMAP password is read from --password-env or --password-file, never stored)."""
    command = AddMailbox(
        name=name,
        address=address,
        team_id=UUID(team) if team else None,
        protocol=protocol,
        imap_host=imap_host,
        imap_port=imap_port,
        imap_username=imap_username,
        imap_folder=imap_folder,
        imap_security=imap_security,
        password_env=password_env,
        password_file=password_file,
    )
    desk = sealing_on_close(TicketDesk(ctx.obj))
    try:
        result = desk.add_mailbox(command, CLI_ADMIN)
    finally:
        desk.close()
    print(json.dumps({"mailbox_id": str(result.object_id), "name": name, "address": command.address.lower()}))


@mailbox_app.command("list")
def list_(ctx: typer.Context) -> None:
    """The mailboxes in use."""
    desk = TicketDesk(ctx.obj)
    try:
        boxes = desk.mailboxes()
    finally:
        desk.close()
    table = Table(title="mailboxes")
    for column in ("name", "id", "address", "team", "protocol", "server", "password from"):
        table.add_column(column)
    for box in boxes:
        imap = box.imap or {}
        source = imap.get("password_env") and f"${imap['password_env']}" or imap.get("password_file") or ""
        server = f"{box.imap_security} {imap['host']}:{imap['port']}" if imap else ""
        table.add_row(
            box.name, str(box.id), box.address, str(box.team_id or ""), box.protocol, server, source
        )
    output.console(min_width=200).print(table)


@mailbox_app.command("remove")
def remove(
    ctx: typer.Context,
    mailbox: MailboxArg,
    reason: Annotated[str, typer.Option(help="Why (kept in the mailbox's history).")] = "",
) -> None:
    """Stop taking in its mail."""
    desk = sealing_on_close(TicketDesk(ctx.obj))
    try:
        desk.remove_mailbox(RemoveMailbox(mailbox_id=desk.find_mailbox(mailbox).id, reason=reason), CLI_ADMIN)
    finally:
        desk.close()
    print(f"removed {mailbox}", file=sys.stderr)


@mailbox_app.command("receive")
def receive(ctx: typer.Context, mailbox: MailboxArg) -> None:
    """Take in one raw mail from stdin (for a mail server's pipe transport, or to replay a saved mail)."""
    raw = sys.stdin.buffer.read()
    desk = sealing_on_close(TicketDesk(ctx.obj))
    try:
        box = desk.find_mailbox(mailbox)
        outcome = desk.receive_mail(raw, mailbox=box.name, team_id=box.team_id)
    finally:
        desk.close()
    print(
        json.dumps(
            {
                "action": outcome.action,
                "ticket_id": str(outcome.ticket_id) if outcome.ticket_id else None,
                "reason": outcome.reason,
            }
        )
    )


@mailbox_app.command("reindex")
def reindex(ctx: typer.Context) -> None:
    """Rebuild the blind index of customers' addresses (after an upgrade: customers registered before the
    email channel are found by their address only once indexed)."""
    desk = TicketDesk(ctx.obj)
    try:
        indexed = desk.rebuild_email_index()
    finally:
        desk.close()
    print(json.dumps({"indexed": indexed}))


@mailbox_app.command("serve-lmtp")
def serve_lmtp(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option(help="Where to listen (keep it local: LMTP has no authentication).")
    ] = ("127.0.0.1"),
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8024,
) -> None:
    """Receive mail over LMTP for every mailbox, until interrupted."""
    from ticketflow.email.lmtp import LmtpReceiver

    desk = sealing_on_close(TicketDesk(ctx.obj))
    server = LmtpReceiver(desk, hostname=host, port=port)
    server.start()
    print(
        f"LMTP on {host}:{port} for {', '.join(m.address for m in desk.mailboxes()) or 'no mailbox yet'}",
        file=sys.stderr,
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        desk.close()


@mailbox_app.command("poll")
def poll(ctx: typer.Context) -> None:
    """Fetch every IMAP mailbox once now (the automation process polls them every
    TICKETFLOW_IMAP_POLL_SECONDS; this is for a check after configuring one, or a cron job)."""
    from ticketflow.email.imap import ImapPoller

    desk = sealing_on_close(TicketDesk(ctx.obj))
    try:
        done = ImapPoller(desk).poll_once()
    finally:
        desk.close()
    print(json.dumps(dict(sorted(done.items())), ensure_ascii=False))
    if done.get("failed"):
        print(f"{done['failed']} mailbox(es) could not be fetched; the log says why", file=sys.stderr)
        raise typer.Exit(1)
