"""``/api/v1/whatif``: a what-if (假设分析) as a job — replay a past period under candidate policies.

``POST`` checks the request at once (period, team, the candidate's every section: 422 naming the
field) and answers 202 with the job; a worker (where the automation runs) replays the period, and
``GET /api/v1/whatif/{whatif_id}`` shows its progress and, once done, the report — the JSON
``ticketflow whatif --json`` prints. A supervisor's what-if covers only their teams; a desk-wide one
(no team) is for admins.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.deps import PrincipalDep, ServicesDep
from api.pagination import PagerDep
from api.problems import ApiProblem, problem, responses
from projections import operations
from projections.directory import team_members
from ticketflow.access import Principal
from ticketflow.errors import ValidationFailed
from ticketflow.whatif import build_candidate
from ticketflow.whatif.jobs import Job
from ticketflow.whatif.report import Period, team_filter

router = APIRouter(prefix="/api/v1", tags=["whatif"])

CANDIDATE_EXAMPLE: dict[str, Any] = {
    "calendars": [{
        "name": "上海工作日 Shanghai workdays", "timezone": "Asia/Shanghai",
        "weekly": {str(d): [["09:00", "18:00"]] for d in range(5)},
        "holidays": ["2026-10-01", "2026-10-02", "2026-10-03"], "workdays": {"2026-09-27": 0},
    }],
}


class PeriodIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    since: AwareDatetime = Field(alias="from", description="Tickets opened from this business time on (with an offset).")
    until: AwareDatetime = Field(alias="to", description="...and before this one.")


class WhatifIn(BaseModel):
    """What to replay, for which teams, under which candidate policies."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {
        "period": {"from": "2026-11-01T00:00:00+08:00", "to": "2026-12-01T00:00:00+08:00"},
        "team": "技术支持", "candidate": CANDIDATE_EXAMPLE}})

    period: PeriodIn
    team: str | None = Field(default=None, max_length=200, description=(
        "Only tickets placed in this team (name or id), recorded or candidate. A supervisor: one of theirs "
        "(absent: all their teams); absent for an admin: the whole desk."))
    candidate: dict[str, Any] = Field(description=(
        "The candidate policies, the schema of the `ticketflow whatif` file as JSON: `routing`, `calendars`, "
        "`sla_policies`, `assignment` (a team's strategy), `rotation` (members in or out of rotation); each "
        "optional; what it does not mention stays as it was then."))


class ProgressOut(BaseModel):
    done: int = Field(description="Tickets of the period replayed so far (0 while the log is read).")
    total: int = Field(description="Tickets opened in the period (0 until the log is read).")


JOB_EXAMPLE: dict[str, Any] = {
    "id": "5b0e4c1e-8f7a-4d7e-9a51-2f7f3d1e6c20", "status": "running", "progress": {"done": 4100, "total": 7554},
    "period": {"from": "2026-11-01T00:00:00+08:00", "to": "2026-12-01T00:00:00+08:00"}, "team": "技术支持",
    "team_ids": ["2c8e4f0a-6b1d-5e3f-8a7c-9d0e1f2a3b4c"], "requested_by": "gao.sup",
    "created_at": "2026-12-03T09:00:00+08:00", "started_at": "2026-12-03T01:00:01+00:00", "finished_at": None,
    "error": None,
}


class WhatifJobSummaryOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [JOB_EXAMPLE]})

    id: str
    status: str = Field(description="queued, running, done or failed.")
    progress: ProgressOut
    period: dict[str, str]
    team: str | None
    team_ids: list[str] | None = Field(description="The teams the what-if covers; null: the whole desk.")
    requested_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    error: str | None = Field(description="Why the job failed (status failed).")


class WhatifJobOut(WhatifJobSummaryOut):
    model_config = ConfigDict(json_schema_extra={"examples": [{**JOB_EXAMPLE, "report": None}]})

    report: dict[str, Any] | None = Field(
        default=None, description="Once done: the comparison, the JSON `ticketflow whatif --json` prints.")


def team_names(svc: Any) -> dict[UUID, str]:
    """Every team, id -> name, from the directory view once it includes the log's latest write."""
    svc.read_side.wait(svc.desk.log_position(), svc.settings.read_wait_seconds)
    return {UUID(i): name for i, name in svc.read_side.read("directory", operations.team_names).items()}


def members_of_teams(svc: Any) -> dict[UUID, list[str]]:
    """Every team's members (in rotation or not), from the directory view (read after :func:`team_names`)."""
    return {UUID(i): agents for i, agents in svc.read_side.read("directory", team_members).items()}


