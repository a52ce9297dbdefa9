"""/api/v1: the workflow policies (routing rules, business calendars, SLA policies, team strategy).

Each policy is an aggregate with its own history: every change is a new version, and any
past version stays readable (``?version=N``), so an auditor can see the policy a ticket was
decided with. Reads come from the event store itself (policies are few and change rarely).
"""

from __future__ import annotations

from functools import cache
from typing import Annotated, Any, TypeVar
from uuid import UUID
from zoneinfo import available_timezones

from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from api import schemas as s
from api.pagination import PagerDep
from api.deps import Commands, CommandsDep, ServicesDep
from api.problems import ApiProblem, responses
from ticketflow.application import CommandResult, TicketDesk
from ticketflow.commands import Command
from ticketflow.commands import workflow as wf
from ticketflow.domain import ROUTING_POLICY_ID, RoutingPolicy, ServiceCalendar, SlaPolicy, TicketflowAggregate
from ticketflow.domain.policy import calendar_id, sla_policy_id
from ticketflow.errors import ConcurrencyConflict, NotFound, TeamNotFound, ValidationFailed

router = APIRouter(prefix="/api/v1", tags=["policies"])
READ_ERRORS = responses(403, 404, 422)
WRITE_ERRORS = responses(403, 404, 409, 412, 422)
DEFINE_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"model": s.CommandOut, "description": "Revised: a new version (or unchanged: no new version)"},
    **WRITE_ERRORS,
}
Version = Annotated[int | None, Query(ge=1, le=2**31, description="A past version (default: the latest).")]
A = TypeVar("A", bound=TicketflowAggregate)


@cache
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def known_timezone(name: str) -> bool:
    """An IANA time zone name this machine knows (e.g. Asia/Shanghai)."""
    return name in _timezones()


def _define(cmd: Commands, command: type[Command], object_id: UUID, kind: str, **fields: Any) -> CommandResult:
    """Run a define-or-revise command; If-Match on something not defined yet is a failed precondition."""
    try:
        result = cmd.run(command, expected_version=cmd.expected_version, **fields)
    except NotFound as exc:
        if cmd.expected_version is not None and exc.object_id == str(object_id):
            raise ApiProblem(412, "precondition_failed",
                             f'If-Match "{cmd.expected_version}" cannot match: the {kind} does not exist yet') from None
        raise
    return result


def _defined(cmd: Commands, result: CommandResult, location: str) -> JSONResponse:
    created = result.version == 1 and bool(result.events)
    return cmd.respond(result, 201 if created else 200, location=location if created else None)


def _at(desk: TicketDesk, cls: type[A], object_id: UUID, version: int | None, kind: str) -> A:
    aggregate = desk._load(cls, object_id, version)
    if version is not None and aggregate.version != version:
        raise ApiProblem(404, "not_found", f"{kind} {object_id} has no version {version} (latest: {aggregate.version})")
    return aggregate


def policy_versions(desk: TicketDesk, object_id: UUID, cls: type[TicketflowAggregate], kind: str) -> list[dict[str, Any]]:
    try:
        events = desk.history(object_id)
    except NotFound:
        raise NotFound(kind, object_id) from None
    if not type(events[0]).__qualname__.startswith(cls.__name__ + "."):
        raise NotFound(kind, object_id)
    return [
        {
            "version": e.originator_version, "event_type": type(e).__qualname__, "occurred_at": e.occurred_at,
            "actor_id": e.actor_id, "actor_role": e.actor_role, "via": e.via, "imported": e.imported,
            "note": str(getattr(e, "note", None) or getattr(e, "reason", None) or ""),
            "content": jsonable_encoder(e.payload()),
        }
        for e in events
    ]


def _json(model: type[s.Model], row: dict[str, Any], version: int) -> JSONResponse:
    return JSONResponse(model.model_validate(row).model_dump(mode="json"), headers={"ETag": f'"{version}"'})


