"""/api/v1/webhooks: subscriptions to events, and their deliveries (admins only).

Each delivery is a signed POST; see :mod:`projections.webhook_sender` for the headers
(``X-Ticketflow-Delivery``, ``X-Ticketflow-Signature: t=<unix>,v1=<hex>``...) and how a
receiver verifies them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.pagination import PagerDep, position_cursor, position_page
from api.deps import CommandsDep, ReadsDep, encode
from api.problems import ApiProblem, responses
from api.schemas import CommandOut, request_model
from projections.webhook_sender import standard_secret
from projections.outbox import (
    EVENT_TYPES, get_delivery, get_subscription, list_deliveries, list_subscriptions, requeue, unknown_event_types,
)
from ticketflow.commands.workflow import ChangeWebhook, PauseWebhook, RemoveWebhook, ResumeWebhook, SubscribeWebhook
from ticketflow.domain.values import Channel
from ticketflow.errors import NotFound, RuleViolation

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
ERRORS = responses(403, 404, 409, 412, 422)
HOOK = "0b8e5a52-3f4e-5d55-9a43-6b0b4b1f7c1e"
DELIVERY = "c6f1f7b2-4f0c-5b8e-8d0a-1d2f3e4a5b6c"
SIGNATURE_DOC = "X-Ticketflow-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, '<t>.<raw body>')>"

WebhookCreate = request_model(SubscribeWebhook, "WebhookCreate", {
    "name": "CRM sync", "url": "https://crm.example.com/hooks/ticketflow", "event_types": ["Ticket.Opened", "Ticket.SlaBreached"],
    "scopes": ["tickets:text"],
})
WebhookPause = request_model(PauseWebhook, "WebhookPause", {"reason": "receiver under maintenance"},
                             path=frozenset({"webhook_id"}))


class WebhookPatch(BaseModel):
    """Change where deliveries go, or which event types are wanted (at least one of the two)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"event_types": ["Ticket.Opened"]}]})
    url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", max_length=2000)
    event_types: list[str] | None = Field(default=None, min_length=1, max_length=200)


class WebhookOut(BaseModel):
    webhook_id: UUID = Field(examples=[HOOK])
    name: str = Field(examples=["CRM sync"])
    url: str = Field(examples=["https://crm.example.com/hooks/ticketflow"])
    event_types: list[str] = Field(examples=[["Ticket.Opened", "Ticket.SlaBreached"]])
    active: bool = Field(examples=[True], description="False while paused: events meanwhile are not notified.")
    scopes: list[str] = Field(
        default_factory=list, examples=[["tickets:text"]],
        description="`tickets:text`: payloads carry ticket text unmasked (each delivery recorded in the access log).")
    subscribed_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = Field(examples=[1])


class WebhookCreated(CommandOut):
    secret: str = Field(examples=["9f2c...e1"], description="The signing secret, shown once (derived, never stored).")
    standard_webhooks_secret: str | None = Field(
        examples=["whsec_OWYyYy4uLmUx"],
        description="The same secret as Standard Webhooks verifiers take it (`whsec_` + base64), for the"
                    " `webhook-id`/`webhook-timestamp`/`webhook-signature` headers every delivery also carries.")
    signature: str = Field(examples=[SIGNATURE_DOC], description="How each delivery is signed.")


class DeliveryOut(BaseModel):
    delivery_id: UUID = Field(examples=[DELIVERY], description="Same id on every retry: drop duplicates by it.")
    webhook_id: UUID = Field(examples=[HOOK])
    position: int = Field(examples=[1207], description="The event's position in the log.")
    event_type: str = Field(examples=["Ticket.Opened"])
    state: Literal["pending", "delivered", "failed", "dropped"] = Field(
        examples=["pending"], description="`dropped`: never sent, its webhook was removed.")
    attempts: int = Field(examples=[2])
    next_attempt_at: datetime | None = Field(default=None, examples=["2026-03-02T09:00:30+00:00"])
    last_status: int | None = Field(default=None, examples=[503])
    last_error: str | None = Field(default=None, examples=["HTTP 503"])
    enqueued_at: datetime | None = None
    delivered_at: datetime | None = None


