"""A batch of another desk's history as **snapshot rows**: one row per update of a source case,
each holding the case's whole state after it (ServiceNow incident history, Jira or Zendesk exports).

The rows are diffed by the import engine's snapshot shape (:mod:`ticketflow.importing.engine`, the
same code as ``ticketflow import servicenow``), through a mapping built for the batch: its columns
are the row's fields and its values are ticketflow's own. What the engine plans (the opening and
each fact) becomes the event rows of :mod:`ticketflow.batch_import`, which records them, so a batch
of snapshots is **idempotent by source ids** in the same way: each fact's id derives from its
snapshot's id (``snapshot_id``, else ``sequence``, else its content) and its rank in that snapshot.

A case the desk already holds is continued from the state the desk has for it: its snapshots up to
the case's latest business time are taken as recorded, and the later ones are diffed from that
state (a case may come over several batches). Rejects name the snapshot's index; a case is written
whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, ValidationError

from ticketflow.access import Permission
from ticketflow.application import TicketDesk
from ticketflow.batch_import import BatchResult, Reject, record_batch, ticket_id_for
from ticketflow.commands.base import HistoricalTime, Line, Name, OptionalBody
from ticketflow.commands.imported import FactKind, SourceCounters
from ticketflow.domain import Ticket
from ticketflow.domain.values import Channel, Priority, Status, TicketType
from ticketflow.errors import NotFound, PermissionDenied
from ticketflow.importing.directory import DirectoryIds
from ticketflow.importing.engine import Format
from ticketflow.importing.mapping import ImportMapping, parse_mapping
from ticketflow.importing.plan import NotInDirectory, TicketPlan
from ticketflow.importing.xes import Case, Row
from ticketflow.metadata import Caller


class HistoricalSnapshot(BaseModel):
    """One snapshot row: a source case's whole state after one update, at its time, by its person."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_id: Line
    snapshot_id: Line | None = None
    sequence: int | None = None
    occurred_at: HistoricalTime
    actor_id: Name | None = None
    status: Status
    team_id: UUID | None = None
    assignee_id: Name | None = None
    priority: Priority | None = None
    category: Name | None = None
    subject: Line | None = None
    description: OptionalBody = ""
    customer_id: UUID | None = None
    channel: Channel | None = None
    ticket_type: TicketType | None = None
    source_counters: SourceCounters | None = None

    def key(self) -> str:
        """The snapshot's identity in its case: its id, its sequence, else its content."""
        if self.snapshot_id is not None:
            return f"id:{self.snapshot_id}"
        if self.sequence is not None:
            return f"seq:{self.sequence}"
        content = self.model_dump(mode="json", exclude_defaults=True)
        return (
            "sha:"
            + hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[
                :32
            ]
        )


def _mapping(counters: set[str]) -> ImportMapping:
    """The engine's mapping for snapshot rows: columns named as the row's fields, ticketflow's values."""
    statuses = "\n".join(f"{json.dumps(str(s))} = {json.dumps(str(s))}" for s in Status)
    text = f"""
name = "http-snapshots"
shape = "snapshots"
subject = "{{subject}}"
description = "{{description}}"
counters = {json.dumps(sorted(counters), ensure_ascii=False)}
[columns]
case = "case_id"
time = "occurred_at"
sequence = "sequence"
actor = "actor_id"
status = "status"
team = "team_id"
assignee = "assignee_id"
priority = "priority"
category = "category"
channel = "channel"
requester = "customer_id"
[values.status]
{statuses}
"""
    return parse_mapping(text, "the snapshot rows' mapping")


def _values(snapshot: HistoricalSnapshot) -> dict[str, str]:
    values = {
        name: "" if value is None else str(value)
        for name, value in snapshot.model_dump(mode="json", exclude={"source_counters"}).items()
    }
    values.update({name: str(count) for name, count in (snapshot.source_counters or {}).items()})
    return values


def _seed(ticket: Ticket) -> dict[str, str]:
    """A case the desk holds, as the snapshot its state is (what later snapshots are diffed from)."""
    return {
        "case_id": "",
        "status": str(ticket.status),
        "team_id": str(ticket.team_id or ""),
        "assignee_id": ticket.assignee_id or "",
        "priority": str(ticket.priority),
        "category": ticket.category,
        "subject": ticket.subject,
        "customer_id": str(ticket.requester_id),
        "channel": str(ticket.channel),
    }


