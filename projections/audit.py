"""The audit trail: one row per event, Zendesk-audit / RT-transaction style.

Each row says who (actor, role), when (business time and recorded time), how
(channel, correlation and command ids), what (event type and a readable
summary) and, where the event changes fields, each field's old and new value.
Old values come from ``tf_audit_fields``, the view's own memory of every
object's current field values (one row per object: its fields as a JSON object).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache
from typing import Any

from projections.erasure import ERASED, PERSONAL_EVENT_TYPES, chunks
from projections.sql import Batch, Db, Dialect, Table, dumps, loads, log_page, ts, uid, uuid_text
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
    indexes=(("object_id", "version"), ("actor_id", "position"), ("occurred_at",)),
    # No query looks audit rows up by correlation id: its index cost every event a write.
    retired_indexes=(("correlation_id",),),
)

AUDIT_FIELDS = Table(
    "tf_audit_fields",
    columns=("object_id TEXT NOT NULL", "fields TEXT NOT NULL"),
    key=("object_id",),
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


def _status(status: str) -> Callable[[Any, Old], dict[str, Any]]:
    return lambda event, old: {"status": status}


def _routed(event: Any, old: Old) -> dict[str, Any]:
    routed: dict[str, Any] = {"team_id": str(event.team_id), "assignee_id": event.assignee_id}
    if event.priority is not None:
        routed["priority"] = event.priority
    if event.added_tags:
        routed["tags"] = sorted(set(old("tags") or []) | set(event.added_tags))
    return routed


def _profile_updated(event: Any, old: Old) -> dict[str, Any]:
    changes = event.changes if isinstance(event.changes, dict) else {}
    return {name: value or None for name, value in changes.items()}


def _member_changed(event: Any, old: Old) -> dict[str, Any]:
    member = dict(old(f"members.{event.agent_id}") or {})
    return {f"members.{event.agent_id}": {**member, "role": event.role, "skills": event.skills}}


def _member_active(event: Any, old: Old) -> dict[str, Any]:
    member = dict(old(f"members.{event.agent_id}") or {})
    return {f"members.{event.agent_id}": {**member, "active": isinstance(event, Team.MemberReactivated)}}


FieldValues = Callable[[Any, Old], dict[str, Any]]

#: What each event class sets (looked up by class, see :func:`_field_values_of`); other events set nothing.
_FIELD_VALUES: dict[type, FieldValues] = {
    Ticket.Opened: lambda e, old: {
        **{name: getattr(e, name) for name in _TICKET_OPENED_FIELDS},
        "requester_id": uid(e.requester_id), "team_id": uid(e.team_id), "status": "new",
    },
    Ticket.MergedInto: lambda e, old: {"status": "closed", "merged_into": str(e.primary_id)},
    Ticket.MarkedOpen: _status("open"),
    Ticket.Reopened: _status("open"),
    Ticket.Pended: _status("pending"),
    Ticket.PutOnHold: _status("on_hold"),
    Ticket.Solved: _status("solved"),
    Ticket.Closed: _status("closed"),
    Ticket.Assigned: lambda e, old: {"assignee_id": e.assignee_id},
    Ticket.Transferred: lambda e, old: {"team_id": str(e.to_team_id), "assignee_id": e.assignee_id},
    Ticket.Unassigned: lambda e, old: {"assignee_id": None},
    Ticket.RemovedFromTeam: lambda e, old: {"team_id": None},
    Ticket.PriorityChanged: lambda e, old: {"priority": e.priority},
    Ticket.Routed: _routed,
    Ticket.SlaApplied: lambda e, old: {"sla_policy": f"{e.policy_name} v{e.policy_version}"},
    Ticket.Recategorised: lambda e, old: {"category": e.category, "ticket_type": e.ticket_type},
    Ticket.TagsChanged: lambda e, old: {"tags": sorted((set(old("tags") or []) | set(e.added)) - set(e.removed))},
    Ticket.CollaboratorAdded: lambda e, old: {"collaborators": sorted({*(old("collaborators") or []), e.agent_id})},
    Ticket.CollaboratorRemoved: lambda e, old: {"collaborators": sorted(set(old("collaborators") or []) - {e.agent_id})},
    Ticket.Linked: lambda e, old: {
        "links": [*(old("links") or []), {"ticket_id": str(e.linked_ticket_id), "kind": e.kind}]
    },
    Ticket.Rated: lambda e, old: {"satisfaction": e.score, "satisfaction_comment": e.comment},
    Customer.Registered: lambda e, old: {
        **{name: getattr(e, name) for name in _PROFILE}, "consents": sorted(e.consents)
    },
    Customer.ProfileUpdated: _profile_updated,
    Customer.LanguageChanged: lambda e, old: {"preferred_language": e.preferred_language},
    Customer.TierChanged: lambda e, old: {"tier": e.tier},
    Customer.ConsentGiven: lambda e, old: {"consents": sorted({*(old("consents") or []), e.purpose})},
    Customer.ConsentWithdrawn: lambda e, old: {"consents": sorted(set(old("consents") or []) - {e.purpose})},
    Team.Formed: lambda e, old: {"name": e.name, "description": e.description},
    Team.Renamed: lambda e, old: {"name": e.name},
    Team.MemberAdded: lambda e, old: {
        f"members.{e.agent_id}": {"role": e.role, "skills": e.skills, "active": True}
    },
    Team.MemberChanged: _member_changed,
    Team.MemberDeactivated: _member_active,
    Team.MemberReactivated: _member_active,
}


@cache
def _field_values_of(event_class: type) -> FieldValues | None:
    """The entry of ``event_class`` or of the nearest class it derives from (the decoded classes
    derive from the declared ones), None when the event sets no field."""
    return next((_FIELD_VALUES[c] for c in event_class.__mro__ if c in _FIELD_VALUES), None)


def field_values(event: Event, old: Old) -> dict[str, Any]:
    """The fields an event sets and their new values (JSON-able)."""
    values_of = _field_values_of(type(event))
    return {} if values_of is None else values_of(event, old)


@cache
def _names(event_class: type) -> tuple[str, str]:
    """The object type and event type of an event class (``ticket``, ``Ticket.Opened``)."""
    qualname = event_class.__qualname__
    return qualname.split(".")[0].lower(), qualname


def object_type(event: Event) -> str:
    return _names(type(event))[0]


_CREATED_OBJECT = (Ticket.Created, Customer.Created, Team.Created)


class AuditView(View):
    name = "audit"
    purges_personal_data = True
    tables = (AUDIT, AUDIT_FIELDS, AUDIT_SUBJECTS)
    #: 2: ``tf_audit_fields`` holds one row per object (its fields as a JSON object), not one per field;
    #: on SQLite, ``tf_audit.position`` is the rowid (one B-tree, not a table and its key index) and the
    #: key-value tables are WITHOUT ROWID (`ticketflow rebuild audit`). (The ``correlation_id`` index
    #: that no query read is dropped when the store opens: retired_indexes, no rebuild.)
    version = 2

    def ddl(self, dialect: Dialect) -> list[str]:
        statements = super().ddl(dialect)
        if dialect is not Dialect.SQLITE:
            return statements
        # SQLite makes an INTEGER (not BIGINT, though both are 64-bit there) primary key the rowid.
        rowid = {AUDIT.ddl()[0]: AUDIT.ddl()[0].replace("position BIGINT NOT NULL", "position INTEGER NOT NULL")}
        rowid.update({t.ddl()[0]: t.ddl()[0] + " WITHOUT ROWID" for t in (AUDIT_FIELDS, AUDIT_SUBJECTS)})
        return [rowid.get(statement, statement) for statement in statements]

    def prepare(self, batch: Batch, events: Sequence[Positioned]) -> None:
        """Load the current field values of every object the batch touches, decoded once."""
        # Only objects whose events set fields read their old values (a note or an SLA event does not).
        wanted = {uuid_text(e.originator_id) for e, _ in events if _reads_old_fields(type(e))}
        touched = sorted(wanted)
        values: dict[str, dict[str, Any]] = {}
        for start in range(0, len(touched), 500):
            chunk = touched[start : start + 500]
            for row in batch.db.all(
                f"SELECT * FROM {{p}}tf_audit_fields WHERE object_id IN ({', '.join('?' * len(chunk))})", chunk
            ):
                values[row["object_id"]] = loads(row["fields"])
        batch.__dict__["audit_values"] = values

    def apply(self, batch: Batch, event: Event, position: int) -> None:
        state = batch.__dict__
        object_id = uuid_text(event.originator_id)
        values: dict[str, dict[str, Any]] = state.setdefault("audit_values", {})
        event_class = type(event)

        if _subject_or_erasure(event_class):
            match event:
                case Ticket.Opened():
                    batch.put(AUDIT_SUBJECTS, {"object_id": object_id, "customer_id": uid(event.requester_id)})
                case Reminder.Scheduled() if event.customer_id is not None:
                    batch.put(AUDIT_SUBJECTS, {"object_id": object_id, "customer_id": uid(event.customer_id)})
                case Customer.Erased():
                    _erase_objects(batch, object_id, values)

        changes = []
        values_of = _field_values_of(event_class)
        if values_of is not None:
            fields = values.get(object_id)
            if fields is None:
                fields = values[object_id] = {}
            changed = False
            for field, new in values_of(event, fields.get).items():
                before = fields.get(field)
                if before != new:
                    changes.append({"field": field, "old": before, "new": new})
                    fields[field] = new
                    changed = True
            if changed:  # written once per batch, with its last fields (see _write_pending)
                dirty: set[str] = state.setdefault("audit_dirty", set())
                dirty.add(object_id)
        kind, event_type = _names(event_class)
        rows: list[tuple[Any, ...]] = state.setdefault("audit_rows", [])
        occurred = ts(event.occurred_at)
        # Recorded as it happened (every event but imported history's): the same text, made once.
        recorded = occurred if event.timestamp == event.occurred_at else ts(event.timestamp)
        rows.append((  # in AUDIT's column order; one row per event, only ever inserted
            position,
            object_id,
            kind,
            event.originator_version,
            event_type,
            occurred,
            recorded,
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


@cache
def _reads_old_fields(event_class: type) -> bool:
    """Whether events of ``event_class`` set fields of an object that existed before them."""
    return _field_values_of(event_class) is not None and not issubclass(event_class, _CREATED_OBJECT)


@cache
def _subject_or_erasure(event_class: type) -> bool:
    """Whether events of ``event_class`` record whose data an object holds, or erase a customer."""
    return issubclass(event_class, (Ticket.Opened, Reminder.Scheduled, Customer.Erased))


_ROW_COLUMNS = (
    "position", "object_id", "object_type", "version", "event_type", "occurred_at", "recorded_at", "actor_id",
    "actor_role", "via", "correlation_id", "command_id", "imported", "changes", "summary",
)
assert AUDIT.column_names == _ROW_COLUMNS, "AuditView.apply builds rows in this order"


def _write_pending(batch: Batch) -> None:
    """Write the batch's audit rows, and the fields of each object it changed once, as they stand now."""
    db = batch.db
    db.executemany(AUDIT.upsert_sql, batch.__dict__.pop("audit_rows", []))
    dirty = batch.__dict__.pop("audit_dirty", set())
    values = batch.__dict__.get("audit_values", {})
    db.executemany(AUDIT_FIELDS.upsert_sql, [(object_id, dumps(values[object_id])) for object_id in sorted(dirty)])


