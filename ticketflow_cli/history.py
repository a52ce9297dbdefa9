"""``ticketflow history ID``: one object's full event history as a readable timeline; and
``ticketflow ticket unassign|remove-from-team|recategorise ID``: the operator's changes to a ticket's place."""

from __future__ import annotations

from copy import copy as _copy
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from projections.integrity.sealer import sealing_on_close
from ticketflow import commands as c
from ticketflow.access import MASK
from ticketflow.application import TicketDesk
from ticketflow.commands.access import RecordDataAccess
from ticketflow.config import Settings
from ticketflow.describe import describe
from ticketflow.domain import AGGREGATES, Customer, Ticket, event_classes
from ticketflow.domain.values import Channel, Role, TicketType
from ticketflow.errors import NotFound, ValidationFailed
from ticketflow.metadata import Caller
from ticketflow.timetravel import DidNotExistYet, TimeBasis, check_version, default_basis, version_at
from ticketflow_cli import output


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
        typer.Option("--as-of", help="Only the events the desk had recorded at this instant (ISO 8601; without an offset,"
                                    " in TICKETFLOW_TIME_ZONE, default UTC), then the state.",
                     formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%d"]),
    ] = None,
    version: Annotated[int | None, typer.Option("--version", min=1, help="Only the events up to this version, then the state.")] = None,
    basis: Annotated[TimeBasis | None, typer.Option(
        "--as-of-basis", help="What --as-of goes by: recorded (when the desk stored each event) or business (when it"
                              " happened: imported history). Default: TICKETFLOW_AS_OF_BASIS (recorded unless set).")] = None,
    business: Annotated[bool, typer.Option("--business-time", help="Short for --as-of-basis business.")] = False,
    purpose: Annotated[str | None, typer.Option(
        "--purpose", help="Why you must see personal data (names, contacts, ticket text); the read is recorded in the"
                          " access log. Without it, personal fields are masked.")] = None,
    operator: Annotated[str, typer.Option(help="Who runs this (recorded in the access log with --purpose).")] = "cli-operator",
) -> None:
    """Show every event of a ticket: when, who (role), via which channel, what changed.

    Personal data is masked unless --purpose is given; then the read is recorded like an API read.
    With --as-of or --version: the events up to then, and the state the ticket had then."""
    settings: Settings = ctx.obj
    if as_of is not None and version is not None:
        raise ValidationFailed("give --as-of or --version, not both")
    if business and basis is TimeBasis.RECORDED:
        raise ValidationFailed("give --business-time or --as-of-basis recorded, not both")
    chosen = TimeBasis.BUSINESS if business else basis
    purpose = " ".join(purpose.split()) if purpose else None
    if purpose is not None and not purpose:
        raise ValidationFailed("--purpose must say why (it is recorded)")
    zone = ZoneInfo(settings.time_zone)
    if as_of is not None and as_of.tzinfo is None:
        as_of = as_of.replace(tzinfo=zone)
    desk = TicketDesk(settings)
    if purpose is not None:  # the read is recorded: sealed before the command exits, like every write
        sealing_on_close(desk)
    try:
        uid = parse_id(object_id)
        if as_of is not None:
            version = _version_as_of(desk, uid, as_of, chosen or default_basis(settings))
        elif version is not None:
            version = check_version(desk, uid, version)
        events = desk.history(uid) if version is None else list(desk.events.get(uid, lte=version))
    except DidNotExistYet:
        raise  # the object is there, not yet then: the sentence says when it began
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
    table.add_column(f"occurred ({settings.time_zone})", no_wrap=True)
    table.add_column("actor (role)", no_wrap=True)
    table.add_column("via", no_wrap=True)
    table.add_column("event", no_wrap=True)
    table.add_column("what")
    shown: dict[UUID, set[str]] = {}  # customer -> the personal fields shown unmasked
    for event in events:
        if event.personal_fields and (subject := event.subject_id()) is not None:
            present = {f for f in event.personal_fields if getattr(event, f, None) not in (None, "", [])}
            if present and purpose is not None:
                shown.setdefault(subject, set()).update(present)
        table.add_row(
            str(event.originator_version),
            _aware(event.occurred_at).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
            f"{event.actor_id} ({event.actor_role})",
            event.via + (" [imported]" if event.imported else ""),
            type(event).__qualname__.split(".", 1)[1],
            describe(event if purpose is not None else masked(event), team_name),
        )
    try:
        state = (state_table(desk, uid, version, as_of and as_of.astimezone(zone), unmasked=purpose is not None)
                 if version is not None else None)
        for subject, fields in sorted(shown.items(), key=lambda item: str(item[0])):
            desk.record_data_access(
                RecordDataAccess(customer_id=subject, fields=sorted(fields), purpose=purpose, request_id=str(uuid4()),
                                 resource=f"ticketflow history {uid}"),
                Caller(operator, Role.ADMIN, Channel.CLI),
            )
    finally:
        desk.close()
    console = output.console(min_width=160)
    console.print(table)
    if state is not None:
        console.print(state)
    if purpose is None and any(e.personal_fields for e in events):
        output.console(stderr=True).print("personal data masked (***); give --purpose \"why\" to see it (the read is recorded)")