def record_snapshots(desk: TicketDesk, source: str, rows: list[Any], caller: Caller) -> BatchResult:
    """Diff each case's snapshots with the import engine, then record them as :func:`record_batch` does."""
    if (
        not caller.may(Permission.IMPORT) or caller.via is not Channel.IMPORT
    ):  # even when nothing is left to write
        raise PermissionDenied("importing history needs the import permission")
    parsed: list[tuple[int, HistoricalSnapshot]] = []
    rejects: list[Reject] = []
    for index, raw in enumerate(rows):
        try:
            parsed.append((index, HistoricalSnapshot.model_validate(raw)))
        except ValidationError as exc:
            case_id = (
                raw.get("case_id") if isinstance(raw, dict) and isinstance(raw.get("case_id"), str) else None
            )
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            rejects.append(Reject(index, case_id, f"{where}: {error['msg']}" if where else error["msg"]))
    cases: dict[str, list[tuple[int, HistoricalSnapshot]]] = defaultdict(list)
    for index, snapshot in parsed:
        cases[snapshot.case_id].append((index, snapshot))
    bad = {r.case_id for r in rejects if r.case_id is not None}
    mapping = _mapping({name for _, s in parsed for name in (s.source_counters or {})})
    events: list[dict[str, Any]] = []
    origin: list[int] = []  # each event row's snapshot index
    quiet: dict[str, list[int]] = {}  # cases with nothing to write: their snapshots are recorded already
    for case_id, snapshots in cases.items():
        if case_id in bad:
            first = min(r.row for r in rejects if r.case_id == case_id)
            rejects.extend(
                Reject(i, case_id, f"case not written: row {first} was rejected") for i, _ in snapshots
            )
            continue
        try:
            planned = _plan_case(desk, source, case_id, snapshots, mapping)
        except _SnapshotRefused as refused:
            rejects.append(Reject(refused.row, case_id, refused.reason))
            rejects.extend(
                Reject(i, case_id, f"case not written: row {refused.row} was rejected")
                for i, _ in snapshots
                if i != refused.row
            )
            continue
        if not planned:
            quiet[case_id] = [i for i, _ in snapshots]
        for row_index, event in planned:
            events.append(event)
            origin.append(row_index)
    result = record_batch(desk, source, events, caller) if events else BatchResult()
    # Back to the snapshots: counts and rejects by snapshot row.
    written_cases = {case for case in result.tickets if not any(r.case_id == case for r in result.rejects)}
    seen: set[int] = set()
    for reject in result.rejects:
        row = origin[reject.row]
        if row not in seen:
            seen.add(row)
            rejects.append(Reject(row, reject.case_id, reject.reason))
    for case_id, snapshots in cases.items():  # a rejected case's snapshots that planned no event row
        if any(r.case_id == case_id for r in result.rejects):
            rejects.extend(
                Reject(i, case_id, "case not written: another of its rows was rejected")
                for i, _ in snapshots
                if i not in seen
            )
    tickets = dict(result.tickets)
    tickets.update({case: ticket_id_for(source, case) for case in quiet})
    recorded = sum(len(cases[c]) for c in written_cases) + sum(len(rows) for rows in quiet.values())
    final = BatchResult(
        events=len(rows),
        recorded=recorded,
        written=result.written,
        tickets=tickets,
        rejects=sorted(rejects, key=lambda r: r.row),
    )
    final.cases = len(cases) + len({r.case_id for r in rejects if r.case_id is not None} - set(cases))
    return final


class _SnapshotRefused(Exception):
    def __init__(self, row: int, reason: str) -> None:
        super().__init__(reason)
        self.row, self.reason = row, reason


