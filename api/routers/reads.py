"""Search, reports, the event export, the access log and who-am-I."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response

from api import schemas as s
from api.pagination import Pager, PagerDep, link_headers, position_cursor, position_page
from api.asof import ListAsOf, ListAsOfDep
from api.deps import PrincipalDep, ReadsDep, customer_visible, encode
from api.problems import responses
from projections import reports, workflow
from projections.access_log import access_log
from projections.directory import list_teams
from projections.search import search
from projections.sql import ts
from projections.tickets import TicketQueries
from ticketflow.access import MASK, Permission, Principal
from ticketflow.domain import ApiToken, Customer, DataAccess, Team, Ticket
from ticketflow.domain.values import Role
from ticketflow.errors import CustomerNotFound

router = APIRouter(prefix="/api/v1", tags=["reads"])
READ_ERRORS = responses(400, 403, 422, 503)

VOLUME_EXAMPLE = [{"day": "2026-11-02", "value": "login", "tickets": 14}]
BACKLOG_EXAMPLE = [{"status": "open", "team_id": "2d6a38ad-69a4-5afd-bb89-1c7fae547dde", "team_name": "技术支持", "tickets": 31}]
RESPONSE_TIMES_EXAMPLE = [{"team_id": "2d6a38ad-69a4-5afd-bb89-1c7fae547dde", "team_name": "技术支持", "priority": "high", "first_reply_hours": {"count": 40, "mean": 1.8, "median": 1.2, "p90": 4.5}, "resolution_hours": {"count": 35, "mean": 20.1, "median": 11.0, "p90": 52.3}}]
SATISFACTION_EXAMPLE = [{"team_id": "2d6a38ad-69a4-5afd-bb89-1c7fae547dde", "team_name": "技术支持", "ratings": 120, "average": 4.21, "scores": {"1": 3, "2": 5, "3": 10, "4": 40, "5": 62}}]


def with_example(example: list[dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    return {**READ_ERRORS, 200: {"content": {"application/json": {"example": example}}}}


def _report(reads: Any, at: ListAsOf, query: Any, view: str = "tickets") -> Any:
    """Answer a report from its view now, or as of a past instant on a basis (from a temporary view;
    ``X-As-Of-Note`` says when the log holds nothing by then)."""
    rows = reads.read(view, query) if at.as_of is None else at.read(reads.svc.desk, view, query)
    return with_team_names(reads, rows)


def with_team_names(reads: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row that names a team by id also carries the team's name (its name now; ``null`` for no team)."""
    if not any("team_id" in row for row in rows):
        return rows
    names = {t["team_id"]: t["name"] for t in reads.read("directory", list_teams)}
    return [{**row, "team_name": names.get(str(row["team_id"])) if row["team_id"] else None}
            if "team_id" in row else row for row in rows]


def team_scope(principal: Principal) -> set[str] | None:
    """The teams a report is limited to (None: every team)."""
    return None if principal.all_teams else {str(t) for t in principal.team_ids}


@router.get("/search", summary="Full-text search over subjects and messages (Chinese included)",
            response_model=list[s.SearchHitOut], responses=READ_ERRORS)
def search_tickets(
    reads: ReadsDep, response: Response,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Words or Chinese text; all must match.")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500, description="The `next_cursor` of the previous page (opaque).")] = None,
) -> Any:
    """A two-character Chinese query finds its tickets, best first. Only tickets of the caller's teams are returned."""
    pager = Pager(reads.request, response, limit, cursor)
    hits = pager.page(matching_tickets(reads, q, pager.offset() + limit + 1))
    return encode(s.SearchHitOut, shown_hits(reads, hits, "GET /api/v1/search"))


def ticket_search(reads: Any, q: str, limit: int, resource: str) -> list[dict[str, Any]]:
    """Tickets matching ``q`` in the caller's scope, best first; snippets masked unless the caller
    works tickets (or may read their text: then recorded). The API and the console both search here."""
    return shown_hits(reads, matching_tickets(reads, q, limit), resource)


