"""Teams and members (团队与成员): who is in each team, their role and skills, who is in rotation
(on leave or back), how the team assigns tickets, and forming a team. Supervisors manage their own
teams, admins every team and form new ones — the same commands and rules as the API's /teams routes.
Every form carries the version it showed: a change made meanwhile is refused, not overwritten."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api.console.errors import Refusal, missing_version, refusal
from api.console.forms import caller as _caller
from api.console.labels import N_
from api.console.page import Page, PageDep, whole_number
from projections.directory import get_team, list_teams
from projections.reply_templates import team_templates
from ticketflow import commands as c
from ticketflow.commands import workflow as wf
from ticketflow.commands.reply_template import CreateReplyTemplate, RetireReplyTemplate, ReviseReplyTemplate
from ticketflow.domain.reply_template import PLACEHOLDERS, ReplyKind
from ticketflow.domain.values import MemberRole
from ticketflow.errors import ConcurrencyConflict, NotFound, TeamNotFound, TicketflowError

router = APIRouter()
STRATEGIES = ("round_robin", "least_loaded", "skills")
DONE = {
    "formed": N_("Team formed."), "added": N_("Member added."), "changed": N_("Member changed."),
    "deactivated": N_("Taken out of rotation: no new tickets are assigned to them."),
    "reactivated": N_("Back in rotation."), "strategy": N_("Assignment strategy changed."),
}
STALE = N_("Someone else changed this after you opened the page. Nothing was saved: the page now shows the "
           "latest version — check it and try again.")


def admin_refusal(page: Page, exc: Exception) -> Refusal:
    """The console's refusal, worded for a policy or team (not a ticket) when it was a stale write."""
    refused = refusal(exc, page.gettext)
    if isinstance(exc, ConcurrencyConflict):
        return Refusal(refused.status, page._(STALE), refused.detail, {})
    return refused


def skills_of(text: str) -> list[str]:
    return sorted({s for s in text.replace("，", ",").replace(",", " ").split() if s})


def _position(request: Request) -> int | None:
    return whole_number(request.query_params.get("at"))


def _done(page: Page) -> None:
    done = page.request.query_params.get("done")
    if done in DONE:
        page.notices.append(page._(DONE[done]))


# ------------------------------------------------------------------ all teams
def _teams_page(page: Page, status: int = 200, **extra: Any) -> HTMLResponse:
    assert page.principal is not None
    rows = page.reads(_position(page.request)).read("directory", list_teams)
    rows = [r for r in rows if page.principal.sees_team(r["team_id"])]
    _done(page)
    context: dict[str, Any] = {"form_errors": {}, "form_values": {}, **extra}
    return page.render("admin_teams.html", status=status, teams=rows, may_form=page.principal.all_teams, **context)


@router.get("/admin/teams", response_class=HTMLResponse)
def teams(page: PageDep) -> HTMLResponse:
    return _teams_page(page)


@router.post("/admin/teams", response_class=HTMLResponse)
async def form_team(request: Request, page: PageDep) -> Response:
    form = await request.form()
    page.return_to = "/admin/teams"
    values = {k: str(form.get(k) or "").strip() for k in ("name", "description")}
    try:
        result = page.commands().run(c.FormTeam, **values)
    except (ValidationError, TicketflowError) as exc:
        refused = admin_refusal(page, exc)
        return _teams_page(page, refused.status, form_errors={"form": refused}, form_values={"form": values})
    return page.redirect(f"/admin/teams/{result.object_id}?done=formed&at={result.position or ''}")


# ------------------------------------------------------------------ one team
def _team_page(page: Page, team_id: UUID, status: int = 200, **extra: Any) -> HTMLResponse:
    row = page.reads(_position(page.request)).read("directory", lambda db: get_team(db, str(team_id)))
    if row is None:
        raise TeamNotFound(team_id)
    team = page.svc.desk.get_team(team_id)  # the strategy and version the forms guard with
    _done(page)
    members = sorted(row["members"].items(), key=lambda item: (not item[1]["active"], item[0]))
    context: dict[str, Any] = {"form_errors": {}, "form_values": {}, **extra}
    return page.render("admin_team.html", status=status, team=row, members=members, version=team.version,
                       strategy=team.strategy, strategies=STRATEGIES, member_roles=[r.value for r in MemberRole],
                       **context)


@router.get("/admin/teams/{team_id}", response_class=HTMLResponse)
def team_page(team_id: UUID, page: PageDep) -> HTMLResponse:
    return _team_page(page, team_id)


def _version(form: Any) -> int | None:
    return whole_number(form.get("version"), 1, 2**31 - 1)


async def _team_write(request: Request, page: Page, team_id: UUID, key: str, command: type[c.Command],
                      done: str, **fields: Any) -> Response:
    form = await request.form()
    page.return_to = f"/admin/teams/{team_id}"
    try:
        if _version(form) is None:
            raise missing_version()
        result = page.commands(_version(form)).run(command, team_id=team_id, **fields)
    except (ValidationError, TicketflowError) as exc:
        refused = admin_refusal(page, exc)
        values = {k: str(v) for k, v in form.items() if k != "csrf_token"}
        return _team_page(page, team_id, refused.status, form_errors={key: refused}, form_values={key: values})
    return page.redirect(f"/admin/teams/{team_id}?done={done}&at={result.position or ''}")


