"""The workflow view: what the automation has to do, and what it found.

The log decides the work, exactly once, like any view: a new ticket needs routing,
any change to a ticket needs its SLA clocks looked at, a solved ticket needs a
survey, a follow-up (回访) and, later, closing; a scheduled reminder needs firing.
Each is a row of ``tf_work`` keyed by (kind, object), committed with the view's
position. :mod:`projections.automation` does the work (at least once: every
action is idempotent) and moves each row on; the rows the log makes moot (a
ticket routed by hand, reopened, closed) are settled here.

Also kept here: the last agent each team's round-robin gave work to, and every SLA
outcome (fulfilled or breached) for the compliance report.

Every column of the view's tables is a function of the log, so a rebuilt view equals the
live one. What the automation itself writes — how far it got with each work row
(``tf_work_marks``: done, failed, or due again later, for the row as of its ``stamp``) and
each ticket's SLA clocks as last measured (``tf_sla_clocks``) — is its bookkeeping, kept in
the same database but outside the view: a rebuild neither empties it nor compares it, so a
rebuilt desk does not repeat work it already did. One column of the view follows the marks too:
a work row's ``todo_at``, when the automation is to do it (NULL when nothing is left), which the
mark moves in the mark's own transaction and a rebuild takes from the same marks, so the live and
the rebuilt rows are equal, and the automation's looks read only the rows still to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.erasure import chunks
from projections.sql import Batch, Db, Dialect, Table, local_period, preload, ts, uid, uuid_text
from projections.tickets import SLA_ATTENTION_LIMIT
from projections.view import Event, Positioned, View
from ticketflow.domain import Reminder, Ticket
from ticketflow.domain.values import Direction

#: Every kind of work row (see :func:`_queue`).
WORK_KINDS = ("route", "sla", "survey", "follow_up", "auto_close", "reminder")
#: A row queued by an event is due "now": the empty text sorts before every time.
NOW = ""
#: At most this many rows of a kind read by one look (:func:`due_work`); the rest at the next.
DUE_LIMIT = 500

WORK = Table(
    "tf_work",
    columns=(
        "kind TEXT NOT NULL",  # route, sla, survey, follow_up, auto_close, reminder
        "object_id TEXT NOT NULL",
        "due_at TEXT",  # UTC ISO text; "" = at once; follow_up / auto_close: the base time the delay counts from
        "state TEXT",  # due, done, failed (set aside after an unexpected error; see the log)
        "stamp BIGINT",  # log position of the last event that changed the row (the automation's compare-and-set)
        "team_id TEXT",
        "agent_id TEXT",
        # When the automation is to do the row: the view's due_at, or its mark's for the row's stamp (done or
        # failed: NULL). Only rows still to do are in the (kind, todo_at, stamp) index, so a look reads the
        # rows due, not every ticket's SLA row (see :func:`todo_at`, :func:`due_work`).
        "todo_at TEXT",
    ),
    key=("kind", "object_id"),
    partial_indexes=((("kind", "todo_at", "stamp"), "todo_at IS NOT NULL"),),
)

#: The automation's progress on a work row: applies while the row's ``stamp`` is unchanged (a new
#: event that changes the row makes it due again, whatever was marked before).
MARKS = Table(
    "tf_work_marks",
    columns=("kind TEXT NOT NULL", "object_id TEXT NOT NULL", "stamp BIGINT", "state TEXT", "due_at TEXT"),
    key=("kind", "object_id"),
)

ROTATION = Table("tf_rotation", columns=("team_id TEXT NOT NULL", "agent_id TEXT", "position BIGINT"), key=("team_id",))

SLA_CLOCKS = Table(
    "tf_sla_clocks",
    columns=(
        "ticket_id TEXT NOT NULL",
        "metric TEXT NOT NULL",
        "cycle TEXT NOT NULL",
        "state TEXT",  # active, paused, fulfilled, breached
        "target_minutes DOUBLE PRECISION",
        "business_hours INTEGER",
        "elapsed_minutes DOUBLE PRECISION",
        "due_at TEXT",
        "breached_at TEXT",
        "fulfilled_at TEXT",
        "policy TEXT",
        "policy_version INTEGER",
        "evaluated_at TEXT",
    ),
    key=("ticket_id", "metric", "cycle"),
    # The console's "SLA due soon" queue: the running clocks soonest due, read from the index alone.
    indexes=(("state", "due_at", "ticket_id"),),
    retired_indexes=(("state", "due_at"),),
)

SLA_OUTCOMES = Table(
    "tf_sla_outcomes",
    columns=(
        "ticket_id TEXT NOT NULL",
        "metric TEXT NOT NULL",
        "cycle TEXT NOT NULL",
        "outcome TEXT",  # fulfilled, breached (a breach wins over a late fulfilment)
        "at TEXT",
        "team_id TEXT",
        "priority TEXT",
        "policy TEXT",
        "policy_version INTEGER",
    ),
    key=("ticket_id", "metric", "cycle"),
    # Covering the SLA compliance report: a period's outcomes are read from the index alone.
    indexes=(("at", "team_id", "priority", "metric", "outcome"),),
)

#: Per ticket, what the SLA outcome rows need to know (team, priority, policy).
TICKET_FACTS = Table(
    "tf_work_tickets",
    columns=("ticket_id TEXT NOT NULL", "team_id TEXT", "priority TEXT", "policy TEXT", "policy_version INTEGER",
             "status TEXT", "imported INTEGER"),
    key=("ticket_id",),
)

_QUIET = (Ticket.SlaApplied, Ticket.SlaWarned, Ticket.SlaBreached, Ticket.SlaFulfilled, Ticket.SurveyIssued,
          Ticket.ResolutionRecorded)


class WorkflowView(View):
    name = "workflow"
    #: 2: work rows carry ``todo_at`` (the view's due instant moved on by the automation's mark), indexed
    #: for the rows still to do.
    version = 2
    tables = (WORK, ROTATION, SLA_OUTCOMES, TICKET_FACTS)
    event_types = (Ticket.Event, Reminder.Event)
    #: The automation's bookkeeping (see the module docstring): created with the view, never cleared, and
    #: kept when a new version of the view drops and rebuilds its tables.
    bookkeeping = (MARKS, SLA_CLOCKS)

    def ddl(self, dialect: Any) -> list[str]:
        return super().ddl(dialect) + [statement for table in self.bookkeeping for statement in table.ddl()]

    def prepare(self, batch: Batch, events: Sequence[Positioned]) -> None:
        """Load, in a few queries, the ticket facts and work rows the batch reads (one query per
        event otherwise: most events queue or settle work)."""
        tickets = {uuid_text(e.originator_id) for e, _ in events if isinstance(e, Ticket.Event)}
        objects = tickets | {uuid_text(e.originator_id) for e, _ in events if isinstance(e, Reminder.Event)}
        objects |= {str(e.ticket_id) for e, _ in events if isinstance(e, Reminder.Scheduled) and e.ticket_id}
        preload(batch, TICKET_FACTS, "ticket_id", tickets)
        cache = batch.cache(WORK)
        # Every kind named: the primary key (kind, object_id) is then searched, not the whole table scanned
        # (the demo feeds the view before each of the automation's looks: a scan per look grew with the desk).
        kinds = ", ".join("?" * len(WORK_KINDS))
        for chunk in chunks(objects):
            found = {
                (row["kind"], row["object_id"]): row
                for row in batch.db.all(
                    f"SELECT * FROM {{p}}tf_work WHERE kind IN ({kinds}) AND object_id IN ({', '.join('?' * len(chunk))})",
                    (*WORK_KINDS, *chunk),
                )
            }
            for object_id in chunk:
                for kind in WORK_KINDS:
                    cache.setdefault((kind, object_id), found.get((kind, object_id)))
        # The automation's marks of these rows, for todo_at (see _changed): on a live desk none is for the
        # stamp an event gives a row; in a rebuild, the marks of the rows' last stamps are.
        marks = batch.cache(MARKS)
        for chunk in chunks(objects):
            found = {
                (row["kind"], row["object_id"]): row
                for row in batch.db.all(
                    f"SELECT * FROM {{p}}tf_work_marks WHERE kind IN ({kinds})"
                    f" AND object_id IN ({', '.join('?' * len(chunk))})",
                    (*WORK_KINDS, *chunk),
                )
            }
            for object_id in chunk:
                for kind in WORK_KINDS:
                    marks.setdefault((kind, object_id), found.get((kind, object_id)))

    def apply(self, batch: Batch, event: Event, position: int) -> None:
        if isinstance(event, Ticket.Event):
            self._ticket(batch, event, position)
        elif isinstance(event, Reminder.Event):
            self._reminder(batch, event, position)

    # ------------------------------------------------------------------ tickets
    def _ticket(self, batch: Batch, event: Ticket.Event, position: int) -> None:
        key = uuid_text(event.originator_id)
        if isinstance(event, Ticket.Opened):
            batch.put(TICKET_FACTS, {"ticket_id": key, "team_id": uid(event.team_id), "priority": event.priority,
                                     "policy": None, "policy_version": None, "status": "new",
                                     "imported": int(event.imported)})
            if event.imported:
                return  # migrated history is not worked again
            _queue(batch, "route", key, position, team_id=uid(event.team_id))
            _queue(batch, "sla", key, position)
            return
        facts = batch.get(TICKET_FACTS, key)
        if facts is None:  # pragma: no cover - a ticket's first event is Opened
            return
        self._facts(batch, facts, event)
        self._outcome(batch, facts, event)
        if event.imported or facts["imported"]:
            return  # a migrated ticket keeps its history as it was: no routing, clocks or surveys now
        match event:
            case Ticket.Routed():
                _settle(batch, "route", key, position)
                if event.assignee_id is not None:
                    batch.put(ROTATION, {"team_id": str(event.team_id), "agent_id": event.assignee_id,
                                         "position": position})
            case Ticket.Assigned() | Ticket.Transferred() | Ticket.Unassigned() | Ticket.RemovedFromTeam():
                _settle(batch, "route", key, position)  # placed by hand: the router stands aside
            case Ticket.Solved():
                _queue(batch, "survey", key, position)
                _queue(batch, "follow_up", key, position, due_at=ts(event.occurred_at), team_id=facts["team_id"])
                _queue(batch, "auto_close", key, position, due_at=ts(event.occurred_at))
            case Ticket.Reopened():
                _settle(batch, "follow_up", key, position)
                _settle(batch, "auto_close", key, position)
            case Ticket.Closed() | Ticket.MergedInto():
                for kind in ("route", "auto_close", "survey"):
                    _settle(batch, kind, key, position)
            case Ticket.SurveyIssued():
                _settle(batch, "survey", key, position)
            case Ticket.Interaction() if event.direction == Direction.INBOUND:
                closing = batch.get(WORK, "auto_close", key)
                if closing is not None and closing["state"] == "due":
                    closing.update(due_at=ts(event.occurred_at), stamp=position)  # the customer answered: wait again
                    _changed(batch, closing)
        if not isinstance(event, _QUIET):
            _queue(batch, "sla", key, position)

    @staticmethod
    def _facts(batch: Batch, facts: dict[str, Any], event: Ticket.Event) -> None:
        match event:
            case Ticket.Routed():
                facts["team_id"] = str(event.team_id)
                facts["priority"] = event.priority or facts["priority"]
            case Ticket.Transferred():
                facts["team_id"] = str(event.to_team_id)
            case Ticket.RemovedFromTeam():
                facts["team_id"] = None
            case Ticket.Reopened() if facts["status"] == "closed":
                facts["status"] = "open"  # imported history may reopen a closed ticket
            case Ticket.PriorityChanged():
                facts["priority"] = event.priority
            case Ticket.SlaApplied():
                facts["policy"], facts["policy_version"] = event.policy_name, event.policy_version
            case Ticket.Closed() | Ticket.MergedInto():
                facts["status"] = "closed"
            case _:
                return
        batch.touch(TICKET_FACTS, facts)

    @staticmethod
    def _outcome(batch: Batch, facts: dict[str, Any], event: Ticket.Event) -> None:
        if isinstance(event, Ticket.SlaBreached):
            outcome, at = "breached", event.due_at
        elif isinstance(event, Ticket.SlaFulfilled):
            outcome, at = "fulfilled", event.fulfilled_at
        else:
            return
        existing = batch.get(SLA_OUTCOMES, facts["ticket_id"], event.metric, event.cycle)
        if existing is not None and existing["outcome"] == "breached":
            return
        batch.put(SLA_OUTCOMES, {
            "ticket_id": facts["ticket_id"], "metric": event.metric, "cycle": event.cycle, "outcome": outcome,
            "at": ts(at), "team_id": facts["team_id"], "priority": facts["priority"], "policy": facts["policy"],
            "policy_version": event.policy_version,
        })

    # ---------------------------------------------------------------- reminders
    @staticmethod
    def _reminder(batch: Batch, event: Reminder.Event, position: int) -> None:
        key = uuid_text(event.originator_id)
        if isinstance(event, Reminder.Scheduled):
            _queue(batch, "reminder", key, position, due_at=ts(event.due_at), team_id=uid(event.team_id),
                   agent_id=event.agent_id)
            if event.kind == "follow_up" and event.ticket_id is not None:
                _settle(batch, "follow_up", str(event.ticket_id), position)
        elif isinstance(event, Reminder.Fired | Reminder.Done | Reminder.Cancelled):
            _settle(batch, "reminder", key, position)


def makes_work(event: Any) -> bool:
    """Whether the view, given ``event``, may have work for the automation that it had not before: queue a
    row, or put one back to be done (or date one anew, or give the round-robin a new last agent). The
    others (SLA marks and applied terms, a survey issued, a reminder fired, done or cancelled) only record
    facts and SLA outcomes or settle rows: a look right after them finds what a look before them found,
    less what they settled. An event of any other aggregate counts as making work (not this view's to
    tell). See :meth:`WorkflowView._ticket` and :meth:`WorkflowView._reminder`."""
    if isinstance(event, Ticket.Event):
        return not isinstance(event, _QUIET)
    if isinstance(event, Reminder.Event):
        return not isinstance(event, Reminder.Fired | Reminder.Done | Reminder.Cancelled)
    return True


def _queue(
    batch: Batch, kind: str, object_id: str, position: int, due_at: str | None = NOW,
    team_id: str | None = None, agent_id: str | None = None,
) -> None:
    row = batch.get(WORK, kind, object_id)
    if row is not None and kind == "sla":
        row.update(due_at=NOW, state="due", stamp=position)
        _changed(batch, row)
        return
    _changed(batch, {"kind": kind, "object_id": object_id, "due_at": due_at, "state": "due", "stamp": position,
                     "team_id": team_id, "agent_id": agent_id})


def _settle(batch: Batch, kind: str, object_id: str, position: int) -> None:
    row = batch.get(WORK, kind, object_id)
    if row is not None and row["state"] != "done":
        row.update(state="done", stamp=position)
        _changed(batch, row)


def _changed(batch: Batch, row: dict[str, Any]) -> None:
    """Write a work row the batch changed, with its ``todo_at`` as the automation's mark for its stamp says."""
    row["todo_at"] = todo_at(row, batch.get(MARKS, row["kind"], row["object_id"]))
    batch.put(WORK, row)