# ---------------------------------------------------------------- routing rules
def _routing(policy: RoutingPolicy) -> dict[str, Any]:
    return {"policy_id": policy.id, "version": policy.version, "rules": policy.rules,
            "default_team_id": policy.default_team_id, "note": policy.note, "updated_at": policy.updated_at}


@router.get("/routing-rules", summary="The routing rules in force (or at a past version)",
            response_model=s.RoutingPolicyOut, responses=READ_ERRORS)
def routing_rules(svc: ServicesDep, version: Version = None) -> JSONResponse:
    """Rules in order (first match wins) and the default team. `ETag` is the version."""
    policy = svc.desk.routing_policy(version)
    if policy is None:
        raise NotFound("routing policy", ROUTING_POLICY_ID)
    if version is not None and policy.version != version:
        raise ApiProblem(404, "not_found", f"the routing rules have no version {version} (latest: {policy.version})")
    return _json(s.RoutingPolicyOut, _routing(policy), policy.version)


@router.put("/routing-rules", summary="Publish a new version of the routing rules", response_model=s.CommandOut,
            responses=WRITE_ERRORS)
def publish_routing_rules(body: s.RoutingRulesPut, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """Replaces the whole rulebook; every team named must exist. Publishing what is already in force
    writes nothing. Send `If-Match` with the version you edited to refuse a stale publish (412)."""
    result = _define(cmd, wf.PublishRoutingRules, ROUTING_POLICY_ID, "routing policy", **body.model_dump())
    return cmd.respond(result)


@router.get("/routing-rules/history", summary="Every version of the routing rules: who, when, note",
            response_model=list[s.PolicyVersionOut], responses=responses(403, 404))
def routing_history(pager: PagerDep, svc: ServicesDep) -> Any:
    """Each published version of the routing rules with who published it, when, and the note. Paged."""
    return pager.page(policy_versions(svc.desk, ROUTING_POLICY_ID, RoutingPolicy, "routing policy"))


# ------------------------------------------------------------------- calendars
def _calendar(calendar: ServiceCalendar) -> dict[str, Any]:
    return {"calendar_id": calendar.id, "version": calendar.version, "updated_at": calendar.updated_at,
            "name": calendar.name, **calendar.spec()}


@router.post("/calendars", status_code=201, summary="Define or revise a business-hours calendar (by name)",
             response_model=s.CommandOut, responses=DEFINE_ERRORS)
def define_calendar(body: s.CalendarDefine, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """201 when the name is new, 200 when it revises (a new version) or changes nothing.
    Holidays close whole days; `workdays` are make-up working days (调休)."""
    if not known_timezone(body.timezone):  # type: ignore[attr-defined]
        raise ValidationFailed(f"unknown timezone {body.timezone!r}: use an IANA name such as Asia/Shanghai")  # type: ignore[attr-defined]
    object_id = calendar_id(body.name)  # type: ignore[attr-defined]
    result = _define(cmd, wf.DefineCalendar, object_id, "business calendar", **body.model_dump())
    return _defined(cmd, result, f"/api/v1/calendars/{object_id}")


@router.get("/calendars", summary="Business-hours calendars", response_model=list[s.CalendarOut],
            responses=responses(403))
def calendars(pager: PagerDep, svc: ServicesDep) -> Any:
    """Every business-hours calendar (latest versions): time zone, weekly hours, holidays and make-up
    workdays. Paged."""
    return pager.page([s.CalendarOut.model_validate(_calendar(c)).model_dump(mode="json") for c in svc.desk.calendars()])


@router.get("/calendars/{calendar_id}", summary="One calendar (or a past version)", response_model=s.CalendarOut,
            responses=READ_ERRORS)
def get_calendar(calendar_id: UUID, svc: ServicesDep, version: Version = None) -> JSONResponse:
    """The calendar now, or at `version`; `ETag` is its version."""
    calendar = _at(svc.desk, ServiceCalendar, calendar_id, version, "business calendar")
    return _json(s.CalendarOut, _calendar(calendar), calendar.version)


# ---------------------------------------------------------------- SLA policies
def _sla(policy: SlaPolicy) -> dict[str, Any]:
    return {"policy_id": policy.id, "version": policy.version, "updated_at": policy.updated_at,
            "retired": policy.retired, **policy.definition()}


@router.post("/sla-policies", status_code=201, summary="Define or revise an SLA policy (by name)",
             response_model=s.CommandOut, responses=DEFINE_ERRORS)
def define_sla_policy(body: s.SlaPolicyDefine, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """201 when the name is new, 200 when it revises (a new version) or changes nothing. A revision
    applies to tickets from their next update; decisions already made keep their version."""
    object_id = sla_policy_id(body.name)  # type: ignore[attr-defined]
    result = _define(cmd, wf.DefineSlaPolicy, object_id, "SLA policy", **body.model_dump())
    return _defined(cmd, result, f"/api/v1/sla-policies/{object_id}")


@router.get("/sla-policies", summary="SLA policies in matching order (retired ones flagged)",
            response_model=list[s.SlaPolicyOut], responses=responses(403))
def sla_policies(pager: PagerDep, svc: ServicesDep) -> Any:
    """Every SLA policy in matching order (first match wins), retired ones flagged. Paged."""
    return pager.page([s.SlaPolicyOut.model_validate(_sla(p)).model_dump(mode="json") for p in svc.desk.sla_policies()])


@router.get("/sla-policies/{policy_id}", summary="One SLA policy (or a past version)", response_model=s.SlaPolicyOut,
            responses=READ_ERRORS)
def get_sla_policy(policy_id: UUID, svc: ServicesDep, version: Version = None) -> JSONResponse:
    """The SLA policy now, or at `version`; `ETag` is its version."""
    policy = _at(svc.desk, SlaPolicy, policy_id, version, "SLA policy")
    return _json(s.SlaPolicyOut, _sla(policy), policy.version)


@router.get("/sla-policies/{policy_id}/history", summary="Every version of an SLA policy: who, when, what",
            response_model=list[s.PolicyVersionOut], responses=READ_ERRORS)
def sla_history(pager: PagerDep, policy_id: UUID, svc: ServicesDep) -> Any:
    """Each version of the SLA policy with who defined it, when, and what it said. Paged."""
    return pager.page(policy_versions(svc.desk, policy_id, SlaPolicy, "SLA policy"))


@router.post("/sla-policies/{policy_id}/retire", summary="Retire an SLA policy", response_model=s.CommandOut,
             responses=WRITE_ERRORS)
def retire_sla_policy(policy_id: UUID, body: s.SlaPolicyRetire, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """It stops matching new tickets; tickets already measured keep the version they cited."""
    return cmd.respond(cmd.run(wf.RetireSlaPolicy, policy_id=policy_id, **body.model_dump()))


# ------------------------------------------------------------- team strategy
@router.put("/teams/{team_id}/strategy", tags=["teams"], summary="Set a team's assignment strategy",
            response_model=s.CommandOut, responses=WRITE_ERRORS)
def set_strategy(team_id: UUID, body: s.StrategyPut, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """round_robin, least_loaded or skills; a supervisor of the team or an admin. Setting the strategy
    already in use writes nothing (PUT is idempotent)."""
    if not cmd.principal.sees_team(team_id):
        raise TeamNotFound(team_id)
    team = cmd.svc.desk.get_team(team_id)
    if team.strategy == body.strategy:  # type: ignore[attr-defined]
        if cmd.expected_version is not None and cmd.expected_version != team.version:
            raise ConcurrencyConflict(team_id, cmd.expected_version, team.version)
        return cmd.respond(CommandResult(team.id, team.version, None, ()))
    return cmd.respond(cmd.run(wf.SetAssignmentStrategy, team_id=team_id, **body.model_dump()))