@router.post("/admin/teams/{team_id}/members", response_class=HTMLResponse)
async def add_member(team_id: UUID, request: Request, page: PageDep) -> Response:
    form = await request.form()
    return await _team_write(request, page, team_id, "add", c.AddTeamMember, "added",
                             agent_id=str(form.get("agent_id") or "").strip(), role=str(form.get("role") or "agent"),
                             skills=skills_of(str(form.get("skills") or "")))


@router.post("/admin/teams/{team_id}/members/{agent_id}", response_class=HTMLResponse)
async def change_member(team_id: UUID, agent_id: str, request: Request, page: PageDep) -> Response:
    form = await request.form()
    return await _team_write(request, page, team_id, f"change:{agent_id}", c.ChangeTeamMember, "changed",
                             agent_id=agent_id, role=str(form.get("role") or "agent"),
                             skills=skills_of(str(form.get("skills") or "")))


@router.post("/admin/teams/{team_id}/members/{agent_id}/deactivate", response_class=HTMLResponse)
async def deactivate_member(team_id: UUID, agent_id: str, request: Request, page: PageDep) -> Response:
    form = await request.form()
    return await _team_write(request, page, team_id, f"rotation:{agent_id}", c.DeactivateTeamMember, "deactivated",
                             agent_id=agent_id, reason=str(form.get("reason") or "").strip())


@router.post("/admin/teams/{team_id}/members/{agent_id}/reactivate", response_class=HTMLResponse)
async def reactivate_member(team_id: UUID, agent_id: str, request: Request, page: PageDep) -> Response:
    return await _team_write(request, page, team_id, f"rotation:{agent_id}", c.ReactivateTeamMember, "reactivated",
                             agent_id=agent_id)


@router.post("/admin/teams/{team_id}/strategy", response_class=HTMLResponse)
async def set_strategy(team_id: UUID, request: Request, page: PageDep) -> Response:
    form = await request.form()
    return await _team_write(request, page, team_id, "strategy", wf.SetAssignmentStrategy, "strategy",
                             strategy=str(form.get("strategy") or ""))


# ------------------------------------------------------------------ saved replies (快捷回复)
TEMPLATE_DONE = {"template-created": N_("Saved reply created."), "template-revised": N_("Saved reply revised."),
                 "template-retired": N_("Saved reply retired: it is no longer offered.")}
DONE.update(TEMPLATE_DONE)


def _templates_page(page: Page, team_id: UUID, status: int = 200, **extra: Any) -> HTMLResponse:
    reads = page.reads(_position(page.request))
    row = reads.read("directory", lambda db: get_team(db, str(team_id)))
    if row is None:
        raise TeamNotFound(team_id)
    _done(page)
    templates = reads.read("reply_templates", lambda db: team_templates(db, str(team_id), include_retired=True))
    context: dict[str, Any] = {"form_errors": {}, "form_values": {}, **extra}
    return page.render("admin_templates.html", status=status, team=row, templates=templates,
                       placeholders=sorted(PLACEHOLDERS), kinds=[k.value for k in ReplyKind], **context)


@router.get("/admin/teams/{team_id}/templates", response_class=HTMLResponse)
def templates_page(team_id: UUID, page: PageDep) -> HTMLResponse:
    return _templates_page(page, team_id)


async def _template_write(request: Request, page: Page, team: UUID, key: str, command: type[c.Command],
                          done: str, version: int | None, **fields: Any) -> Response:
    team_id = team
    form = await request.form()
    page.return_to = f"/admin/teams/{team_id}/templates"
    try:
        if command is not CreateReplyTemplate and version is None:
            raise missing_version()
        if "template_id" in fields:  # only the team's own templates, through the team's page
            if str(page.svc.desk.reply_template(fields["template_id"], _caller(page)).team_id) != str(team_id):
                raise NotFound("reply template", fields["template_id"])
        result = page.commands(version).run(command, **fields)
    except (ValidationError, TicketflowError) as exc:
        refused = admin_refusal(page, exc)
        values = {k: str(v) for k, v in form.items() if k != "csrf_token"}
        return _templates_page(page, team_id, refused.status, form_errors={key: refused}, form_values={key: values})
    return page.redirect(f"/admin/teams/{team_id}/templates?done={done}&at={result.position or ''}")


def _template_fields(form: Any) -> dict[str, Any]:
    return {"title": str(form.get("title") or "").strip(), "body": str(form.get("body") or "").strip(),
            "kind": str(form.get("kind") or "") or None}


@router.post("/admin/teams/{team_id}/templates", response_class=HTMLResponse)
async def create_template(team_id: UUID, request: Request, page: PageDep) -> Response:
    form = await request.form()
    return await _template_write(request, page, team_id, "create", CreateReplyTemplate, "template-created", None,
                                 team_id=team_id, **_template_fields(form))


@router.post("/admin/teams/{team_id}/templates/{template_id}", response_class=HTMLResponse)
async def revise_template(team_id: UUID, template_id: UUID, request: Request, page: PageDep) -> Response:
    form = await request.form()
    return await _template_write(request, page, team_id, f"revise:{template_id}", ReviseReplyTemplate,
                                 "template-revised", _version(form), template_id=template_id, **_template_fields(form))


@router.post("/admin/teams/{team_id}/templates/{template_id}/retire", response_class=HTMLResponse)
async def retire_template(team_id: UUID, template_id: UUID, request: Request, page: PageDep) -> Response:
    form = await request.form()
    return await _template_write(request, page, team_id, f"retire:{template_id}", RetireReplyTemplate,
                                 "template-retired", _version(form), template_id=template_id,
                                 reason=str(form.get("reason") or "").strip())
