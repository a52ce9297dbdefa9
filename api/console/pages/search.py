"""Search (搜索): tickets — subjects, replies and notes — and the problem library, in Chinese and
English, only within the caller's teams, with the matching words highlighted."""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from api.console.page import PageDep
from api.routers.problems import shown_problems
from api.routers.reads import ticket_search
from api.routers.tickets import ticket_out
from projections.problems import search_problems
from projections.tickets import TicketQueries
from ticketflow.access import MASK

router = APIRouter()
LIMIT = 30


def highlight(text: str, query: str) -> Markup:
    """``text`` escaped, with each word of ``query`` (any script, case-insensitive) in <mark>."""
    words = sorted({w for w in query.split() if w}, key=len, reverse=True)
    if not words or text == MASK:
        return Markup(escape(text))
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
    out, last = [], 0
    for match in pattern.finditer(text):
        out += [escape(text[last:match.start()]), Markup("<mark>"), escape(match.group(0)), Markup("</mark>")]
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, page: PageDep) -> HTMLResponse:
    q = " ".join((request.query_params.get("q") or "").split())
    if not q:
        return page.render("search.html", q="", tickets=[], problems=[], error=None, searched=False)
    if len(q) > 200:
        return page.render("search.html", status=422, q=q[:200], tickets=[], problems=[], searched=False,
                           error=page._("A search has at most 200 characters."))
    reads = page.reads()
    hits = ticket_search(reads, q, LIMIT, "console /search")
    rows = reads.read("tickets", lambda db: {h["ticket_id"]: TicketQueries.get(db, h["ticket_id"]) for h in hits})
    tickets = [{**h, "ticket": ticket_out(reads, row) if (row := rows.get(h["ticket_id"])) else None,
                "snippet_html": highlight(h["snippet"], q)} for h in hits]
    problems = shown_problems(reads, reads.read("problems", lambda db: search_problems(db, q, limit=LIMIT * 3)), 10,
                              "console /search")
    problems = [{**p, "summary_html": highlight(p["summary"], q)} for p in problems]
    return page.render("search.html", q=q, tickets=tickets, problems=problems, error=None, searched=True)
