"""The auditor's pages (审计): a ticket's or customer's history with an as-of slider (recorded or
business time), the diff between two instants, the checkpoint that proves the record (tree size,
signature, key fingerprint) with a one-click verification, and audit exports to download.

Verification here trusts nothing the pages show: it exports the record (or the whole log) and
checks it the way the offline ``ticketflow-verify`` does. The state at an instant is read from the
record's own events (the aggregate at that version), never from a view.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from eventsourcing.persistence import MapperDeserialisationError
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from api.console import labels
from api.console.page import Page, PageDep, whole_number
from api.console.pages.ticket import ticket_reference
from api.deps import customer_visible
from api.routers.tickets import mask_audit, masked_fields
from projections.asof import audit_fields
from projections.asof import diff as version_diff
from projections.integrity.proof import export_zip, log_checkpoints, record_proof
from projections.integrity.sealer import open_seal_store
from projections.integrity.verifier import Report, verify_store
from ticketflow.access import MASK
from ticketflow.errors import CustomerNotFound, NotFound, TicketNotFound, ValidationFailed
from ticketflow.timetravel import DidNotExistYet, TimeBasis, default_basis, latest_version, version_at
from ticketflow.writer_mac import ForgedEvent

router = APIRouter()
KINDS = {"tickets": ("ticketflow.domain.ticket:", TicketNotFound), "customers": ("ticketflow.domain.customer:", CustomerNotFound)}


@dataclass(frozen=True)
class Version:
    """One event of the record, as the slider and the history list show it."""

    number: int
    kind: str  # the event's class name
    actor: str
    role: str
    via: str
    recorded_at: str
    occurred_at: str
    changes: list[dict[str, Any]]


def _masked(reads: Any, changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Changes masked as the API's audit trail masks them (no purpose is stated on these pages)."""
    return list(mask_audit(reads, {"changes": changes, "summary": "", "event_type": "", "imported": 0})["changes"])


