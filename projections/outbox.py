"""The webhook outbox: which event goes to which subscriber, kept from the event log.

The view turns each event into one delivery per active subscription that wants its
type. A delivery is enqueued in the same transaction as the view's tracking
position, so an event is enqueued exactly once however the worker crashes; the
sender (:mod:`projections.webhook_sender`) then delivers it at least once.

Who owns what, so that a rebuild and the sender never corrupt each other:

* ``tf_webhook_subscriptions`` is a plain view table: a rebuild wipes and replays it.
* ``tf_webhook_deliveries`` and ``tf_webhook_attempts`` are the outbox itself and
  survive a rebuild (:meth:`OutboxView.clear` leaves them). A delivery's id is a
  uuid5 of the webhook id and the event's log position, and the view only ever
  *inserts* it (``ON CONFLICT DO NOTHING``): replaying the log finds every delivery
  already there and leaves its state (delivered, attempts, next try) to the sender,
  the only writer of those columns. So a rebuild re-sends nothing.

**Mail.** The same outbox carries agents' public replies on tickets that arrived by email: an
outbound ``Ticket.Replied`` on such a ticket is enqueued as a delivery of the pseudo-webhook
``email`` (:data:`MAIL_CHANNEL`) whose payload names only the ticket and the reply (the text and the
address are read from the desk when sending, never copied here); :mod:`projections.mail_sender` sends
them through SMTP with the same attempts, backoff and attempt log.

**Removal.** ``Webhook.Removed`` deletes the subscription's row and marks its pending deliveries
``dropped`` (delivered and failed ones stay, for the record); the sender also asks the log before
each POST, so nothing goes to a removed subscription once its removal is acknowledged, even while
this view lags.

Events are enqueued only after the subscription that wants them (a new subscriber
gets no history), never for imported history, and only while the subscription is
active: events during a pause are not notified later. Token and data-access events
are never notified, and personal fields are masked ("***"): webhooks carry no
personal data. A ``Ticket.SurveyIssued`` delivery gets its survey link token at send
time (the token is never stored).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5
from weakref import WeakKeyDictionary

from pydantic_core import to_jsonable_python

from projections.sql import Batch, Db, Table, dumps, loads, preload, ts, uuid_text
from projections.view import Event, Positioned, View
from ticketflow.access import MASK
from ticketflow.domain import (
    AGGREGATES, ApiToken, DataAccess, Mailbox, Ticket, TicketflowAggregate, Webhook, event_classes,
)

DELIVERY_NAMESPACE = uuid5(NAMESPACE_URL, "https://ticketflow.dev/webhook-deliveries")
#: Never notified: token events are security internals, data-access events say who read whose data.
SILENT_AGGREGATES = (ApiToken, DataAccess, Webhook, Mailbox)  # security internals; a hook URL can be a bearer secret


def _recorded(aggregate: type[TicketflowAggregate]) -> set[str]:
    """The event types an aggregate records: not the bases (``Ticket.Event``, ``Ticket.Interaction``),
    nor the library's default ``Created`` when the aggregate names its own (``Ticket.Opened``)."""
    classes = list(event_classes(aggregate))
    named_creation = any(c.__name__ != "Created" and issubclass(c, TicketflowAggregate.Created) for c in classes)
    return {
        c.__qualname__ for c in classes
        if not any(o is not c and issubclass(o, c) for o in classes) and not (named_creation and c.__name__ == "Created")
    }


#: Every event type a webhook may subscribe to ("*" means all of them).
EVENT_TYPES: frozenset[str] = frozenset().union(*(_recorded(a) for a in AGGREGATES if a not in SILENT_AGGREGATES))
# Classes, not ``isinstance(e, Webhook.Event)``: every aggregate shares the one base Event class.
_WEBHOOK_EVENTS = frozenset(event_classes(Webhook))
SECRET_FIELDS = frozenset({"secret_hash", "url"})

