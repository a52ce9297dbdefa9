"""Sign in and out with an account's password; the language switch; the home page.

Failed sign-ins are throttled per sign-in name and per client address (a burst, then a few per
minute: 429 with the wait); a success opens a server-side session whose cookie is HttpOnly and
SameSite, and expires (``TICKETFLOW_SESSION_HOURS``, idle ``TICKETFLOW_SESSION_IDLE_MINUTES``)."""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.console import i18n
from api.console.page import SESSION_COOKIE, PageDep, clear_session_cookie, safe_next, set_session_cookie
from api.middleware import TokenBuckets
from ticketflow.config import Settings

router = APIRouter()


def make_sign_in_buckets(settings: Settings) -> tuple[TokenBuckets, TokenBuckets]:
    """Failed sign-ins per name, and (four times as many) per client address."""
    rate = settings.sign_in_per_minute / 60
    return TokenBuckets(rate, settings.sign_in_burst), TokenBuckets(rate, settings.sign_in_burst * 4)


def sign_in_buckets(request: Request) -> tuple[TokenBuckets, TokenBuckets]:
    return request.app.state.sign_in_buckets  # type: ignore[no-any-return]


@router.get("/")
def home(page: PageDep) -> RedirectResponse:
    return page.redirect("/queues")


@router.get("/signin", response_class=HTMLResponse)
def sign_in_form(request: Request, page: PageDep) -> Response:
    next_url = safe_next(request.query_params.get("next"))
    if page.principal is not None:
        return page.redirect(next_url)
    return page.render("signin.html", next_url=next_url, username="", error=None)


@router.post("/signin", response_class=HTMLResponse)
async def sign_in(request: Request, page: PageDep) -> Response:
    form = await request.form()
    page.return_to = "/signin"
    username = str(form.get("username") or "").strip()[:64]
    password = str(form.get("password") or "")[:256]
    next_url = safe_next(str(form.get("next") or ""))
    by_name, by_address = sign_in_buckets(request)
    address = request.client.host if request.client else ""
    wait = max(by_name.wait(username.lower()), by_address.wait(address))
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        response = page.render("signin.html", status=429, next_url=next_url, username=username,
                               error=page._("Too many failed sign-ins. Try again in %(seconds)s seconds.", seconds=seconds))
        response.headers["Retry-After"] = str(seconds)
        return response
    signed = page.svc.desk.sign_in(username, password, hours=page.svc.settings.session_hours) if username and password else None
    if signed is None:
        by_name.take(username.lower())
        by_address.take(address)
        return page.render("signin.html", status=401, next_url=next_url, username=username,
                           error=page._("The name or the password is not right, or the account is disabled."))
    response = page.redirect(next_url)
    set_session_cookie(response, signed.token, page.svc)
    return response


@router.post("/signout")
def sign_out(request: Request, page: PageDep) -> RedirectResponse:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        page.svc.desk.sign_out(token)
    response = page.redirect("/signin")
    clear_session_cookie(response, page.svc)
    return response


@router.get("/language")
def language(request: Request, page: PageDep) -> RedirectResponse:
    lang = request.query_params.get("lang", "")
    response = page.redirect(safe_next(request.query_params.get("next")))
    if lang in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/",
                            secure=page.svc.settings.secure_cookies)
    return response