class AttemptOut(BaseModel):
    attempt: int = Field(examples=[1])
    at: datetime
    status: int | None = Field(examples=[503])
    error: str | None = Field(examples=["HTTP 503"])
    duration_ms: float | None = Field(examples=[84.2])


class DeliveryDetail(DeliveryOut):
    payload: dict[str, Any] = Field(description="The event as sent (personal fields masked).")
    attempt_log: list[AttemptOut]


def _check_event_types(types: list[str]) -> None:
    """422 naming each unknown type, with the closest real one when there is one."""
    problem = unknown_event_types(types)
    if problem is not None:
        raise ApiProblem(422, "unknown_event_type", f"{problem} (GET /api/v1/webhooks/event-types lists them)")


def _subscription(reads: Any, webhook_id: UUID) -> dict[str, Any]:
    row = reads.read("outbox", lambda db: get_subscription(db, str(webhook_id)))
    if row is None:
        raise NotFound("webhook", webhook_id)
    return _with_scopes(reads, dict(row))


def _with_scopes(reads: Any, row: dict[str, Any]) -> dict[str, Any]:
    """The view keeps where and what; what a subscription was granted is read from the log."""
    return {**row, "scopes": reads.svc.desk.webhook_scopes(UUID(str(row["webhook_id"])))}


@router.post("", status_code=201, summary="Subscribe a URL to event types", response_model=WebhookCreated,
             responses=responses(403, 422))