def todo_at(row: dict[str, Any], mark: dict[str, Any] | None) -> str | None:
    """When the automation is to do a work row: NULL once settled by the log, done or set aside; the mark's
    due instant if the automation put it off (a mark holds while the row's stamp is the one it was made for);
    else the row's own. What ``_EFFECTIVE`` joins, kept in the row so the index holds only work to do."""
    if row["state"] != "due":
        return None
    due: str | None = row["due_at"]
    if mark is not None and mark["stamp"] == row["stamp"]:
        due = mark["due_at"] if mark["state"] == "due" else None
    return due


# ------------------------------------------------------------------ queries
#: A work row as the automation sees it: the view's row, moved on by the automation's mark for it.
_EFFECTIVE = (
    "SELECT w.kind, w.object_id, w.stamp, w.team_id, w.agent_id,"
    " CASE WHEN m.stamp IS NULL THEN w.state ELSE m.state END AS state,"
    " CASE WHEN m.stamp IS NULL THEN w.due_at ELSE m.due_at END AS due_at"
    " FROM {p}tf_work w LEFT JOIN {p}tf_work_marks m"
    " ON m.kind = w.kind AND m.object_id = w.object_id AND m.stamp = w.stamp"
)


def due_work(db: Db, kind: str, until: str, limit: int = DUE_LIMIT) -> list[dict[str, Any]]:
    """Rows of a kind due at or before ``until`` (UTC ISO text), oldest first: the effective rows (see
    ``_EFFECTIVE``), read from the (kind, todo_at, stamp) index, which holds only the rows still to do, in
    its order: the cost follows the rows due, not every row ever queued."""
    return db.all(
        "SELECT kind, object_id, stamp, team_id, agent_id, 'due' AS state, todo_at AS due_at FROM {p}tf_work"
        " WHERE kind = ? AND todo_at IS NOT NULL AND todo_at <= ? ORDER BY todo_at, stamp LIMIT ?",
        (kind, until, limit),
    )


