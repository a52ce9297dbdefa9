"""What every console page handler gets: the signed-in person, the same services and rules as the
API (:class:`api.deps.Reads` and :class:`api.deps.Commands`), the language, and a renderer.

Access: each console route's rule is in :data:`ticketflow.access.CONSOLE_ROUTES` (the same
permissions and object scopes as the API's table); a page the caller may not see answers 403,
an object outside their teams 404 — the same answers the API gives.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode
from uuid import uuid4
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from api.console import i18n, labels
from api.deps import Commands, Reads, Services, ServicesDep, check_scope
from projections.directory import list_teams
from ticketflow.access import CONSOLE_ROUTES, Principal
from ticketflow.accounts.store import Session
from ticketflow.domain.values import Channel
from ticketflow.errors import TicketflowError

TEMPLATES = Path(__file__).parent / "templates"
SESSION_COOKIE = "tf_session"
CSRF_FIELD = "csrf_token"
#: Pages carry personal data: never cached, never framed, scripts and styles only from this server.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class SignInRequired(Exception):
    """No valid session: the console answers with the sign-in page (a redirect for GETs)."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class ConsoleRefusal(Exception):
    """A console request refused before its handler ran (403, a bad form token)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


@cache
def environment(lang: str) -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      extensions=["jinja2.ext.i18n"], undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(i18n.translations(lang), newstyle=True)  # type: ignore[attr-defined]
    env.globals["labels"] = labels
    env.filters["urlquote"] = lambda value: quote(str(value), safe="")
    return env


@dataclass
class Page:
    """One console request: who, in which language, and the API's read and command helpers."""

    request: Request
    svc: Services
    principal: Principal | None
    session: Session | None
    lang: str
    notices: list[str] = field(default_factory=list)
    #: Where the language switch returns to: this page (a form's answer: the page the form is on).
    return_to: str | None = None

    @property
    def here(self) -> str:
        if self.return_to is not None:
            return self.return_to
        if self.request.method != "GET":
            return "/queues"
        return self.request.url.path + (f"?{self.request.url.query}" if self.request.url.query else "")

    @property
    def display_name(self) -> str:
        """The signed-in person's name as their account gives it."""
        if self.principal is None:
            return ""
        try:
            return str(self.svc.desk.get_account(self.principal.token_id).display_name)
        except TicketflowError:
            return self.principal.name

    # ------------------------------------------------------------------ language and formats
    @property
    def gettext(self) -> Callable[[str], str]:
        return i18n.translations(self.lang).gettext

    def _(self, text: str, **values: Any) -> str:
        translated = self.gettext(text)
        return translated % values if values else translated

    @property
    def fmt(self) -> i18n.Formats:
        return i18n.Formats(self.lang, ZoneInfo(self.svc.settings.time_zone))

    # ------------------------------------------------------------------ the API's helpers
    def reads(self, min_position: int | None = None, purpose: str | None = None) -> Reads:
        assert self.principal is not None
        return Reads(self.request, self.svc, self.principal, min_position, purpose, via=Channel.CONSOLE)

    def commands(self, expected_version: int | None = None) -> Commands:
        assert self.principal is not None
        correlation = getattr(self.request.state, "request_id", None) or uuid4().hex
        return Commands(self.request, self.svc, self.principal, expected_version, uuid4(), correlation,
                        via=Channel.CONSOLE)

    def team_names(self) -> dict[str, str]:
        cached: dict[str, str] | None = getattr(self.request.state, "team_names", None)
        if cached is None:
            rows = self.svc.read_side.read("directory", list_teams)
            cached = {row["team_id"]: row["name"] for row in rows}
            self.request.state.team_names = cached
        return cached

    def team_name(self, team_id: Any) -> str:
        if team_id in (None, ""):
            return self._("No team")
        return self.team_names().get(str(team_id), str(team_id)[:8])

    # ------------------------------------------------------------------ responses
    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        env = environment(self.lang)
        body = env.get_template(template).render(
            page=self, me=self.principal, csrf=self.session.csrf if self.session else "", lang=self.lang,
            languages=i18n.LANGUAGES, fmt=self.fmt, request=self.request, url=self.url, **context,
        )
        headers = dict(SECURITY_HEADERS)
        if context.get("charting"):  # plotly.js adds its own <style> elements: inline styles only, never scripts
            headers["Content-Security-Policy"] = headers["Content-Security-Policy"].replace(
                "style-src 'self'", "style-src 'self' 'unsafe-inline'")
        return HTMLResponse(body, status_code=status, headers=headers)

    def url(self, path: str, **params: Any) -> str:
        query = {k: v for k, v in params.items() if v not in (None, "", [], ())}
        return path + ("?" + urlencode(query, doseq=True) if query else "")

    @staticmethod
    def redirect(location: str) -> RedirectResponse:
        return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


def _rule_for(request: Request) -> Any:
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    return CONSOLE_ROUTES.get(f"{request.method} {path}")


def whole_number(raw: object, low: int = 0, high: int = 2**62) -> int | None:
    """A non-negative whole number typed into a form or a URL (ASCII digits only, within bounds), else None."""
    text = str(raw or "").strip()
    if not (text.isascii() and text.isdecimal()) or len(text) > 19:
        return None
    value = int(text)
    return value if low <= value <= high else None


def safe_next(value: str | None) -> str:
    """Only a path of this server (never another site) is followed after sign-in."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/queues"
    return value


async def console_page(request: Request, svc: ServicesDep) -> Page:
    """Authenticate by the session cookie, check the route's rule and (for POSTs) the form token."""
    request.state.console = True
    lang = i18n.choose(request)
    rule = _rule_for(request)
    if rule is None:
        raise ConsoleRefusal(500, f"{request.method} {request.url.path} has no access rule")
    token = request.cookies.get(SESSION_COOKIE)
    found = svc.desk.session_principal(token, idle_minutes=svc.settings.session_idle_minutes) if token else None
    if found is None:
        if rule.public:
            return Page(request, svc, None, None, lang)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target if request.method == "GET" else "/queues")
    session, principal = found
    request.state.principal = principal
    request.state.console_session = session
    request.scope.setdefault("state", {})["role"] = str(principal.role)
    page = Page(request, svc, principal, session, lang)
    if request.method == "POST" and not rule.public:  # signing in again while signed in needs no form token
        form = await request.form()
        sent = str(form.get(CSRF_FIELD) or request.headers.get("x-csrf-token") or "")
        if not secrets.compare_digest(sent.encode(), session.csrf.encode()):
            raise ConsoleRefusal(403, page._("This form has expired or did not come from this console. "
                                             "Reload the page and try again."))
    if rule.permission is not None and not principal.may(rule.permission):
        raise ConsoleRefusal(403, page._("Your role may not use this page."))
    check_scope(svc, principal, rule.scope, request.path_params)
    return page


PageDep = Annotated[Page, Depends(console_page)]


def set_session_cookie(response: Response, token: str, svc: Services) -> None:
    response.set_cookie(SESSION_COOKIE, token, max_age=int(svc.settings.session_hours * 3600), httponly=True,
                        samesite="lax", secure=svc.settings.secure_cookies, path="/")


def clear_session_cookie(response: Response, svc: Services) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=svc.settings.secure_cookies)
