"""API tokens (admins): every token issued (who it is for, teams, permissions, issued when and by
whom, revoked or not — never a secret), issuing one (its text shown once, on the answer page:
never in a URL, never cached), and revoking one with a reason. The same application calls as
``ticketflow token create|revoke``: the desk decides what a token may be given."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api.console.errors import missing_version, refusal
from api.console.forms import caller, form_command_id, new_form_key
from api.console.labels import N_, PERMISSION
from api.console.page import Page, PageDep, whole_number
from ticketflow.access import INTEGRATION_DEFAULT, PERSON_ROLES, ROLE_PERMISSIONS, TOKEN_ROLES, Permission
from ticketflow.commands.access import IssueToken, RevokeToken
from ticketflow.domain.values import Role
from ticketflow.errors import TicketflowError

router = APIRouter()

DONE = {"revoked": N_("Token revoked: it stopped working at once.")}
#: Beside a refused field, what the desk's rule about it is (the engine's own words follow on English pages).
RULES = {
    "agent_id": N_("An agent's or supervisor's token belongs to an active member of a team (a supervisor: one who "
                   "supervises or leads it); only they are bound to a team member."),
    "team_ids": N_("Only integrations are limited to teams, and one that writes to tickets or customers must be."),
    "permissions": N_("Only integrations choose permissions, from the ones listed here."),
    "name": N_("Token names identify who wrote what: a name may not be taken by another token, a team member or "
               "a staff account."),
}
#: What an integration may be given, in the order the form lists them.
INTEGRATION_PERMISSIONS = [str(p) for p in Permission if p in ROLE_PERMISSIONS[Role.INTEGRATION]]


def _tokens_page(page: Page, status: int = 200, **extra: Any) -> HTMLResponse:
    done = page.request.query_params.get("done")
    if done in DONE:
        page.notices.append(page._(DONE[done]))
    context: dict[str, Any] = {"form_errors": {}, "form_values": {}, "issued": None, **extra}
    teams = sorted(page.team_names().items(), key=lambda item: item[1])
    return page.render(
        "tokens.html", status=status, tokens=page.svc.desk.list_tokens(), roles=[str(r) for r in TOKEN_ROLES],
        person_roles=sorted(str(r) for r in PERSON_ROLES), teams=teams, permissions=INTEGRATION_PERMISSIONS,
        default_permissions=("、" if page.lang == "zh-CN" else ", ").join(
            page._(PERMISSION[p]) for p in INTEGRATION_PERMISSIONS if p in INTEGRATION_DEFAULT),
        form_key=new_form_key(), **context)


@router.get("/admin/tokens", response_class=HTMLResponse)
def tokens(page: PageDep) -> HTMLResponse:
    return _tokens_page(page)


@router.post("/admin/tokens", response_class=HTMLResponse)
async def issue(request: Request, page: PageDep) -> Response:
    """Issue a token; the answer page shows its text once (a resend of the form issues nothing new)."""
    form = await request.form()
    page.return_to = "/admin/tokens"
    values: dict[str, Any] = {k: str(form.get(k) or "").strip() for k in ("role", "name", "agent_id")}
    values["team_ids"] = [str(t) for t in form.getlist("team_ids")]
    values["permissions"] = [str(p) for p in form.getlist("permissions")]
    try:
        command = IssueToken(
            role=values["role"], name=values["name"] or None, agent_id=values["agent_id"] or None,
            team_ids=values["team_ids"], permissions=values["permissions"] or None,  # none ticked: the default
            command_id=form_command_id(page, form),
        )
        result, text = page.svc.desk.issue_token(command, caller(page))
    except (ValidationError, TicketflowError) as exc:
        refused = refusal(exc, page.gettext)
        if refused.field in RULES:
            refused = replace(refused, fields={refused.field: page._(RULES[refused.field])})
        return _tokens_page(page, refused.status, form_errors={"issue": refused}, form_values={"issue": values})
    issued = {"token_id": result.object_id, "text": text, "role": values["role"]}
    return _tokens_page(page, 201 if text else 200, issued=issued)


@router.post("/admin/tokens/{token_id}/revoke", response_class=HTMLResponse)
async def revoke(token_id: UUID, request: Request, page: PageDep) -> Response:
    form = await request.form()
    page.return_to = "/admin/tokens"
    version = str(form.get("version") or "")
    expected = whole_number(version, 1, 2**31 - 1)
    reason = str(form.get("reason") or "")
    try:
        if expected is None:
            raise missing_version()
        page.svc.desk.revoke_token(RevokeToken(token_id=token_id, reason=reason, expected_version=expected), caller(page))
    except (ValidationError, TicketflowError) as exc:
        refused = refusal(exc, page.gettext)
        return _tokens_page(page, refused.status, form_errors={f"revoke:{token_id}": refused},
                            form_values={f"revoke:{token_id}": {"reason": reason}})
    return page.redirect("/admin/tokens?done=revoked")
