"""Queues: my tickets, my teams', unassigned, SLA due soon / breached, waiting on the customer —
with filters, sort, keyset paging, a count per queue, and new tickets shown as they arrive
(server-sent events carry the log position; the page fetches its table again when it moves)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from api.console import labels
from api.console.page import Page, PageDep
from api.routers.tickets import ticket_out
from projections.sql import ts
from projections.tickets import SORTS, TicketFilter, TicketQueries
from ticketflow.access import Principal
from ticketflow.domain.values import CUSTOMER_CHANNELS, Channel, Priority, Status, TicketType

router = APIRouter()

ACTIVE = ("new", "open", "pending", "on_hold")
WORKING = ("new", "open", "on_hold")
#: "SLA due soon": a target due within this long.
DUE_SOON = timedelta(hours=4)
PAGE_SIZE = 50
#: A queue's count stops here ("10,000+"): counting a bigger queue would cost more than the page.
COUNT_CAP = 10_000
#: Longest a live-update stream stays open (the browser reconnects by itself).
STREAM_SECONDS = 300.0


def queues_for(principal: Principal) -> list[str]:
    mine = ["mine"] if principal.agent_id else []
    return [*mine, "team", "unassigned", "due_soon", "breached", "pending"]


def _scope(principal: Principal) -> tuple[tuple[str, ...] | None, bool]:
    if principal.all_teams:
        return None, False
    return tuple(sorted(str(t) for t in principal.team_ids)), principal.sees_team(None)


def queue_filter(page: Page, queue: str, params: dict[str, Any]) -> TicketFilter:
    """The filter of a queue, narrowed by the form's filters, within the caller's teams."""
    principal = page.principal
    assert principal is not None
    teams, teamless = _scope(principal)
    base: dict[str, Any] = {"teams": teams, "include_teamless": teamless}
    statuses = tuple(params.get("status") or ())
    if queue == "mine":
        base.update(assignee_id=principal.agent_id or "", status=statuses or ACTIVE)
    elif queue == "unassigned":
        base.update(unassigned=True, status=statuses or WORKING)
    elif queue == "pending":
        base.update(status=("pending",))
    elif queue == "due_soon":
        # The tickets of the soonest-due running SLA clocks, joined in the page's statement (one query).
        base.update(sla_due_before=ts(page.svc.desk.clock.now() + DUE_SOON), status=statuses or WORKING)
    elif queue == "breached":  # every worked ticket with a breached target, read from the breached indexes
        base.update(sla_breached=True, status=statuses or WORKING)
    else:  # team / all
        base.update(status=statuses or ACTIVE)
    for name in ("priority",):
        if params.get(name):
            base[name] = tuple(params[name])
    for name in ("ticket_type", "category", "channel", "tag"):
        if params.get(name):
            base[name] = params[name]
    if params.get("assignee") and queue != "mine":
        base["assignee_id"] = params["assignee"]
    return TicketFilter(**base)


def _params(request: Request) -> tuple[dict[str, Any], list[str]]:
    """The filter form's values, and an error message per field that was not valid."""
    q = request.query_params
    errors = []
    params: dict[str, Any] = {}

    def pick(name: str, allowed: set[str]) -> list[str]:
        values = [v for v in q.getlist(name) if v]
        if any(v not in allowed for v in values):
            errors.append(name)
            return [v for v in values if v in allowed]
        return values

    params["status"] = pick("status", {s.value for s in Status})
    params["priority"] = pick("priority", {p.value for p in Priority})
    for name, allowed in (("ticket_type", {t.value for t in TicketType}), ("channel", {c.value for c in Channel})):
        values = pick(name, allowed)
        params[name] = values[0] if values else None
    for name in ("category", "tag", "assignee"):
        value = (q.get(name) or "").strip()
        if len(value) > 64:
            errors.append(name)
            value = ""
        params[name] = value.lower() if name == "tag" else value
    sort = q.get("sort") or "created_at"
    if sort not in SORTS:
        errors.append("sort")
        sort = "created_at"
    params["sort"] = sort
    return params, errors


def _queue_context(page: Page, request: Request) -> dict[str, Any]:
    assert page.principal is not None
    available = queues_for(page.principal)
    queue = request.query_params.get("queue") or available[0]
    if queue not in available:
        queue = available[0]
    params, errors = _params(request)
    cursor = request.query_params.get("after") or None
    reads = page.reads()
    where = queue_filter(page, queue, params)
    try:
        result = reads.read("tickets", lambda db: TicketQueries.queue(db, where, params["sort"], PAGE_SIZE, cursor))
    except ValueError:
        errors.append("after")
        result = reads.read("tickets", lambda db: TicketQueries.queue(db, where, params["sort"], PAGE_SIZE, None))
        cursor = None
    counts = {}
    for name in available:
        counted = queue_filter(page, name, {})
        counts[name] = reads.read("tickets", lambda db, f=counted: TicketQueries.count(db, f, COUNT_CAP))  # type: ignore[misc]
    rows = result.rows
    shown = reads.visible([r["ticket_id"] for r in rows])  # judged by the write side, as the API does
    rows = [ticket_out(reads, r) for r in rows if r["ticket_id"] in shown]
    filters_on = any(params[k] for k in ("status", "priority", "ticket_type", "channel", "category", "tag", "assignee"))
    return {
        "queue": queue, "queues": available, "counts": counts, "rows": rows, "params": params, "errors": errors,
        "next_cursor": result.next_cursor, "cursor": cursor, "filters_on": filters_on,
        "position": page.svc.read_side.position("tickets"),
        "statuses": [s.value for s in Status], "priorities": [p.value for p in Priority],
        "types": [t.value for t in TicketType], "channels": sorted(c.value for c in CUSTOMER_CHANNELS),
        "sorts": list(labels.SORT), "count_cap": COUNT_CAP,
        "queue_labels": {**labels.QUEUE, "team": labels.QUEUE["all" if page.principal.all_teams else "team"]},
    }


@router.get("/queues", response_class=HTMLResponse)
def queues_page(request: Request, page: PageDep) -> HTMLResponse:
    context = _queue_context(page, request)
    if request.query_params.get("done") == "transfer":
        page.notices.append(page._("Transferred. The ticket has left your teams."))
    fragment = request.query_params.get("fragment") == "1"
    return page.render("queue_table.html" if fragment else "queues.html", fragment=fragment, **context)


@router.get("/queues/updates")
async def queue_updates(request: Request, page: PageDep) -> StreamingResponse:
    """Server-sent events: ``position`` whenever the tickets view moves past where it was."""
    read_side = page.svc.read_side

    async def stream() -> AsyncIterator[str]:
        last = -1
        waited = 0.0
        yield "retry: 3000\n\n"
        while waited < STREAM_SECONDS:
            if await request.is_disconnected():
                return
            position = read_side.position("tickets")
            if position != last:
                last = position
                yield f"event: position\ndata: {position}\n\n"
            await asyncio.sleep(1.0)
            waited += 1.0

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

