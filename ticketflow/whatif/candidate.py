"""The candidate policies of a what-if: one file, TOML or JSON, in the shapes the desk publishes.

Schema (every section optional; what the file does not mention stays as it was then)::

    [routing]                       # replaces the routing rulebook (PUT /api/v1/policies/routing)
    default_team_id = "技术支持 Technical Support"   # a team id, or a team's name
    [[routing.rules]]               # ordered, first match wins
    name = "发票"
    team_id = "账务 Billing"
    keywords = ["发票", "invoice"]

    [[calendars]]                   # defines or replaces the calendar of that name
    name = "上海工作日"
    timezone = "Asia/Shanghai"
    weekly = { "0" = [["09:00", "18:00"]], "1" = [["09:00", "18:00"]] }
    holidays = ["2026-10-01"]
    workdays = { "2026-09-28" = 0 }   # 调休: a Sunday worked on Monday's hours

    [[sla_policies]]                # defines or replaces the SLA policy of that name
    name = "标准"
    position = 0
    calendar = "上海工作日"          # a calendar's name (or calendar_id = its id)
    targets = { normal = { first_reply_time = { minutes = 240 } } }
    escalation = { raise_priority = true, team_id = "售后服务 After-sales" }

    [[assignment]]                  # a team's assignment strategy (PUT /api/v1/teams/{team_id}/strategy)
    team_id = "技术支持"
    strategy = "least_loaded"       # round_robin, least_loaded or skills

    [[rotation]]                    # a member in or out of rotation the whole period
    team_id = "技术支持"             # (POST /api/v1/teams/{team_id}/members/{agent_id}/deactivate, /reactivate)
    agent_id = "li.wei"
    active = false
    reason = "休假 on leave"         # optional, as the deactivate body (only with active = false)

Each section is validated exactly as the desk validates the same definition
(:class:`~ticketflow.commands.workflow.PublishRoutingRules`, ``DefineCalendar``, ``DefineSlaPolicy``,
``SetAssignmentStrategy``, ``DeactivateTeamMember`` / ``ReactivateTeamMember``); a member taken out of
or put back in rotation must be one of the team's (when the caller knows the teams' members).
"""

from __future__ import annotations

import copy
import json
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from ticketflow import metadata
from ticketflow.automation import calendar_fields, sla_policy_fields
from ticketflow.commands.team import DeactivateTeamMember, ReactivateTeamMember
from ticketflow.commands.workflow import (
    DefineCalendar,
    DefineSlaPolicy,
    PublishRoutingRules,
    SetAssignmentStrategy,
)
from ticketflow.domain import ROUTING_POLICY_ID, RoutingPolicy, ServiceCalendar, SlaPolicy, Team
from ticketflow.domain.policy import calendar_id, sla_policy_id
from ticketflow.errors import ValidationFailed
from ticketflow.team_names import teams_named

#: Candidate policies are in force from the start of time: every replayed ticket sees them.
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
SECTIONS = ("routing", "calendars", "sla_policies", "assignment", "rotation")


@dataclass
class Candidate:
    """The policies to replay under; None / empty where the file says nothing."""

    routing: RoutingPolicy | None = None
    calendars: dict[UUID, ServiceCalendar] = field(default_factory=dict)
    sla_policies: dict[UUID, SlaPolicy] = field(default_factory=dict)
    #: team -> the strategy its router uses instead of the one in force
    strategies: dict[UUID, str] = field(default_factory=dict)
    #: team -> {agent: in rotation or not}, instead of the member's state in force
    rotation: dict[UUID, dict[str, bool]] = field(default_factory=dict)
    team_names: dict[UUID, str] = field(default_factory=dict)
    _teams: dict[tuple[UUID, int | None], Team] = field(default_factory=dict, repr=False)

    def describe(self) -> dict[str, Any]:
        name = self._team_name
        return {
            "routing_rules": None if self.routing is None else [r["name"] for r in self.routing.rules],
            "calendars": sorted(c.name for c in self.calendars.values()),
            "sla_policies": sorted(p.name for p in self.sla_policies.values()),
            "assignment": sorted(
                ({"team": name(t), "strategy": s} for t, s in self.strategies.items()),
                key=lambda e: e["team"],
            ),
            "rotation": sorted(
                (
                    {"team": name(t), "agent": agent, "active": active}
                    for t, agents in self.rotation.items()
                    for agent, active in agents.items()
                ),
                key=lambda e: (e["team"], e["agent"]),
            ),
        }

    def _team_name(self, team_id: UUID) -> str:
        return self.team_names.get(team_id, str(team_id))

    def overlay_teams(self, teams: dict[UUID, Team]) -> dict[UUID, Team]:
        """The teams as the candidate has them: its strategy, its members in or out of rotation.

        A team the candidate does not mention is the one in force; a member it names who is not
        (yet) in the team at that point of the log is not added."""
        if not self.strategies and not self.rotation:
            return teams
        return {
            i: self._team(t) if i in self.strategies or i in self.rotation else t for i, t in teams.items()
        }

    def _team(self, team: Team) -> Team:
        """One team overlaid, made once per team version (a copy: the one in force stays as it was)."""
        key = (team.id, team.version)
        overlaid = self._teams.get(key)
        if overlaid is None:
            overlaid = copy.copy(team)
            overlaid.strategy = self.strategies.get(team.id, team.strategy)
            flags = self.rotation.get(team.id, {})
            overlaid.members = {
                agent: {**member, "active": flags[agent]} if agent in flags else member
                for agent, member in team.members.items()
            }
            self._teams[key] = overlaid
        return overlaid