def _plan_case(
    desk: TicketDesk,
    source: str,
    case_id: str,
    snapshots: list[tuple[int, HistoricalSnapshot]],
    mapping: ImportMapping,
) -> list[tuple[int, dict[str, Any]]]:
    """The event rows (with their snapshot's index) the engine plans for one case's new snapshots."""
    ordered = sorted(
        snapshots, key=lambda item: (item[1].sequence is None, item[1].sequence or 0, item[1].occurred_at)
    )
    try:
        ticket: Ticket | None = desk.get_ticket(ticket_id_for(source, case_id))
    except NotFound:
        ticket = None
    if ticket is not None:  # continued: the desk's state opens the diff; what it holds already is recorded
        ordered = [(i, s) for i, s in ordered if s.occurred_at > ticket.updated_at]
        if not ordered:
            return []
    else:
        index, first = ordered[0]
        if first.subject is None or first.customer_id is None:
            raise _SnapshotRefused(
                index,
                f"case {case_id} is not in the desk yet: its first snapshot needs subject and customer_id",
            )
    rows: list[Row] = []
    if ticket is not None:
        rows.append(Row(0, -1, ticket.updated_at, _seed(ticket)))
    rows.extend(Row(len(rows), i, s.occurred_at, _values(s)) for i, s in ordered)
    by_line = dict(ordered)
    teams = {str(s.team_id): s.team_id for _, s in ordered if s.team_id is not None}
    customers = {str(s.customer_id): s.customer_id for _, s in ordered if s.customer_id is not None}
    if ticket is not None:
        customers[str(ticket.requester_id)] = ticket.requester_id
        if ticket.team_id is not None:
            teams[str(ticket.team_id)] = ticket.team_id
    plan = TicketPlan(
        source,
        case_id,
        DirectoryIds(teams, customers),
        actor="actor_id",
        counters_sent=ticket.source_counters if ticket is not None else None,
    )
    try:
        Format(mapping).plan(Case(case_id, tuple(rows)), plan)
    except NotInDirectory as missing:  # pragma: no cover - every id seen is in the plan's directory
        raise _SnapshotRefused(ordered[0][0], f"{missing} is not known") from None
    planned: list[tuple[int, dict[str, Any]]] = []
    if ticket is None and plan.opening is not None:
        fields = plan.opening.fields
        first_snapshot = by_line[plan.opening.row.line]
        planned.append(
            (
                plan.opening.row.line,
                _drop_none(
                    {
                        "case_id": case_id,
                        "event_id": f"{first_snapshot.key()}:opened",
                        "kind": "opened",
                        "occurred_at": fields["occurred_at"],
                        "actor_id": first_snapshot.actor_id,
                        "subject": fields["subject"],
                        "description": fields["description"] or None,
                        "customer_id": fields["requester_id"],
                        "team_id": fields["team_id"],
                        "priority": fields["priority"],
                        "category": fields["category"],
                        "channel": first_snapshot.channel,
                        "ticket_type": first_snapshot.ticket_type,
                    }
                ),
            )
        )
    ranks: dict[int, int] = defaultdict(int)
    for fact in plan.facts:
        line = fact.row.line
        if line < 0:  # the seed (the desk's own state) brought the plan to it: recorded already
            continue
        ranks[line] += 1
        snapshot = by_line[line]
        planned.append((line, _event(case_id, f"{snapshot.key()}:{ranks[line]}", fact.fields)))
    return planned


def _event(case_id: str, event_id: str, fact: dict[str, Any]) -> dict[str, Any]:
    """A planned fact as an event row of :mod:`ticketflow.batch_import`."""
    kind: FactKind = fact["kind"]
    row: dict[str, Any] = {
        "case_id": case_id,
        "event_id": event_id,
        "occurred_at": fact["occurred_at"],
        "actor_id": fact.get("actor_id"),
        "source_counters": fact.get("source_counters"),
    }
    match kind:
        case FactKind.STATUS:
            row.update(kind="status", status=fact["status"], reason=fact.get("reason") or None)
        case FactKind.PLACEMENT:
            row.update(kind="placement", team_id=fact["team_id"], assignee_id=fact["assignee_id"])
        case FactKind.PRIORITY:
            row.update(kind="priority", priority=fact["priority"], reason=fact.get("reason") or None)
        case FactKind.CATEGORY:
            row.update(kind="category", category=fact["category"])
        case FactKind.COUNTERS:
            row.update(kind="counters")
        case _:  # pragma: no cover - the snapshot shape plans no other kind
            raise ValueError(f"a snapshot does not plan {kind} facts")
    placement = row.get("kind") == "placement"
    return {k: v for k, v in row.items() if v is not None or (placement and k in ("team_id", "assignee_id"))}


def _drop_none(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if v is not None}