SUBSCRIPTIONS = Table(
    "tf_webhook_subscriptions",
    columns=(
        "webhook_id TEXT NOT NULL",
        "name TEXT",
        "url TEXT",
        "event_types TEXT",  # JSON list
        "active INTEGER",
        "subscribed_at TEXT",
        "updated_at TEXT",
        "version INTEGER",
    ),
    key=("webhook_id",),
)
DELIVERIES = Table(
    "tf_webhook_deliveries",
    columns=(
        "delivery_id TEXT NOT NULL",
        "webhook_id TEXT NOT NULL",
        "position BIGINT NOT NULL",
        "event_type TEXT NOT NULL",
        "payload TEXT NOT NULL",  # the event as /api/v1/events exports it, masked
        "state TEXT NOT NULL",  # pending | delivered | failed | dropped (its webhook was removed)
        "attempts INTEGER NOT NULL",
        "round_start INTEGER NOT NULL",  # attempts made before the last manual retry
        "next_attempt_at TEXT",  # NULL: due now
        "last_status INTEGER",
        "last_error TEXT",
        "enqueued_at TEXT",
        "delivered_at TEXT",
    ),
    key=("delivery_id",),
    indexes=(("state", "position"), ("webhook_id", "position")),
)
ATTEMPTS = Table(
    "tf_webhook_attempts",
    columns=(
        "delivery_id TEXT NOT NULL",
        "attempt INTEGER NOT NULL",
        "webhook_id TEXT",
        "at TEXT",
        "status INTEGER",  # the HTTP status, NULL when no answer came
        "error TEXT",
        "duration_ms DOUBLE PRECISION",
    ),
    key=("delivery_id", "attempt"),
)
#: Tickets that arrived by email: their agents' public replies go out as mail.
MAIL_TICKETS = Table("tf_mail_tickets", columns=("ticket_id TEXT NOT NULL", "opened_at TEXT"), key=("ticket_id",))
#: The ``webhook_id`` of mail deliveries (no subscription has it: the webhook sender never sees them).
MAIL_CHANNEL = "email"
_ENQUEUE_SQL = (
    f"INSERT INTO {{p}}{DELIVERIES.name} ({', '.join(DELIVERIES.column_names)}) "
    f"VALUES ({', '.join('?' * len(DELIVERIES.column_names))}) ON CONFLICT (delivery_id) DO NOTHING"
)


def delivery_id(webhook_id: UUID | str, position: int) -> UUID:
    """The same event to the same webhook always has the same id: receivers drop duplicates by it."""
    return uuid5(DELIVERY_NAMESPACE, f"{webhook_id}:{position}")


def event_type(event: Event) -> str:
    return type(event).__qualname__


def unknown_event_types(types: list[str]) -> str | None:
    """Why some requested types cannot be subscribed to (None when all are fine), naming the
    closest real type of each, for the API's 422 and the CLI's one-line error."""
    unknown = sorted({t for t in types if t != "*" and t not in EVENT_TYPES})
    if not unknown:
        return None
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, EVENT_TYPES, n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return f"unknown event type {', '.join(hints)}: use types such as 'Ticket.Opened' or '*'"


def event_item(event: Event, position: int) -> dict[str, Any]:
    """An event in the shape of the /api/v1/events export, personal fields masked."""
    payload = {
        k: (MASK if k in event.personal_fields and v not in (None, "") else v)
        for k, v in event.payload().items()
        if k not in SECRET_FIELDS
    }
    item = {
        "position": position, "object_id": event.originator_id, "object_type": event_type(event).split(".")[0].lower(),
        "version": event.originator_version, "event_type": event_type(event), "occurred_at": ts(event.occurred_at),
        "recorded_at": ts(event.timestamp), "actor_id": event.actor_id, "actor_role": event.actor_role, "via": event.via,
        "correlation_id": event.correlation_id, "imported": event.imported, "payload": payload,
    }
    return dict(to_jsonable_python(item))


@dataclass
class _Pending:
    """What one batch knows beyond its rows: every subscription, and the deliveries to insert."""

    subscriptions: dict[str, dict[str, Any]]
    deliveries: list[list[Any]] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)


