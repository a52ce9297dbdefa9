"""``ticketflow team list``: the desk's teams, and finding one by its name or id.

Teams are formed in the console or through the API; commands that take a team (``token create
--team``, ``policy strategy``) accept its id or its name (or one half of a bilingual name such as
``技术支持 Technical Support``) when only one team answers to it."""

from __future__ import annotations

from uuid import UUID

import typer
from rich.table import Table

from ticketflow.application import TicketDesk
from ticketflow.domain import Team
from ticketflow.errors import NotFound, ValidationFailed
from ticketflow.team_names import teams_named
from ticketflow_cli import output

TEAM_FORMED = "ticketflow.domain.team:Team.Formed"

team_app = output.group(help="Teams: their ids, names and members.")


def all_teams(desk: TicketDesk) -> list[Team]:
    """Every team ever formed, in the order they were formed."""
    formed = desk.recorder.select_notifications(1, 10**9, topics=[TEAM_FORMED])
    return [desk.get_team(UUID(str(notification.originator_id))) for notification in formed]


def resolve_team(desk: TicketDesk, value: str) -> UUID:
    """The team with this id, or the one team with exactly this name."""
    text = value.strip()
    try:
        team_id = UUID(text)
    except ValueError:
        pass
    else:
        if not any(team.id == team_id for team in all_teams(desk)):
            raise NotFound("team", team_id)
        return team_id
    teams = {team.id: team.name for team in all_teams(desk)}
    named = teams_named(teams, text)
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        listed = "; ".join(f"{teams[team]} {team}" for team in named)
        raise ValidationFailed(
            f"{len(named)} teams are named {text!r} ({listed}): give the id of the one you mean"
        )
    raise ValidationFailed(f"no team is named {text!r}; `ticketflow team list` shows each team's name and id")


@team_app.command("list")
def list_teams(ctx: typer.Context) -> None:
    """Every team: its id, name, active members (and all members ever), and assignment strategy."""
    desk = TicketDesk(ctx.obj)
    try:
        teams = all_teams(desk)
    finally:
        desk.close()
    table = Table(title=f"{len(teams)} teams")
    for column in ("id", "name", "members", "strategy"):
        table.add_column(column, justify="right" if column == "members" else "left", no_wrap=column == "id")
    for team in teams:
        active = len(team.active_members())
        ever = f" (of {len(team.members)})" if len(team.members) != active else ""
        table.add_row(str(team.id), team.name, f"{active}{ever}", team.strategy)
    output.console(min_width=120).print(table)
