"""A batch of another desk's history, as an integration sends it: rows of historical events.

Each row is one thing that happened to one source case, at its own time (``occurred_at``):
``opened`` (the case begins: subject, requester, team...), ``status``, ``team`` (the group; none
clears it), ``assignee`` (none clears it), ``placement`` (team and assignee together), ``priority``,
``category``, ``counters`` (the source's counters alone), ``reply`` and ``note``. Snapshot rows
(:mod:`ticketflow.batch_snapshots`) become such rows.
The batch is recorded as imported facts (:class:`~ticketflow.commands.RecordImportedFacts`), never
re-decided as commands, and is **idempotent by source ids**: a case's ticket id derives from
``(source, case_id)`` and each fact's id from ``(source, case_id, event_id)`` (a row without an
``event_id`` is identified by its content and its rank among identical rows of its case), so
posting the same batch again writes nothing and answers the same counts.

A row that cannot be recorded is a **reject** (its index and the reason), and so is every other row
of its case: a case is written whole or not at all. Everything the desk would refuse (an unknown
team or requester, a time before the case opened or in the future, a status back to new) is checked
before the case's first write.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Literal
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.persistence import IntegrityError
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from ticketflow.access import Permission
from ticketflow.application import FUTURE_TOLERANCE, ID_NAMESPACE, TicketDesk
from ticketflow.commands import ImportedFact, OpenTicket, RecordImportedFacts
from ticketflow.commands.base import Body, HistoricalTime, Line, Name, OptionalBody, ShortText
from ticketflow.commands.imported import MAX_FACTS, SourceCounters
from ticketflow.domain import Customer, Team, Ticket
from ticketflow.domain.values import Channel, Priority, Status, TicketType
from ticketflow.errors import NotFound, PermissionDenied, TicketflowError
from ticketflow.metadata import Caller

#: The most rows one batch carries (a case's facts are one write, at most MAX_FACTS of them).
MAX_ROWS = MAX_FACTS
BATCH_NAMESPACE = uuid5(NAMESPACE_URL, "https://ticketflow.dev/import/http")

EventKind = Literal["opened", "status", "team", "assignee", "placement", "priority", "category", "counters", "reply",
                    "note"]
#: The value each kind of row must carry.
_NEEDS: dict[str, tuple[str, ...]] = {
    "opened": ("subject", "customer_id"), "status": ("status",), "priority": ("priority",),
    "category": ("category",), "reply": ("body",), "note": ("body",), "counters": ("source_counters",),
}
#: The values each kind of row may carry (besides case_id, event_id, kind, occurred_at, actor_id).
_MAY: dict[str, frozenset[str]] = {
    "opened": frozenset({"subject", "description", "customer_id", "team_id", "priority", "category", "channel",
                         "ticket_type"}),
    "status": frozenset({"status", "reason", "source_counters"}),
    "team": frozenset({"team_id", "reason", "source_counters"}),
    "assignee": frozenset({"assignee_id", "reason", "source_counters"}),
    "placement": frozenset({"team_id", "assignee_id", "reason", "source_counters"}),
    "counters": frozenset({"source_counters"}),
    "priority": frozenset({"priority", "reason", "source_counters"}),
    "category": frozenset({"category", "source_counters"}), "reply": frozenset({"body", "direction"}), "note": frozenset({"body"}),
}


class HistoricalEvent(BaseModel):
    """One row of a batch: what happened to one source case, when, by whom."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_id: Line
    event_id: Line | None = None
    kind: EventKind
    occurred_at: HistoricalTime
    actor_id: Name | None = None
    subject: Line | None = None
    description: OptionalBody = ""
    customer_id: UUID | None = None
    channel: Channel | None = None
    ticket_type: TicketType | None = None
    status: Status | None = None
    team_id: UUID | None = None
    assignee_id: Name | None = None
    priority: Priority | None = None
    category: Name | None = None
    body: Body | None = None
    direction: Literal["inbound", "outbound"] | None = None
    reason: ShortText = ""
    #: The source system's own counters at this update (e.g. ServiceNow's reassignment_count), kept on the fact.
    source_counters: SourceCounters | None = None

    @model_validator(mode="after")
    def _shape(self) -> HistoricalEvent:
        missing = [name for name in _NEEDS.get(self.kind, ()) if getattr(self, name) is None]
        if missing:
            raise ValueError(f"an {self.kind} event needs {', '.join(missing)}")
        given = {name for name in self.model_fields_set
                 if name not in ("case_id", "event_id", "kind", "occurred_at", "actor_id")}
        if stray := sorted(given - _MAY[self.kind]):
            raise ValueError(f"an {self.kind} event does not carry {', '.join(stray)}")
        if self.kind == "status" and self.status is Status.NEW:
            raise ValueError("a ticket never returns to new (a case begins new with its opened event)")
        return self


