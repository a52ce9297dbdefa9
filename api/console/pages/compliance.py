"""The compliance reviewer's pages (合规): the access log (who saw whose personal data, and why), the
erasure log, SLA compliance, and data retention — each a table with a CSV download. The same
functions the API's /access-log, /reports/data-access, /reports/erasures and /reports/sla answer from.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from api.console.page import Page, PageDep, whole_number
from api.routers.reads import team_scope
from projections import workflow
from projections.access_log import access_log
from projections.compliance import data_access_report
from projections.customers import inactive_customers
from projections.sql import ts
from ticketflow.privacy.report import erasure_log

router = APIRouter()
PAGE_SIZE = 100
CSV_BATCH = 1000


def _csv(name: str, header: list[str], rows: Iterable[list[Any]]) -> StreamingResponse:
    """A CSV download (UTF-8 with a byte-order mark, so spreadsheet programs read Chinese right)."""
    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        yield "\ufeff" + buffer.getvalue()
        for row in rows:
            buffer.seek(0)
            buffer.truncate()
            writer.writerow(row)
            yield buffer.getvalue()
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


def _day(page: Page, raw: str | None) -> tuple[datetime | None, bool]:
    """The start of a day (YYYY-MM-DD) in the desk's zone; (None, False) when empty, (None, True) when bad."""
    if not raw:
        return None, False
    try:
        day = date.fromisoformat(raw)
        return datetime.combine(min(day, date.max - timedelta(days=2)), time.min, ZoneInfo(page.svc.settings.time_zone)), False
    except ValueError:
        return None, True


# ------------------------------------------------------------------ access log
def _access_filters(page: Page, request: Request) -> tuple[dict[str, Any], dict[str, str]]:
    query = request.query_params
    errors: dict[str, str] = {}
    customer = query.get("customer", "").strip()
    if customer:
        try:
            customer = str(UUID(customer))
        except ValueError:
            errors["customer"] = page._("A customer id looks like 3f48ed36-58ec-588a-b86a-5a1e72322108.")
            customer = ""
    actor = query.get("actor", "").strip()[:200]
    return {"customer_id": customer or None, "actor_id": actor or None}, errors


def _access_rows(page: Page, filters: dict[str, Any], after: int, limit: int) -> list[dict[str, Any]]:
    return page.reads().read("access", lambda db: access_log(db, after=after, limit=limit, **filters))


@router.get("/compliance/access-log", response_class=HTMLResponse)
def access_log_page(request: Request, page: PageDep) -> HTMLResponse:
    filters, errors = _access_filters(page, request)
    after = whole_number(request.query_params.get("after")) or 0
    rows = _access_rows(page, filters, after, PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    summary = page.reads().read("access", lambda db: data_access_report(
        db, "month", **filters, zone=page.svc.settings.time_zone))
    return page.render("compliance_access.html", status=422 if errors else 200, tab="access-log", rows=rows,
                       more=more, next_after=rows[-1]["position"] if rows else after, after=after, summary=summary,
                       errors=errors, actor=request.query_params.get("actor", ""),
                       customer=request.query_params.get("customer", ""))


@router.get("/compliance/access-log.csv")
def access_log_csv(request: Request, page: PageDep) -> Response:
    filters, _errors = _access_filters(page, request)

    def rows() -> Iterator[list[Any]]:
        after = 0
        while batch := _access_rows(page, filters, after, CSV_BATCH):
            for r in batch:
                yield [r["occurred_at"], r["actor_id"], r["actor_role"], r["customer_id"], " ".join(r["fields"]),
                       r["purpose"], r["resource"], r["request_id"]]
            after = batch[-1]["position"]
    return _csv("ticketflow-access-log.csv",
                ["occurred_at", "actor_id", "actor_role", "customer_id", "fields", "purpose", "resource", "request_id"], rows())


# ------------------------------------------------------------------ erasures
ERASURE_COLUMNS = ["customer_id", "basis", "reference", "requested_at", "requested_by", "requested_by_role",
                   "completed_at", "tickets"]


@router.get("/compliance/erasures", response_class=HTMLResponse)
def erasures_page(page: PageDep) -> HTMLResponse:
    rows = list(reversed(erasure_log(page.svc.desk)))  # newest first
    return page.render("compliance_erasures.html", tab="erasures", rows=rows)


@router.get("/compliance/erasures.csv")
def erasures_csv(page: PageDep) -> Response:
    return _csv("ticketflow-erasures.csv", ERASURE_COLUMNS,
                ([row[c] for c in ERASURE_COLUMNS] for row in erasure_log(page.svc.desk)))


# ------------------------------------------------------------------ SLA compliance
def _sla(page: Page, request: Request) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, str]]:
    query = request.query_params
    errors: dict[str, str] = {}
    period = query.get("period") or "month"
    if period not in ("day", "month", "year"):
        period = "month"
    since, bad_since = _day(page, query.get("since"))
    until, bad_until = _day(page, query.get("until"))
    if bad_since:
        errors["since"] = page._("Give a date like 2026-11-01.")
    if bad_until:
        errors["until"] = page._("Give a date like 2026-11-01.")
    if since and until and since > until:
        errors["until"] = page._("The end must come after the start.")
    assert page.principal is not None
    teams = team_scope(page.principal)
    team = query.get("team", "")
    if team and (teams is None or team in teams):
        teams = {team}
    rows = [] if errors else page.reads().read("workflow", lambda db: workflow.sla_compliance(
        db, period, ts(since), ts(until + timedelta(days=1)) if until else None, teams, page.svc.settings.time_zone))
    form = {"period": period, "since": query.get("since", ""), "until": query.get("until", ""), "team": team}
    return rows, form, errors


@router.get("/compliance/sla", response_class=HTMLResponse)
def sla_page(request: Request, page: PageDep) -> HTMLResponse:
    rows, form, errors = _sla(page, request)
    assert page.principal is not None
    teams = [(t, n) for t, n in sorted(page.team_names().items(), key=lambda item: item[1])
             if page.principal.sees_team(t)]
    return page.render("compliance_sla.html", status=422 if errors else 200, tab="sla", rows=rows, form=form,
                       errors=errors, teams=teams)


@router.get("/compliance/sla.csv")
def sla_csv(request: Request, page: PageDep) -> Response:
    rows, _form, _errors = _sla(page, request)
    names = page.team_names()
    return _csv("ticketflow-sla.csv", ["period", "team", "team_id", "priority", "metric", "fulfilled", "breached", "compliance"],
                ([r["period"], names.get(r["team_id"], ""), r["team_id"], r["priority"], r["metric"], r["fulfilled"],
                  r["breached"], r["compliance"]] for r in rows))


# ------------------------------------------------------------------ retention
@router.get("/compliance/retention", response_class=HTMLResponse)
def retention_page(page: PageDep) -> HTMLResponse:
    days = page.svc.settings.retention_days
    due: list[str] = []
    if days:
        cutoff = ts(page.svc.desk.clock.now() - timedelta(days=days))
        assert cutoff is not None
        due = page.reads().read("customers", lambda db: inactive_customers(db, cutoff, limit=PAGE_SIZE + 1))
    erased = [row for row in erasure_log(page.svc.desk) if row["basis"] == "retention"]
    return page.render("compliance_retention.html", tab="retention", days=days, due=due[:PAGE_SIZE],
                       more=len(due) > PAGE_SIZE, erased=list(reversed(erased))[:PAGE_SIZE], erased_count=len(erased))