def next_due(db: Db, after: str, before: str) -> str | None:
    """The earliest instant strictly between ``after`` and ``before`` (UTC ISO text) at which some work
    falls due: where an automation stepping a simulated clock must look next (``ticketflow demo``)."""
    # One index seek per kind: the first row still to do after ``after`` (an SLA row queued "now", todo_at
    # "", never falls inside the range).
    first = (
        "(SELECT todo_at FROM {p}tf_work WHERE kind = ? AND todo_at IS NOT NULL AND todo_at > ? AND todo_at < ?"
        " ORDER BY todo_at LIMIT 1)"
    )
    row = db.one(
        "SELECT MIN(due_at) AS due_at FROM ("
        + " UNION ALL ".join(f"SELECT {first} AS due_at" for _ in WORK_KINDS)
        + ") found",
        [value for kind in WORK_KINDS for value in (kind, after, before)],
    )
    return row["due_at"] if row and row["due_at"] else None


def earliest_todo(db: Db) -> dict[str, str | None]:
    """Per kind, the earliest ``todo_at`` of the rows still to do (None: none): :func:`due_work` of a kind
    finds rows until ``until`` exactly when this is at or before it. One index seek per kind."""
    first = "(SELECT todo_at FROM {p}tf_work WHERE kind = ? AND todo_at IS NOT NULL ORDER BY todo_at LIMIT 1)"
    rows = db.all(" UNION ALL ".join(f"SELECT ? AS kind, {first} AS todo_at" for _ in WORK_KINDS),
                  [value for kind in WORK_KINDS for value in (kind, kind)])
    return {row["kind"]: row["todo_at"] for row in rows}


