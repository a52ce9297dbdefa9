"""The audit trail: one row per event, Zendesk-audit / RT-transaction style.

Each row says who (actor, role), when (business time and recorded time), how
(channel, correlation and command ids), what (event type and a readable
summary) and, where the event changes fields, each field's old and new value.
Old values come from ``tf_audit_fields``, the view's own memory of every
object's current field values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from projections.erasure import ERASED, PERSONAL_EVENT_TYPES, chunks
from projections.sql import Batch, Db, Table, dumps, loads, log_page, ts, uid
from projections.view import Event, Positioned, View
from ticketflow.describe import describe
from ticketflow.domain import Customer, Reminder, Team, Ticket

AUDIT = Table(
    "tf_audit",
    columns=(
        "position BIGINT NOT NULL",
        "object_id TEXT",
        "object_type TEXT",
        "version INTEGER",
        "event_type TEXT",
        "occurred_at TEXT",
        "recorded_at TEXT",
        "actor_id TEXT",
        "actor_role TEXT",
        "via TEXT",
        "correlation_id TEXT",
        "command_id TEXT",
        "imported INTEGER",
        "changes TEXT",
        "summary TEXT",
    ),
    key=("position",),
    indexes=(("object_id", "version"), ("actor_id", "position"), ("occurred_at",), ("correlation_id",)),
)

AUDIT_FIELDS = Table(
    "tf_audit_fields",
    columns=("object_id TEXT NOT NULL", "field TEXT NOT NULL", "value TEXT"),
    key=("object_id", "field"),
)

#: Whose personal data each ticket and reminder holds (the customer erasure purges).
AUDIT_SUBJECTS = Table(
    "tf_audit_subjects",
    columns=("object_id TEXT NOT NULL", "customer_id TEXT"),
    key=("object_id",),
    indexes=(("customer_id",),),
)

Old = Callable[[str], Any]

_TICKET_OPENED_FIELDS = ("subject", "description", "ticket_type", "category", "priority", "channel", "tags")
_PROFILE = ("name", "email", "phone", "im_handle", "company", "job_title", "preferred_language", "tier")
#: The audited fields that hold personal data (their old and new values are erased with the customer).
PERSONAL_FIELDS = frozenset(
    {"subject", "description", "satisfaction_comment", "name", "email", "phone", "im_handle", "company", "job_title"}
)


def field_values(event: Event, old: Old) -> dict[str, Any]:
    """The fields an event sets and their new values (JSON-able)."""
    match event:
        case Ticket.Opened():
            values = {name: getattr(event, name) for name in _TICKET_OPENED_FIELDS}
            return {**values, "requester_id": uid(event.requester_id), "team_id": uid(event.team_id), "status": "new"}
        case Ticket.MergedInto():
            return {"status": "closed", "merged_into": str(event.primary_id)}
        case Ticket.MarkedOpen() | Ticket.Reopened():
            return {"status": "open"}
        case Ticket.Pended():
            return {"status": "pending"}
        case Ticket.PutOnHold():
            return {"status": "on_hold"}
        case Ticket.Solved():
            return {"status": "solved"}
        case Ticket.Closed():
            return {"status": "closed"}
        case Ticket.Assigned():
            return {"assignee_id": event.assignee_id}
        case Ticket.Transferred():
            return {"team_id": str(event.to_team_id), "assignee_id": event.assignee_id}
        case Ticket.Unassigned():
            return {"assignee_id": None}
        case Ticket.RemovedFromTeam():
            return {"team_id": None}
        case Ticket.PriorityChanged():
            return {"priority": event.priority}
        case Ticket.Routed():
            routed: dict[str, Any] = {"team_id": str(event.team_id), "assignee_id": event.assignee_id}
            if event.priority is not None:
                routed["priority"] = event.priority
            if event.added_tags:
                routed["tags"] = sorted(set(old("tags") or []) | set(event.added_tags))
            return routed
        case Ticket.SlaApplied():
            return {"sla_policy": f"{event.policy_name} v{event.policy_version}"}
        case Ticket.Recategorised():
            return {"category": event.category, "ticket_type": event.ticket_type}
        case Ticket.TagsChanged():
            return {"tags": sorted((set(old("tags") or []) | set(event.added)) - set(event.removed))}
        case Ticket.CollaboratorAdded():
            return {"collaborators": sorted({*(old("collaborators") or []), event.agent_id})}
        case Ticket.CollaboratorRemoved():
            return {"collaborators": sorted(set(old("collaborators") or []) - {event.agent_id})}
        case Ticket.Linked():
            return {"links": [*(old("links") or []), {"ticket_id": str(event.linked_ticket_id), "kind": event.kind}]}
        case Ticket.Rated():
            return {"satisfaction": event.score, "satisfaction_comment": event.comment}
        case Customer.Registered():
            return {**{name: getattr(event, name) for name in _PROFILE}, "consents": sorted(event.consents)}
        case Customer.ProfileUpdated():
            changes = event.changes if isinstance(event.changes, dict) else {}
            return {name: value or None for name, value in changes.items()}
        case Customer.LanguageChanged():
            return {"preferred_language": event.preferred_language}
        case Customer.TierChanged():
            return {"tier": event.tier}
        case Customer.ConsentGiven():
            return {"consents": sorted({*(old("consents") or []), event.purpose})}
        case Customer.ConsentWithdrawn():
            return {"consents": sorted(set(old("consents") or []) - {event.purpose})}
        case Team.Formed():
            return {"name": event.name, "description": event.description}
        case Team.Renamed():
            return {"name": event.name}
        case Team.MemberAdded():
            return {f"members.{event.agent_id}": {"role": event.role, "skills": event.skills, "active": True}}
        case Team.MemberChanged():
            member = dict(old(f"members.{event.agent_id}") or {})
            return {f"members.{event.agent_id}": {**member, "role": event.role, "skills": event.skills}}
        case Team.MemberDeactivated() | Team.MemberReactivated():
            member = dict(old(f"members.{event.agent_id}") or {})
            return {f"members.{event.agent_id}": {**member, "active": isinstance(event, Team.MemberReactivated)}}
    return {}


def object_type(event: Event) -> str:
    return type(event).__qualname__.split(".")[0].lower()


class AuditView(View):
    name = "audit"
    purges_personal_data = True
    tables = (AUDIT, AUDIT_FIELDS, AUDIT_SUBJECTS)

    def prepare(self, batch: Batch, events: Sequence[Positioned]) -> None:
        """Load the current field values of every object the batch touches, decoded once."""
        touched = sorted({str(e.originator_id) for e, _ in events if not isinstance(e, Ticket.Created | Customer.Created | Team.Created)})
        values: dict[tuple[str, str], Any] = {}
        for start in range(0, len(touched), 500):
            chunk = touched[start : start + 500]
            for row in batch.db.all(
                f"SELECT * FROM {{p}}tf_audit_fields WHERE object_id IN ({', '.join('?' * len(chunk))})", chunk
            ):
                values[(row["object_id"], row["field"])] = loads(row["value"])
        batch.__dict__["audit_values"] = values

    def apply(self, batch: Batch, event: Event, position: int) -> None:
        object_id = str(event.originator_id)
        values: dict[tuple[str, str], Any] = batch.__dict__.setdefault("audit_values", {})

        def old(field: str) -> Any:
            return values.get((object_id, field))

        match event:
            case Ticket.Opened():
                batch.put(AUDIT_SUBJECTS, {"object_id": object_id, "customer_id": uid(event.requester_id)})
            case Reminder.Scheduled() if event.customer_id is not None:
                batch.put(AUDIT_SUBJECTS, {"object_id": object_id, "customer_id": uid(event.customer_id)})
            case Customer.Erased():
                _erase_objects(batch, object_id, values)

        changes = []
        dirty: set[tuple[str, str]] = batch.__dict__.setdefault("audit_dirty", set())
        for field, new in field_values(event, old).items():
            key = (object_id, field)
            before = values.get(key)
            if before != new:
                changes.append({"field": field, "old": before, "new": new})
                values[key] = new
                dirty.add(key)  # written once per batch, with its last value (see _write_pending)
        rows: list[tuple[Any, ...]] = batch.__dict__.setdefault("audit_rows", [])
        rows.append((  # in AUDIT's column order; one row per event, only ever inserted
            position,
            object_id,
            object_type(event),
            event.originator_version,
            type(event).__qualname__,
            ts(event.occurred_at),
            ts(event.timestamp),
            event.actor_id,
            event.actor_role,
            event.via,
            event.correlation_id,
            event.command_id,
            int(event.imported),
            dumps(changes) if changes else "[]",
            describe(event),
        ))

    def finish(self, batch: Batch) -> None:
        _write_pending(batch)


_ROW_COLUMNS = (
    "position", "object_id", "object_type", "version", "event_type", "occurred_at", "recorded_at", "actor_id",
    "actor_role", "via", "correlation_id", "command_id", "imported", "changes", "summary",
)
assert AUDIT.column_names == _ROW_COLUMNS, "AuditView.apply builds rows in this order"


def _write_pending(batch: Batch) -> None:
    """Write the batch's audit rows, and each field value it changed once, as it stands now."""
    db = batch.db
    db.executemany(AUDIT.upsert_sql, batch.__dict__.pop("audit_rows", []))
    dirty = batch.__dict__.pop("audit_dirty", set())
    values = batch.__dict__.get("audit_values", {})
    db.executemany(AUDIT_FIELDS.upsert_sql, [(*key, dumps(values[key])) for key in sorted(dirty)])


