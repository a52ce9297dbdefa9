"""What-if (假设分析): a supervisor's or admin's form to replay a past period under candidate policies, the
job's page while the worker runs it, and the comparison once done — recorded vs candidate side by side,
as tables and bar and line charts drawn here as inline SVG (no chart library, no script).

The same job store and the same checks as ``/api/v1/whatif`` (:mod:`api.routers.whatif`).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from api.console.labels import N_
from api.console.page import ConsoleRefusal, Page, PageDep
from api.problems import ApiProblem
from api.routers.whatif import FieldInvalid, submit, visible_job

router = APIRouter()
#: Largest candidate file taken from the form (the API's body limit applies to the API).
MAX_CANDIDATE_BYTES = 1_000_000
#: Seconds between refreshes of a job's page while it is queued or running.
REFRESH_SECONDS = 2
STATUS = {"queued": N_("Queued"), "running": N_("Running"), "done": N_("Done"), "failed": N_("Failed")}
FIELDS = {"period.from": "since", "period.to": "until", "team": "team", "candidate": "candidate"}


def _form_page(page: Page, status: int = 200, form: dict[str, str] | None = None,
               errors: dict[str, str] | None = None) -> HTMLResponse:
    assert page.principal is not None
    principal = page.principal
    names = page.team_names()
    teams = sorted(((t, n) for t, n in names.items() if principal.all_teams or UUID(t) in principal.team_ids),
                   key=lambda t: t[1])
    jobs = [j for j in page.svc.whatif.store.jobs() if j.visible_to(principal.all_teams, principal.team_ids)][:50]
    return page.render("whatif.html", status=status, form=form or {}, errors=errors or {}, teams=teams, jobs=jobs,
                       statuses=STATUS)


@router.get("/whatif", response_class=HTMLResponse)
def whatif_form(page: PageDep) -> HTMLResponse:
    return _form_page(page)


def _when(page: Page, raw: str) -> datetime | None:
    """A date-time typed into the form, in the desk's time zone (an offset typed in is kept)."""
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ZoneInfo(page.svc.settings.time_zone))


async def _candidate(page: Page, upload: Any, text: str) -> dict[str, Any]:
    """The candidate from the uploaded file (TOML when it ends in .toml, else JSON) or the text box
    (JSON when it starts with '{', else TOML)."""
    name = ""
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(MAX_CANDIDATE_BYTES + 1)
        if len(raw) > MAX_CANDIDATE_BYTES:
            raise FieldInvalid("candidate", page._("The candidate file is larger than 1 MB."))
        name = upload.filename
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise FieldInvalid("candidate", page._("The candidate file is not UTF-8 text.")) from None
    if not text.strip():
        raise FieldInvalid("candidate", page._("Give the candidate policies: upload a file or paste them."))
    as_json = name.lower().endswith(".json") or (not name and text.lstrip().startswith("{"))
    try:
        data = json.loads(text) if as_json else tomllib.loads(text)
    except json.JSONDecodeError as exc:
        raise FieldInvalid("candidate", page._("Not valid JSON: %(error)s", error=exc.msg)) from None
    except tomllib.TOMLDecodeError as exc:
        raise FieldInvalid("candidate", page._("Not valid TOML: %(error)s", error=str(exc))) from None
    if not isinstance(data, dict):
        raise FieldInvalid("candidate", page._("The candidate holds routing, calendars, sla_policies, assignment and rotation."))
    return data


@router.post("/whatif", response_class=HTMLResponse)
async def start_whatif(request: Request, page: PageDep) -> Response:
    assert page.principal is not None
    raw = await request.form()
    form = {k: str(raw.get(k) or "")[:100_000] for k in ("since", "until", "team", "candidate_text")}
    errors: dict[str, str] = {}
    since, until = _when(page, form["since"]), _when(page, form["until"])
    for key, moment in (("since", since), ("until", until)):
        if moment is None:
            errors[key] = page._("Give a date and time, e.g. 2026-11-01 00:00.")
    try:
        candidate = await _candidate(page, raw.get("candidate_file"), form["candidate_text"])
    except FieldInvalid as exc:
        errors["candidate"] = exc.message
    if errors:
        return _form_page(page, 422, form, errors)
    try:
        job = submit(page.svc, page.principal, since, until, form["team"] or None, candidate, prefix="")
    except FieldInvalid as exc:
        key = next((v for k, v in FIELDS.items() if exc.field.startswith(k)), "candidate")
        detail = exc.message if key != "candidate" else str(exc)
        return _form_page(page, 422, form, {key: page._("Not accepted: %(reason)s", reason=detail)})
    except ApiProblem as exc:
        if exc.status != 403:
            raise
        return _form_page(page, 403, form, {"team": page._("A supervisor's what-if covers only their own teams; "
                                                           "a desk-wide one is for admins.")})
    return page.redirect(f"/whatif/{job.id}")