def subscribe(body: WebhookCreate, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """Answers the signing secret once. Deliveries start with the events after this one."""
    fields = body.model_dump()
    _check_event_types(fields["event_types"])
    command = SubscribeWebhook(**fields, command_id=cmd.command_id)
    result, secret = cmd.svc.desk.subscribe_webhook(command, cmd.principal.caller(Channel.API, cmd.correlation_id))
    response = cmd.respond(result, 201, location=f"/api/v1/webhooks/{result.object_id}")
    answer = {**json.loads(bytes(response.body)), "secret": secret, "signature": SIGNATURE_DOC,
              "standard_webhooks_secret": standard_secret(secret) if secret else None}
    headers = {k: v for k, v in response.headers.items() if k.lower() in ("etag", "x-log-position", "location")}
    return JSONResponse(answer, status_code=201, headers=headers)


@router.get("", summary="List webhook subscriptions", response_model=list[WebhookOut], responses=responses(403, 503))
def webhooks(pager: PagerDep, reads: ReadsDep) -> Any:
    """Every subscription, paused ones too (removed ones are gone), with the scopes it was granted. Paged."""
    return pager.page(encode(WebhookOut, [_with_scopes(reads, r) for r in reads.read("outbox", list_subscriptions)]))


@router.get("/event-types", summary="The event types a webhook may subscribe to", response_model=list[str],
            responses={**responses(403), 200: {"content": {"application/json": {"example": ["Ticket.Opened"]}}}})
def event_types(pager: PagerDep) -> list[str]:
    """The event types `event_types` may name (`*` subscribes to all). Token and data-access events are never
    notified."""
    return pager.page(sorted(EVENT_TYPES))


@router.get("/{webhook_id}", summary="One webhook subscription", response_model=WebhookOut, responses=responses(403, 404, 503))
def webhook(webhook_id: UUID, reads: ReadsDep) -> Any:
    """One subscription: where, which event types, active or paused, scopes; never its secret."""
    return WebhookOut.model_validate(_subscription(reads, webhook_id)).model_dump(mode="json")


@router.patch("/{webhook_id}", summary="Change a webhook's URL or event types", response_model=CommandOut, responses=ERRORS)
def change(webhook_id: UUID, body: WebhookPatch, cmd: CommandsDep) -> JSONResponse:
    """Moves deliveries to another URL or changes the event types (at least one of the two); unknown types are
    a 422."""
    current = next((w for w in cmd.svc.desk.webhooks() if w.id == webhook_id), None)
    if current is None:
        raise NotFound("webhook", webhook_id)
    if body.event_types is not None:
        _check_event_types(body.event_types)
    url = body.url if body.url is not None else current.url
    types = body.event_types if body.event_types is not None else list(current.event_types)
    return cmd.respond(cmd.run(ChangeWebhook, webhook_id=webhook_id, url=url, event_types=types))


@router.delete("/{webhook_id}", summary="Remove a webhook subscription", response_model=CommandOut,
               responses=responses(403, 404, 409, 412))
def remove(
    webhook_id: UUID, cmd: CommandsDep,
    reason: Annotated[str, Query(max_length=500, description="Why (kept in the webhook's history).")] = "",
) -> JSONResponse:
    """Records `Webhook.Removed`. Once this answers, nothing more is posted to the subscription: its
    pending deliveries are dropped (state `dropped`), delivered and failed ones stay on record.
    The webhook then answers 404 here and in the list."""
    return cmd.respond(cmd.run(RemoveWebhook, webhook_id=webhook_id, reason=reason))


@router.post("/{webhook_id}/pause", summary="Pause deliveries (events meanwhile are not notified)",
             response_model=CommandOut, responses=ERRORS)
def pause(webhook_id: UUID, body: WebhookPause, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """Events while paused are not notified later; pending deliveries wait until resumed."""
    return cmd.respond(cmd.run(PauseWebhook, webhook_id=webhook_id, **body.model_dump()))


@router.post("/{webhook_id}/resume", summary="Resume deliveries", response_model=CommandOut, responses=ERRORS)
def resume(webhook_id: UUID, cmd: CommandsDep) -> JSONResponse:
    """Deliveries start again with the events after this one."""
    return cmd.respond(cmd.run(ResumeWebhook, webhook_id=webhook_id))


@router.get("/{webhook_id}/deliveries", summary="A webhook's deliveries: state, attempts, last error",
            response_model=list[DeliveryOut], responses=responses(403, 404, 422, 503))
def deliveries(
    webhook_id: UUID, reads: ReadsDep, response: Response,
    state: Literal["pending", "delivered", "failed", "dropped"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=500, description="The `next_cursor` of the previous page (opaque).")] = None,
    after: Annotated[int | None, Query(ge=0, le=10**15, deprecated=True,
                                       description="Deprecated: use `cursor`. Deliveries of events after this log position.")] = None,
) -> Any:
    """In log order; follow `Link: rel="next"`."""
    _subscription(reads, webhook_id)
    start = position_cursor(cursor, after)
    rows = reads.read("outbox", lambda db: list_deliveries(db, str(webhook_id), state=state, after=start, limit=limit + 1))
    return encode(DeliveryOut, position_page(reads.request, response, rows, limit))


@router.get("/{webhook_id}/deliveries/{delivery_id}", summary="One delivery with its payload and every attempt",
            response_model=DeliveryDetail, responses=responses(403, 404, 503))
def delivery(webhook_id: UUID, delivery_id: UUID, reads: ReadsDep) -> Any:
    """The delivery's state, its payload as sent (masked unless the subscription holds `tickets:text`; then
    the text is filled in at send time), and every attempt."""
    row = reads.read("outbox", lambda db: get_delivery(db, str(webhook_id), str(delivery_id)))
    if row is None:
        raise NotFound("webhook delivery", delivery_id)
    return DeliveryDetail.model_validate(row).model_dump(mode="json")


@router.post("/{webhook_id}/deliveries/{delivery_id}/retry", summary="Send a failed delivery again, now",
             response_model=DeliveryOut, responses=responses(403, 404, 409, 503))
def retry(webhook_id: UUID, delivery_id: UUID, reads: ReadsDep) -> Any:
    """The delivery gets a fresh round of attempts at the sender's next run. A delivered one is refused (409)."""
    retry_delivery(reads.svc.read_side, webhook_id, delivery_id)
    row = reads.read("outbox", lambda db: get_delivery(db, str(webhook_id), str(delivery_id)))
    return DeliveryOut.model_validate(row).model_dump(mode="json")


def retry_delivery(read_side: Any, webhook_id: UUID, delivery_id: UUID) -> None:
    """Requeue a failed (or waiting) delivery; NotFound without it, RuleViolation when it was delivered.
    The API and the console retry here."""
    outbox = read_side.stores["outbox"]
    previous = outbox.write(lambda db: requeue(db, str(webhook_id), str(delivery_id)))
    if previous is None:
        raise NotFound("webhook delivery", delivery_id)
    if previous == "delivered":
        raise RuleViolation(f"delivery {delivery_id} was already delivered")
    if previous == "dropped":
        raise RuleViolation(f"delivery {delivery_id} was dropped: its webhook was removed")
