"""/api/v1/teams: the team directory and its membership."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api import schemas as s
from api.deps import CommandsDep, ReadsDep, encode
from api.problems import responses
from projections.directory import get_team, list_teams
from ticketflow import commands as c
from ticketflow.errors import TeamNotFound

router = APIRouter(prefix="/api/v1/teams", tags=["teams"])
ERRORS = responses(403, 404, 409, 412, 422)


@router.post("", status_code=201, summary="Form a team", response_model=s.CommandOut, responses=responses(403, 422))
def form(body: s.TeamCreate, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    result = cmd.run(c.FormTeam, **body.model_dump())
    return cmd.respond(result, 201, location=f"/api/v1/teams/{result.object_id}")


@router.get("", summary="List teams with their members", response_model=list[s.TeamOut], responses=responses(403, 503))
def teams(reads: ReadsDep) -> Any:
    return encode(s.TeamOut, reads.read("directory", list_teams))


@router.get("/{team_id}", summary="One team", response_model=s.TeamOut, responses=responses(403, 404, 503))
def team(team_id: UUID, reads: ReadsDep) -> Any:
    row = reads.read("directory", lambda db: get_team(db, str(team_id)))
    if row is None:
        raise TeamNotFound(team_id)
    return s.TeamOut.model_validate(row).model_dump(mode="json")


@router.post("/{team_id}/members", summary="Add a member", response_model=s.CommandOut, responses=ERRORS)
def add_member(team_id: UUID, body: s.MemberAdd, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    return cmd.respond(cmd.run(c.AddTeamMember, team_id=team_id, **body.model_dump()))


@router.patch("/{team_id}/members/{agent_id}", summary="Change a member's role or skills", response_model=s.CommandOut,
              responses=ERRORS)
def change_member(team_id: UUID, agent_id: str, body: s.MemberChange, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    fields = body.model_dump(exclude_unset=True)
    return cmd.respond(cmd.run(c.ChangeTeamMember, team_id=team_id, agent_id=agent_id, **fields))


@router.post("/{team_id}/members/{agent_id}/deactivate", summary="Take a member out of rotation (on leave)",
             response_model=s.CommandOut, responses=ERRORS)
def deactivate(team_id: UUID, agent_id: str, body: s.MemberDeactivate, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    fields = body.model_dump()
    return cmd.respond(cmd.run(c.DeactivateTeamMember, team_id=team_id, agent_id=agent_id, **fields))


@router.post("/{team_id}/members/{agent_id}/reactivate", summary="Put a member back in rotation",
             response_model=s.CommandOut, responses=ERRORS)
def reactivate(team_id: UUID, agent_id: str, cmd: CommandsDep) -> JSONResponse:
    return cmd.respond(cmd.run(c.ReactivateTeamMember, team_id=team_id, agent_id=agent_id))