def failed_work(db: Db) -> list[dict[str, Any]]:
    """Work the automation set aside after an unexpected error (an operator looks at these)."""
    return db.all(f"SELECT * FROM ({_EFFECTIVE}) e WHERE e.state = 'failed' ORDER BY e.kind, e.object_id")


def mark_work(db: Db, row: dict[str, Any], state: str, due_at: str | None) -> None:
    """The automation moves a work row on (done, failed, or due again at ``due_at``), for the row as
    it read it: an event that changed the row since (a new ``stamp``) makes the mark moot."""
    db.execute(MARKS.upsert_sql, (row["kind"], row["object_id"], row["stamp"], state, due_at))
    # The row's todo_at as the mark makes it (what a rebuild computes from the same mark), unless the row
    # changed since it was read (an event's new stamp, or settled): then the row stays as the view wrote it.
    db.execute(
        "UPDATE {p}tf_work SET todo_at = ? WHERE kind = ? AND object_id = ? AND stamp = ? AND state = 'due'",
        (due_at if state == "due" else None, row["kind"], row["object_id"], row["stamp"]),
    )


def rotation(db: Db) -> dict[str, str]:
    return {r["team_id"]: r["agent_id"] for r in db.all("SELECT team_id, agent_id FROM {p}tf_rotation")}


