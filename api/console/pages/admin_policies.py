"""Desk-wide policy (分派规则, 服务标准, 工作日历): the routing rules, SLA policies and business-hours
calendars, each with every past version readable and who changed it when. Admins change them (the
same commands as the API's /routing-rules, /sla-policies and /calendars); everyone with
``policies:read`` reads them. A change is a new version; a form sent against an older version than
the one in force is refused (the same If-Match rule the API applies)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from api.console.errors import Refusal, missing_version
from api.console.labels import N_
from api.console.page import Page, PageDep, whole_number
from api.console.pages.admin_teams import admin_refusal
from api.routers.policies import known_timezone, policy_versions
from ticketflow.access import Permission
from ticketflow.commands import workflow as wf
from ticketflow.domain import ROUTING_POLICY_ID, RoutingPolicy, ServiceCalendar, SlaPolicy
from ticketflow.domain.policy import calendar_id as calendar_id_of
from ticketflow.domain.policy import sla_policy_id
from ticketflow.domain.values import Channel, CustomerTier, Priority, TicketType
from ticketflow.errors import ConcurrencyConflict, NotFound, TicketflowError

router = APIRouter()
METRICS = ("first_reply_time", "next_reply_time", "resolution_time")
WEEKDAYS = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"), N_("Saturday"), N_("Sunday"))
CHOICES = {
    "ticket_types": [t.value for t in TicketType], "channels": [c.value for c in Channel],
    "priorities": [p.value for p in Priority], "tiers": [t.value for t in CustomerTier],
}
DONE = {"routing": N_("New version of the routing rules published."), "sla": N_("Service standard saved."),
        "retired": N_("Service standard retired: it no longer matches new tickets."), "calendar": N_("Calendar saved.")}


class FormProblem(TicketflowError):
    """A form value the page itself cannot read (said in the reader's language, next to the form)."""


def _refused(page: Page, exc: Exception) -> Refusal:
    if isinstance(exc, FormProblem):
        return Refusal(422, str(exc), "", {})
    return admin_refusal(page, exc)


def _words(text: str) -> list[str]:
    """A comma- or space-separated list typed into one field (Chinese commas too)."""
    return [w for w in text.replace("，", ",").replace("、", ",").replace(",", " ").split() if w]


def _version(form: FormData) -> int | None:
    return whole_number(form.get("version"), 1, 2**31 - 1)


def _conditions(form: FormData) -> dict[str, list[str]]:
    picked = {name: [str(v) for v in form.getlist(name)] for name in CHOICES}
    picked["categories"] = _words(str(form.get("categories") or ""))
    return {k: v for k, v in picked.items() if v}


def _common(page: Page, status: int, template: str, **context: Any) -> HTMLResponse:
    done = page.request.query_params.get("done")
    if done in DONE:
        page.notices.append(page._(DONE[done]))
    assert page.principal is not None
    teams = sorted(page.team_names().items(), key=lambda item: item[1])
    context.setdefault("form_errors", {})
    context.setdefault("form_values", {})
    return page.render(template, status=status, may_write=page.principal.may(Permission.POLICIES_WRITE),
                       teams=teams, choices=CHOICES, metrics=METRICS, weekdays=WEEKDAYS, **context)


def _history(page: Page, object_id: UUID, cls: type[Any], kind: str) -> list[dict[str, Any]]:
    try:
        return list(reversed(policy_versions(page.svc.desk, object_id, cls, kind)))
    except NotFound:
        return []


def _shown_version(page: Page) -> int | None:
    return whole_number(page.request.query_params.get("version"), 1, 2**31 - 1)


# ------------------------------------------------------------------ routing rules
def _routing_page(page: Page, status: int = 200, **extra: Any) -> HTMLResponse:
    desk = page.svc.desk
    asked = _shown_version(page)
    latest = desk.routing_policy()
    policy = desk.routing_policy(asked) if asked and latest and asked <= latest.version else latest
    return _common(page, status, "admin_routing.html", policy=policy, latest=latest,
                   history=_history(page, ROUTING_POLICY_ID, RoutingPolicy, "routing policy"), **extra)


@router.get("/admin/routing", response_class=HTMLResponse)
def routing(page: PageDep) -> HTMLResponse:
    return _routing_page(page)


def _new_rule(form: FormData) -> dict[str, Any]:
    return {
        "name": str(form.get("name") or "").strip(), "team_id": str(form.get("team_id") or ""), **_conditions(form),
        "languages": _words(str(form.get("languages") or "")), "keywords": _words(str(form.get("keywords") or "")),
        "set_priority": str(form.get("set_priority") or "") or None, "add_tags": _words(str(form.get("add_tags") or "")),
    }


@router.post("/admin/routing", response_class=HTMLResponse)
async def publish_routing(request: Request, page: PageDep) -> Response:
    """One form per change (add a rule, remove, move up or down, the default team); each publishes the
    whole rulebook as a new version, guarded by the version the page showed."""
    form = await request.form()
    page.return_to = "/admin/routing"
    action = str(form.get("action") or "")
    current = page.svc.desk.routing_policy()
    rules = [dict(rule) for rule in current.rules] if current else []
    default_team = str(form.get("default_team_id") or (current.default_team_id if current else ""))
    index = whole_number(form.get("index"), 0, 10_000)
    index = -1 if index is None else index
    try:
        if current is not None and _version(form) is None:
            raise missing_version()
        if action == "add":
            at = whole_number(form.get("position"), 1, 10_000)
            rules.insert(min(at - 1, len(rules)) if at else len(rules), _new_rule(form))
        elif action in ("remove", "up", "down"):
            if not 0 <= index < len(rules):
                raise FormProblem(page._("There is no rule number %(n)s any more: reload the page.", n=index + 1))
            rule = rules.pop(index)
            if action != "remove":
                rules.insert(max(index - 1, 0) if action == "up" else min(index + 1, len(rules)), rule)
        elif action != "default":
            raise FormProblem(page._("This form is not one of this page's."))
        if not default_team:
            raise FormProblem(page._("Choose the default team first: tickets no rule matches go there."))
        page.commands().run(wf.PublishRoutingRules, rules=rules, default_team_id=default_team,
                            note=str(form.get("note") or "").strip()[:500], expected_version=_version(form))
    except (ValidationError, TicketflowError) as exc:
        refused = _refused(page, exc)
        values = {k: str(v) for k, v in form.items()}
        values["picked"] = {f"{k}={v}" for k, v in form.multi_items()}  # type: ignore[assignment]
        return _routing_page(page, refused.status, form_errors={action: refused}, form_values={action: values})
    return page.redirect("/admin/routing?done=routing")


# ------------------------------------------------------------------ SLA policies
def _latest(read: Callable[[], Any]) -> Any:
    """The policy or calendar in force (``read`` loads it), or None when there is none of that name yet."""
    try:
        return read()
    except NotFound:
        return None


def _edited(page: Page, read: Callable[[UUID], Any]) -> Any:
    """The policy or calendar named by ``?edit=`` (its form is filled with it), or None."""
    try:
        edit = UUID(page.request.query_params.get("edit") or "")
    except ValueError:
        return None
    return _latest(lambda: read(edit))


def _versioned(
    page: Page, object_id: UUID, cls: type[Any], kind: str, read: Callable[..., Any],
) -> tuple[Any, Any, list[dict[str, Any]]]:
    """A policy's or calendar's page: the version asked for (``?version=``, else the one in force), the
    one in force, and every version."""
    history = _history(page, object_id, cls, kind)
    if not history:
        raise NotFound(kind, object_id)
    asked = _shown_version(page)
    latest = read(object_id)
    return (read(object_id, asked) if asked and asked <= latest.version else latest), latest, history


def _sla_list(page: Page, status: int = 200, editing: SlaPolicy | None = None, **extra: Any) -> HTMLResponse:
    desk = page.svc.desk
    editing = editing or _edited(page, desk.get_sla_policy)
    calendars = {str(c.id): c.name for c in desk.calendars()}
    return _common(page, status, "admin_sla.html", policies=desk.sla_policies(), editing=editing, calendars=calendars,
                   **extra)


@router.get("/admin/sla", response_class=HTMLResponse)
def sla_policies(page: PageDep) -> HTMLResponse:
    return _sla_list(page)


@router.get("/admin/sla/{policy_id}", response_class=HTMLResponse)
def sla_policy(policy_id: UUID, page: PageDep) -> HTMLResponse:
    desk = page.svc.desk
    policy, latest, history = _versioned(page, policy_id, SlaPolicy, "SLA policy", desk.get_sla_policy)
    calendars = {str(c.id): c.name for c in desk.calendars()}
    return _common(page, 200, "admin_sla_policy.html", policy=policy, latest=latest, history=history, calendars=calendars)


def _targets(page: Page, form: FormData) -> dict[str, dict[str, dict[str, Any]]]:
    business = form.get("business_hours") is not None
    targets: dict[str, dict[str, dict[str, Any]]] = {}
    for priority in CHOICES["priorities"]:
        for metric in METRICS:
            raw = str(form.get(f"target-{priority}-{metric}") or "").strip()
            if raw:
                minutes = whole_number(raw, 1, 366 * 24 * 60)
                if minutes is None:
                    raise FormProblem(page._("Targets are whole minutes: %(value)s is not.", value=raw))
                targets.setdefault(priority, {})[metric] = {"minutes": minutes, "business_hours": business}
    return targets


@router.post("/admin/sla", response_class=HTMLResponse)
async def define_sla(request: Request, page: PageDep) -> Response:
    form = await request.form()
    page.return_to = "/admin/sla"
    try:
        raw_position = str(form.get("position") or "100").strip()
        escalation_team = str(form.get("escalation_team") or "") or None
        page.commands().run(
            wf.DefineSlaPolicy, name=str(form.get("name") or "").strip(),
            position=raw_position if whole_number(raw_position) is None else whole_number(raw_position),
            conditions=_conditions(form), targets=_targets(page, form),
            calendar_id=str(form.get("calendar_id") or "") or None,
            warn_at_percent=str(form.get("warn_at_percent") or "80"),
            escalation={"raise_priority": form.get("raise_priority") is not None, "team_id": escalation_team},
            expected_version=_version(form),
        )
    except (ValidationError, TicketflowError) as exc:
        refused = _refused(page, exc)
        values = {k: str(v) for k, v in form.items()}
        values["picked"] = {f"{k}={v}" for k, v in form.multi_items()}  # type: ignore[assignment]
        editing = _latest(lambda: page.svc.desk.get_sla_policy(sla_policy_id(str(form.get("name") or "").strip())))
        if isinstance(exc, ConcurrencyConflict) and editing is not None:
            values["version"] = str(editing.version)  # checked against what is in force now: the next send saves
        return _sla_list(page, refused.status, form_errors={"define": refused}, form_values={"define": values},
                         editing=editing)
    return page.redirect("/admin/sla?done=sla")


@router.post("/admin/sla/{policy_id}/retire", response_class=HTMLResponse)
async def retire_sla(policy_id: UUID, request: Request, page: PageDep) -> Response:
    form = await request.form()
    page.return_to = "/admin/sla"
    try:
        if _version(form) is None:
            raise missing_version()
        page.commands(_version(form)).run(wf.RetireSlaPolicy, policy_id=policy_id,
                                          reason=str(form.get("reason") or "").strip())
    except (ValidationError, TicketflowError) as exc:
        refused = _refused(page, exc)
        return _sla_list(page, refused.status, form_errors={f"retire:{policy_id}": refused})
    return page.redirect("/admin/sla?done=retired")


# ------------------------------------------------------------------ calendars
def _calendar_list(page: Page, status: int = 200, editing: ServiceCalendar | None = None, **extra: Any) -> HTMLResponse:
    desk = page.svc.desk
    editing = editing or _edited(page, desk.get_calendar)
    return _common(page, status, "admin_calendars.html", calendars=desk.calendars(), editing=editing, **extra)


@router.get("/admin/calendars", response_class=HTMLResponse)
def calendars(page: PageDep) -> HTMLResponse:
    return _calendar_list(page)


@router.get("/admin/calendars/{calendar_id}", response_class=HTMLResponse)
def calendar(calendar_id: UUID, page: PageDep) -> HTMLResponse:
    shown, latest, history = _versioned(page, calendar_id, ServiceCalendar, "business calendar",
                                        page.svc.desk.get_calendar)
    return _common(page, 200, "admin_calendar.html", calendar=shown, latest=latest, history=history)


def _weekly(page: Page, form: FormData) -> dict[str, list[tuple[str, str]]]:
    weekly: dict[str, list[tuple[str, str]]] = {}
    for day in range(7):
        for span in _words(str(form.get(f"day-{day}") or "")):
            start, dash, end = span.partition("-")
            if not dash:
                raise FormProblem(page._("%(day)s: write opening hours as 09:00-18:00, not %(value)s.",
                                         day=page._(WEEKDAYS[day]), value=span))
            weekly.setdefault(str(day), []).append((start.strip(), end.strip()))
    return weekly


def _workdays(page: Page, text: str) -> dict[str, int]:
    """Make-up working days (调休), one per line: ``2026-10-11 Monday`` or ``2026-10-11 0``."""
    names = {name.lower(): n for n, name in enumerate(WEEKDAYS)}
    found: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.replace("=", " ").split()
        if not parts:
            continue
        day = whole_number(parts[1], 0, 6) if len(parts) == 2 else None
        if len(parts) != 2 or (day is None and parts[1].lower() not in names):
            raise FormProblem(page._("Make-up working days: write a date and a weekday number, e.g. 2026-10-11 0 (not %(value)s).",
                                     value=line.strip()))
        found[parts[0]] = day if day is not None else names[parts[1].lower()]
    return found


@router.post("/admin/calendars", response_class=HTMLResponse)
async def define_calendar(request: Request, page: PageDep) -> Response:
    form = await request.form()
    page.return_to = "/admin/calendars"
    name = str(form.get("name") or "").strip()
    try:
        timezone = str(form.get("timezone") or "").strip()
        if not known_timezone(timezone):
            raise FormProblem(page._("Unknown time zone %(value)s: use a name such as Asia/Shanghai.", value=timezone))
        page.commands().run(wf.DefineCalendar, name=name, timezone=timezone, weekly=_weekly(page, form),
                            holidays=_words(str(form.get("holidays") or "")),
                            workdays=_workdays(page, str(form.get("workdays") or "")), expected_version=_version(form))
    except (ValidationError, TicketflowError) as exc:
        refused = _refused(page, exc)
        values = {k: str(v) for k, v in form.items()}
        editing = _latest(lambda: page.svc.desk.get_calendar(calendar_id_of(name)))
        if isinstance(exc, ConcurrencyConflict) and editing is not None:
            values["version"] = str(editing.version)  # checked against what is in force now: the next send saves
        return _calendar_list(page, refused.status, form_errors={"define": refused}, form_values={"define": values},
                              editing=editing)
    return page.redirect(f"/admin/calendars/{calendar_id_of(name)}?done=calendar")
