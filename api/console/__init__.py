"""The web console: the desk in a browser, for agents, supervisors, admins, auditors and
compliance reviewers, in English and Chinese. Server-rendered pages (Jinja2) over the same
application, projections and access rules as the API; a little JavaScript of our own for live
updates and countdowns. Served by ``ticketflow serve`` at ``/``; the API stays under ``/api/v1``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from urllib.parse import quote

from api import routes
from api.console import i18n
from api.console.page import SECURITY_HEADERS, ConsoleRefusal, Page, SignInRequired
from api.console.pages import (
    accounts, admin_policies, admin_teams, audit, compliance, customer, dashboard, queues, search, signin, ticket, tokens,
    webhooks, whatif,
)

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    for router in (signin.router, queues.router, ticket.router, customer.router, search.router, dashboard.router,
                   audit.router, compliance.router, admin_teams.router, admin_policies.router, accounts.router, tokens.router, webhooks.router,
                   whatif.router):
        routes.serve(app, router, include_in_schema=False)  # each route matched once (api.routes)
    app.mount("/static", StaticFiles(directory=STATIC), name="console-static")
    app.state.sign_in_buckets = signin.make_sign_in_buckets(app.state.services.settings)

    @app.exception_handler(SignInRequired)
    async def sign_in_required(request: Request, exc: SignInRequired) -> RedirectResponse:
        return RedirectResponse(f"/signin?next={quote(exc.next_url, safe='')}", status_code=303,
                                headers={"Cache-Control": "no-store"})

    @app.exception_handler(ConsoleRefusal)
    async def refused(request: Request, exc: ConsoleRefusal) -> HTMLResponse:
        return error_page(request, exc.status, "console_refusal", exc.message, None)

    app.state.html_problem = error_page


def error_page(request: Request, status: int, code: str, detail: str, headers: dict[str, str] | None) -> HTMLResponse:
    """An error as a console page: what happened in the reader's language, and the engine's words."""
    svc = request.app.state.services
    page = Page(request, svc, getattr(request.state, "principal", None), getattr(request.state, "console_session", None),
                i18n.choose(request))
    response = page.render("error.html", status=status, status_code=status, code=code, detail=detail)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


__all__ = ["install", "SECURITY_HEADERS"]