class OutboxView(View):
    name = "outbox"
    tables = (SUBSCRIPTIONS, DELIVERIES, ATTEMPTS, MAIL_TICKETS)

    def __init__(self) -> None:
        # Per batch, not per view: one view instance serves concurrent batches (a worker and a rebuild).
        self._pending: WeakKeyDictionary[Batch, _Pending] = WeakKeyDictionary()

    def clear(self, db: Db) -> None:
        """Only the subscriptions are rebuilt; the outbox keeps its deliveries (see the module docstring)."""
        db.execute(f"DELETE FROM {{p}}{SUBSCRIPTIONS.name}")
        db.execute(f"DELETE FROM {{p}}{MAIL_TICKETS.name}")

    def prepare(self, batch: Batch, events: Sequence[Positioned]) -> None:
        rows = batch.db.all(f"SELECT * FROM {{p}}{SUBSCRIPTIONS.name}")
        self._pending[batch] = _Pending({r["webhook_id"]: r for r in rows})
        # Whether the tickets of the batch's outbound replies came by email (see _mail): one query, not one a reply.
        replied = {uuid_text(e.originator_id) for e, _ in events if isinstance(e, Ticket.Replied) and e.direction == "outbound"}
        preload(batch, MAIL_TICKETS, "ticket_id", replied)

    def apply(self, batch: Batch, event: Event, position: int) -> None:
        pending = self._pending[batch]
        kind = event_type(event)
        if not event.imported and kind in EVENT_TYPES:
            item = None
            for sub in pending.subscriptions.values():
                if sub["active"] and ("*" in (types := loads(sub["event_types"])) or kind in types):
                    item = item or dumps(event_item(event, position))
                    pending.deliveries.append([
                        str(delivery_id(sub["webhook_id"], position)), sub["webhook_id"], position, kind, item,
                        "pending", 0, 0, None, None, None, ts(event.occurred_at), None,
                    ])
        if type(event) in _WEBHOOK_EVENTS:
            self._subscription(batch, pending, event)
        elif not event.imported:
            self._mail(batch, pending, event, position)

    @staticmethod
    def _mail(batch: Batch, pending: _Pending, event: Event, position: int) -> None:
        ticket = uuid_text(event.originator_id)
        if isinstance(event, Ticket.Opened) and event.channel == "email":
            batch.put(MAIL_TICKETS, {"ticket_id": ticket, "opened_at": ts(event.occurred_at)})
        elif (
            isinstance(event, Ticket.Replied) and event.direction == "outbound" and batch.get(MAIL_TICKETS, ticket)
        ):
            payload = dumps({"ticket_id": ticket, "interaction_id": str(event.interaction_id)})
            pending.deliveries.append([
                str(delivery_id(MAIL_CHANNEL, position)), MAIL_CHANNEL, position, "Ticket.Replied", payload,
                "pending", 0, 0, None, None, None, ts(event.occurred_at), None,
            ])

    def _subscription(self, batch: Batch, pending: _Pending, event: Event) -> None:
        key, when = uuid_text(event.originator_id), ts(event.occurred_at)
        if isinstance(event, Webhook.Removed):
            pending.subscriptions.pop(key, None)  # later events of this batch are not enqueued for it
            pending.removed.add(key)
            return
        if isinstance(event, Webhook.Subscribed):
            row: dict[str, Any] = {
                "webhook_id": key, "name": event.name, "url": event.url, "active": 1, "subscribed_at": when,
                "event_types": dumps(sorted(set(event.event_types))),
            }
        elif (found := pending.subscriptions.get(key)) is not None:
            row = found
            match event:
                case Webhook.Changed():
                    row.update(url=event.url, event_types=dumps(sorted(set(event.event_types))))
                case Webhook.Paused():
                    row["active"] = 0
                case Webhook.Resumed():
                    row["active"] = 1
        else:  # pragma: no cover - a change without its subscription
            return
        row.update(updated_at=when, version=event.originator_version)
        pending.subscriptions[key] = batch.put(SUBSCRIPTIONS, row)

    def finish(self, batch: Batch) -> None:
        pending = self._pending.pop(batch, None)
        if pending is not None:
            batch.db.executemany(_ENQUEUE_SQL, pending.deliveries)
            for webhook_id in sorted(pending.removed):
                batch.db.execute(f"DELETE FROM {{p}}{SUBSCRIPTIONS.name} WHERE webhook_id = ?", (webhook_id,))
                drop_pending(batch.db, webhook_id)


# ---------------------------------------------------------------- queries


def _subscription(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "event_types": loads(row["event_types"]), "active": bool(row["active"])}


def list_subscriptions(db: Db) -> list[dict[str, Any]]:
    rows = db.all(f"SELECT * FROM {{p}}{SUBSCRIPTIONS.name} ORDER BY name, webhook_id")
    return [_subscription(r) for r in rows]


def get_subscription(db: Db, webhook_id: str) -> dict[str, Any] | None:
    row = db.one(f"SELECT * FROM {{p}}{SUBSCRIPTIONS.name} WHERE webhook_id = ?", (webhook_id,))
    return None if row is None else _subscription(row)