def _version_as_of(desk: TicketDesk, object_id: UUID, as_of: datetime, basis: TimeBasis) -> int:
    """The version at ``as_of``; when the object was only recorded later but its history says it
    existed then (imported or simulated history, like the demo's), the error says --business-time."""
    try:
        return version_at(desk, object_id, as_of, basis)
    except DidNotExistYet as refused:
        if basis is TimeBasis.BUSINESS:
            raise
        try:
            version_at(desk, object_id, as_of, TimeBasis.BUSINESS)
        except DidNotExistYet:
            raise refused from None
        raise ValidationFailed(
            f"{object_id} did not exist yet at {as_of.isoformat()} (recorded time), though its history says it did:"
            " it was recorded later than it happened (imported or simulated, like the demo's); add --business-time"
            " (or --as-of-basis business) to go by when it happened"
        ) from None


def as_of_example(desk: TicketDesk, object_id: UUID, zone: ZoneInfo) -> str | None:
    """An instant halfway through the object's history (business time, to the second, in ``zone``):
    what ``demo`` suggests trying with ``history --as-of``. None for a history of one event."""
    events = desk.history(object_id)
    if len(events) < 2:
        return None
    middle = events[len(events) // 2 - 1].occurred_at
    return (_aware(middle).astimezone(zone).replace(microsecond=0) + timedelta(seconds=1)).isoformat()


def _aware(moment: datetime) -> datetime:
    """Stored times carry their offset; a time without one is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def masked(event: Any) -> Any:
    """A copy of ``event`` with its personal fields replaced by the mask."""
    if not event.personal_fields:
        return event
    copy = _copy(event)
    for field in event.personal_fields:
        if getattr(copy, field, None) not in (None, "", []):
            object.__setattr__(copy, field, MASK)
    return copy


def state_table(desk: TicketDesk, object_id: UUID, version: int, as_of: datetime | None, unmasked: bool = False) -> Table:
    """The object's fields at ``version`` (from its aggregate: the nearest snapshot, then the events after it)."""
    from projections.asof import audit_fields

    aggregate = desk.repository.get(object_id, version=version)
    when = f" (as of {as_of.isoformat()})" if as_of is not None else ""
    table = Table(title=f"state at version {version}{when}")
    table.add_column("field", no_wrap=True)
    table.add_column("value")
    personal = isinstance(aggregate, (Customer, Ticket)) and not unmasked  # a team's fields are nobody's data
    for field, value in audit_fields(aggregate).items():
        shown = "" if value is None else str(value)
        table.add_row(field, MASK if personal and field in PERSONAL_FIELDS and shown else shown)
    return table


#: Every field name any event declares personal (the state table masks these too).
PERSONAL_FIELDS = frozenset(
    field for aggregate in AGGREGATES for cls in event_classes(aggregate) for field in cls.personal_fields
)


ticket_app = output.group(help="Change where a ticket stands: its assignee, its team, its category.")
Operator = Annotated[str, typer.Option(help="Who runs this (recorded as the actor, role admin, via cli).")]
TicketArg = Annotated[str, typer.Argument(help="The ticket's id.", metavar="TICKET_ID")]


def _run(ctx: typer.Context, command: type[c.TicketCommand], ticket: str, operator: str, **fields: Any) -> None:
    desk = sealing_on_close(TicketDesk(ctx.obj))
    try:
        ticket_id = parse_id(ticket)
        result = desk.handle(command(ticket_id=ticket_id, **fields), Caller(operator, Role.ADMIN, Channel.CLI))
    finally:
        desk.close()
    done = ", ".join(name.split(".", 1)[1] for name in result.events) or "nothing new (already done)"
    output.console().print(f"ticket {ticket_id} version {result.version}: {done}", markup=False)


@ticket_app.command("unassign")
def unassign(
    ctx: typer.Context, ticket: TicketArg,
    reason: Annotated[str, typer.Option(help="Why (shown on the timeline).")] = "",
    operator: Operator = "cli-operator",
) -> None:
    """Clear the assignee: the ticket waits in its team's queue (or triage) for someone."""
    _run(ctx, c.UnassignTicket, ticket, operator, reason=reason)


@ticket_app.command("remove-from-team")
def remove_from_team(
    ctx: typer.Context, ticket: TicketArg,
    reason: Annotated[str, typer.Option(help="Why it leaves its team (required).")],
    operator: Operator = "cli-operator",
) -> None:
    """Send the ticket back to triage (no team), unassigned."""
    _run(ctx, c.RemoveTicketFromTeam, ticket, operator, reason=reason)


@ticket_app.command("recategorise")
def recategorise(
    ctx: typer.Context, ticket: TicketArg,
    category: Annotated[str | None, typer.Option(help="The new category (letters of any script, digits, ._@:-).")] = None,
    ticket_type: Annotated[TicketType | None, typer.Option("--type", help="The new ticket type.")] = None,
    operator: Operator = "cli-operator",
) -> None:
    """Change the ticket's category, its type, or both."""
    _run(ctx, c.RecategoriseTicket, ticket, operator, category=category, ticket_type=ticket_type)
