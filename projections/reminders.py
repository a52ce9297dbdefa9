"""Reminders and follow-ups (提醒, 回访): one row per reminder, and the queues that show them.

A reminder is *open* while scheduled or fired; it is *due* once its due time has passed.
Queues list open reminders by due time, so the due ones come first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from projections.erasure import erased_customer, overwrite
from projections.sql import Batch, Db, Table, ts, uid, uuid_text
from projections.view import Event, View
from ticketflow.domain import Customer, Reminder

REMINDERS = Table(
    "tf_reminders",
    columns=(
        "reminder_id TEXT NOT NULL",
        "kind TEXT",  # reminder | follow_up
        "ticket_id TEXT",
        "customer_id TEXT",
        "agent_id TEXT",
        "team_id TEXT",
        "due_at TEXT",
        "state TEXT",  # scheduled -> fired -> done | cancelled
        "note TEXT",  # personal data: masked by the API
        "outcome TEXT",  # personal data: masked by the API
        "cancel_reason TEXT",  # personal data
        "created_by TEXT",
        "created_at TEXT",
        "fired_at TEXT",
        "done_at TEXT",
        "cancelled_at TEXT",
        "version INTEGER",
        "position BIGINT",
    ),
    key=("reminder_id",),
    indexes=(("agent_id", "state", "due_at"), ("team_id", "state", "due_at"), ("ticket_id",), ("customer_id",)),
)

STATES = ("scheduled", "fired", "done", "cancelled")
OPEN_STATES = ("scheduled", "fired")


class RemindersView(View):
    name = "reminders"
    purges_personal_data = True
    tables = (REMINDERS,)
    event_types = (Reminder.Event, Customer.Erased)

    def apply(self, batch: Batch, event: Event, position: int) -> None:
        if (customer_id := erased_customer(event)) is not None:
            # A reminder on a ticket carries its requester's id, so this covers both kinds.
            overwrite(batch, REMINDERS, ("note", "outcome", "cancel_reason"), "customer_id = ?", (customer_id,))
            return
        if not isinstance(event, Reminder.Event):
            return
        reminder_id = uuid_text(event.originator_id)
        when = ts(event.occurred_at)
        if isinstance(event, Reminder.Scheduled):
            batch.put(REMINDERS, {
                "reminder_id": reminder_id, "kind": event.kind, "ticket_id": uid(event.ticket_id),
                "customer_id": uid(event.customer_id), "agent_id": event.agent_id, "team_id": uid(event.team_id),
                "due_at": ts(event.due_at), "state": "scheduled", "note": event.note, "outcome": None,
                "cancel_reason": None, "created_by": event.actor_id, "created_at": when, "fired_at": None,
                "done_at": None, "cancelled_at": None, "version": event.originator_version, "position": position,
            })
            return
        row = batch.get(REMINDERS, reminder_id)
        if row is None:  # pragma: no cover - a reminder's first event is always Scheduled
            return
        match event:
            case Reminder.Fired():
                row["state"], row["fired_at"] = "fired", when
            case Reminder.Done():
                row["state"], row["done_at"], row["outcome"] = "done", when, event.outcome
            case Reminder.Cancelled():
                row["state"], row["cancelled_at"], row["cancel_reason"] = "cancelled", when, event.reason
        row["version"], row["position"] = event.originator_version, position
        batch.touch(REMINDERS, row)


@dataclass(frozen=True)
class ReminderFilter:
    """What to list. ``teams``/``me`` scope the rows to the caller (None: every team)."""

    agent_id: str | None = None
    team_id: str | None = None
    ticket_id: str | None = None
    customer_id: str | None = None
    states: tuple[str, ...] = OPEN_STATES
    due_before: datetime | None = None  # only reminders due at or before this time
    own_queue_of: str | None = None  # an agent's queue: theirs, and their teams' reminders for no one
    teams: tuple[str, ...] | None = None  # the caller's teams; None: every team
    me: str | None = None  # the caller: their own and the ones they scheduled
    ticket_scope: bool = False  # the caller sees the filtered ticket: no further scoping


def _in(column: str, values: tuple[str, ...], params: list[Any]) -> str:
    if not values:
        return "1 = 0"
    params.extend(values)
    return f"{column} IN ({', '.join('?' * len(values))})"


def list_reminders(db: Db, where: ReminderFilter, limit: int = 100) -> list[dict[str, Any]]:
    """Reminders matching ``where``, earliest due first (so the due ones lead the queue)."""
    clauses: list[str] = []
    params: list[Any] = []
    for column in ("agent_id", "team_id", "ticket_id", "customer_id"):
        value = getattr(where, column)
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    clauses.append(_in("state", where.states, params))
    if where.due_before is not None:
        clauses.append("due_at <= ?")
        params.append(ts(where.due_before))
    if where.own_queue_of is not None:
        params.append(where.own_queue_of)
        clauses.append(f"(agent_id = ? OR (agent_id IS NULL AND {_in('team_id', where.teams or (), params)}))")
    if where.teams is not None and not where.ticket_scope:
        # A reminder on a ticket is also shown to whoever sees the ticket: the caller checks those.
        clauses.append(f"({_in('team_id', where.teams, params)} OR agent_id = ? OR created_by = ? OR ticket_id IS NOT NULL)")
        params.extend([where.me, where.me])
    params.append(limit)
    sql = f"SELECT * FROM {{p}}tf_reminders WHERE {' AND '.join(clauses)} ORDER BY due_at, reminder_id LIMIT ?"
    return db.all(sql, params)


def get_reminder(db: Db, reminder_id: str) -> dict[str, Any] | None:
    return db.one("SELECT * FROM {p}tf_reminders WHERE reminder_id = ?", (reminder_id,))