def _net(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each field's value at the two instants (first old, last new), with the versions and people that
    changed it in between; fields that came back to where they were are left out."""
    net: dict[str, dict[str, Any]] = {}
    for ch in changes:
        entry = net.setdefault(ch["field"], {"field": ch["field"], "old": ch["old"], "versions": [], "actors": []})
        entry["new"] = ch["new"]
        entry["versions"].append(ch["version"])
        if ch["actor_id"] not in entry["actors"]:
            entry["actors"].append(ch["actor_id"])
    return [entry for entry in net.values() if entry["old"] != entry["new"] or entry["old"] == MASK]


def _instant(page: Page, raw: str) -> datetime:
    """``<input type=datetime-local>`` in the desk's zone (or a full ISO 8601 instant)."""
    moment = datetime.fromisoformat(raw.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(page.svc.settings.time_zone))


def _history(page: Page, kind: str, object_id: UUID, request: Request, verified: Report | None = None,
             verify_error: str | None = None, status: int = 200) -> HTMLResponse:
    desk = page.svc.desk
    topic, not_found = KINDS[kind]
    first = desk.recorder.select_events(object_id, limit=1)
    if not first or not first[0].topic.startswith(topic):
        raise not_found(object_id)
    last = latest_version(desk, object_id)
    query = request.query_params
    errors: dict[str, str] = {}
    asked_basis = query.get("basis")
    basis = TimeBasis(asked_basis) if asked_basis in ("business", "recorded") else default_basis(page.svc.settings)
    title = (page._("Ticket") + f" #{str(object_id)[:8]}") if kind == "tickets" else (page._("Customer") + f" {str(object_id)[:8]}")
    context: dict[str, Any] = {
        "kind": kind, "object_id": str(object_id), "title": title, "last": last, "basis": basis.value,
        "proof": record_proof(desk, object_id), "verified": verified, "verify_error": verify_error, "errors": errors,
        "at": query.get("at", ""), "value": _value_formatter(page), "broken": None,
        "event_labels": labels.EVENT if kind == "tickets" else labels.CUSTOMER_EVENT,
    }
    try:
        context.update(_at_an_instant(page, object_id, last, basis, errors))
    except (MapperDeserialisationError, ForgedEvent) as exc:  # the record's bytes were altered: say so, keep the proof
        context["broken"] = str(exc)
        return page.render("audit_record.html", status=max(status, 409) if verified is None else status, **context)
    return page.render("audit_record.html", status=422 if errors else status, **context)


def _at_an_instant(page: Page, object_id: UUID, last: int, basis: TimeBasis, errors: dict[str, str]) -> dict[str, Any]:
    """The slider's version, the record at it, every event, and the diff to the compared version."""
    desk, query = page.svc.desk, page.request.query_params
    reads = page.reads()
    hidden = masked_fields(reads)
    version = last
    if query.get("at"):
        try:
            version = version_at(desk, object_id, _instant(page, query["at"]), basis)
        except ValueError:
            errors["at"] = page._("Give a date and time, e.g. 2026-11-30 14:00.")
        except DidNotExistYet:
            errors["at"] = page._("The record did not exist yet at that time.")
    elif (asked := whole_number(query.get("version"))) is not None:
        version = min(max(asked, 1), last)
    compare = min(max(asked_compare, 1), last) if (asked_compare := whole_number(query.get("compare"))) is not None else last
    by_version: dict[int, list[dict[str, Any]]] = {}
    for change in _masked(reads, version_diff(desk, object_id, 0, last)):
        by_version.setdefault(change["version"], []).append(change)
    versions = [
        Version(e.originator_version, type(e).__name__, e.actor_id, str(e.actor_role), str(e.via),
                e.timestamp.isoformat(), e.occurred_at.isoformat(), by_version.get(e.originator_version, []))
        for e in desk.history(object_id)
    ]
    state = audit_fields(desk.repository.get(object_id, version=version))
    low, high = min(version, compare), max(version, compare)
    when = page.fmt.when
    return {
        "version": version, "compare": compare, "low": low, "high": high, "versions": versions,
        "shown": versions[version - 1] if version <= len(versions) else None,
        "state": {f: (MASK if f in hidden and v not in (None, "", []) else v) for f, v in state.items()},
        "between": _net(_masked(reads, version_diff(desk, object_id, low, high))) if low < high else [],
        "slider": [page._("Version %(n)s of %(last)s", n=v.number, last=last) + f" · {when(v.recorded_at)}" for v in versions],
    }


def _value_formatter(page: Page) -> Any:
    """A field's value as the page shows it: names for teams, labels for statuses, dashes for nothing."""
    def show(field: str, value: Any) -> str:
        if value in (None, "", []):
            return "—"
        if value == MASK:
            return MASK
        if field == "team_id":
            return page.team_name(value)
        if field == "status":
            return page._(labels.STATUS.get(value, value))
        if field == "priority":
            return page._(labels.PRIORITY.get(value, value))
        if field == "ticket_type":
            return page._(labels.TICKET_TYPE.get(value, value))
        if field == "channel":
            return page._(labels.CHANNEL.get(value, value))
        if field == "tier":
            return page._(labels.TIER.get(value, value))
        if field == "consents" and isinstance(value, list):
            return ", ".join(page._(labels.CONSENT.get(str(v), str(v))) for v in value)
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        if isinstance(value, dict):
            return ", ".join(f"{k}: {v}" for k, v in value.items())
        return str(value)
    return show


def _verify_record(page: Page, kind: str, object_id: UUID, request: Request) -> HTMLResponse:
    desk = page.svc.desk
    store = open_seal_store(desk)
    try:
        report = verify_store(desk, store, object_id)
    except ValidationFailed:
        return _history(page, kind, object_id, request, verify_error=page._(
            "Nothing is sealed yet: the desk signs its first checkpoint within a minute of the first events."), status=409)
    finally:
        store.datastore.close()  # type: ignore[attr-defined]
    return _history(page, kind, object_id, request, verified=report)


def _download(page: Page, name: str, object_id: UUID | None = None, since: datetime | None = None,
              until: datetime | None = None) -> Response:
    try:
        chunks = export_zip(page.svc.desk, object_id, since, until)
    except ValidationFailed:
        return page.render("error.html", status=409, status_code=409, code="console_refusal", detail=page._(
            "Nothing is sealed yet: the desk signs its first checkpoint within a minute of the first events."))
    return StreamingResponse(chunks, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


# ------------------------------------------------------------------ a record's history
@router.get("/audit/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_history(ticket_id: UUID, request: Request, page: PageDep) -> HTMLResponse:
    return _history(page, "tickets", ticket_id, request)


@router.post("/audit/tickets/{ticket_id}/verify", response_class=HTMLResponse)
def verify_ticket(ticket_id: UUID, request: Request, page: PageDep) -> HTMLResponse:
    page.return_to = f"/audit/tickets/{ticket_id}"
    return _verify_record(page, "tickets", ticket_id, request)


@router.get("/audit/tickets/{ticket_id}/export.zip")
def export_ticket(ticket_id: UUID, page: PageDep) -> Response:
    return _download(page, f"ticketflow-ticket-{str(ticket_id)[:8]}.zip", ticket_id)


@router.get("/audit/customers/{customer_id}", response_class=HTMLResponse)
def customer_history(customer_id: UUID, request: Request, page: PageDep) -> HTMLResponse:
    return _history(page, "customers", customer_id, request)


@router.post("/audit/customers/{customer_id}/verify", response_class=HTMLResponse)
def verify_customer(customer_id: UUID, request: Request, page: PageDep) -> HTMLResponse:
    page.return_to = f"/audit/customers/{customer_id}"
    return _verify_record(page, "customers", customer_id, request)


@router.get("/audit/customers/{customer_id}/export.zip")
def export_customer(customer_id: UUID, page: PageDep) -> Response:
    return _download(page, f"ticketflow-customer-{str(customer_id)[:8]}.zip", customer_id)


# ------------------------------------------------------------------ the whole log
def _log_page(page: Page, ref: str = "", ref_error: str | None = None, verified: Report | None = None,
              status: int = 200, export_error: str | None = None) -> HTMLResponse:
    sealed, checkpoints = log_checkpoints(page.svc.desk)
    assert page.principal is not None
    return page.render("audit.html", status=status, sealed=sealed, checkpoints=checkpoints, events=page.svc.desk.log_position(),
                       ref=ref, ref_error=ref_error, verified=verified, desk_wide=page.principal.all_teams,
                       export_error=export_error)


def _find(page: Page, ref: str) -> str | None:
    """The history page of a ticket (by reference) or customer (by id) in the caller's scope."""
    text = ref.strip()
    try:
        object_id = UUID(text.lstrip("#"))
    except ValueError:
        object_id = None
    if object_id is not None:
        first = page.svc.desk.recorder.select_events(object_id, limit=1)
        if first and first[0].topic.startswith(KINDS["customers"][0]):
            assert page.principal is not None
            return f"/audit/customers/{object_id}" if customer_visible(page.svc, page.principal, object_id) else None
        if not first or not first[0].topic.startswith(KINDS["tickets"][0]):
            return None
    try:
        ticket_id = ticket_reference(page, text)
    except (NotFound, ValueError):
        return None
    assert page.principal is not None
    return f"/audit/tickets/{ticket_id}" if page.principal.sees_team(page.svc.desk.ticket_team(ticket_id)) else None


@router.get("/audit", response_class=HTMLResponse)
def audit_home(request: Request, page: PageDep) -> Response:
    ref = request.query_params.get("ref", "")
    if ref.strip():
        try:
            found = _find(page, ref)
        except NotFound:
            found = None
        if found:
            return page.redirect(found)
        return _log_page(page, ref, page._("No ticket or customer with this reference in your teams."), status=404)
    return _log_page(page)


@router.post("/audit/verify", response_class=HTMLResponse)
def verify_log(page: PageDep) -> HTMLResponse:
    page.return_to = "/audit"
    desk = page.svc.desk
    store = open_seal_store(desk)
    try:
        report = verify_store(desk, store)
    finally:
        store.datastore.close()  # type: ignore[attr-defined]
    return _log_page(page, verified=report)


@router.get("/audit/export.zip")
def export_log(request: Request, page: PageDep) -> Response:
    bounds: list[datetime | None] = []
    for name in ("since", "until"):
        raw = request.query_params.get(name, "")
        try:
            bounds.append(_instant(page, raw) if raw else None)
        except ValueError:
            return _log_page(page, status=422, export_error=page._("Give a date and time, e.g. 2026-11-30 14:00."))
    since, until = bounds
    if since and until and since >= until:
        return _log_page(page, status=422, export_error=page._("The end must come after the start."))
    return _download(page, "ticketflow-audit-export.zip", None, since, until)