def sla_clocks(db: Db, ticket_id: str) -> list[dict[str, Any]]:
    return db.all("SELECT * FROM {p}tf_sla_clocks WHERE ticket_id = ? ORDER BY cycle, metric", (ticket_id,))


#: How many SLA clocks the console's SLA queues look at (see :func:`sla_attention`; the console's "SLA due
#: soon" queue reads them in its tickets statement: ``TicketFilter.sla_due_before``).
ATTENTION_LIMIT = SLA_ATTENTION_LIMIT


def sla_attention(db: Db, due_before: str, limit: int = ATTENTION_LIMIT) -> list[str]:
    """Tickets with a running SLA clock due before ``due_before``, the soonest first, read in index
    order (``state, due_at``) and bounded: at most ``limit`` clocks are read; the caller keeps the tickets
    still open in its scope (the console's "due soon" queue; breached tickets are a tickets-view filter)."""
    sql = "SELECT ticket_id FROM {p}tf_sla_clocks WHERE state = ? AND due_at <= ? ORDER BY due_at LIMIT ?"
    return list(dict.fromkeys(row["ticket_id"] for row in db.all(sql, ["active", due_before, limit])))


def sla_compliance(
    db: Db, period: str = "month", since: str | None = None, until: str | None = None, teams: set[str] | None = None,
    zone: str = "UTC",
) -> list[dict[str, Any]]:
    """Share of SLA targets met, per period (day, month or year, in the desk's time zone ``zone``), team,
    priority and metric.

    ``teams`` limits the rows to a caller's teams (None: every team)."""
    period_sql, period_sql_params = local_period(db, "at", period, zone)
    clauses, params = ["1 = 1"], []
    if teams is not None:
        if not teams:
            return []
        clauses.append(f"team_id IN ({', '.join('?' * len(teams))})")
        params.extend(sorted(teams))
    period_clauses: list[str] = []
    if since:
        period_clauses.append("at >= ?")
    if until:
        period_clauses.append("at < ?")
    period_params = [bound for bound in (since, until) if bound]
    where = " AND ".join(clauses + period_clauses)
    # SQLite reads a period's outcomes from the covering (at, team_id, priority, metric, outcome) index
    # alone. PostgreSQL: from a derived table it cannot see into, grouped by hashing (it would expect a
    # group per ``at`` and sort every outcome on disk).
    table = "{p}tf_sla_outcomes"
    fence = " OFFSET 0" if db.dialect is Dialect.POSTGRES else ""
    rows = db.all(
        "SELECT period, team_id, priority, metric, "
        "SUM(CASE WHEN outcome = 'fulfilled' THEN 1 ELSE 0 END) AS fulfilled, "
        "SUM(CASE WHEN outcome = 'breached' THEN 1 ELSE 0 END) AS breached "
        f"FROM (SELECT {period_sql} AS period, team_id, priority, metric, outcome FROM {table}"
        f" WHERE {where}{fence}) outcomes GROUP BY period, team_id, priority, metric ORDER BY 1, 2, 3, 4",
        [*period_sql_params, *params, *period_params],
    )
    for row in rows:
        total = int(row["fulfilled"]) + int(row["breached"])
        row["fulfilled"], row["breached"] = int(row["fulfilled"]), int(row["breached"])
        row["compliance"] = round(row["fulfilled"] / total, 4) if total else None
    return rows
