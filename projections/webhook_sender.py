"""Delivers the webhook outbox: signed POSTs, every attempt recorded, retried with backoff.

**At least once.** A delivery is marked delivered only after a 2xx answer, in a
transaction of its own; a sender that dies between the POST and that commit sends
it again once its lease expires. Receivers drop duplicates by ``X-Ticketflow-Delivery``
(the same event to the same webhook always has the same id).

**Request.** ``POST`` of ``{"delivery_id", "webhook_id", "event": {...}}`` as UTF-8
JSON (the event in the shape of ``GET /api/v1/events``, personal fields masked; a subscription
granted ``tickets:text`` gets the text of ticket events unmasked, each delivery attempt recorded in
the access log as a read by ``webhook:<id>``), with:

``X-Ticketflow-Delivery``   the delivery id (stable across retries)
``X-Ticketflow-Event``      the event type, e.g. ``Ticket.Opened``
``X-Ticketflow-Attempt``    1, 2, ...
``X-Ticketflow-Timestamp``  unix seconds when this attempt was signed
``X-Ticketflow-Signature``  ``t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>``

and the same request signed by the `Standard Webhooks <https://www.standardwebhooks.com/>`_
scheme, so receivers can use its ready-made verifiers (any language):

``webhook-id``         the delivery id
``webhook-timestamp``  unix seconds
``webhook-signature``  ``v1,<base64 HMAC-SHA256(secret, "<id>.<timestamp>.<body>")>``

The secret is the one shown when the webhook was subscribed (for a Standard Webhooks
verifier, as ``whsec_`` + base64 of it: :func:`standard_secret`, also shown then). A
receiver recomputes the HMAC over the raw body, compares in constant time and refuses
old timestamps (:func:`verify` does all three).

**Retries.** Anything but a 2xx (or no answer) is retried after about 10 s, doubling up to
1 h, each wait shortened by up to a half (jitter, fixed per delivery and attempt, so that
receivers coming back are not hit by every sender at once); after 12 attempts the delivery
is ``failed`` until an operator retries it.
Deliveries go out in log order, but a failing one does not hold back the others:
receivers order by ``event.position``. Time comes from the injected clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic_core import to_jsonable_python

from projections.outbox import ATTEMPTS, DELIVERIES, SUBSCRIPTIONS, drop_pending, get_subscription
from projections.readside import ReadSide
from projections.sql import Db, loads, ts
from ticketflow.application import TicketDesk
from ticketflow.commands.access import RecordDataAccess
from ticketflow.domain import Ticket
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller
from ticketflow.clock import Clock
from ticketflow.webhook_targets import TargetGuard

#: The scope that makes a subscription's payloads carry ticket text (see :class:`WebhookSender`).
TICKET_TEXT = "tickets:text"
#: (url, body, headers) -> HTTP status; raises OSError when no answer comes.
Post = Callable[[str, bytes, Mapping[str, str]], int]

FIRST_DELAY = timedelta(seconds=10)
MAX_DELAY = timedelta(hours=1)
MAX_ATTEMPTS = 12
TIMEOUT_SECONDS = 10.0
#: How long a claimed delivery is left to its sender before another may try it.
LEASE = timedelta(seconds=60)
SIGNATURE_TOLERANCE_SECONDS = 300


def backoff(attempt: int, delivery_id: str = "") -> timedelta:
    """The wait after the ``attempt``-th failure: 10 s, 20 s, 40 s... at most 1 h, less a jitter of up to
    half of it drawn from the delivery id and attempt (the same every time: deterministic, yet spread
    across deliveries)."""
    delay: timedelta = min(FIRST_DELAY * 2 ** (attempt - 1), MAX_DELAY)
    if not delivery_id:
        return delay
    draw = int.from_bytes(hashlib.sha256(f"{delivery_id}:{attempt}".encode()).digest()[:8], "big") / 2**64
    return delay * (1 - draw / 2)


def standard_secret(secret: str) -> str:
    """The webhook's secret as Standard Webhooks verifiers take it: ``whsec_`` + base64 of its bytes."""
    return "whsec_" + base64.b64encode(secret.encode()).decode()


def standard_signature(secret: str, delivery_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature`` of the Standard Webhooks scheme: ``v1,`` + base64 HMAC-SHA256 of
    ``<id>.<timestamp>.<body>`` under the secret's bytes."""
    mac = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: int = SIGNATURE_TOLERANCE_SECONDS) -> bool:
    """What a receiver does: check the signature of the raw body and that it is recent."""
    try:
        parts = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), f"t={timestamp},v1={parts.get('v1', '')}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is an answer, not a 2xx: retried, never followed with the signed body