@dataclass(frozen=True)
class Reject:
    row: int
    case_id: str | None
    reason: str


@dataclass
class BatchResult:
    """What a batch did: counts that are the same however often it is posted, and what this post wrote."""

    cases: int = 0
    events: int = 0
    recorded: int = 0  # rows now in the desk's history (written by this post or an earlier one)
    written: int = 0  # events this post wrote (0 when the batch was posted before)
    tickets: dict[str, UUID] = field(default_factory=dict)
    rejects: list[Reject] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"cases": self.cases, "events": self.events, "recorded": self.recorded, "rejected": len(self.rejects)}


def ticket_id_for(source: str, case_id: str) -> UUID:
    """The desk's id for a source case's ticket (as the desk derives a created object's id)."""
    return uuid5(ID_NAMESPACE, f"Ticket:{_opening_command_id(source, case_id)}")


def _opening_command_id(source: str, case_id: str) -> UUID:
    return uuid5(BATCH_NAMESPACE, json.dumps([source, case_id, "opened"]))


def _row_key(row: HistoricalEvent) -> str:
    """A row's identity when the source gave no event id: its content."""
    content = row.model_dump(mode="json", exclude={"event_id"}, exclude_defaults=True)
    return hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:32]


def parse_rows(rows: list[Any]) -> tuple[list[tuple[int, HistoricalEvent]], list[Reject]]:
    """The rows that have the shape of a historical event, and a reject for each that has not."""
    parsed: list[tuple[int, HistoricalEvent]] = []
    rejects: list[Reject] = []
    for index, raw in enumerate(rows):
        try:
            parsed.append((index, HistoricalEvent.model_validate(raw)))
        except ValidationError as exc:
            case_id = raw.get("case_id") if isinstance(raw, dict) and isinstance(raw.get("case_id"), str) else None
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            rejects.append(Reject(index, case_id, f"{where}: {error['msg']}" if where else error["msg"]))
    return parsed, rejects


def record_batch(desk: TicketDesk, source: str, rows: list[Any], caller: Caller) -> BatchResult:
    """Record a batch of historical events for ``caller`` (a token granted ``import``, via IMPORT).

    Opening a source case is part of importing it: the opening runs with ``tickets:open`` added to the
    caller's permissions (its teams still apply). The whole batch is saved in one transaction; should
    another writer have recorded some of its cases meanwhile, it runs again case by case, recognising them."""
    try:
        with desk.batch():
            return _record_batch(desk, source, rows, caller)
    except IntegrityError:
        return _record_batch(desk, source, rows, caller)


