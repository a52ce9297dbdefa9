"""Accounts: an admin creates staff accounts, resets passwords, disables and enables them; every
signed-in person may change their own password. Each is an event on the account (never the hash)."""

from __future__ import annotations

import math
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api.console.errors import refusal
from api.console.labels import N_
from api.console.page import Page, PageDep
from api.console.pages.signin import sign_in_buckets
from ticketflow.accounts.service import ACCOUNT_ROLES
from ticketflow.commands.accounts import CreateAccount, DisableAccount, EnableAccount, SetPassword
from ticketflow.domain.values import Channel
from ticketflow.errors import TicketflowError

router = APIRouter()

DONE = {
    "created": N_("Account created."), "reset": N_("Password reset; the account's sessions were ended."),
    "disabled": N_("Account disabled; its sessions were ended."), "enabled": N_("Account enabled."),
    "changed": N_("Your password was changed. Sign in again with the new one."),
}


def _caller(page: Page) -> Any:
    assert page.principal is not None
    return page.principal.caller(Channel.CONSOLE, getattr(page.request.state, "request_id", None))


def _accounts_page(page: Page, status: int = 200, **extra: Any) -> HTMLResponse:
    done = page.request.query_params.get("done")
    if done in DONE:
        page.notices.append(page._(DONE[done]))
    context: dict[str, Any] = {"form_errors": {}, "form_values": {}, "refused": None, **extra}
    return page.render("accounts.html", status=status, accounts=page.svc.desk.list_accounts(),
                       roles=[str(r) for r in ACCOUNT_ROLES], **context)


@router.get("/admin/accounts", response_class=HTMLResponse)
def accounts(page: PageDep) -> HTMLResponse:
    return _accounts_page(page)


@router.post("/admin/accounts", response_class=HTMLResponse)
async def create_account(request: Request, page: PageDep) -> Response:
    form = await request.form()
    page.return_to = "/admin/accounts"
    values = {k: str(form.get(k) or "").strip() for k in ("username", "display_name", "role", "agent_id")}
    try:
        command = CreateAccount(username=values["username"], display_name=values["display_name"], role=values["role"],
                                agent_id=values["agent_id"] or None)
        page.svc.desk.create_account(command, _caller(page), str(form.get("password") or ""))
    except (ValidationError, TicketflowError) as exc:
        refused = refusal(exc, page.gettext)
        return _accounts_page(page, refused.status, refused=refused, form_errors={"create": refused},
                              form_values={"create": values})
    return page.redirect("/admin/accounts?done=created")


def _account_action(action: str) -> Any:
    async def handle(account_id: UUID, request: Request, page: PageDep) -> Response:
        form = await request.form()
        page.return_to = "/admin/accounts"
        try:
            if action == "password":
                page.svc.desk.set_password(SetPassword(account_id=account_id, reason="reset"), _caller(page),
                                           str(form.get("password") or ""))
            elif action == "disable":
                page.svc.desk.disable_account(DisableAccount(account_id=account_id, reason=str(form.get("reason") or "")),
                                              _caller(page))
            else:
                page.svc.desk.enable_account(EnableAccount(account_id=account_id), _caller(page))
        except (ValidationError, TicketflowError) as exc:
            refused = refusal(exc, page.gettext)
            return _accounts_page(page, refused.status, refused=refused,
                                  form_errors={f"{action}:{account_id}": refused})
        done = {"password": "reset", "disable": "disabled", "enable": "enabled"}[action]
        return page.redirect(f"/admin/accounts?done={done}")

    handle.__name__ = f"account_{action}"
    return handle


for _action_name in ("password", "disable", "enable"):
    router.post(f"/admin/accounts/{{account_id}}/{_action_name}", response_class=HTMLResponse)(_account_action(_action_name))


@router.get("/account", response_class=HTMLResponse)
def my_account(page: PageDep) -> HTMLResponse:
    return page.render("account.html", account=_my_account(page), refused=None, form_errors={})


def _my_account(page: Page) -> Any:
    assert page.principal is not None
    return page.svc.desk.get_account(page.principal.token_id) if page.session else None


@router.post("/account/password", response_class=HTMLResponse)
async def change_password(request: Request, page: PageDep) -> Response:
    form = await request.form()
    page.return_to = "/account"
    account = _my_account(page)
    current, new, again = (str(form.get(k) or "") for k in ("current", "password", "again"))
    fields = {}
    by_name, _by_address = sign_in_buckets(request)
    if (wait := by_name.wait(account.username)) > 0:
        fields["current"] = page._("Too many failed sign-ins. Try again in %(seconds)s seconds.", seconds=max(1, math.ceil(wait)))
    elif new != again:
        fields["again"] = page._("The two new passwords differ.")
    elif page.svc.desk.check_password(account.username, current) is None:
        by_name.take(account.username)  # guessing the current password counts like a failed sign-in
        fields["current"] = page._("This is not your current password.")
    if fields:
        return page.render("account.html", status=422, account=account, refused=None, form_errors=fields)
    try:
        page.svc.desk.set_password(SetPassword(account_id=account.id, reason="changed"), _caller(page), new)
    except (ValidationError, TicketflowError) as exc:
        refused = refusal(exc, page.gettext)
        return page.render("account.html", status=refused.status, account=account, refused=refused,
                           form_errors={"password": refused.fields.get("password", refused.message)})
    response = page.redirect("/signin?done=changed")
    return response
