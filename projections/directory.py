"""The team directory: every team, its members, roles, skills and who is in rotation."""

from __future__ import annotations

from typing import Any

from projections.sql import Batch, Db, Table, dumps, loads, ts, uuid_text
from projections.view import Event, View
from ticketflow.domain import Team

TEAMS = Table(
    "tf_teams",
    columns=(
        "team_id TEXT NOT NULL",
        "name TEXT",
        "description TEXT",
        "members TEXT",  # {"agent": {"role", "skills", "active"}}
        "active_members INTEGER",
        "formed_at TEXT",
        "updated_at TEXT",
        "version INTEGER",
    ),
    key=("team_id",),
)


class DirectoryView(View):
    name = "directory"
    tables = (TEAMS,)
    event_types = (Team.Event,)

    def apply(self, batch: Batch, event: Event, position: int) -> None:
        if not isinstance(event, Team.Event):
            return
        key = uuid_text(event.originator_id)
        when = ts(event.occurred_at)
        if isinstance(event, Team.Formed):
            batch.put(TEAMS, {
                "team_id": key, "name": event.name, "description": event.description, "members": "{}",
                "active_members": 0, "formed_at": when, "updated_at": when, "version": event.originator_version,
            })
            return
        row = batch.get(TEAMS, key)
        if row is None:  # pragma: no cover
            return
        members: dict[str, dict[str, Any]] = loads(row["members"])
        match event:
            case Team.Renamed():
                row["name"] = event.name
            case Team.MemberAdded():
                members[event.agent_id] = {"role": event.role, "skills": list(event.skills), "active": True}
            case Team.MemberChanged():
                members[event.agent_id].update(role=event.role, skills=list(event.skills))
            case Team.MemberDeactivated():
                members[event.agent_id]["active"] = False
            case Team.MemberReactivated():
                members[event.agent_id]["active"] = True
        row.update(
            members=dumps(members),
            active_members=sum(1 for m in members.values() if m["active"]),
            updated_at=when,
            version=event.originator_version,
        )
        batch.touch(TEAMS, row)


def team_members(db: Db) -> dict[str, list[str]]:
    """Team id -> its members' agent ids (in rotation or not), sorted."""
    return {str(r["team_id"]): sorted(loads(r["members"])) for r in db.all("SELECT team_id, members FROM {p}tf_teams")}


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "members": loads(row["members"])}


def list_teams(db: Db) -> list[dict[str, Any]]:
    return [_decode(r) for r in db.all("SELECT * FROM {p}tf_teams ORDER BY name, team_id")]


def get_team(db: Db, team_id: str) -> dict[str, Any] | None:
    row = db.one("SELECT * FROM {p}tf_teams WHERE team_id = ?", (team_id,))
    return None if row is None else _decode(row)