def _erased(value: Any) -> Any:
    return value if value in (None, "") else ERASED


def _erase_changes(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**c, "old": _erased(c["old"]), "new": _erased(c["new"])} if c["field"] in PERSONAL_FIELDS else c
        for c in changes
    ]


def _erase_objects(batch: Batch, customer_id: str, values: dict[tuple[str, str], Any]) -> None:
    """Erase the personal values in the audit rows of the customer and of their tickets and reminders."""
    batch.flush()  # the subjects and rows of this batch's earlier events are queried below
    _write_pending(batch)
    db = batch.db
    objects = {customer_id}
    objects.update(r["object_id"] for r in db.all(
        "SELECT object_id FROM {p}tf_audit_subjects WHERE customer_id = ?", (customer_id,)))
    # Tickets audited before tf_audit_subjects existed: their requester is a remembered field.
    objects.update(r["object_id"] for r in db.all(
        "SELECT object_id FROM {p}tf_audit_fields WHERE field = 'requester_id' AND value = ?", (dumps(customer_id),)))
    personal = sorted(PERSONAL_FIELDS)
    for chunk in chunks(objects):
        marks = ", ".join("?" * len(chunk))
        rows = db.all(f"SELECT position, event_type, changes, summary FROM {{p}}tf_audit WHERE object_id IN ({marks})", chunk)
        updates = []
        for row in rows:
            changes = loads(row["changes"]) or []
            erased = _erase_changes(changes)
            summary = ERASED if row["event_type"] in PERSONAL_EVENT_TYPES else row["summary"]
            if erased != changes or summary != row["summary"]:
                updates.append((dumps(erased), summary, row["position"]))
        db.executemany("UPDATE {p}tf_audit SET changes = ?, summary = ? WHERE position = ?", sorted(updates, key=lambda u: u[2]))
        db.execute(
            f"UPDATE {{p}}tf_audit_fields SET value = ? WHERE object_id IN ({marks})"
            f" AND field IN ({', '.join('?' * len(personal))}) AND value IS NOT NULL AND value <> ? AND value <> ?",
            [dumps(ERASED), *chunk, *personal, dumps(None), dumps("")],
        )
    for key, value in list(values.items()):
        if key[0] in objects and key[1] in PERSONAL_FIELDS:
            values[key] = _erased(value)
    batch.evict(AUDIT, AUDIT_FIELDS)


def audit_trail(
    db: Db,
    *,
    object_id: str | None = None,
    actor_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_position: int = 0,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Audit rows in log order, filtered by object, actor and business-time range."""
    conditions = {"object_id =": object_id, "actor_id =": actor_id, "occurred_at >=": ts(since), "occurred_at <": ts(until)}
    rows = log_page(db, "tf_audit", after_position, limit, conditions)
    for row in rows:
        row["changes"] = loads(row["changes"])
    return rows
