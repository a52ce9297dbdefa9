"""/api/v1/teams: the team directory and its membership."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api import schemas as s
from api.pagination import PagerDep
from api.deps import CommandsDep, ReadsDep, encode
from api.problems import responses
from projections.directory import get_team, list_teams
from ticketflow import commands as c
from ticketflow.errors import TeamNotFound

router = APIRouter(prefix="/api/v1/teams", tags=["teams"])
ERRORS = responses(403, 404, 409, 412, 422)


@router.post("", status_code=201, summary="Form a team", response_model=s.CommandOut, responses=responses(403, 422))
def form(body: s.TeamCreate, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """Forms a team (admins). Members are added with `POST /api/v1/teams/{team_id}/members`."""
    result = cmd.run(c.FormTeam, **body.model_dump())
    return cmd.respond(result, 201, location=f"/api/v1/teams/{result.object_id}")


@router.get("", summary="List teams with their members", response_model=list[s.TeamOut], responses=responses(403, 503))
def teams(pager: PagerDep, reads: ReadsDep) -> Any:
    """The teams the caller may see, with members, roles, skills and how many are active. Paged with `limit`
    and `cursor`."""
    return pager.page(encode(s.TeamOut, reads.read("directory", list_teams)))


@router.get("/{team_id}", summary="One team", response_model=s.TeamOut, responses=responses(403, 404, 503))
def team(team_id: UUID, reads: ReadsDep) -> Any:
    """One team with its members; 404 when it does not exist or is outside the caller's teams."""
    row = reads.read("directory", lambda db: get_team(db, str(team_id)))
    if row is None:
        raise TeamNotFound(team_id)
    return s.TeamOut.model_validate(row).model_dump(mode="json")


@router.post("/{team_id}/members", summary="Add a member", response_model=s.CommandOut, responses=ERRORS)
def add_member(team_id: UUID, body: s.MemberAdd, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """Adds an agent to the team with a member role (agent, supervisor, lead) and skills."""
    return cmd.respond(cmd.run(c.AddTeamMember, team_id=team_id, **body.model_dump()))


@router.patch("/{team_id}/members/{agent_id}", summary="Change a member's role or skills", response_model=s.CommandOut,
              responses=ERRORS)
def change_member(team_id: UUID, agent_id: str, body: s.MemberChange, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """Changes a member's role or skills; fields left out stay as they are."""
    fields = body.model_dump(exclude_unset=True)
    return cmd.respond(cmd.run(c.ChangeTeamMember, team_id=team_id, agent_id=agent_id, **fields))


@router.post("/{team_id}/members/{agent_id}/deactivate", summary="Take a member out of rotation (on leave)",
             response_model=s.CommandOut, responses=ERRORS)
def deactivate(team_id: UUID, agent_id: str, body: s.MemberDeactivate, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """The member stays in the team but gets no new tickets by assignment until reactivated."""
    fields = body.model_dump()
    return cmd.respond(cmd.run(c.DeactivateTeamMember, team_id=team_id, agent_id=agent_id, **fields))


@router.post("/{team_id}/members/{agent_id}/reactivate", summary="Put a member back in rotation",
             response_model=s.CommandOut, responses=ERRORS)
def reactivate(team_id: UUID, agent_id: str, cmd: CommandsDep) -> JSONResponse:
    """The member gets tickets by assignment again."""
    return cmd.respond(cmd.run(c.ReactivateTeamMember, team_id=team_id, agent_id=agent_id))
