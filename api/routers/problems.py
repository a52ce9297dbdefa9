"""The problem library (问题库): search solved problems, suggest them for a ticket, record a resolution.

Problems are shown only for tickets in the caller's team scope (judged by the write side,
as ticket search is), and their summaries are masked like ticket bodies.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from api import schemas as s
from api.pagination import Pager
from api.deps import CommandsDep, Reads, ReadsDep, encode
from api.problems import responses
from projections.problems import search_problems, suggestions
from ticketflow.access import MASK
from ticketflow.commands import workflow as wf

router = APIRouter(prefix="/api/v1", tags=["problems"])


def shown_problems(
    reads: Reads, rows: list[dict[str, Any]], limit: int, resource: str, pager: Pager | None = None
) -> list[Any]:
    """The visible problems among ``rows`` (best first): the first ``limit``, or ``pager``'s page of them."""
    visible = reads.visible([r["ticket_id"] for r in rows])
    rows = [r for r in rows if r["ticket_id"] in visible]
    rows = pager.page(rows) if pager is not None else rows[:limit]
    if not reads.free_text():
        rows = [{**r, "summary": MASK} for r in rows]
    elif rows:
        reads.text_shown({r["customer_id"] for r in rows}, ["summary"], resource)
    return encode(s.ProblemOut, rows)


@router.get("/problems", summary="Search the problem library (Chinese included)", response_model=list[s.ProblemOut],
            responses=responses(403, 422, 503))
def search(
    reads: ReadsDep, response: Response,
    q: Annotated[str | None, Query(max_length=200, description="Words or Chinese text; all must match. "
                                                                "Without it, the latest solved problems.")] = None,
    category: Annotated[str | None, Query(max_length=200)] = None,
    customer_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500, description="The `next_cursor` of the previous page (opaque).")] = None,
) -> Any:
    """Best matches first; a two-character Chinese query finds its problems. Filter by category
    and customer (the problems solved for them). Follow `Link: rel="next"` for more."""
    pager = Pager(reads.request, response, limit, cursor)
    wanted = (pager.offset() + limit) * 3 + 1
    rows = reads.read("problems", lambda db: search_problems(
        db, q, category=category, customer_id=str(customer_id) if customer_id else None, limit=wanted))
    return shown_problems(reads, rows, limit, "GET /api/v1/problems", pager)


@router.get("/tickets/{ticket_id}/suggestions", summary="Solved problems like this ticket (same category)",
            response_model=list[s.ProblemOut], tags=["tickets"], responses=responses(403, 404, 422, 503))
def suggest(
    ticket_id: UUID, reads: ReadsDep, response: Response, limit: Annotated[int, Query(ge=1, le=20)] = 5,
    cursor: Annotated[str | None, Query(max_length=500, description="The `next_cursor` of the previous page (opaque).")] = None,
) -> Any:
    """Problems of the ticket's category whose summaries share the most terms with its subject, best first."""
    ticket = reads.ticket_row(str(ticket_id))
    pager = Pager(reads.request, response, limit, cursor)
    rows = reads.read("problems", lambda db: suggestions(
        db, str(ticket_id), ticket["subject"], ticket["category"], limit=(pager.offset() + limit) * 3 + 1))
    return shown_problems(reads, rows, limit, f"GET /api/v1/tickets/{ticket_id}/suggestions", pager)


@router.post("/tickets/{ticket_id}/resolution", summary="Record the resolution summary (problem library)",
             response_model=s.CommandOut, tags=["tickets"], responses=responses(403, 404, 409, 412, 422))
def record_resolution(ticket_id: UUID, body: s.ResolutionBody, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """How a solved ticket's problem was solved; kept by category, linked to customer and ticket
    (replaces an earlier summary). Refused (409) until the ticket is solved."""
    cmd.visible_ticket(ticket_id)
    return cmd.respond(cmd.run(wf.RecordResolution, ticket_id=ticket_id, **body.model_dump()))  # type: ignore[attr-defined]