def read_candidate_file(path: Path) -> dict[str, Any]:
    """The file's data: TOML when it ends in ``.toml``, JSON otherwise; one readable line if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationFailed(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"{path}: cannot read it ({type(exc).__name__})") from None
    try:
        data: Any = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationFailed(f"{path}: not valid TOML ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ValidationFailed(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(data, dict):
        raise ValidationFailed(f"{path}: expected an object with {', '.join(SECTIONS)}")
    return data


def _team(value: Any, teams: Mapping[UUID, str], where: str) -> str | None:
    """A team id given as an id or as a team's name (or half of a bilingual one, :mod:`ticketflow.team_names`)."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        return str(UUID(text))
    except ValueError:
        pass
    found = teams_named(teams, text)  # as every --team of the CLI: a name, or half of a bilingual one
    if len(found) != 1:
        raise ValidationFailed(f"{where}: {'no' if not found else 'more than one'} team is called {text!r}")
    return str(found[0])


def _checked(model: Any, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ValidationFailed(f"{where}: expected an object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        place = ".".join(str(p) for p in first["loc"])
        raise ValidationFailed(f"{where}: {place + ': ' if place else ''}{first['msg']}") from None


def build_candidate(
    data: Mapping[str, Any],
    teams: Mapping[UUID, str],
    members: Mapping[UUID, Collection[str]] | None = None,
    calendars: Collection[UUID] | None = None,
) -> Candidate:
    """Validate the file's sections against the desk's teams and build the policies in memory.

    ``members``: each team's members (ever added); given, an agent put in or out of rotation must be one.
    ``calendars``: the desk's calendars; given, an SLA policy's calendar must be one or in the file."""
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ValidationFailed(
            f"unknown section(s) {', '.join(unknown)}: a candidate holds {', '.join(SECTIONS)}"
        )
    candidate = Candidate(team_names=dict(teams))
    context = metadata.RecordingContext("whatif", "system", "system", "whatif", "whatif", BEGINNING)
    with metadata.recording(context):
        if "routing" in data:
            routing = dict(data["routing"]) if isinstance(data["routing"], dict) else data["routing"]
            if isinstance(routing, dict):
                routing["default_team_id"] = _team(
                    routing.get("default_team_id"), teams, "routing.default_team_id"
                )
                rules = routing.get("rules", [])
                if isinstance(rules, list):
                    routing["rules"] = [
                        {**r, "team_id": _team(r.get("team_id"), teams, f"routing.rules[{n}].team_id")}
                        if isinstance(r, dict)
                        else r
                        for n, r in enumerate(rules)
                    ]
            cmd = _checked(PublishRoutingRules, routing, "routing")
            if not cmd.rules and "rules" not in routing:
                raise ValidationFailed(
                    "routing: give the rules (an empty list sends everything to the default team)"
                )
            for team_id in {cmd.default_team_id, *(r.team_id for r in cmd.rules)}:
                if team_id not in teams:
                    raise ValidationFailed(f"routing: team {team_id} does not exist")
            candidate.routing = RoutingPolicy._create(
                RoutingPolicy.Adopted,
                id=ROUTING_POLICY_ID,
                rules=[r.as_rule() for r in cmd.rules],
                default_team_id=cmd.default_team_id,
                note="what-if candidate",
            )
        for n, spec in enumerate(_listed(data, "calendars")):
            cmd = _checked(DefineCalendar, spec, f"calendars[{n}]")
            try:
                fields = calendar_fields(cmd)  # the desk's check: a calendar that cannot run is refused
            except ValidationFailed as exc:
                field = "timezone" if "timezone" in str(exc) else "weekly"
                raise ValidationFailed(f"calendars[{n}].{field}: {exc}") from None
            calendar = ServiceCalendar._create(ServiceCalendar.Defined, id=calendar_id(cmd.name), **fields)
            candidate.calendars[calendar.id] = calendar
        for n, spec in enumerate(_listed(data, "sla_policies")):
            where = f"sla_policies[{n}]"
            spec = dict(spec) if isinstance(spec, dict) else spec
            named = None
            if isinstance(spec, dict):
                named = spec.get("calendar", spec.get("calendar_id"))
                if "calendar" in spec:
                    spec["calendar_id"] = str(calendar_id(str(spec.pop("calendar"))))
                escalation = spec.get("escalation")
                if isinstance(escalation, dict) and escalation.get("team_id") is not None:
                    spec["escalation"] = {
                        **escalation,
                        "team_id": _team(escalation["team_id"], teams, f"{where}.escalation"),
                    }
            cmd = _checked(DefineSlaPolicy, spec, where)
            if (
                calendars is not None
                and cmd.calendar_id is not None
                and cmd.calendar_id not in candidate.calendars
                and cmd.calendar_id not in calendars
            ):
                raise ValidationFailed(
                    f"{where}.calendar: no calendar {named!r} in the file or on the desk"
                )
            policy = SlaPolicy._create(
                SlaPolicy.Defined, id=sla_policy_id(cmd.name), **sla_policy_fields(cmd)
            )
            candidate.sla_policies[policy.id] = policy
        _assignment(data, teams, candidate)
        _rotation(data, teams, members, candidate)
    return candidate


def _only(spec: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
    extra = sorted(set(spec) - set(keys))
    if extra:
        raise ValidationFailed(f"{where}.{extra[0]}: not one of {', '.join(keys)}")


def _existing_team(value: Any, teams: Mapping[UUID, str], where: str) -> str:
    if value is None:
        raise ValidationFailed(f"{where}: give the team (its id or its name)")
    team_id = _team(value, teams, where)
    assert team_id is not None
    if UUID(team_id) not in teams:
        raise ValidationFailed(f"{where}: team {team_id} does not exist")
    return team_id


def _assignment(data: Mapping[str, Any], teams: Mapping[UUID, str], candidate: Candidate) -> None:
    """``[[assignment]]``: a team's strategy, as ``PUT /api/v1/teams/{team_id}/strategy`` sets it."""
    for n, spec in enumerate(_listed(data, "assignment")):
        where = f"assignment[{n}]"
        if not isinstance(spec, dict):
            raise ValidationFailed(f"{where}: expected an object")
        _only(spec, ("team_id", "strategy"), where)
        team_id = _existing_team(spec.get("team_id"), teams, f"{where}.team_id")
        cmd = _checked(SetAssignmentStrategy, {**spec, "team_id": team_id}, where)
        if cmd.team_id in candidate.strategies:
            raise ValidationFailed(f"{where}.team_id: team {teams[cmd.team_id]!r} is given twice")
        candidate.strategies[cmd.team_id] = cmd.strategy


def _rotation(
    data: Mapping[str, Any],
    teams: Mapping[UUID, str],
    members: Mapping[UUID, Collection[str]] | None,
    candidate: Candidate,
) -> None:
    """``[[rotation]]``: a member in or out of rotation, as the desk's deactivate / reactivate take it."""
    for n, spec in enumerate(_listed(data, "rotation")):
        where = f"rotation[{n}]"
        if not isinstance(spec, dict):
            raise ValidationFailed(f"{where}: expected an object")
        _only(spec, ("team_id", "agent_id", "active", "reason"), where)
        if not isinstance(spec.get("active"), bool):
            raise ValidationFailed(f"{where}.active: give true (in rotation) or false (out of rotation)")
        team_id = _existing_team(spec.get("team_id"), teams, f"{where}.team_id")
        fields = {k: v for k, v in spec.items() if k != "active"}
        model = ReactivateTeamMember if spec["active"] else DeactivateTeamMember
        cmd = _checked(model, {**fields, "team_id": team_id}, where)
        agent, team = str(cmd.agent_id), cmd.team_id
        if members is not None and agent not in members.get(team, ()):
            raise ValidationFailed(f"{where}.agent_id: {agent} is not a member of team {teams[team]!r}")
        flags = candidate.rotation.setdefault(team, {})
        if agent in flags:
            raise ValidationFailed(f"{where}.agent_id: {agent} in team {teams[team]!r} is given twice")
        flags[agent] = spec["active"]


def _listed(data: Mapping[str, Any], name: str) -> list[Any]:
    value = data.get(name, [])
    if not isinstance(value, list):
        raise ValidationFailed(f"{name}: expected a list")
    return value
