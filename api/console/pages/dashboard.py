"""The supervisor dashboard (仪表盘): volume per day (line), backlog by team and status (stacked
bar), SLA compliance per team and metric (bar), satisfaction (pie), first-reply and resolution
times (bar) — for a period and a team, with team names. Each chart is drawn by plotly.js (shipped
in the plotly wheel, served from this server), readable as a table, and downloadable as CSV; the
numbers are the reports API's (the same report functions, the same team scope)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from importlib.resources import files
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from api.console import labels
from api.console.page import Page, PageDep
from projections import reports, workflow
from projections.sql import ts

router = APIRouter()
WORKING = ("new", "open", "pending", "on_hold")
DEFAULT_DAYS = 30
CHARTS = ("volume", "backlog", "sla", "satisfaction", "response_times")


@dataclass
class Chart:
    """One chart: its plotly traces and layout, and the same numbers as a table (and CSV)."""

    name: str
    title: str
    kind: str  # line, stacked, bar, pie
    header: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    traces: list[dict[str, Any]] = field(default_factory=list)
    y_title: str = ""

    def figure(self) -> dict[str, Any]:
        layout: dict[str, Any] = {"margin": {"t": 10, "r": 10, "b": 60, "l": 50}, "height": 300,
                                  "legend": {"orientation": "h", "y": -0.25}, "font": {"size": 12}}
        if self.kind != "pie":
            layout["yaxis"] = {"title": {"text": self.y_title}, "rangemode": "tozero"}
        if self.kind == "line":
            layout["xaxis"] = {"type": "date", "tickformat": "%m-%d"}  # numbers only: no English month names
        if self.kind == "stacked":
            layout["barmode"] = "stack"
        if self.kind == "bar":
            layout["barmode"] = "group"
        return {"data": self.traces, "layout": layout}


@dataclass(frozen=True)
class Period:
    since: date
    until: date  # inclusive (the last day shown)

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        start = datetime.combine(self.since, time.min, zone)
        return start, datetime.combine(self.until + timedelta(days=1), time.min, zone)


def _period(page: Page, request: Request) -> tuple[Period, list[str]]:
    errors = []
    today = page.svc.desk.clock.now().astimezone(ZoneInfo(page.svc.settings.time_zone)).date()
    parsed = {}
    for name, default in (("since", today - timedelta(days=DEFAULT_DAYS - 1)), ("until", today)):
        raw = request.query_params.get(name) or ""
        try:
            parsed[name] = date.fromisoformat(raw) if raw else default
        except ValueError:
            errors.append(name)
            parsed[name] = default
    if parsed["since"] > parsed["until"]:
        errors.append("until")
        parsed["until"] = parsed["since"]
    if (parsed["until"] - parsed["since"]).days > 366 * 2:
        errors.append("since")
        parsed["since"] = parsed["until"] - timedelta(days=366 * 2)
    return Period(parsed["since"], parsed["until"]), errors


def build(page: Page, request: Request) -> dict[str, Any]:
    """Every chart for the request's period and team, within the caller's teams."""
    assert page.principal is not None
    _ = page.gettext
    period, errors = _period(page, request)
    since, until = period.bounds(ZoneInfo(page.svc.settings.time_zone))
    names = page.team_names()
    visible = sorted(t for t in names if page.principal.sees_team(t))
    team = request.query_params.get("team") or ""
    if team and team not in visible:
        errors.append("team")
        team = ""
    scope: set[str] | None = {team} if team else (None if page.principal.all_teams else set(visible))
    reads = page.reads()

    def name_of(team_id: str | None) -> str:
        return page.team_name(team_id)

    charts = []
    # 1. volume per day, a line per team
    rows = reads.read("tickets", lambda db: reports.volume(
        db, "team", since, until, scope, page.svc.settings.time_zone))
    volume = Chart("volume", _("Tickets per day"), "line", [_("Day"), _("Team"), _("Tickets")], y_title=_("Tickets"))
    per_team: dict[str, dict[str, int]] = {}
    for r in rows:
        per_team.setdefault(name_of(r["value"]), {})[r["day"]] = int(r["tickets"])
        volume.rows.append([r["day"], name_of(r["value"]), int(r["tickets"])])
    days = [(period.since + timedelta(days=i)).isoformat() for i in range((period.until - period.since).days + 1)]
    for label, counts in sorted(per_team.items()):
        volume.traces.append({"type": "scatter", "mode": "lines+markers", "name": label, "x": days,
                              "y": [counts.get(d, 0) for d in days]})
    charts.append(volume)
    # 2. backlog by team and status (now)
    rows = reads.read("tickets", lambda db: reports.backlog(db, scope, WORKING))
    backlog = Chart("backlog", _("Backlog by team and status"), "stacked", [_("Team"), _("Status"), _("Tickets")],
                    y_title=_("Tickets"))
    teams_in = sorted({name_of(r["team_id"]) for r in rows if r["status"] in WORKING})
    for status in WORKING:
        counts = {name_of(r["team_id"]): int(r["tickets"]) for r in rows if r["status"] == status}
        if counts:
            backlog.traces.append({"type": "bar", "name": _(labels.STATUS[status]), "x": teams_in,
                                   "y": [counts.get(t, 0) for t in teams_in]})
        backlog.rows += [[t, _(labels.STATUS[status]), counts[t]] for t in teams_in if t in counts]
    charts.append(backlog)
    # 3. SLA compliance per team and metric (targets that ended in the period)
    rows = reads.read("workflow", lambda db: workflow.sla_compliance(
        db, "year", ts(since), ts(until), scope, page.svc.settings.time_zone))
    sla = Chart("sla", _("SLA compliance"), "bar", [_("Team"), _("Metric"), _("Met"), _("Breached"), _("Compliance")],
                y_title=_("Compliance (%)"))
    totals: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        key = (name_of(r["team_id"]), r["metric"])
        got = totals.setdefault(key, [0, 0])
        got[0] += int(r["fulfilled"])
        got[1] += int(r["breached"])
    for metric in labels.METRIC:
        keys = sorted(k for k in totals if k[1] == metric)
        if keys:
            sla.traces.append({"type": "bar", "name": _(labels.METRIC[metric]), "x": [k[0] for k in keys],
                               "y": [round(100 * totals[k][0] / max(1, sum(totals[k])), 1) for k in keys]})
    for (team_name, metric), (met, breached) in sorted(totals.items()):
        share = met / (met + breached) if met + breached else 0.0
        sla.rows.append([team_name, _(labels.METRIC.get(metric, metric)), met, breached, page.fmt.percent(share)])
    charts.append(sla)
    # 4. satisfaction distribution
    rows = reads.read("tickets", lambda db: reports.satisfaction(db, since, until, scope))
    scores = {str(s): sum(int(r["scores"][str(s)]) for r in rows) for s in range(1, 6)}
    satisfaction = Chart("satisfaction", _("Satisfaction distribution"), "pie", [_("Score"), _("Ratings")])
    if any(scores.values()):
        given = {s: n for s, n in scores.items() if n}  # a slice per score given (the table lists every score)
        satisfaction.traces.append({"type": "pie", "labels": [f"{s} ★" for s in given], "values": list(given.values()),
                                    "sort": False, "hole": 0.35, "textinfo": "label+percent"})
    satisfaction.rows = [[f"{s} ★", n] for s, n in scores.items()]
    charts.append(satisfaction)
    # 5. first-reply and resolution times
    rows = reads.read("tickets", lambda db: reports.response_times(db, since, until, scope))
    times = Chart("response_times", _("First reply and resolution times"), "bar",
                  [_("Team"), _("Priority"), _("Tickets replied"), _("First reply, median (h)"), _("Tickets solved"),
                   _("Resolution, median (h)")], y_title=_("Hours (median)"))
    groups = [f"{name_of(r['team_id'])} · {_(labels.PRIORITY.get(r['priority'], r['priority']))}" for r in rows]
    if rows:
        times.traces = [
            {"type": "bar", "name": _("First reply time"), "x": groups, "y": [r["first_reply_hours"]["median"] for r in rows]},
            {"type": "bar", "name": _("Resolution time"), "x": groups, "y": [r["resolution_hours"]["median"] for r in rows]},
        ]
    for r in rows:
        times.rows.append([name_of(r["team_id"]), _(labels.PRIORITY.get(r["priority"], r["priority"])),
                           r["first_reply_hours"]["count"], r["first_reply_hours"]["median"],
                           r["resolution_hours"]["count"], r["resolution_hours"]["median"]])
    charts.append(times)
    return {"charts": charts, "period": period, "team": team, "teams": [(t, names[t]) for t in visible],
            "errors": errors}


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request, page: PageDep) -> HTMLResponse:
    context = build(page, request)
    status = 422 if context["errors"] else 200
    return page.render("dashboard.html", status=status, charting=True, **context)


@router.get("/dashboard/{chart}.csv")
def chart_csv(chart: str, request: Request, page: PageDep) -> Response:
    """One chart's numbers as CSV (UTF-8 with a byte-order mark, so spreadsheet programs read Chinese)."""
    found = next((c for c in build(page, request)["charts"] if c.name == chart), None)
    if found is None:
        return page.render("error.html", status=404, status_code=404, code="not_found", detail=chart)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(found.header)
    writer.writerows(found.rows)
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="ticketflow-{chart}.csv"', "Cache-Control": "no-store"})


@router.get("/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    """plotly.js from the plotly wheel (never a CDN)."""
    path = files("plotly") / "package_data" / "plotly.min.js"
    return FileResponse(str(path), media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})