def list_deliveries(
    db: Db, webhook_id: str, *, state: str | None = None, after: int = 0, limit: int = 100, newest_first: bool = False
) -> list[dict[str, Any]]:
    """A webhook's deliveries in log order, or the most recent first (without payloads: operators
    want states and errors), each with the time of its last attempt."""
    clauses, params = ["webhook_id = ?", "position > ?"], [webhook_id, after]
    if state is not None:
        clauses.append("state = ?")
        params.append(state)
    columns = ", ".join(f"d.{c}" for c in DELIVERIES.column_names if c != "payload")
    last_attempt = f"(SELECT MAX(a.at) FROM {{p}}{ATTEMPTS.name} a WHERE a.delivery_id = d.delivery_id) AS last_attempt_at"
    order = "position DESC" if newest_first else "position"
    return db.all(
        f"SELECT {columns}, {last_attempt} FROM {{p}}{DELIVERIES.name} d WHERE {' AND '.join(clauses)} "
        f"ORDER BY {order} LIMIT ?",
        [*params, limit],
    )


def delivery_health(db: Db) -> dict[str, dict[str, Any]]:
    """Per webhook: deliveries that failed (given up until an operator retries), that are retrying
    (pending after a failed attempt) and waiting (not tried yet), and when one last got through.
    Webhooks without deliveries are absent."""
    health: dict[str, dict[str, Any]] = {}

    def entry(webhook_id: str) -> dict[str, Any]:
        return health.setdefault(webhook_id, {"failed": 0, "retrying": 0, "waiting": 0, "last_delivered_at": None})

    rows = db.all(
        f"SELECT webhook_id, state, attempts > 0 AS tried, COUNT(*) AS n FROM {{p}}{DELIVERIES.name} "
        "WHERE state IN ('pending', 'failed') GROUP BY webhook_id, state, attempts > 0"
    )
    for row in rows:
        kind = "failed" if row["state"] == "failed" else ("retrying" if row["tried"] else "waiting")
        entry(row["webhook_id"])[kind] += int(row["n"])
    for sub in db.all(f"SELECT webhook_id FROM {{p}}{SUBSCRIPTIONS.name}"):
        last = db.one(
            f"SELECT delivered_at FROM {{p}}{DELIVERIES.name} WHERE webhook_id = ? AND state = 'delivered' "
            "ORDER BY position DESC LIMIT 1", (sub["webhook_id"],),
        )
        if last is not None:
            entry(sub["webhook_id"])["last_delivered_at"] = last["delivered_at"]
    return health


def get_delivery(db: Db, webhook_id: str, delivery: str) -> dict[str, Any] | None:
    """One delivery with its payload and every attempt made."""
    row = db.one(f"SELECT * FROM {{p}}{DELIVERIES.name} WHERE delivery_id = ? AND webhook_id = ?", (delivery, webhook_id))
    if row is None:
        return None
    attempts = db.all(f"SELECT * FROM {{p}}{ATTEMPTS.name} WHERE delivery_id = ? ORDER BY attempt", (delivery,))
    return {**row, "payload": loads(row["payload"]), "attempt_log": attempts}


def drop_pending(db: Db, webhook_id: str) -> None:
    """Mark a removed webhook's pending deliveries ``dropped``: they are never sent."""
    db.execute(
        f"UPDATE {{p}}{DELIVERIES.name} SET state = 'dropped', next_attempt_at = NULL "
        "WHERE webhook_id = ? AND state = 'pending'",
        (webhook_id,),
    )


def requeue(db: Db, webhook_id: str, delivery: str) -> str | None:
    """Make a failed (or waiting) delivery due now, with a fresh round of attempts.

    Returns the state it had (None when there is no such delivery); a delivered or dropped one is left alone.
    """
    row = db.one(
        f"SELECT state, attempts FROM {{p}}{DELIVERIES.name} WHERE delivery_id = ? AND webhook_id = ?",
        (delivery, webhook_id),
    )
    if row is None or row["state"] in ("delivered", "dropped"):
        return None if row is None else str(row["state"])
    db.execute(
        f"UPDATE {{p}}{DELIVERIES.name} SET state = 'pending', next_attempt_at = NULL, round_start = attempts "
        "WHERE delivery_id = ?",
        (delivery,),
    )
    return str(row["state"])
