"""``ticketflow policy ...``: routing rules, business calendars, SLA policies and team strategies.

Runs as an admin at the command line (recorded as such, ``via cli``); definitions come from
JSON files shaped like the API's request bodies (see ``/docs``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import available_timezones

import typer
from rich.table import Table

from projections.integrity.sealer import sealing_on_close
from ticketflow.application import CommandResult, TicketDesk
from ticketflow.commands.workflow import (
    DefineCalendar,
    DefineSlaPolicy,
    PublishRoutingRules,
    RetireSlaPolicy,
    SetAssignmentStrategy,
)
from ticketflow.config import Settings
from ticketflow.domain.policy import sla_policy_id
from ticketflow.domain.values import Channel, Role
from ticketflow.errors import NotFound, ValidationFailed
from ticketflow.metadata import Caller
from ticketflow_cli import output
from ticketflow_cli.teams import resolve_team

CLI_ADMIN = Caller("cli-admin", Role.ADMIN, Channel.CLI)
STRATEGIES = ("round_robin", "least_loaded", "skills")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

policy_app = output.group(help="Workflow policies: routing rules, calendars, SLA policies, strategies.")
routing_app = output.group(help="The routing rulebook (ordered, first match wins).")
calendar_app = output.group(help="Business-hours calendars.")
sla_app = output.group(help="SLA policies.")
policy_app.add_typer(routing_app, name="routing")
policy_app.add_typer(calendar_app, name="calendar")
policy_app.add_typer(sla_app, name="sla")

FileArg = Annotated[Path, typer.Argument(help="A JSON file shaped like the API request body.", metavar="FILE.json")]


@contextmanager
def _desk(ctx: typer.Context) -> Iterator[TicketDesk]:
    settings: Settings = ctx.obj
    desk = sealing_on_close(TicketDesk(settings))
    try:
        yield desk
    finally:
        desk.close()


def read_json(path: Path) -> dict[str, Any]:
    """The object in a JSON file, or one readable line saying why not."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationFailed(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"{path}: cannot read it ({type(exc).__name__})") from None
    except json.JSONDecodeError as exc:
        raise ValidationFailed(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValidationFailed(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def _said(what: str, result: CommandResult) -> None:
    change = ", ".join(result.events) if result.events else "unchanged, nothing written"
    output.console(stderr=True).print(f"{what}: version {result.version} ({change})")


def _team_name(desk: TicketDesk, team_id: Any) -> str:
    try:
        return f"{desk.get_team(UUID(str(team_id))).name}"
    except (NotFound, ValueError):
        return str(team_id)


def _conditions(spec: dict[str, Any]) -> str:
    keys = ("ticket_types", "categories", "channels", "priorities", "tiers", "languages", "keywords")
    return "; ".join(f"{k}={','.join(spec[k])}" for k in keys if spec.get(k)) or "any"


def _weekly(weekly: dict[str, list[list[str]]]) -> str:
    """Opening hours, consecutive days with the same hours grouped: ``Mon-Fri 09:00-12:00, 13:00-18:00``."""
    lines: list[tuple[list[int], str]] = []
    for day in sorted(int(d) for d, hours in weekly.items() if hours):
        hours = ", ".join(f"{a}-{b}" for a, b in weekly[str(day)])
        if lines and lines[-1][1] == hours and lines[-1][0][-1] == day - 1:
            lines[-1][0].append(day)
        else:
            lines.append(([day], hours))
    return "\n".join(
        (DAYS[days[0]] if len(days) == 1 else f"{DAYS[days[0]]}-{DAYS[days[-1]]}") + f" {hours}" for days, hours in lines
    )


def _print(table: Table) -> None:
    output.console(min_width=120).print(table)


# ---------------------------------------------------------------- routing
@routing_app.command("show")
def routing_show(
    ctx: typer.Context,
    version: Annotated[int | None, typer.Option(help="A past version (default: the one in force).", min=1)] = None,
) -> None:
    """Show the routing rules in force (or at a past version)."""
    with _desk(ctx) as desk:
        policy = desk.routing_policy(version)
        if policy is None:
            raise ValidationFailed("no routing rules are published yet (ticketflow policy routing publish FILE.json)")
        if version is not None and policy.version != version:
            raise ValidationFailed(f"the routing rules have no version {version} (latest: {policy.version})")
        table = Table(title=f"routing rules v{policy.version}: default team {_team_name(desk, policy.default_team_id)}"
                            + (f" ({policy.note})" if policy.note else ""))
        for column in ("#", "rule", "team", "when", "priority", "tags"):
            table.add_column(column)
        for n, rule in enumerate(policy.rules, 1):
            table.add_row(str(n), rule["name"], _team_name(desk, rule["team_id"]), _conditions(rule),
                          rule.get("set_priority") or "", ", ".join(rule.get("add_tags") or []))
        _print(table)


@routing_app.command("publish")
def routing_publish(ctx: typer.Context, file: FileArg) -> None:
    """Publish the rules in FILE.json ({"rules": [...], "default_team_id": ..., "note": ...}) as a new version."""
    command = PublishRoutingRules.model_validate(read_json(file))
    with _desk(ctx) as desk:
        _said("routing rules", desk.publish_routing_rules(command, CLI_ADMIN))


# --------------------------------------------------------------- calendars
@calendar_app.command("define")
def calendar_define(ctx: typer.Context, file: FileArg) -> None:
    """Define (or revise, by name) the business calendar in FILE.json."""
    command = DefineCalendar.model_validate(read_json(file))
    if command.timezone not in available_timezones():
        raise ValidationFailed(f"unknown timezone {command.timezone!r}: use an IANA name such as Asia/Shanghai")
    with _desk(ctx) as desk:
        result = desk.define_calendar(command, CLI_ADMIN)
        _said(f"calendar {command.name} ({result.object_id})", result)


@calendar_app.command("list")
def calendar_list(ctx: typer.Context) -> None:
    """List the business calendars."""
    with _desk(ctx) as desk:
        table = Table(title="business calendars")
        for column in ("name", "id", "v", "timezone", "weekly hours", "holidays", "make-up days"):
            table.add_column(column)
        for calendar in desk.calendars():
            workdays = ", ".join(f"{d} (as {DAYS[w]})" if 0 <= w <= 6 else d for d, w in calendar.workdays.items())
            table.add_row(calendar.name, str(calendar.id), str(calendar.version), calendar.timezone, _weekly(calendar.weekly),
                          str(len(calendar.holidays)), workdays)
        _print(table)


# ------------------------------------------------------------ SLA policies
@sla_app.command("define")
def sla_define(ctx: typer.Context, file: FileArg) -> None:
    """Define (or revise, by name) the SLA policy in FILE.json."""
    command = DefineSlaPolicy.model_validate(read_json(file))
    with _desk(ctx) as desk:
        result = desk.define_sla_policy(command, CLI_ADMIN)
        _said(f"SLA policy {command.name} ({result.object_id})", result)


@sla_app.command("list")
def sla_list(ctx: typer.Context) -> None:
    """List the SLA policies in matching order (first match wins)."""
    with _desk(ctx) as desk:
        calendars = {c.id: c.name for c in desk.calendars()}
        table = Table(title="SLA policies (matching order)")
        for column in ("pos", "name", "v", "status", "when", "targets (minutes, b = business hours)", "calendar"):
            table.add_column(column)
        for policy in desk.sla_policies():
            targets = "; ".join(
                f"{priority}: " + ", ".join(
                    f"{metric.removesuffix('_time')} {t['minutes']}{'b' if t.get('business_hours') else ''}"
                    for metric, t in metrics.items()
                )
                for priority, metrics in policy.targets.items()
            )
            calendar = calendars.get(policy.calendar_id, str(policy.calendar_id)) if policy.calendar_id else "24x7"
            table.add_row(str(policy.position), policy.name, str(policy.version),
                          "retired" if policy.retired else "active", _conditions(policy.conditions), targets, calendar)
        _print(table)


@sla_app.command("retire")
def sla_retire(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The policy's name (or id).")],
    reason: Annotated[str, typer.Option(help="Why (kept in the policy's history).")],
) -> None:
    """Retire an SLA policy: it stops matching new tickets."""
    try:
        policy_id = UUID(name.strip())
    except ValueError:
        policy_id = sla_policy_id(name.strip())
    with _desk(ctx) as desk:
        try:
            result = desk.retire_sla_policy(RetireSlaPolicy(policy_id=policy_id, reason=reason), CLI_ADMIN)
        except NotFound:
            raise NotFound("SLA policy", name.strip()) from None
        _said(f"SLA policy {name.strip()}", result)


# ---------------------------------------------------------------- strategy
def strategy(
    ctx: typer.Context,
    team: Annotated[str, typer.Argument(help="Team id or exact name.", metavar="TEAM_ID")],
    strategy: Annotated[str, typer.Argument(help=f"One of: {', '.join(STRATEGIES)}.", metavar="STRATEGY")],
) -> None:
    """Set how a team's tickets are assigned."""
    if strategy not in STRATEGIES:
        raise ValidationFailed(f"strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    with _desk(ctx) as desk:
        team_id = resolve_team(desk, team)
        result = desk.set_assignment_strategy(SetAssignmentStrategy(team_id=team_id, strategy=strategy), CLI_ADMIN)  # type: ignore[arg-type]
        _said(f"team {_team_name(desk, team_id)} assigns by {strategy}", result)


policy_app.command("strategy")(strategy)