def _record_batch(desk: TicketDesk, source: str, rows: list[Any], caller: Caller) -> BatchResult:
    if not caller.may(Permission.IMPORT) or caller.via is not Channel.IMPORT:
        raise PermissionDenied("importing history needs the import permission")
    if caller.permissions is not None:
        caller = replace(caller, permissions=caller.permissions | {str(Permission.TICKETS_OPEN)})
    result = BatchResult(events=len(rows))
    parsed, rejects = parse_rows(rows)
    bad_cases = {r.case_id for r in rejects if r.case_id is not None}
    cases: dict[str, list[tuple[int, HistoricalEvent]]] = {}
    for index, row in parsed:
        cases.setdefault(row.case_id, []).append((index, row))
    result.cases = len(cases) + len({r.case_id for r in rejects if r.case_id is not None} - set(cases))
    for case_id, case_rows in cases.items():
        if case_id in bad_cases:
            first_bad = min(r.row for r in rejects if r.case_id == case_id)
            rejects.extend(Reject(i, case_id, f"case not written: row {first_bad} was rejected") for i, _ in case_rows)
            continue
        try:
            _record_case(desk, source, case_id, case_rows, caller, result)
        except _CaseRefused as refused:
            rejects.append(Reject(refused.row, case_id, refused.reason))
            rejects.extend(Reject(i, case_id, f"case not written: row {refused.row} was rejected")
                           for i, _ in case_rows if i != refused.row)
        except _FactsRefused as refused:  # the checks did not foresee it: opened, its facts refused
            rejects.extend(Reject(i, case_id, f"case opened, its other rows not written: {refused.__cause__}; "
                                              "post the case again once fixed") for i, _ in case_rows)
            result.tickets[case_id] = ticket_id_for(source, case_id)
        except TicketflowError as exc:  # what the checks did not foresee: the case's first write refused
            rejects.extend(Reject(i, case_id, f"case not written: {exc}") for i, _ in case_rows)
    result.rejects = sorted(rejects, key=lambda r: r.row)
    return result


class _FactsRefused(Exception):
    """A new case was opened, then the desk refused its facts (which the checks should have caught)."""


class _CaseRefused(Exception):
    def __init__(self, row: int, reason: str) -> None:
        super().__init__(reason)
        self.row, self.reason = row, reason


