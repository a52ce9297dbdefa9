"""``ticketflow webhook subscribe | list | pause | resume | remove | deliveries | send``."""

from __future__ import annotations

import json
import sys
from typing import Annotated
from uuid import UUID

import typer
from rich.table import Table

from projections.integrity.sealer import sealing_on_close
from projections.outbox import list_deliveries, unknown_event_types
from projections.readside import ReadSide
from projections.webhook_sender import WebhookSender, standard_secret
from ticketflow.application import TicketDesk
from ticketflow.commands.workflow import PauseWebhook, RemoveWebhook, ResumeWebhook, SubscribeWebhook
from ticketflow.domain.values import Channel, Role
from ticketflow.errors import ValidationFailed
from ticketflow.metadata import Caller
from ticketflow_cli import output

webhook_app = output.group(help="Webhook subscriptions and their deliveries.")
CLI_ADMIN = Caller("cli-admin", Role.ADMIN, Channel.CLI)
WebhookArg = Annotated[str, typer.Argument(help="The webhook's id or exact name.")]


@webhook_app.command("subscribe")
def subscribe(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The receiving system, e.g. 'CRM sync'.")],
    url: Annotated[str, typer.Argument(help="Where to POST, http(s)://...")],
    event: Annotated[list[str], typer.Option("--event", help="An event type such as Ticket.Opened, or '*' (repeatable).")],
    scope: Annotated[list[str] | None, typer.Option(
        "--scope", help="tickets:text: payloads carry ticket text unmasked, each delivery recorded.")] = None,
) -> None:
    """Subscribe a URL to event types; prints the signing secret once (on stdout, as JSON: `secret`, and
    `standard_webhooks_secret`, the same secret in the `whsec_` form Standard Webhooks verifiers take)."""
    problem = unknown_event_types(event)
    if problem is not None:
        raise ValidationFailed(problem)
    if unknown := [s for s in scope or [] if s != "tickets:text"]:
        raise ValidationFailed(f"unknown scope {unknown[0]!r}; the one scope is 'tickets:text'")
    desk = sealing_on_close(TicketDesk(ctx.obj))
    try:
        command = SubscribeWebhook(name=name, url=url, event_types=event, scopes=scope or [])  # type: ignore[arg-type]
        result, secret = desk.subscribe_webhook(command, CLI_ADMIN)
    finally:
        desk.close()
    print(json.dumps({"webhook_id": str(result.object_id), "name": name, "event_types": sorted(set(event))}), file=sys.stderr)
    # as the API answers it: the hex secret of the X-Ticketflow-Signature header, and the same secret in the
    # Standard Webhooks form (`whsec_` + base64) that ready-made verifiers take
    print(json.dumps({"secret": secret, "standard_webhooks_secret": standard_secret(secret) if secret else None}))


@webhook_app.command("list")
def list_(ctx: typer.Context) -> None:
    """Every subscription, paused ones too."""
    desk = sealing_on_close(TicketDesk(ctx.obj))
    table = Table(title="webhooks")
    for column in ("name", "id", "url", "event types", "active"):
        table.add_column(column)
    for hook in desk.webhooks():
        table.add_row(hook.name, str(hook.id), hook.url, ", ".join(hook.event_types), "yes" if hook.active else "paused")
    desk.close()
    output.console().print(table)


@webhook_app.command("pause")
def pause(
    ctx: typer.Context, webhook: WebhookArg,
    reason: Annotated[str, typer.Option(help="Why (kept in the webhook's history).")] = "",
) -> None:
    """Stop notifying it; events meanwhile are not notified later."""
    desk = sealing_on_close(TicketDesk(ctx.obj))
    try:
        desk.pause_webhook(PauseWebhook(webhook_id=_webhook_id(desk, webhook), reason=reason), CLI_ADMIN)
    finally:
        desk.close()
    print(f"paused {webhook}", file=sys.stderr)


@webhook_app.command("resume")
def resume(ctx: typer.Context, webhook: WebhookArg) -> None:
    """Notify it again, from the next event on."""
    desk = sealing_on_close(TicketDesk(ctx.obj))
    try:
        desk.resume_webhook(ResumeWebhook(webhook_id=_webhook_id(desk, webhook)), CLI_ADMIN)
    finally:
        desk.close()
    print(f"resumed {webhook}", file=sys.stderr)


@webhook_app.command("remove")
def remove(
    ctx: typer.Context, webhook: WebhookArg,
    reason: Annotated[str, typer.Option(help="Why (kept in the webhook's history).")] = "",
) -> None:
    """Delete the subscription: nothing more is sent to it, its pending deliveries are dropped."""
    desk = sealing_on_close(TicketDesk(ctx.obj))
    try:
        desk.remove_webhook(RemoveWebhook(webhook_id=_webhook_id(desk, webhook), reason=reason), CLI_ADMIN)
    finally:
        desk.close()
    print(f"removed {webhook}", file=sys.stderr)


@webhook_app.command("deliveries")
def deliveries(
    ctx: typer.Context, webhook: WebhookArg,
    state: Annotated[str | None, typer.Option(help="pending, delivered, failed or dropped.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """A webhook's deliveries in log order: state, attempts, next try, last error."""
    if state not in (None, "pending", "delivered", "failed", "dropped"):
        raise ValidationFailed(f"state {state!r} is not one of pending, delivered, failed, dropped")
    desk = sealing_on_close(TicketDesk(ctx.obj))
    read_side = ReadSide(desk, ["outbox"])
    try:
        hook = str(_webhook_id(desk, webhook))
        read_side.catch_up()
        rows = read_side.read("outbox", lambda db: list_deliveries(db, hook, state=state, limit=limit))
    finally:
        read_side.close()
        desk.close()
    table = Table(title=f"deliveries of {webhook}")
    for column in ("position", "event", "delivery id", "state", "attempts", "next attempt", "last error"):
        table.add_column(column)
    for r in rows:
        table.add_row(str(r["position"]), r["event_type"], r["delivery_id"], r["state"], str(r["attempts"]),
                      r["next_attempt_at"] or "", r["last_error"] or "")
    output.console(min_width=200).print(table)


@webhook_app.command("send")
def send(ctx: typer.Context) -> None:
    """Deliver what is due once, now (the automation loop does this continuously)."""
    desk = sealing_on_close(TicketDesk(ctx.obj))
    read_side = ReadSide(desk, ["outbox"])
    try:
        read_side.catch_up()
        attempted = WebhookSender(read_side, desk, desk.clock).run_once()
    finally:
        read_side.close()
        desk.close()
    print(f"{attempted} deliveries attempted", file=sys.stderr)


def _webhook_id(desk: TicketDesk, value: str) -> UUID:
    hooks = desk.webhooks()
    try:
        wanted = UUID(value)
    except ValueError:
        matches = [h.id for h in hooks if h.name == value]
    else:
        matches = [h.id for h in hooks if h.id == wanted]
    if len(matches) != 1:
        raise ValidationFailed(f"no single webhook {value!r}; give its id (see: ticketflow webhook list)")
    return matches[0]