# ------------------------------------------------------------------ charts (inline SVG, drawn here)
@dataclass(frozen=True)
class Bar:
    label: str
    recorded: float | None  # 0..1 (attainment) or a count scaled by ``top``
    candidate: float | None
    recorded_text: str
    candidate_text: str


def _pct(page: Page, cell: dict[str, Any]) -> str:
    return "—" if cell["attainment"] is None else f"{page.fmt.percent(cell['attainment'])} ({cell['met']}/{cell['runs']})"


def _line_chart(load: dict[str, Any], width: int = 720, height: int = 220) -> dict[str, Any]:
    """Polylines of the open-ticket load: one per team and side, scaled into the chart's box."""
    points = len(load["at"])
    top = max([1, *(v for t in load["teams"] for side in ("recorded", "candidate") for v in t[side])])
    left, bottom, right, upper = 40, height - 30, width - 10, 10

    def xy(values: list[int]) -> str:
        step = (right - left) / max(points - 1, 1)
        return " ".join(f"{left + n * step:.1f},{bottom - (v / top) * (bottom - upper):.1f}" for n, v in enumerate(values))

    lines = [{"team": t["team"], "n": i, "recorded": xy(t["recorded"]), "candidate": xy(t["candidate"])}
             for i, t in enumerate(load["teams"])]
    return {"width": width, "height": height, "left": left, "bottom": bottom, "right": right, "upper": upper,
            "top": top, "lines": lines, "first": load["at"][0] if points else "", "last": load["at"][-1] if points else ""}


@router.get("/whatif/{whatif_id}", response_class=HTMLResponse)
def whatif_job(whatif_id: UUID, page: PageDep) -> HTMLResponse:
    assert page.principal is not None
    try:
        job = visible_job(page.svc, page.principal, whatif_id)
    except ApiProblem:
        raise ConsoleRefusal(404, page._("No such what-if.")) from None
    report = None if job.report is None else json.loads(job.report)
    context: dict[str, Any] = {"job": job, "report": report, "statuses": STATUS, "refresh": None}
    if job.status in ("queued", "running"):
        context["refresh"] = REFRESH_SECONDS
    if report is not None:
        context["totals"] = [Bar(r["metric"], r["recorded"]["attainment"], r["candidate"]["attainment"],
                                 _pct(page, r["recorded"]), _pct(page, r["candidate"])) for r in report["sla_totals"]]
        context["sla"] = [(r, Bar(r["metric"], r["recorded"]["attainment"], r["candidate"]["attainment"],
                                  _pct(page, r["recorded"]), _pct(page, r["candidate"]))) for r in report["sla"]]
        top = max([1, *(max(t["recorded"], t["candidate"]) for t in report["routing"]["per_team"])])
        context["per_team"] = [Bar(t["team"], t["recorded"] / top, t["candidate"] / top, str(t["recorded"]),
                                   str(t["candidate"])) for t in report["routing"]["per_team"]]
        context["load"] = _line_chart(report["routing"]["open_load"])
        context["moved"] = [c for c in report["routing"]["changed"] if c["recorded"]["team"] != c["candidate"]["team"]]
        context["reassigned"] = [c for c in report["routing"]["changed"]
                                 if c["recorded"]["team"] == c["candidate"]["team"]
                                 and c["recorded"]["agent"] != c["candidate"]["agent"]]
        context["agents"] = [a for a in report["routing"]["per_agent"] if a["difference"]]
    return page.render("whatif_job.html", **context)
