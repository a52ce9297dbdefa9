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

Each section is validated exactly as the desk validates the same definition
(:class:`~ticketflow.commands.workflow.PublishRoutingRules`, ``DefineCalendar``, ``DefineSlaPolicy``).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from ticketflow import metadata
from ticketflow.automation import calendar_fields, sla_policy_fields
from ticketflow.commands.workflow import DefineCalendar, DefineSlaPolicy, PublishRoutingRules
from ticketflow.domain import ROUTING_POLICY_ID, RoutingPolicy, ServiceCalendar, SlaPolicy
from ticketflow.domain.policy import calendar_id, sla_policy_id
from ticketflow.errors import ValidationFailed

#: Candidate policies are in force from the start of time: every replayed ticket sees them.
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
SECTIONS = ("routing", "calendars", "sla_policies")


@dataclass
class Candidate:
    """The policies to replay under; None / empty where the file says nothing."""

    routing: RoutingPolicy | None = None
    calendars: dict[UUID, ServiceCalendar] = field(default_factory=dict)
    sla_policies: dict[UUID, SlaPolicy] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {
            "routing_rules": None if self.routing is None else [r["name"] for r in self.routing.rules],
            "calendars": sorted(c.name for c in self.calendars.values()),
            "sla_policies": sorted(p.name for p in self.sla_policies.values()),
        }


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
    """A team id given as an id or as a team's name (exact, or the unique name starting with it)."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        return str(UUID(text))
    except ValueError:
        pass
    exact = [i for i, name in teams.items() if name == text]
    found = exact or [i for i, name in teams.items() if name.startswith(text)]
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


def build_candidate(data: Mapping[str, Any], teams: Mapping[UUID, str]) -> Candidate:
    """Validate the file's sections against the desk's teams and build the policies in memory."""
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ValidationFailed(
            f"unknown section(s) {', '.join(unknown)}: a candidate holds {', '.join(SECTIONS)}"
        )
    candidate = Candidate()
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
            calendar = ServiceCalendar._create(
                ServiceCalendar.Defined, id=calendar_id(cmd.name), **calendar_fields(cmd)
            )
            candidate.calendars[calendar.id] = calendar
        for n, spec in enumerate(_listed(data, "sla_policies")):
            where = f"sla_policies[{n}]"
            spec = dict(spec) if isinstance(spec, dict) else spec
            if isinstance(spec, dict):
                if "calendar" in spec:
                    spec["calendar_id"] = str(calendar_id(str(spec.pop("calendar"))))
                escalation = spec.get("escalation")
                if isinstance(escalation, dict) and escalation.get("team_id") is not None:
                    spec["escalation"] = {
                        **escalation,
                        "team_id": _team(escalation["team_id"], teams, f"{where}.escalation"),
                    }
            cmd = _checked(DefineSlaPolicy, spec, where)
            policy = SlaPolicy._create(
                SlaPolicy.Defined, id=sla_policy_id(cmd.name), **sla_policy_fields(cmd)
            )
            candidate.sla_policies[policy.id] = policy
    return candidate


def _listed(data: Mapping[str, Any], name: str) -> list[Any]:
    value = data.get(name, [])
    if not isinstance(value, list):
        raise ValidationFailed(f"{name}: expected a list")
    return value