class FieldInvalid(ValidationFailed):
    """One field of the request is invalid: ``field`` names it (``body.candidate.sla_policies[0].targets``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def _invalid(field: str, message: str) -> FieldInvalid:
    return FieldInvalid(field, message)


def check_request(principal: Principal, teams: dict[UUID, str], since: Any, until: Any, team: str | None,
                  candidate: dict[str, Any], prefix: str = "body.",
                  members: dict[UUID, list[str]] | None = None,
                  calendars: Collection[UUID] | None = None) -> list[str] | None:
    """The request checked as a worker would run it; the teams the job covers (None: the whole desk).

    Raises ApiProblem 403 for a team outside a supervisor's (or a desk-wide what-if by a supervisor),
    FieldInvalid naming the field for anything invalid. The console asks the same."""
    try:
        Period(since, until)
    except ValidationFailed as exc:
        raise _invalid(f"{prefix}period.to", str(exc).replace("--to", "to").replace("--from", "from")) from None
    chosen = None
    if team is not None:
        try:
            chosen = team_filter(team, teams)
        except ValidationFailed as exc:
            raise _invalid(f"{prefix}team", str(exc).removeprefix("--team: ")) from None
    try:
        build_candidate(candidate, teams, members, calendars)
    except ValidationFailed as exc:
        parts = str(exc).split(": ")
        path = list(itertools.takewhile(lambda part: re.fullmatch(r"[\w\[\].]+", part) is not None, parts[:-1]))
        where, message = ".".join(path), ": ".join(parts[len(path):])
        raise _invalid(f"{prefix}candidate" + (f".{where}" if where else ""), message) from None
    if principal.all_teams:
        return None if chosen is None else [str(chosen)]
    if chosen is not None:
        if chosen not in principal.team_ids:
            raise ApiProblem(403, "forbidden", "a supervisor's what-if covers only their own teams")
        return [str(chosen)]
    if not principal.team_ids:
        raise ApiProblem(403, "forbidden", "a desk-wide what-if is for admins; you supervise no team")
    return sorted(str(t) for t in principal.team_ids)


def submit(svc: Any, principal: Principal, since: Any, until: Any, team: str | None,
           candidate: dict[str, Any], prefix: str = "body.") -> Job:
    names = team_names(svc)
    calendars = {c.id for c in svc.desk.calendars()}
    covered = check_request(principal, names, since, until, team, candidate, prefix, members_of_teams(svc), calendars)
    request = {"period": {"from": since.isoformat(), "to": until.isoformat()}, "team": team, "candidate": candidate}
    job = svc.whatif.store.submit(request, principal.name, str(principal.role), covered, svc.desk.clock.now())
    svc.whatif.submitted()
    return job  # type: ignore[no-any-return]


def visible_job(svc: Any, principal: Principal, whatif_id: UUID) -> Job:
    job = svc.whatif.store.get(whatif_id)
    if job is None or not job.visible_to(principal.all_teams, principal.team_ids):
        raise ApiProblem(404, "not_found", f"what-if {whatif_id} not found")
    return job  # type: ignore[no-any-return]


@router.post("/whatif", summary="Start a what-if: replay a past period under candidate policies",
             status_code=202, response_model=WhatifJobOut, responses=responses(403, 422))
def start_whatif(body: WhatifIn, request: Request, svc: ServicesDep, principal: PrincipalDep) -> Any:
    """Checks the request now (422 names the field) and queues the job; `Location` is the job to poll.
    A supervisor's what-if covers only their teams; without `team`, an admin's covers the whole desk."""
    try:
        job = submit(svc, principal, body.period.since, body.period.until, body.team, body.candidate)
    except FieldInvalid as exc:
        return problem(422, exc.code, str(exc), request, errors=[{"field": exc.field, "message": exc.message}])
    return JSONResponse(job.describe(), status_code=202, headers={"Location": f"/api/v1/whatif/{job.id}"})


@router.get("/whatif", summary="List what-if jobs (newest first)", response_model=list[WhatifJobSummaryOut],
            responses=responses(403))
def list_whatifs(svc: ServicesDep, principal: PrincipalDep, pager: PagerDep) -> Any:
    """The jobs the caller may see (an admin: all; a supervisor: those covering only their teams), without
    their reports. Paginated: `limit`, `cursor`, the next page in `Link` and `X-Next-Cursor`."""
    jobs = [j for j in svc.whatif.store.jobs() if j.visible_to(principal.all_teams, principal.team_ids)]
    return [j.describe(with_report=False) for j in pager.page(jobs)]


@router.get("/whatif/{whatif_id}", summary="A what-if job: its status, progress and, once done, its report",
            response_model=WhatifJobOut, responses=responses(403, 404))
def get_whatif(whatif_id: Annotated[UUID, Path()], svc: ServicesDep, principal: PrincipalDep,
               response: Response) -> Any:
    """Poll until `status` is done (the report) or failed (the error)."""
    job = visible_job(svc, principal, whatif_id)
    if job.status in ("queued", "running"):
        response.headers["Retry-After"] = "2"
    return job.describe()