def _record_case(desk: TicketDesk, source: str, case_id: str, rows: list[tuple[int, HistoricalEvent]],
                 caller: Caller, result: BatchResult) -> None:
    """Check the whole case, then write it: its opening (unless known) and its facts (one write)."""
    rows = sorted(rows, key=lambda item: item[1].occurred_at)  # stable: rows at one instant keep their order
    openings = [(i, r) for i, r in rows if r.kind == "opened"]
    if len(openings) > 1:
        raise _CaseRefused(openings[1][0], f"case {case_id} is opened twice in this batch")
    ticket_id = ticket_id_for(source, case_id)
    ticket: Ticket | None
    try:
        ticket = desk.get_ticket(ticket_id)
    except NotFound:
        ticket = None
    if ticket is None and not openings:
        raise _CaseRefused(rows[0][0], f"case {case_id} is not in the desk yet and this batch has no opened event for it")
    opening = openings[0][1] if openings else None
    now = desk.clock.now()
    for index, row in rows:
        if row.occurred_at > now + FUTURE_TOLERANCE:
            raise _CaseRefused(index, f"occurred_at {row.occurred_at.isoformat()} is in the future")
        if opening is not None and row.occurred_at < opening.occurred_at:
            raise _CaseRefused(index, f"occurred_at {row.occurred_at.isoformat()} is before the case was opened "
                                      f"({opening.occurred_at.isoformat()})")
        if row.team_id is not None and not _exists(desk, Team, row.team_id):
            raise _CaseRefused(index, f"team {row.team_id} not found")
        if row.customer_id is not None and not _exists(desk, Customer, row.customer_id):
            raise _CaseRefused(index, f"customer {row.customer_id} not found")
        if row.kind in ("opened", "team", "placement") and not caller.sees_team(row.team_id):
            raise _CaseRefused(index, f"team {row.team_id} is not in this token's teams" if row.team_id is not None
                               else "a case without a team (triage) is not in this token's scope")
    if ticket is not None and not caller.sees_team(ticket.team_id):
        raise _CaseRefused(rows[0][0], f"case {case_id} is in the desk already, outside this token's teams")

    if ticket is not None and opening is not None and ticket.created_at != opening.occurred_at:
        raise _CaseRefused(openings[0][0], f"case {case_id} is in the desk already, opened at "
                                           f"{ticket.created_at.isoformat()}, not {opening.occurred_at.isoformat()}")
    team, assignee = (ticket.team_id, ticket.assignee_id) if ticket is not None else (opening and opening.team_id, None)
    facts: list[ImportedFact] = []
    ranks: Counter[str] = Counter()
    for index, row in rows:
        if row.kind == "opened":
            continue
        key = row.event_id if row.event_id is not None else f"~{_row_key(row)}"
        ranks[key] += 1
        fact_id = uuid5(BATCH_NAMESPACE, json.dumps([source, case_id, key, ranks[key]]))
        values: dict[str, Any] = {}
        match row.kind:
            case "status":
                values = {"kind": "status", "status": row.status, "reason": row.reason}
            case "team" | "assignee" | "placement":
                if row.kind != "team":  # placement: both, as the source has them (either may be none)
                    assignee = row.assignee_id
                if row.kind != "assignee":
                    team = row.team_id
                values = {"kind": "placement", "team_id": team, "assignee_id": assignee, "reason": row.reason}
            case "counters":
                values = {"kind": "counters"}
            case "priority":
                values = {"kind": "priority", "priority": row.priority, "reason": row.reason}
            case "category":
                values = {"kind": "category", "category": row.category}
            case "reply":
                values = {"kind": "reply", "body": row.body, "direction": row.direction or "outbound"}
            case "note":
                values = {"kind": "note", "body": row.body}
        if row.source_counters:
            values["source_counters"] = row.source_counters
        try:
            facts.append(ImportedFact(fact_id=fact_id, occurred_at=row.occurred_at, actor_id=row.actor_id, **values))
        except ValidationError as exc:
            raise _CaseRefused(index, exc.errors()[0]["msg"]) from None
    if ticket is not None and facts:
        known = {event.command_id for event in desk.history(ticket_id)}
        fresh = [f for f in facts if str(f.fact_id) not in known]
        if fresh and fresh[0].occurred_at < ticket.updated_at:
            index = next(i for i, r in rows if r.kind != "opened" and r.occurred_at == fresh[0].occurred_at)
            raise _CaseRefused(index, f"occurred_at {fresh[0].occurred_at.isoformat()} is before the case's latest "
                                      f"recorded event ({ticket.updated_at.isoformat()}): history is recorded in time order")

    if ticket is None:
        assert opening is not None and opening.subject is not None and opening.customer_id is not None  # (its shape)
        opened = desk.handle(OpenTicket(
            command_id=_opening_command_id(source, case_id), subject=opening.subject, description=opening.description,
            requester_id=opening.customer_id, team_id=opening.team_id, priority=opening.priority or Priority.NORMAL,
            category=opening.category or "general", channel=opening.channel or Channel.WEB_FORM,
            ticket_type=opening.ticket_type or TicketType.INQUIRY, occurred_at=opening.occurred_at,
        ), _as(caller, opening.actor_id))
        if opened.object_id != ticket_id:  # pragma: no cover - the desk derives ids this way
            raise RuntimeError(f"the desk gave ticket {opened.object_id}, not {ticket_id}")
        result.written += len(opened.events)
    if facts:
        command = RecordImportedFacts(
            command_id=uuid5(BATCH_NAMESPACE, json.dumps([source, case_id, "facts", [str(f.fact_id) for f in facts]])),
            ticket_id=ticket_id, facts=facts,
        )
        try:
            recorded = desk.handle(command, caller)
        except TicketflowError as exc:
            if ticket is None:
                raise _FactsRefused() from exc
            raise
        result.written += 0 if recorded.replayed else len(recorded.events)
    result.recorded += len(rows)
    result.tickets[case_id] = ticket_id


def _exists(desk: TicketDesk, kind: type[Team | Customer], object_id: UUID) -> bool:
    try:
        found = desk.get_team(object_id) if kind is Team else desk.get_customer(object_id)
    except NotFound:
        return False
    return isinstance(found, kind)


def _as(caller: Caller, actor_id: str | None) -> Caller:
    """The opening's actor: the source's person when the row names one, else the token."""
    return caller if actor_id is None else replace(caller, actor_id=actor_id)