def _erased(value: Any) -> Any:
    return value if value in (None, "") else ERASED


def _erase_changes(changes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**c, "old": _erased(c["old"]), "new": _erased(c["new"])} if c["field"] in PERSONAL_FIELDS else c
        for c in changes
    ]


def _erase_objects(batch: Batch, customer_id: str, values: dict[str, dict[str, Any]]) -> None:
    """Erase the personal values in the audit rows and remembered fields of the customer and of their
    tickets and reminders."""
    batch.flush()  # the subjects and rows of this batch's earlier events are queried below
    _write_pending(batch)
    db = batch.db
    objects = {customer_id}
    objects.update(r["object_id"] for r in db.all(
        "SELECT object_id FROM {p}tf_audit_subjects WHERE customer_id = ?", (customer_id,)))
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
        remembered = []
        for row in db.all(f"SELECT object_id, fields FROM {{p}}tf_audit_fields WHERE object_id IN ({marks})", chunk):
            fields = loads(row["fields"])
            erased_fields = _erase_fields(fields)
            if erased_fields != fields:
                remembered.append((dumps(erased_fields), row["object_id"]))
        db.executemany("UPDATE {p}tf_audit_fields SET fields = ? WHERE object_id = ?", sorted(remembered, key=lambda u: u[1]))
    for object_id in objects & values.keys():
        values[object_id] = _erase_fields(values[object_id])
    batch.evict(AUDIT, AUDIT_FIELDS)


def _erase_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: _erased(value) if name in PERSONAL_FIELDS else value for name, value in fields.items()}


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