def matching_tickets(reads: Any, q: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` hits for ``q`` in the caller's scope, best first (nothing shown yet)."""
    hits = reads.read("search", lambda db: search(db, q, limit=count * 3, include_internal=reads.free_text()))
    shown = reads.visible([h["ticket_id"] for h in hits])
    return [h for h in hits if h["ticket_id"] in shown][:count]


def shown_hits(reads: Any, hits: list[dict[str, Any]], resource: str) -> list[dict[str, Any]]:
    """The hits as shown to the caller: the text read recorded when shown for a purpose or a scope,
    snippets masked otherwise."""
    if hits and reads.free_text() and not reads.works_tickets:
        rows = reads.read("tickets", lambda db: [TicketQueries.get(db, h["ticket_id"]) for h in hits])
        reads.text_shown({r["customer_id"] for r in rows if r}, ["subject", "body"], resource)
    if not reads.free_text():
        hits = [{**h, "snippet": MASK} for h in hits]
    return hits


@router.get("/reports/volume", summary="Tickets created per day by category, channel, type, team or priority", responses=with_example(VOLUME_EXAMPLE))
def volume(
    pager: PagerDep, reads: ReadsDep, at: ListAsOfDep,
    by: Annotated[str, Query(pattern="^(category|channel|type|team|priority)$")] = "category",
    since: datetime | None = None, until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Rows of `{day, value, tickets}`: a line or bar chart per value (by team, also `team_id` and `team_name`).
    Days are dates in the desk's time zone (`TICKETFLOW_TIME_ZONE`); `since`/`until` are instants (a time
    without an offset is UTC)."""
    zone = reads.svc.settings.time_zone

    def query(db: Any) -> list[dict[str, Any]]:
        rows = reports.volume(db, by, since, until, team_scope(reads.principal), zone)
        return [{**row, "team_id": row["value"]} for row in rows] if by == "team" else rows

    return pager.page(_report(reads, at, query))


@router.get("/reports/backlog", summary="Tickets per status and team, now or as of an instant", responses=with_example(BACKLOG_EXAMPLE))
def backlog(pager: PagerDep, reads: ReadsDep, at: ListAsOfDep) -> list[dict[str, Any]]:
    """Rows of `{status, team_id, tickets}`: a pie chart per team (with `as_of`: the backlog as it stood then)."""
    return pager.page(_report(reads, at, lambda db: reports.backlog(db, team_scope(reads.principal))))


@router.get("/reports/response-times", summary="First-reply and resolution times per team and priority", responses=with_example(RESPONSE_TIMES_EXAMPLE))
def response_times(
    pager: PagerDep, reads: ReadsDep, at: ListAsOfDep,
    since: datetime | None = None, until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Hours: count, mean, median and p90 (nearest rank)."""
    return pager.page(_report(reads, at, lambda db: reports.response_times(db, since, until, team_scope(reads.principal))))


@router.get("/reports/satisfaction", summary="Satisfaction ratings per team", responses=with_example(SATISFACTION_EXAMPLE))
def satisfaction(
    pager: PagerDep, reads: ReadsDep, at: ListAsOfDep,
    since: datetime | None = None, until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Rows of `{team_id, team_name, ratings, average, scores}` for ratings in the period (or as of a past instant).
    Paged with `limit` and `cursor`."""
    return pager.page(_report(reads, at, lambda db: reports.satisfaction(db, since, until, team_scope(reads.principal))))


SLA_EXAMPLE = [{"period": "2026-11", "team_id": "2d6a38ad-69a4-5afd-bb89-1c7fae547dde", "team_name": "技术支持", "priority": "high",
                "metric": "first_reply_time", "fulfilled": 57, "breached": 3, "compliance": 0.95}]


@router.get("/reports/sla", summary="SLA compliance: targets met per period, team, priority and metric",
            responses=with_example(SLA_EXAMPLE))
def sla_compliance(
    pager: PagerDep, reads: ReadsDep, at: ListAsOfDep,
    period: Annotated[Literal["day", "month", "year"], Query()] = "month",
    since: datetime | None = None, until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Each run of a metric's clock counts once: fulfilled (met in time) or breached (a late reply counts
    as breached). `compliance` is fulfilled / (fulfilled + breached). Periods are days, months or years in
    the desk's time zone (`TICKETFLOW_TIME_ZONE`)."""
    zone = reads.svc.settings.time_zone
    return pager.page(_report(reads, at, lambda db: workflow.sla_compliance(
        db, period, ts(since), ts(until), team_scope(reads.principal), zone), view="workflow"))


SECRET_FIELDS = {"secret_hash", "url"}  # token hashes; webhook URLs (often bearer secrets)


@router.get("/events", summary="Incremental export of the event log, in global order", response_model=s.EventPage,
            responses=READ_ERRORS)
def events(
    reads: ReadsDep, response: Response,
    cursor: Annotated[str, Query(pattern=r"^\d{1,17}$", description="The `next_cursor` of the previous page; 0 to start.")] = "0",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Like Zendesk's incremental export: follow `next_cursor` until `items` is empty. Personal fields are
    masked unless the caller may unmask and sends `X-Access-Purpose` (each customer's data read is recorded);
    a token granted `tickets:text` reads the text of ticket events unmasked (recorded too)."""
    reads.check_purpose()
    desk = reads.svc.desk
    start = int(cursor) + 1
    notifications = desk.recorder.select_notifications(start, limit)
    decoded = [(desk.mapper.to_domain_event(n), n.id) for n in notifications]
    principal = reads.principal
    shown = reads.visible([str(e.originator_id) for e, _ in decoded if isinstance(e, Ticket.Event)])
    if not principal.all_teams and principal.may(Permission.CUSTOMERS_READ):  # the customer scope, once per customer
        shown |= {str(c) for c in {e.originator_id for e, _ in decoded if isinstance(e, Customer.Event)}
                  if _customer_visible(reads, c)}
    items: list[dict[str, Any]] = []
    subjects: dict[UUID, set[str]] = {}
    requesters: dict[UUID, UUID] = {}
    for event, position in decoded:
        if not _exportable(principal, event, shown):
            continue
        payload = {k: v for k, v in event.payload().items() if k not in SECRET_FIELDS}
        if event.personal_fields:
            if reads.unmasks or (reads.text_scope and isinstance(event, Ticket.Event)):  # ticket text: tickets:text
                subject = event.subject_id()
                if subject is None and isinstance(event, Ticket.Event):  # ticket text is its requester's data
                    subject = requesters.get(event.originator_id) or desk.ticket_requester(event.originator_id)
                    requesters[event.originator_id] = subject
                if subject is not None:
                    subjects.setdefault(subject, set()).update(event.personal_fields)
            else:
                payload = {k: (MASK if k in event.personal_fields and v not in (None, "") else v) for k, v in payload.items()}
        items.append({
            "position": position, "object_id": event.originator_id, "object_type": type(event).__qualname__.split(".")[0].lower(),
            "version": event.originator_version, "event_type": type(event).__qualname__, "occurred_at": ts(event.occurred_at),
            "recorded_at": ts(event.timestamp), "actor_id": event.actor_id, "actor_role": event.actor_role, "via": event.via,
            "correlation_id": event.correlation_id, "imported": event.imported, "payload": payload,
        })
    for subject, fields in sorted(subjects.items(), key=lambda item: str(item[0])):
        reads.record_access(subject, sorted(fields), f"GET /api/v1/events?cursor={cursor}")
    next_cursor = str(notifications[-1].id) if notifications else cursor
    if len(notifications) == limit:  # a full page: there may be more now (the export never ends: poll on)
        link_headers(reads.request, response, next_cursor)
    return {"items": encode(s.EventOut, items), "next_cursor": next_cursor}


def _exportable(principal: Principal, event: Any, visible_tickets: set[str]) -> bool:
    """``visible_tickets``: the tickets, and the customers, in the caller's scope."""
    if isinstance(event, ApiToken.Event):
        return principal.role is Role.ADMIN  # token events never leave otherwise
    if isinstance(event, DataAccess.Event):
        return principal.may(Permission.ACCESS_LOG_READ)
    if principal.all_teams:
        return True
    if isinstance(event, Ticket.Event):
        return str(event.originator_id) in visible_tickets
    if isinstance(event, Team.Event):
        return principal.sees_team(event.originator_id)
    return isinstance(event, Customer.Event) and str(event.originator_id) in visible_tickets  # (and customers)


def _customer_visible(reads: Any, customer_id: UUID) -> bool:
    try:
        return customer_visible(reads.svc, reads.principal, customer_id)
    except CustomerNotFound:
        return False  # an erased or half-written customer: not shown


@router.get("/access-log", summary="Who viewed which customer's personal data, when and why",
            response_model=list[s.AccessEntryOut], responses=READ_ERRORS)
def read_access_log(
    reads: ReadsDep, response: Response,
    customer_id: UUID | None = None, actor_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=500, description="The `next_cursor` of the previous page (opaque).")] = None,
    after: Annotated[int | None, Query(ge=0, le=2**62, deprecated=True, description="Deprecated: use `cursor`.")] = None,
) -> Any:
    """Field names and purposes only, never the values that were seen. In log order; follow `Link: rel="next"`."""
    start = position_cursor(cursor, after)
    rows = reads.read("access", lambda db: access_log(
        db, customer_id=str(customer_id) if customer_id else None, actor_id=actor_id, after=start, limit=limit + 1))
    return encode(s.AccessEntryOut, position_page(reads.request, response, rows, limit))


@router.get("/me", summary="Who this token belongs to and what it may do", response_model=s.MeOut,
            responses=responses())
def me(principal: PrincipalDep) -> Any:
    """The token's name, role, teams and permissions: what a client may call before it calls it."""
    return {
        "token_id": principal.token_id, "name": principal.name, "role": principal.role.value,
        "team_ids": sorted(principal.team_ids, key=str), "all_teams": principal.all_teams,
        "permissions": sorted(p.value for p in principal.permissions),
    }
