"""Webhooks (admins): the subscriptions with their delivery health, subscribing a URL to event
types (the signing secret shown once, on the answer page), pausing and resuming, and a
subscription's recent deliveries with "retry" for a failed one. The same application calls and
outbox queries as ``/api/v1/webhooks``; the URL is shown as that API shows it to an admin."""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api.console.errors import refusal
from api.console.forms import caller, form_command_id, new_form_key
from api.console.labels import N_
from api.console.page import Page, PageDep, whole_number
from api.routers.webhooks import SIGNATURE_DOC, retry_delivery
from projections.outbox import (
    EVENT_TYPES,
    delivery_health,
    get_subscription,
    list_deliveries,
    list_subscriptions,
    unknown_event_types,
)
from projections.webhook_sender import MAX_ATTEMPTS, backoff
from ticketflow.commands.workflow import PauseWebhook, ResumeWebhook, SubscribeWebhook
from ticketflow.errors import NotFound, TicketflowError, ValidationFailed

router = APIRouter()

DONE = {
    "paused": N_("Webhook paused: events from now on are not delivered, not even after resuming."),
    "resumed": N_("Webhook resumed: new events are delivered again."),
    "retried": N_("The delivery is queued again: it is sent at the sender's next run."),
}
DELIVERY_STATES = ("failed", "pending", "delivered")
RECENT = 50
#: How long the sender keeps trying before a delivery has failed (from the sender's own schedule).
RETRY_POLICY = {"attempts": MAX_ATTEMPTS,
                "hours": round(sum(backoff(n).total_seconds() for n in range(1, MAX_ATTEMPTS)) / 3600, 1)}


def _event_type_groups() -> dict[str, list[str]]:
    """The event types a webhook may subscribe to, by the kind of object (Ticket, Customer ...)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for name in sorted(EVENT_TYPES):
        groups[name.split(".")[0]].append(name)
    order = ["Ticket", "Customer", "Team", "Reminder"]
    return {k: groups[k] for k in sorted(groups, key=lambda k: (order.index(k) if k in order else len(order), k))}


def _at(request: Request) -> int | None:
    at = request.query_params.get("at")
    return whole_number(at)


def _webhooks_page(page: Page, status: int = 200, min_position: int | None = None, **extra: Any) -> HTMLResponse:
    done = page.request.query_params.get("done")
    if done in DONE:
        page.notices.append(page._(DONE[done]))
    reads = page.reads(min_position=min_position or _at(page.request))
    context: dict[str, Any] = {"form_errors": {}, "form_values": {}, "created": None, **extra}
    return page.render("webhooks.html", status=status, webhooks=reads.read("outbox", list_subscriptions),
                       health=reads.read("outbox", delivery_health), groups=_event_type_groups(),
                       form_key=new_form_key(), **context)


@router.get("/admin/webhooks", response_class=HTMLResponse)
def webhooks(page: PageDep) -> HTMLResponse:
    return _webhooks_page(page)


@router.post("/admin/webhooks", response_class=HTMLResponse)
async def subscribe(request: Request, page: PageDep) -> Response:
    """Subscribe; the answer page shows the signing secret (never put in a URL, never cached)."""
    form = await request.form()
    page.return_to = "/admin/webhooks"
    values: dict[str, Any] = {k: str(form.get(k) or "").strip() for k in ("name", "url")}
    values["event_types"] = [str(t) for t in form.getlist("event_types")]
    try:
        if problem := unknown_event_types(values["event_types"]):  # the API's check, before the command
            raise ValidationFailed(problem)
        command = SubscribeWebhook(name=values["name"], url=values["url"], event_types=values["event_types"],
                                   command_id=form_command_id(page, form))
        result, secret = page.svc.desk.subscribe_webhook(command, caller(page))
    except (ValidationError, TicketflowError) as exc:
        refused = refusal(exc, page.gettext)
        return _webhooks_page(page, refused.status, form_errors={"create": refused}, form_values={"create": values})
    created = {"webhook_id": result.object_id, "name": values["name"], "secret": secret, "signature": SIGNATURE_DOC}
    return _webhooks_page(page, 201, min_position=result.position, created=created)


def _subscription(page: Page, webhook_id: UUID, min_position: int | None = None) -> dict[str, Any]:
    row = page.reads(min_position=min_position).read("outbox", lambda db: get_subscription(db, str(webhook_id)))
    if row is None:
        raise NotFound("webhook", webhook_id)
    return row


def _webhook_page(page: Page, webhook_id: UUID, status: int = 200, min_position: int | None = None,
                  **extra: Any) -> HTMLResponse:
    done = page.request.query_params.get("done")
    if done in DONE:
        page.notices.append(page._(DONE[done]))
    hook = _subscription(page, webhook_id, min_position or _at(page.request))
    state = page.request.query_params.get("state")
    state = state if state in DELIVERY_STATES else None
    reads = page.reads()
    deliveries = reads.read("outbox", lambda db: list_deliveries(db, str(webhook_id), state=state, limit=RECENT,
                                                                  newest_first=True))
    health = reads.read("outbox", delivery_health).get(str(webhook_id))
    context: dict[str, Any] = {"form_errors": {}, "form_values": {}, **extra}
    return page.render("webhook.html", status=status, hook=hook, deliveries=deliveries, state=state, health=health,
                       states=DELIVERY_STATES, recent=RECENT, signature=SIGNATURE_DOC,
                       retry_policy=RETRY_POLICY, **context)


@router.get("/admin/webhooks/{webhook_id}", response_class=HTMLResponse)
def webhook(webhook_id: UUID, page: PageDep) -> HTMLResponse:
    return _webhook_page(page, webhook_id)


def _back(form: Any, webhook_id: UUID) -> str:
    """Where a pause or resume form returns to: the list or the subscription's own page."""
    return f"/admin/webhooks/{webhook_id}" if form.get("from") == "webhook" else "/admin/webhooks"