_OPENER = urllib.request.build_opener(_NoRedirect)


def http_post(url: str, body: bytes, headers: Mapping[str, str]) -> int:
    """The default transport: the standard library, a short timeout, no redirects."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with _OPENER.open(request, timeout=TIMEOUT_SECONDS) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except urllib.error.URLError as exc:  # no answer: keep the cause ("ConnectionRefusedError: ...")
        raise exc.reason if isinstance(exc.reason, BaseException) else exc


class GuardedPost:
    """The network transport: checks where the target's name points now (every address public, or
    allowed), then posts. A refused target is an attempt that got no answer, recorded with the reason."""

    def __init__(self, targets: TargetGuard, post: Post = http_post) -> None:
        self.targets, self._post = targets, post

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        self.targets.check_delivery(url)
        return self._post(url, body, headers)


@dataclass(frozen=True)
class Outcome:
    status: int | None
    error: str | None
    duration_ms: float

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class WebhookSender:
    """Sends the due deliveries of the outbox view; call :meth:`run_once` from a loop."""

    def __init__(
        self, read_side: ReadSide, desk: TicketDesk, clock: Clock, post: Post | None = None, batch: int = 100
    ) -> None:
        """``post``: the transport (default: HTTP to public addresses only, :class:`GuardedPost`)."""
        self.store = read_side.stores["outbox"]
        self.desk, self.clock, self.batch = desk, clock, batch
        self.post: Post = post if post is not None else GuardedPost(desk.webhook_targets)

    def run_once(self) -> int:
        """Attempt every due delivery once, in log order; returns how many were attempted.

        A webhook that did not answer at all is skipped for the rest of this run, so one
        receiver that is down costs one timeout per run, not one per delivery.
        """
        now = self.clock.now()
        due = self.store.read(lambda db: _due(db, ts(now), self.batch))
        unreachable: set[str] = set()
        attempted = 0
        for row in due:
            if row["webhook_id"] in unreachable or not self.store.write(lambda db: _claim(db, row, now)):
                continue
            if self.desk.webhook_removed(UUID(row["webhook_id"])):  # the log, not the view: it may lag
                self.store.write(lambda db, hook=row["webhook_id"]: drop_pending(db, hook))
                continue
            outcome = self._send(row, now)
            self.store.write(lambda db: _record(db, row, outcome, now))
            attempted += 1
            if outcome.status is None:
                unreachable.add(row["webhook_id"])
        return attempted

    def _asked_for_surveys(self, webhook_id: str) -> bool:
        subscription = self.store.read(lambda db: get_subscription(db, webhook_id))
        return subscription is not None and "Ticket.SurveyIssued" in subscription["event_types"]

    def _send(self, row: dict[str, Any], now: datetime) -> Outcome:
        event = loads(row["payload"])
        if row["event_type"] == "Ticket.SurveyIssued" and self._asked_for_surveys(row["webhook_id"]):
            # The link token is computed here, never stored, and only for a subscription that names
            # Ticket.SurveyIssued (the mail system sending surveys), not every "*" subscriber.
            token = self.desk.survey_token(UUID(event["object_id"]), UUID(event["payload"]["survey_id"]))
            event["payload"]["survey_token"] = token
        if TICKET_TEXT in self.desk.webhook_scopes(UUID(row["webhook_id"])):
            self._with_ticket_text(row, event)
        document = {"delivery_id": row["delivery_id"], "webhook_id": row["webhook_id"], "event": event}
        body = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        timestamp = int(now.timestamp())
        secret = self.desk.webhook_secret(UUID(row["webhook_id"]))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "ticketflow-webhooks/1",
            "X-Ticketflow-Delivery": row["delivery_id"],
            "X-Ticketflow-Event": row["event_type"],
            "X-Ticketflow-Attempt": str(row["attempts"] + 1),
            "X-Ticketflow-Timestamp": str(timestamp),
            "X-Ticketflow-Signature": sign(secret, timestamp, body),
            "webhook-id": row["delivery_id"],
            "webhook-timestamp": str(timestamp),
            "webhook-signature": standard_signature(secret, row["delivery_id"], timestamp, body),
        }
        started = time.perf_counter()  # a duration, not business time
        try:
            status, error = self.post(row["url"], body, headers), None
        except Exception as exc:  # noqa: BLE001 - any failure to get an answer is recorded and retried
            status, error = None, f"{type(exc).__name__}: {exc}"[:500]
        duration = (time.perf_counter() - started) * 1000
        if status is not None and not 200 <= status < 300:
            error = f"HTTP {status}"
        return Outcome(status, error, round(duration, 3))


    def _with_ticket_text(self, row: dict[str, Any], event: dict[str, Any]) -> None:
        """A subscription granted ``tickets:text``: the ticket event's text fields as the log has them
        (the outbox stores them masked), and the read recorded in the access log before it is sent."""
        notifications = self.desk.recorder.select_notifications(int(row["position"]), 1)
        if not notifications or notifications[0].id != int(row["position"]):
            return
        source = self.desk.mapper.to_domain_event(notifications[0])
        if not isinstance(source, Ticket.Event):
            return
        payload = source.payload()
        fields = sorted(f for f in source.personal_fields if payload.get(f) not in (None, ""))
        if not fields:
            return
        self.desk.record_data_access(RecordDataAccess(
            customer_id=self.desk.ticket_requester(source.originator_id), fields=fields,
            purpose="webhook granted tickets:text", request_id=row["delivery_id"],
            resource=f"webhook {row['webhook_id']} delivery {row['delivery_id']}",
        ), Caller(f"webhook:{row['webhook_id']}", Role.SYSTEM, Channel.SYSTEM))
        event["payload"].update({f: to_jsonable_python(payload[f]) for f in fields})


def _due(db: Db, now: str | None, limit: int) -> list[dict[str, Any]]:
    """Pending deliveries of active webhooks whose time has come, oldest event first."""
    return db.all(
        f"SELECT d.*, w.url FROM {{p}}{DELIVERIES.name} d JOIN {{p}}{SUBSCRIPTIONS.name} w ON w.webhook_id = d.webhook_id "
        "WHERE d.state = 'pending' AND w.active = 1 AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= ?) "
        "ORDER BY d.position, d.delivery_id LIMIT ?",
        (now, limit),
    )


def _claim(db: Db, row: dict[str, Any], now: datetime) -> bool:
    """Take the delivery for one lease (compare-and-set): two senders never send it at once."""
    db.execute(
        f"UPDATE {{p}}{DELIVERIES.name} SET next_attempt_at = ? WHERE delivery_id = ? AND state = 'pending' "
        "AND attempts = ? AND (next_attempt_at IS NULL OR next_attempt_at <= ?)",
        (ts(now + LEASE), row["delivery_id"], row["attempts"], ts(now)),
    )
    return int(getattr(db.cursor, "sqlite_cursor", db.cursor).rowcount) == 1


def _record(db: Db, row: dict[str, Any], outcome: Outcome, now: datetime) -> None:
    """The attempt, and the delivery's new state, in one transaction."""
    current = db.one(
        f"SELECT attempts, round_start, state FROM {{p}}{DELIVERIES.name} WHERE delivery_id = ?", (row["delivery_id"],)
    )
    assert current is not None
    attempt = int(current["attempts"]) + 1
    db.execute(
        f"INSERT INTO {{p}}{ATTEMPTS.name} (delivery_id, attempt, webhook_id, at, status, error, duration_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id, attempt) DO NOTHING",
        (row["delivery_id"], attempt, row["webhook_id"], ts(now), outcome.status, outcome.error, outcome.duration_ms),
    )
    in_round = attempt - int(current["round_start"])
    if outcome.delivered:
        state, next_at, delivered_at = "delivered", None, ts(now)
    elif current["state"] == "dropped":  # its webhook was removed while this attempt was on its way
        state, next_at, delivered_at = "dropped", None, None
    elif in_round >= MAX_ATTEMPTS:
        state, next_at, delivered_at = "failed", None, None
    else:
        state, next_at, delivered_at = "pending", ts(now + backoff(in_round, row["delivery_id"])), None
    db.execute(
        f"UPDATE {{p}}{DELIVERIES.name} SET state = ?, attempts = ?, next_attempt_at = ?, last_status = ?, "
        "last_error = ?, delivered_at = ? WHERE delivery_id = ?",
        (state, attempt, next_at, outcome.status, outcome.error, delivered_at, row["delivery_id"]),
    )
