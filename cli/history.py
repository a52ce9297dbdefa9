"""``ticketflow history ID``: one object's full event history as a readable timeline."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table

from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow.describe import describe
from ticketflow.errors import NotFound, ValidationFailed
from ticketflow.timetravel import TimeBasis, check_version, version_at


def parse_id(value: str, what: str = "ticket") -> UUID:
    try:
        return UUID(value.strip())
    except ValueError:
        raise ValidationFailed(
            f"{value!r} is not a {what} id: expected a UUID such as 6457ba06-ac25-5a5e-8355-4547dfa4b853"
        ) from None


def history(
    ctx: typer.Context,
    object_id: Annotated[str, typer.Argument(help="Ticket (or customer, or team) id.", metavar="TICKET_ID")],
    as_of: Annotated[
        datetime | None,
        typer.Option("--as-of", help="Only the events the desk had recorded at this instant (ISO 8601; UTC if no offset), then the state.",
                     formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d"]),
    ] = None,
    version: Annotated[int | None, typer.Option("--version", min=1, help="Only the events up to this version, then the state.")] = None,
    business: Annotated[bool, typer.Option("--business-time", help="--as-of compares business time (occurred_at), not recorded time.")] = False,
) -> None:
    """Show every event of a ticket: when, who (role), via which channel, what changed.

    With --as-of or --version: the events up to then, and the state the ticket had then."""
    settings: Settings = ctx.obj
    if as_of is not None and version is not None:
        raise ValidationFailed("give --as-of or --version, not both")
    desk = TicketDesk(settings)
    try:
        uid = parse_id(object_id)
        if as_of is not None:
            version = version_at(desk, uid, as_of, TimeBasis.BUSINESS if business else TimeBasis.RECORDED)
        elif version is not None:
            version = check_version(desk, uid, version)
        events = desk.history(uid) if version is None else list(desk.events.get(uid, lte=version))
    except NotFound:
        raise NotFound("ticket, customer or team", object_id.strip()) from None

    @cache
    def team_name(team_id: UUID) -> str:
        try:
            return f"{desk.get_team(team_id).name}"
        except NotFound:
            return str(team_id)

    kind = type(events[0]).__qualname__.split(".")[0].lower()
    table = Table(title=f"{kind} {events[0].originator_id}: {len(events)} events", show_lines=False)
    table.add_column("v", justify="right", no_wrap=True)
    table.add_column("occurred (UTC)", no_wrap=True)
    table.add_column("actor (role)", no_wrap=True)
    table.add_column("via", no_wrap=True)
    table.add_column("event", no_wrap=True)
    table.add_column("what")
    for event in events:
        table.add_row(
            str(event.originator_version),
            event.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
            f"{event.actor_id} ({event.actor_role})",
            event.via + (" [imported]" if event.imported else ""),
            type(event).__qualname__.split(".", 1)[1],
            describe(event, team_name),
        )
    console = Console(width=max(Console().width, 160))
    console.print(table)
    if version is not None:
        console.print(state_table(desk, uid, version, as_of))
    desk.close()


def state_table(desk: TicketDesk, object_id: UUID, version: int, as_of: datetime | None) -> Table:
    """The object's fields at ``version`` (from its aggregate: the nearest snapshot, then the events after it)."""
    from projections.asof import audit_fields

    aggregate = desk.repository.get(object_id, version=version)
    when = f" (as of {as_of.isoformat()})" if as_of is not None else ""
    table = Table(title=f"state at version {version}{when}")
    table.add_column("field", no_wrap=True)
    table.add_column("value")
    for field, value in audit_fields(aggregate).items():
        table.add_row(field, "" if value is None else str(value))
    return table