def _switch(action: str) -> Any:
    async def handle(webhook_id: UUID, request: Request, page: PageDep) -> Response:
        form = await request.form()
        back = _back(form, webhook_id)
        page.return_to = back
        version = str(form.get("version") or "")
        expected = whole_number(version, 1, 2**31 - 1)
        try:
            if expected is None:  # the form carries the version it showed: a change meanwhile is refused
                raise ValidationError.from_exception_data("form", [{"type": "missing", "loc": ("version",), "input": version}])
            if action == "pause":
                result = page.commands(expected).run(PauseWebhook, webhook_id=webhook_id,
                                                     reason=str(form.get("reason") or ""))
            else:
                result = page.commands(expected).run(ResumeWebhook, webhook_id=webhook_id)
        except (ValidationError, TicketflowError) as exc:
            refused = refusal(exc, page.gettext)
            if isinstance(exc, NotFound):
                raise
            errors = {f"{action}:{webhook_id}": refused}
            values = {f"{action}:{webhook_id}": {"reason": str(form.get("reason") or "")}}
            if back == "/admin/webhooks":
                return _webhooks_page(page, refused.status, form_errors=errors, form_values=values)
            return _webhook_page(page, webhook_id, refused.status, form_errors=errors, form_values=values)
        at = f"&at={result.position}" if result.position else ""
        return page.redirect(f"{back}?done={action}d{at}")

    handle.__name__ = f"webhook_{action}"
    return handle


for _action in ("pause", "resume"):
    router.post(f"/admin/webhooks/{{webhook_id}}/{_action}", response_class=HTMLResponse)(_switch(_action))


@router.post("/admin/webhooks/{webhook_id}/deliveries/{delivery_id}/retry", response_class=HTMLResponse)
def retry(webhook_id: UUID, delivery_id: UUID, page: PageDep) -> Response:
    page.return_to = f"/admin/webhooks/{webhook_id}"
    try:
        retry_delivery(page.svc.read_side, webhook_id, delivery_id)
    except TicketflowError as exc:
        refused = refusal(exc, page.gettext)
        return _webhook_page(page, webhook_id, refused.status, form_errors={f"retry:{delivery_id}": refused})
    return page.redirect(f"/admin/webhooks/{webhook_id}?done=retried")
