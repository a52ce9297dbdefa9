"""Reads as of the past: an object's state at a version, the diff between two versions, and
queues rebuilt up to a log position.

* **State at a version** comes from the aggregate (the nearest snapshot at or below the
  version, then the events after it), shaped like the row of its view, so an as-of read
  answers with the same body as a current read.
* **Diff** seeds the audit view's field values from the aggregate at ``from_version``
  (a snapshot read, not a replay from version 1), then applies the audit view's own
  change logic (:func:`projections.audit.field_values`) to each later event.
* **Queues as of a past instant** are answered by a temporary in-memory read side
  caught up to the log position; a few are kept (LRU, by position) so paging through
  one stays cheap and consistent. Building one costs a replay of the log up to the
  position, so positions beyond :data:`MAX_REPLAY` are refused.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.persistence import StoredEvent, Tracking
from eventsourcing.sqlite import SQLiteAggregateRecorder

from projections.audit import field_values
from projections.readside import ReadSide
from projections.sql import Db, dumps, ts, uid
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow.domain import Customer, Team, Ticket, TicketflowAggregate
from ticketflow.domain.values import Direction
from ticketflow.errors import ValidationFailed
from ticketflow.timetravel import TimeBasis, first_recorded, position_at

R = TypeVar("R")

#: The longest log prefix a temporary view will replay (events); beyond it the read is refused.
MAX_REPLAY = 200_000
#: Temporary read sides kept, by position.
KEEP_VIEWS = 4
_BATCH = 2000


# ------------------------------------------------------------------ rows from aggregates
def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)



def _stored_of_kinds(
    desk: TicketDesk, object_id: UUID, version: int, kinds: tuple[str, ...], gt: int = 0, limit: int = 2**31
) -> list[StoredEvent]:
    """The object's stored records up to ``version`` whose topic ends in one of ``kinds``, filtered by
    the database (a 10,000-event ticket has a handful of assignments: the others are never shipped
    or decoded). Other stores fall back to filtering every record here."""
    recorder: Any = desk.recorder
    likes = [f"%:{kind}" for kind in kinds]
    if isinstance(recorder, SQLiteAggregateRecorder):
        where = " OR ".join("topic LIKE ?" for _ in likes)
        sql = (f"SELECT * FROM {recorder.events_table_name} WHERE originator_id=? AND originator_version>? "
               f"AND originator_version<=? AND ({where}) ORDER BY originator_version LIMIT ?")
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(sql, [object_id.hex, gt, version, *likes, limit])
            rows = cursor.fetchall()
        return [StoredEvent(object_id, r["originator_version"], r["topic"], r["state"]) for r in rows]
    # A PostgreSQL recorder's module is loaded; SQLite does not import it (it pulls in psycopg).
    postgres: Any = sys.modules.get("eventsourcing.postgres")
    if postgres is not None and isinstance(recorder, postgres.PostgresAggregateRecorder):
        from psycopg.sql import SQL, Identifier

        statement = SQL(
            "SELECT originator_version, topic, state FROM {schema}.{table} WHERE originator_id = %s "
            "AND originator_version > %s AND originator_version <= %s AND ({where}) ORDER BY originator_version LIMIT %s"
        ).format(schema=Identifier(recorder.datastore.schema), table=Identifier(recorder.events_table_name),
                 where=SQL(" OR ".join("topic LIKE %s" for _ in likes)))
        with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:
            cursor.execute(statement, [object_id, gt, version, *likes, limit])
            rows = cursor.fetchall()
        return [StoredEvent(object_id, r["originator_version"], r["topic"], bytes(r["state"])) for r in rows]
    suffixes = tuple(f":{k}" for k in kinds)
    return [e for e in recorder.select_events(object_id, gt=gt, lte=version) if e.topic.endswith(suffixes)][:limit]


def _first_reply_and_reassignments(desk: TicketDesk, ticket_id: UUID, version: int) -> tuple[str | None, int]:
    """The two tickets-view fields the aggregate does not keep, from the stored records up to ``version``
    (the same rules as the tickets view: the first outbound reply; reassignments and transfers)."""
    reassignments = 0
    for stored in _stored_of_kinds(desk, ticket_id, version, ("Ticket.Assigned", "Ticket.Transferred")):
        event: Any = desk.mapper.to_domain_event(stored)
        reassignments += isinstance(event, Ticket.Transferred) or event.previous_assignee_id is not None
    after = 0
    while replies := _stored_of_kinds(desk, ticket_id, version, ("Ticket.Replied",), gt=after, limit=20):
        for stored in replies:
            reply: Any = desk.mapper.to_domain_event(stored)
            if reply.direction == Direction.OUTBOUND:
                return ts(reply.occurred_at), reassignments
        after = replies[-1].originator_version
    return None, reassignments


def _imported(desk: TicketDesk, object_id: UUID) -> bool:
    first = desk.recorder.select_events(object_id, limit=1)
    return bool(getattr(desk.mapper.to_domain_event(first[0]), "imported", False)) if first else False


def ticket_row(desk: TicketDesk, ticket: Ticket) -> dict[str, Any]:
    """A ticket aggregate as a row of the tickets view (``tags`` JSON-encoded, as the view stores it)."""
    first_reply, reassignments = _first_reply_and_reassignments(desk, ticket.id, ticket.version)
    return {
        "ticket_id": str(ticket.id), "subject": ticket.subject, "ticket_type": str(ticket.ticket_type),
        "category": ticket.category, "priority": str(ticket.priority), "status": str(ticket.status),
        "channel": ticket.channel, "customer_id": str(ticket.requester_id), "team_id": uid(ticket.team_id),
        "assignee_id": ticket.assignee_id, "tags": dumps(sorted(ticket.tags)), "created_at": ts(ticket.created_at),
        "first_reply_at": first_reply, "updated_at": ts(ticket.updated_at), "solved_at": ts(ticket.solved_at),
        "closed_at": ts(ticket.closed_at), "reply_count": ticket.public_reply_count, "note_count": ticket.note_count,
        "interaction_count": ticket.interaction_count, "work_minutes": ticket.work_minutes,
        "reopen_count": ticket.reopen_count, "reassignment_count": reassignments,
        "satisfaction": ticket.satisfaction["score"] if ticket.satisfaction else None,
        "merged_into": uid(ticket.merged_into), "imported": int(_imported(desk, ticket.id)), "version": ticket.version,
        "source_counters": dumps(ticket.source_counters) if ticket.source_counters else None,
    }


def customer_row(customer: Customer) -> dict[str, Any]:
    """A customer aggregate as a row of the customers view."""
    return {
        "customer_id": str(customer.id), "name": customer.name, "email": customer.email, "phone": customer.phone,
        "im_handle": customer.im_handle, "company": customer.company, "job_title": customer.job_title,
        "preferred_language": customer.preferred_language, "tier": str(customer.tier),
        "consents": list(customer.consents), "note_count": customer.note_count,
        "registered_at": ts(customer.created_at), "updated_at": ts(customer.updated_at), "version": customer.version,
    }


# ------------------------------------------------------------------------------ diff
def audit_fields(aggregate: TicketflowAggregate) -> dict[str, Any]:
    """The aggregate's fields named and encoded as the audit view remembers them.

    Lists never set and lists emptied look alike here: an empty list is left out (as never set).
    """
    if isinstance(aggregate, Ticket):
        values: dict[str, Any] = {
            "subject": aggregate.subject, "description": aggregate.description,
            "ticket_type": str(aggregate.ticket_type), "category": aggregate.category,
            "priority": str(aggregate.priority), "channel": aggregate.channel, "tags": sorted(aggregate.tags),
            "requester_id": str(aggregate.requester_id), "team_id": uid(aggregate.team_id),
            "status": str(aggregate.status), "assignee_id": aggregate.assignee_id,
            "merged_into": uid(aggregate.merged_into),
            "collaborators": sorted(aggregate.collaborators) or None, "links": list(aggregate.links) or None,
        }
        if aggregate.sla:
            values["sla_policy"] = f"{aggregate.sla['policy_name']} v{aggregate.sla['policy_version']}"
        if aggregate.satisfaction:
            values["satisfaction"] = aggregate.satisfaction["score"]
            values["satisfaction_comment"] = aggregate.satisfaction["comment"]
        return values
    if isinstance(aggregate, Customer):
        profile = ("name", "email", "phone", "im_handle", "company", "job_title", "preferred_language")
        return {**{f: getattr(aggregate, f) for f in profile}, "tier": str(aggregate.tier),
                "consents": sorted(aggregate.consents)}
    if isinstance(aggregate, Team):
        members = {f"members.{agent}": {**member, "skills": list(member["skills"])} for agent, member in aggregate.members.items()}
        return {"name": aggregate.name, "description": aggregate.description, **members}
    return {}


def diff(desk: TicketDesk, object_id: UUID, from_version: int, to_version: int) -> list[dict[str, Any]]:
    """Each field change between two versions: ``{field, old, new, version, event_type, occurred_at,
    recorded_at, actor_id, actor_role}``, in version order (``from_version`` 0: from nothing)."""
    if from_version > to_version:
        raise ValidationFailed(f"from_version {from_version} is after to_version {to_version}")
    values: dict[str, Any] = {}
    if from_version > 0:
        values = {k: v for k, v in audit_fields(desk.repository.get(object_id, version=from_version)).items() if v is not None}
    changes: list[dict[str, Any]] = []
    for event in desk.events.get(object_id, gt=from_version, lte=to_version):
        if not isinstance(event, TicketflowAggregate.Event):  # pragma: no cover - every stored event is ours
            continue
        for field, new in field_values(event, values.get).items():  # type: ignore[arg-type]
            old = values.get(field)
            if old != new:
                values[field] = new
                changes.append({
                    "field": field, "old": old, "new": new, "version": event.originator_version,
                    "event_type": type(event).__qualname__, "occurred_at": event.occurred_at,
                    "recorded_at": event.timestamp, "actor_id": event.actor_id, "actor_role": event.actor_role,
                })
    return changes


# ------------------------------------------------------------------ views at a position
@dataclass(frozen=True)
class Horizon:
    """What a view as of T holds: how many events it applied, and the log's earliest time on the basis
    (None: the log is empty). ``applied == 0`` means the log holds nothing at or before T on that basis."""

    basis: TimeBasis
    applied: int
    earliest: datetime | None


def empty_note(at: datetime, horizon: Horizon) -> str | None:
    """A sentence when the view as of ``at`` holds nothing because the log holds nothing by then on its basis."""
    if horizon.applied:
        return None
    when = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    if horizon.earliest is None:
        return "the log holds no events yet"
    other = horizon.basis.other().value
    return (f"the log holds nothing at or before {when.isoformat()} on {horizon.basis.value} time: its earliest event "
            f"is at {horizon.earliest.isoformat()} on that basis (as_of_basis={other} goes by "
            f"{'when events happened' if other == 'business' else 'when the desk recorded them'})")


class ViewsAsOf:
    """Temporary in-memory views, each caught up to one log position (a few kept, LRU).

    One view per temporary read side: a queue as of T replays into the tickets view only, an SLA
    report as of T into the workflow view only.

    On **recorded** time a view as of T is the log up to the last position recorded by T. On
    **business** time it is, for each object, its events up to the first one that happened after T
    (business times grow with an object's versions: :mod:`ticketflow.timetravel`); building one
    replays the whole log (so the log's length is what :data:`MAX_REPLAY` limits)."""

    def __init__(self, desk: TicketDesk, keep: int = KEEP_VIEWS, max_replay: int = MAX_REPLAY) -> None:
        self.desk, self.keep, self.max_replay = desk, keep, max_replay
        self._sides: OrderedDict[tuple[Any, ...], tuple[ReadSide, Horizon]] = OrderedDict()
        self._lock = threading.Lock()
        self.built = 0  # read sides built so far (tests look at it)

    def read(self, position: int, view: str, query: Callable[[Db], R]) -> R:
        return self.at(position, view).read(view, query)

    def read_as_of(self, at: datetime, basis: TimeBasis, view: str, query: Callable[[Db], R]) -> tuple[R, Horizon]:
        """``query`` on ``view`` as of the instant ``at`` on ``basis``, with what the view was built from."""
        at = _aware(at)
        if basis is TimeBasis.RECORDED:
            position = position_at(self.desk, at)
            side = self.at(position, view)
            return side.read(view, query), Horizon(basis, position, first_recorded(self.desk))
        end = self.desk.log_position()
        side, horizon = self._side((basis.value, at, end, view), end, lambda: self._build_business(at, end, view))
        return side.read(view, query), horizon

    def at(self, position: int, view: str = "tickets") -> ReadSide:
        recorded = Horizon(TimeBasis.RECORDED, position, None)
        return self._side((position, view), position, lambda: (self._build(position, view), recorded))[0]

    def _side(self, key: tuple[Any, ...], replay: int, build: Callable[[], tuple[ReadSide, Horizon]]) -> tuple[ReadSide, Horizon]:
        if replay > self.max_replay:
            raise ValidationFailed(
                f"as of log position {replay}: rebuilding a view that far back replays more than "
                f"{self.max_replay} events; ask for an earlier time or use the audit trail"
            )
        with self._lock:  # one build at a time: two requests for one position share the result
            entry = self._sides.get(key)
            if entry is None:
                entry = self._sides[key] = build()
                while len(self._sides) > self.keep:
                    self._sides.popitem(last=False)[1][0].close()
            self._sides.move_to_end(key)
            return entry

    def _build(self, position: int, view: str) -> ReadSide:
        side = ReadSide(self.desk, views=(view,), store_settings=Settings(database_url="memory://"))
        start = 1
        while start <= position:
            notifications = self.desk.recorder.select_notifications(start, _BATCH, stop=position)
            if not notifications:
                break
            events = [(self.desk.mapper.to_domain_event(n), n.id) for n in notifications]
            tracking = Tracking(self.desk.name, notifications[-1].id)
            side.projections[view].process_batch(events, tracking, previous=start - 1)  # type: ignore[arg-type]
            start = notifications[-1].id + 1
        self.built += 1
        return side

    def _build_business(self, at: datetime, end: int, view: str) -> tuple[ReadSide, Horizon]:
        """A view of what had happened by ``at``: each object's events until its first one after ``at``."""
        side = ReadSide(self.desk, views=(view,), store_settings=Settings(database_url="memory://"))
        stopped: set[UUID] = set()
        applied, earliest = 0, None
        start = 1
        while start <= end:
            notifications = self.desk.recorder.select_notifications(start, _BATCH, stop=end)
            if not notifications:
                break
            events = []
            for notification in notifications:
                event: Any = self.desk.mapper.to_domain_event(notification)
                when = _aware(event.occurred_at)
                earliest = when if earliest is None or when < earliest else earliest
                if event.originator_id in stopped:
                    continue
                if when > at:
                    stopped.add(event.originator_id)
                    continue
                events.append((event, notification.id))
            applied += len(events)
            tracking = Tracking(self.desk.name, notifications[-1].id)
            side.projections[view].process_batch(events, tracking, previous=start - 1)
            start = notifications[-1].id + 1
        self.built += 1
        return side, Horizon(TimeBasis.BUSINESS, applied, earliest)

    def forget(self) -> None:
        """Drop every cached read side: after an erasure, those built before it hold the erased
        customer's plaintext (a read side built afterwards reads the events back erased)."""
        self.close()

    def close(self) -> None:
        with self._lock:
            for side, _ in self._sides.values():
                side.close()
            self._sides.clear()
