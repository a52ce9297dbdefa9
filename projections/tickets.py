"""The tickets view: one row per ticket, current state, indexed for the desk's queues."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar

from projections.erasure import erased_customer, overwrite
from projections.sql import Batch, Db, Table, dumps, preload, ts, uid, uuid_text
from projections.view import Event, Positioned, View
from ticketflow.domain import Customer, Ticket
from ticketflow.domain.values import Direction, Priority, Status

PRIORITY_RANK = {Priority.URGENT: 0, Priority.HIGH: 1, Priority.NORMAL: 2, Priority.LOW: 3}

#: The leading equality columns of the queue indexes: every queue query binds one of these (status
#: always: an absent status filter reads one branch per status), then reads in sort order.
QUEUE_LEADS: tuple[tuple[str, ...], ...] = (
    ("status",), ("team_id", "status"), ("assignee_id", "status"), ("sla_breached", "status"),
)
#: The columns a queue is sorted by (see SORTS).
QUEUE_SORT_COLUMNS = ("created_at", "updated_at", "priority_rank")
#: The filter columns each queue index carries after its sort column and ticket_id, so a branch checks
#: the filters its lead does not bind (priority, type, channel, category; an assignee's branch also the
#: caller's teams) on the index entries it walks, never reading a table row: a queue page is read from
#: its indexes alone, however few of the walked tickets match. (An index's columns change together on
#: every ticket update, so carrying these costs bytes, not another index to write.)
QUEUE_CHECKED = ("priority_rank", "ticket_type", "channel", "category", "sla_breached")
#: The columns a lead leaves for its branches to check besides QUEUE_CHECKED: an assignee's branch the
#: team; a breached branch (the SLA "breached" queue) the team and the assignee.
_LEAD_CHECKED = {"assignee_id": ("team_id",), "sla_breached": ("team_id", "assignee_id")}
#: The breached queue's lead: its indexes are partial (BREACHED), holding the breached tickets alone, so
#: the tickets that never breached (most) cost them no write.
BREACHED_LEAD = ("sla_breached", "status")
#: The condition of the breached queue's partial indexes; a query states it as written (a literal).
BREACHED = "sla_breached = 1"


def _queue_index(lead: tuple[str, ...], column: str) -> tuple[str, ...]:
    return (*lead, column, "ticket_id",
            *(c for c in (*_LEAD_CHECKED.get(lead[0], ()), *QUEUE_CHECKED) if c != column and c not in lead))


QUEUE_INDEXES: tuple[tuple[str, ...], ...] = tuple(
    _queue_index(lead, column) for lead in QUEUE_LEADS if lead != BREACHED_LEAD for column in QUEUE_SORT_COLUMNS
)
#: The breached queue's partial indexes before they left out their constant lead (retired).
_BREACHED_LED_INDEXES: tuple[tuple[str, ...], ...] = tuple(_queue_index(BREACHED_LEAD, c) for c in QUEUE_SORT_COLUMNS)
#: The breached queue's partial indexes: (status, sort column, ticket_id, what a branch checks). Not led by
#: sla_breached, constant in them: PostgreSQL leaves a condition its partial index's own implies out of
#: the index conditions, so an index led by that column was walked from its start by every branch (a
#: branch could not seek its status): at 1,000,000 tickets, 1,220 pages for 61 entries. sla_breached last:
#: SQLite reads a partial index as covering only when it carries the columns of its own condition.
BREACHED_INDEXES: tuple[tuple[str, ...], ...] = tuple((*columns[1:], "sla_breached") for columns in _BREACHED_LED_INDEXES)
#: A queue of tickets chosen elsewhere (the "SLA due soon" queue: at most SLA_ATTENTION_LIMIT tickets of
#: the SLA clocks, by id) reads each ticket's entry here: every column its filters check and it sorts by, so
#: it reads no table row (SQLite: a covering index; PostgreSQL: an index-only scan). The index is partial
#: (LIVE): it holds the tickets still being worked alone, a fifth of a desk that keeps its history, so each
#: of the up to 2,000 probes descends a smaller tree that stays in the database's cache (PostgreSQL at
#: 1,000,000 tickets: 47 MB, three levels, against 227 MB, four levels, holding every ticket), and a solved
#: or closed ticket's updates cost it no write. A queue of given tickets asking for other statuses (none
#: does in the console) reads them by key from the table.
BY_ID_COVERING = ("ticket_id", "status", "team_id", "assignee_id", "priority_rank", "ticket_type", "channel",
                  "category", "created_at", "updated_at", "tags", "sla_breached")
#: The statuses of the tickets being worked (the console's queues ask for these, and its "SLA due soon"
#: queue for some of them), and the condition of BY_ID_COVERING's partial index, as a query states it.
LIVE_STATUSES = (Status.NEW.value, Status.OPEN.value, Status.PENDING.value, Status.ON_HOLD.value)
LIVE = f"status IN ({', '.join(repr(s) for s in LIVE_STATUSES)})"

TICKETS = Table(
    "tf_tickets",
    columns=(
        "ticket_id TEXT NOT NULL",
        "subject TEXT",
        "ticket_type TEXT",
        "category TEXT",
        "priority TEXT",
        "priority_rank INTEGER",
        "status TEXT",
        "channel TEXT",
        "customer_id TEXT",
        "team_id TEXT",
        "assignee_id TEXT",
        "tags TEXT",
        "created_at TEXT",
        "first_reply_at TEXT",
        "updated_at TEXT",
        "solved_at TEXT",
        "closed_at TEXT",
        "reply_count INTEGER",
        "note_count INTEGER",
        "interaction_count INTEGER",
        "work_minutes INTEGER",
        "reopen_count INTEGER",
        "reassignment_count INTEGER",
        "satisfaction INTEGER",
        "merged_into TEXT",
        "imported INTEGER",
        "source_counters TEXT",  # JSON: the source system's counters at the latest imported update (NULL: none)
        "sla_breached INTEGER",  # 1 once any SLA target of the ticket was breached (Ticket.SlaBreached), else 0
        "sla_breached_at TEXT",  # the latest breached target's due instant (NULL: none breached)
        "version INTEGER",
        "position BIGINT",
    ),
    key=("ticket_id",),
    # The queues: one index per (leading equality, sort column) pair, each ending in the sort column and
    # ticket_id (the cursor's tie-breaker). A queue query reads one ordered branch per status (and per
    # team of a multi-team scope) in index order and merges the branches' first pages (see
    # TicketQueries.queue), so no queue sorts more than a page per branch, however big the desk grows.
    indexes=(
        *QUEUE_INDEXES,
        ("customer_id", "created_at"),
        ("created_at", "ticket_id"),
        # Covering the desk-wide reports (volume per team, response times, satisfaction): a period's
        # tickets are read from the index alone, however long the period.
        ("created_at", "team_id", "priority", "first_reply_at", "solved_at", "satisfaction"),
        ("status", "team_id"),  # covering the backlog of the statuses still being worked, desk-wide
    ),
    # A desk-wide "updated since" queue reads the (status, updated_at, ticket_id) branches instead; the
    # breached queue's indexes were whole-table ones before version 6; the by-id covering index held every
    # ticket before it held the live ones alone (LIVE).
    retired_indexes=(("updated_at", "ticket_id"), *_BREACHED_LED_INDEXES, BY_ID_COVERING),
    retired_partial_indexes=_BREACHED_LED_INDEXES,
    partial_indexes=(*((columns, BREACHED) for columns in BREACHED_INDEXES), (BY_ID_COVERING, LIVE)),
)

#: One row per (tag, ticket) with the ticket's status, sort and filter columns, so a queue filtered on a
#: tag walks that tag's tickets in order, however rare the tag, and checks the other filters on the
#: entries of the tag's index alone. A tag taken off a ticket keeps its row with no status (no queue
#: branch reads it).
_TAG_COLUMNS = ("status", "created_at", "updated_at", "priority_rank", "team_id", "assignee_id", "ticket_type",
                "channel", "category", "sla_breached")
TICKET_TAGS = Table(
    "tf_ticket_tags",
    columns=(
        "tag TEXT NOT NULL",
        "ticket_id TEXT NOT NULL",
        "status TEXT",
        "created_at TEXT",
        "updated_at TEXT",
        "priority_rank INTEGER",
        "team_id TEXT",
        "assignee_id TEXT",
        "ticket_type TEXT",
        "channel TEXT",
        "category TEXT",
        "sla_breached INTEGER",
    ),
    key=("tag", "ticket_id"),
    indexes=tuple(("tag", "status", column, "ticket_id", *(c for c in _TAG_COLUMNS[1:] if c != column))
                  for column in QUEUE_SORT_COLUMNS),
)

_STATUS_EVENTS: dict[type[Event], Status] = {
    Ticket.MarkedOpen: Status.OPEN,
    Ticket.Pended: Status.PENDING,
    Ticket.PutOnHold: Status.ON_HOLD,
    Ticket.Solved: Status.SOLVED,
    Ticket.Reopened: Status.OPEN,
    Ticket.Closed: Status.CLOSED,
    Ticket.MergedInto: Status.CLOSED,
}


def status_after(event: Event) -> Status | None:
    event_class = type(event)
    try:
        return _STATUS_BY_CLASS[event_class]
    except KeyError:
        found = _STATUS_BY_CLASS[event_class] = next(
            (status for cls, status in _STATUS_EVENTS.items() if issubclass(event_class, cls)), None
        )
        return found


#: status_after by the event's class, filled as classes come.
_STATUS_BY_CLASS: dict[type, Status | None] = {}


def is_first_reply_candidate(event: Event) -> bool:
    """A public reply from the desk to the customer counts as a reply for response times."""
    return isinstance(event, Ticket.Replied) and event.direction == Direction.OUTBOUND


class TicketsView(View):
    name = "tickets"
    purges_personal_data = True
    tables = (TICKETS, TICKET_TAGS)
    event_types = (Ticket.Event, Customer.Erased)
    #: 2: the tags table (a store built before it has no rows there: `ticketflow rebuild tickets`).
    #: 3: source_counters (imported history's counters; `ticketflow rebuild tickets`).
    #: 4: the queue indexes carry the filter columns (QUEUE_CHECKED), the tag rows too (`ticketflow rebuild tickets`).
    #: 5: sla_breached / sla_breached_at (from Ticket.SlaBreached) and the breached queue's indexes
    #: (`ticketflow rebuild tickets`).
    #: 6: the breached queue's indexes are partial (breached tickets only); a covering index by ticket id
    #: for the "SLA due soon" queue (`ticketflow rebuild tickets`).
    version = 6

    def prepare(self, batch: Batch, events: Sequence[Positioned]) -> None:
        preload(batch, TICKETS, "ticket_id", {uuid_text(e.originator_id) for e, _ in events if isinstance(e, Ticket.Event)})

    def apply(self, batch: Batch, event: Event, position: int) -> None:
        if (customer_id := erased_customer(event)) is not None:
            overwrite(batch, TICKETS, ("subject",), "customer_id = ?", (customer_id,))
            return
        if not isinstance(event, Ticket.Event):
            return
        when = ts(event.occurred_at)
        if isinstance(event, Ticket.Opened):
            batch.put(
                TICKETS,
                {
                    "ticket_id": uuid_text(event.originator_id),
                    "subject": event.subject,
                    "ticket_type": event.ticket_type,
                    "category": event.category,
                    "priority": event.priority,
                    "priority_rank": PRIORITY_RANK[Priority(event.priority)],
                    "status": Status.NEW.value,
                    "channel": event.channel,
                    "customer_id": uid(event.requester_id),
                    "team_id": uid(event.team_id),
                    "assignee_id": None,
                    "tags": dumps(sorted(event.tags)),
                    "created_at": when,
                    "first_reply_at": None,
                    "updated_at": when,
                    "solved_at": None,
                    "closed_at": None,
                    "reply_count": 0,
                    "note_count": 0,
                    "interaction_count": 0,
                    "work_minutes": 0,
                    "reopen_count": 0,
                    "reassignment_count": 0,
                    "satisfaction": None,
                    "merged_into": None,
                    "imported": int(event.imported),
                    "source_counters": None,
                    "sla_breached": 0,
                    "sla_breached_at": None,
                    "version": event.originator_version,
                    "position": position,
                },
            )
            put_tags(batch, batch.get(TICKETS, uuid_text(event.originator_id)) or {}, "[]")
            return
        row = batch.get(TICKETS, uuid_text(event.originator_id))
        if row is None:  # pragma: no cover - a ticket's first event is always Opened
            return
        tags_before = row["tags"]
        row.update(updated_at=when, version=event.originator_version, position=position)
        if counters := getattr(event, "source_counters", None):
            row["source_counters"] = dumps(counters)
        status = status_after(event)
        if status is not None:
            row["status"] = status.value
        match event:
            case Ticket.Solved():
                row["solved_at"] = when
            case Ticket.Reopened():
                row["reopen_count"] += 1
                row["solved_at"] = None
                row["closed_at"] = None  # imported history may reopen a closed ticket
            case Ticket.Closed():
                row["closed_at"] = when
            case Ticket.MergedInto():
                row["closed_at"] = when
                row["merged_into"] = str(event.primary_id)
            case Ticket.Assigned():
                row["assignee_id"] = event.assignee_id
                if event.previous_assignee_id is not None:
                    row["reassignment_count"] += 1
            case Ticket.Unassigned():
                row["assignee_id"] = None
            case Ticket.RemovedFromTeam():
                row["team_id"] = None
            case Ticket.Transferred():
                row["team_id"] = str(event.to_team_id)
                row["assignee_id"] = event.assignee_id
                row["reassignment_count"] += 1
            case Ticket.Routed():
                row["team_id"] = str(event.team_id)
                row["assignee_id"] = event.assignee_id
                if event.priority is not None:
                    row["priority"] = event.priority
                    row["priority_rank"] = PRIORITY_RANK[Priority(event.priority)]
                if event.added_tags:
                    row["tags"] = dumps(sorted(set(json.loads(row["tags"])) | set(event.added_tags)))
            case Ticket.PriorityChanged():
                row["priority"] = event.priority
                row["priority_rank"] = PRIORITY_RANK[Priority(event.priority)]
            case Ticket.Recategorised():
                row["category"] = event.category
                row["ticket_type"] = event.ticket_type
            case Ticket.TagsChanged():
                tags = set(json.loads(row["tags"]))
                row["tags"] = dumps(sorted((tags | set(event.added)) - set(event.removed)))
            case Ticket.Interaction():
                row["interaction_count"] += 1
                if event.public:
                    row["reply_count"] += 1
                if isinstance(event, Ticket.NoteAdded):
                    row["note_count"] += 1
                if is_first_reply_candidate(event) and row["first_reply_at"] is None:
                    row["first_reply_at"] = when
            case Ticket.WorkLogged():
                row["work_minutes"] += event.minutes
            case Ticket.Rated():
                row["satisfaction"] = event.score
            case Ticket.SlaBreached():
                # A breach stays (as the SLA outcomes keep it): the ticket is in the "breached" queue
                # while it is worked; the latest breach instant is kept (ISO text in UTC sorts in time).
                row["sla_breached"] = 1
                breached_at = ts(event.due_at)
                if row["sla_breached_at"] is None or breached_at > row["sla_breached_at"]:
                    row["sla_breached_at"] = breached_at
        batch.touch(TICKETS, row)
        put_tags(batch, row, tags_before)


def put_tags(batch: Batch, row: dict[str, Any], tags_before: str) -> None:
    """Keep the ticket's tag rows in step with its row (status and sort columns; a removed tag's
    row loses its status)."""
    if row.get("tags", "[]") == "[]" and tags_before == "[]":
        return
    now = _tag_set(row["tags"])
    for tag in now:
        batch.put(TICKET_TAGS, {"tag": tag, "ticket_id": row["ticket_id"], **{c: row[c] for c in _TAG_COLUMNS}})
    if tags_before != row["tags"]:
        for tag in _tag_set(tags_before) - now:
            batch.put(TICKET_TAGS, {"tag": tag, "ticket_id": row["ticket_id"], "status": None,
                                    **{c: row[c] for c in _TAG_COLUMNS[1:]}})


@lru_cache(maxsize=4096)
def _tag_set(tags: str) -> frozenset[str]:
    """The tags of a row's ``tags`` JSON (a few distinct lists recur across every ticket)."""
    return frozenset(json.loads(tags))


# ------------------------------------------------------------------ queue queries
SORTS: dict[str, tuple[str, bool]] = {
    "created_at": ("created_at", False),  # oldest first
    "-created_at": ("created_at", True),
    "updated_at": ("updated_at", False),
    "-updated_at": ("updated_at", True),
    "priority": ("priority_rank", False),  # most urgent first
}


@dataclass(frozen=True)
class TicketFilter:
    status: tuple[str, ...] = ()
    team_id: str | None = None
    assignee_id: str | None = None
    unassigned: bool = False
    priority: tuple[str, ...] = ()
    ticket_type: str | None = None
    category: str | None = None
    customer_id: str | None = None
    channel: str | None = None
    tag: str | None = None  # tickets carrying this tag
    ticket_ids: tuple[str, ...] | None = None  # only these tickets (a queue chosen elsewhere)
    #: Only tickets with a running SLA clock due at or before this (UTC ISO text): the console's "SLA due
    #: soon" queue, read from the workflow view's clocks (the SLA_ATTENTION_LIMIT soonest) in the same statement.
    sla_due_before: str | None = None
    sla_breached: bool = False  # only tickets with a breached SLA target (the console's "breached" queue)
    updated_since: datetime | None = None
    teams: tuple[str, ...] | None = None  # a caller's team scope: only these teams' tickets
    include_teamless: bool = False  # and the tickets no team owns yet (the supervisors' triage)


#: How many running SLA clocks, the soonest due, the "SLA due soon" queue looks at (``sla_due_before``).
SLA_ATTENTION_LIMIT = 2000
#: The tickets of the running SLA clocks due by a bound, soonest first and bounded (the workflow view's
#: ``tf_sla_clocks``, read from its (state, due_at, ticket_id) index alone).
_DUE_SOON = ("SELECT ticket_id FROM {workflow}tf_sla_clocks WHERE state = 'active' AND due_at <= ?"
             " ORDER BY due_at LIMIT ?")

#: A LIMIT no set of rows reaches (it only keeps a subquery apart from its outer query).
UNREACHED = 1 << 62


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(sort: str, row: dict[str, Any]) -> str:
    column, _ = SORTS[sort]
    raw = json.dumps([sort, row[column], row["ticket_id"]], ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        cursor_sort, value, ticket_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(ticket_id, str) or not (
            isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10)
        ):
            raise TypeError
    except (ValueError, TypeError):
        raise ValueError("the cursor is not one this service issued") from None
    if cursor_sort != sort:
        raise ValueError(f"the cursor was issued for sort {cursor_sort!r}, not {sort!r}")
    return value, str(ticket_id)


def _ranks(priorities: tuple[str, ...]) -> list[int]:
    """The ranks of the named priorities (a name that is none matches no ticket)."""
    known = {p.value: rank for p, rank in PRIORITY_RANK.items()}
    return sorted({known[p] for p in priorities if p in known})


class TicketQueries:
    """Queue queries over the tickets view; every one uses an index."""

    columns: ClassVar[str] = "*"

    @staticmethod
    def get(db: Db, ticket_id: str) -> dict[str, Any] | None:
        return db.one("SELECT * FROM {p}tf_tickets WHERE ticket_id = ?", (ticket_id,))

    @staticmethod
    def teams_of_customer(db: Db, customer_id: str) -> list[tuple[str, str | None]]:
        """(ticket id, team id) of each ticket the customer requested (for the customer scope rule)."""
        rows = db.all("SELECT ticket_id, team_id FROM {p}tf_tickets WHERE customer_id = ?", (customer_id,))
        return [(r["ticket_id"], r["team_id"]) for r in rows]

    @staticmethod
    def _where(
        where: TicketFilter, bound: frozenset[str] = frozenset(), t: str = "", sort_column: str = "updated_at",
        by_key: bool = False,
    ) -> tuple[list[str], list[Any]] | None:
        """The filter's SQL conditions and parameters (None: it matches no ticket), leaving out the
        fields in ``bound`` (a queue branch binds them as its index's leading columns); ``t``: the
        tickets table's alias and a dot, when the statement joins another table; ``sort_column``: the
        column the rows are read in order of; ``by_key``: the rows are read by key (ticket ids, customer)."""
        clauses: list[str] = []
        params: list[Any] = []
        chosen = where.ticket_ids is not None or where.sla_due_before is not None
        if where.status and "status" not in bound:
            # Given tickets (ids, or the due-soon clocks'): `|| ''` so the statuses are checked on each
            # ticket read by id, never walked in a status index with the ids as a filter (PostgreSQL did);
            # when they are all live ones, LIVE as written too, so the ids probe the live tickets' partial
            # covering index (BY_ID_COVERING).
            if chosen and set(where.status) <= set(LIVE_STATUSES):
                clauses.append(f"{t}{LIVE}")
            status = f"{t}status || ''" if chosen else f"{t}status"
            clauses.append(f"{status} IN ({', '.join('?' * len(where.status))})")
            params.extend(where.status)
        if where.priority and "priority" not in bound:
            # On the rank, which every queue index carries (QUEUE_CHECKED); `+`: a check on each entry
            # walked in order, never a range some planner would read whole and sort.
            ranks = _ranks(where.priority)
            if not ranks:
                return None
            clauses.append(f"+{t}priority_rank IN ({', '.join('?' * len(ranks))})")
            params.extend(ranks)
        if where.ticket_ids is not None:
            if not where.ticket_ids:
                return None
            clauses.append(f"{t}ticket_id IN ({', '.join('?' * len(where.ticket_ids))})")
            params.extend(where.ticket_ids)
        if where.sla_due_before is not None:
            clauses.append(f"{t}ticket_id {{in(}}{_DUE_SOON}{{)in}}")
            params.extend([where.sla_due_before, SLA_ATTENTION_LIMIT])
        if where.tag is not None and "tag" not in bound:
            clauses.append(f"{t}tags LIKE ? ESCAPE '\\'")  # tags: a JSON array of strings
            params.append("%" + json.dumps(where.tag, ensure_ascii=False).replace("\\", "\\\\").replace("%", "\\%")
                          .replace("_", "\\_") + "%")
        for name in ("team_id", "assignee_id", "ticket_type", "category", "customer_id", "channel"):
            value = getattr(where, name)
            if value is not None and name not in bound:
                clauses.append(f"{t}{name} = ?")
                params.append(value)
        if where.teams is not None and where.team_id is not None:
            if where.team_id not in where.teams:  # one team asked for, outside the caller's scope
                return None
        elif where.teams is not None and "teams" not in bound:
            scope = [f"{t}team_id IN ({', '.join('?' * len(where.teams))})"] if where.teams else []
            if where.include_teamless:
                scope.append(f"{t}team_id IS NULL")
            if not scope:
                return None
            clauses.append("(" + " OR ".join(scope) + ")")
            params.extend(where.teams)
        if where.unassigned and "unassigned" not in bound:
            clauses.append(f"{t}assignee_id IS NULL")
        if where.sla_breached and "sla_breached" not in bound:
            # Read by key (given tickets, one customer's): checked on each (`+`: so no planner reads the
            # breached queue's partial indexes whole instead). Otherwise as those indexes state it.
            clauses.append(f"+{t}{BREACHED}" if by_key else f"{t}{BREACHED}")
        if where.updated_since is not None:
            # A range the queue's index walks when it is sorted by update; otherwise a check on each row
            # walked in order (`|| ''`: no index serves it, so no planner reads the range and sorts it).
            ranged = sort_column == "updated_at"
            clauses.append(f"{t}updated_at >= ?" if ranged else f"{t}updated_at || '' >= ?")
            params.append(ts(where.updated_since))
        return clauses, params

    @staticmethod
    def _branches(where: TicketFilter) -> tuple[tuple[str, ...], list[tuple[Any, ...]], frozenset[str]] | None:
        """How a queue is read: the leading columns of the index it walks, one tuple of their values per
        branch (None: IS NULL), and the filter fields those bind. None: the filter matches no ticket."""
        statuses = sorted(set(where.status)) if where.status else [s.value for s in Status]
        if where.tag is not None:  # however rare the tag, its own rows, which carry every filter's column
            return ("tag", "status"), [(where.tag, s) for s in statuses], frozenset({"tag", "status"})
        if where.assignee_id is not None:
            return ("assignee_id", "status"), [(where.assignee_id, s) for s in statuses], frozenset({"assignee_id", "status"})
        if where.unassigned:
            return ("assignee_id", "status"), [(None, s) for s in statuses], frozenset({"unassigned", "status"})
        if where.sla_breached:  # the breached tickets alone, however few; their entries carry team and assignee
            return ("sla_breached", "status"), [(1, s) for s in statuses], frozenset({"sla_breached", "status"})
        if where.team_id is not None:
            return ("team_id", "status"), [(where.team_id, s) for s in statuses], frozenset({"team_id", "status"})
        if where.teams is not None:
            teams: list[str | None] = [*sorted(set(where.teams)), *([None] if where.include_teamless else [])]
            if not teams:
                return None
            return ("team_id", "status"), [(t, s) for t in teams for s in statuses], frozenset({"teams", "status"})
        return ("status",), [(s,) for s in statuses], frozenset({"status"})

    @staticmethod
    def page_query(
        where: TicketFilter, sort: str = "created_at", limit: int = 50, cursor: str | None = None,
    ) -> tuple[str, list[Any]] | None:
        """The statement selecting (sort value, ticket id) of a queue page's rows and one more, in order;
        None when the filter matches no ticket.

        A queue chosen elsewhere (``ticket_ids``; ``sla_due_before``: the tickets of at most
        SLA_ATTENTION_LIMIT clocks, joined in the statement) or one customer's tickets is read by key
        and sorted: a set bounded by the filter, not by the desk. Any other queue reads
        one branch per status (and per team of a multi-team scope), each walking its index in sort
        order from the cursor and stopping after a page; the branches' pages are merged. The
        remaining filters (priority, type, tag, ...) are checked on the rows as each branch walks."""
        if sort not in SORTS:
            raise ValueError(f"unknown sort {sort!r}; one of {', '.join(SORTS)}")
        column, descending = SORTS[sort]
        order = "DESC" if descending else "ASC"
        after: list[Any] = []
        if cursor is not None:
            value, ticket_id = decode_cursor(cursor, sort)
            after = [value, ticket_id]
        keyset = f"({column}, ticket_id) {'<' if descending else '>'} (?, ?)"
        if where.ticket_ids is not None or where.sla_due_before is not None or where.customer_id is not None:
            found = TicketQueries._where(where, by_key=True)
            if found is None:
                return None
            clauses, params = found
            if after:
                clauses.append(keyset)
                params.extend(after)
            # The subquery's LIMIT (never reached) fences it off from the ORDER BY: both databases then
            # read the keys or the customer's index, rather than walking a sort-order index past every
            # other ticket to find these.
            sql = (f"SELECT sort_value, ticket_id FROM (SELECT {column} AS sort_value, ticket_id FROM {{p}}tf_tickets"
                   f" WHERE {' AND '.join(clauses)} LIMIT ?) AS bounded ORDER BY sort_value {order}, ticket_id {order} LIMIT ?")
            return sql, [*params, UNREACHED, limit + 1]
        plan = TicketQueries._branches(where)
        if plan is None:
            return None
        lead, branches, bound = plan
        if column == "priority_rank" and where.priority:
            # Sorted by priority and filtered on it: a branch per rank, each reading only that rank's
            # entries (in ticket_id order), rather than walking past the other ranks' tickets.
            ranks = _ranks(where.priority)
            if not ranks:
                return None
            lead = (*lead, column)
            branches = [(*values, rank) for values in branches for rank in ranks]
            bound = bound | {"priority"}
        tagged = lead[0] == "tag"  # walk the tag's rows, which carry every column the other filters check
        found = TicketQueries._where(where, bound, "g." if tagged else "", column)
        if found is None:
            return None
        residual, residual_params = found
        g = "g." if tagged else ""
        source = "{p}tf_ticket_tags g" if tagged else "{p}tf_tickets"
        past = "<" if descending else ">"
        ordering = ", ".join(f"{g}{name} {order}" for name in dict.fromkeys((*lead, column, "ticket_id")))
        statements, params = [], []
        for values in branches:
            # The breached lead as its partial indexes state it (a literal: see BREACHED); the others bound.
            equal = [f"{g}{BREACHED}" if name == "sla_breached" else f"{g}{name} = ?" if value is not None
                     else f"{g}{name} IS NULL" for name, value in zip(lead, values)]
            equal_params = [v for name, v in zip(lead, values) if v is not None and name != "sla_breached"]
            ranged: list[str] = []
            range_params: list[Any] = []
            if lead[-1] == column:
                # A branch of one sort value (a priority rank), written as a range rather than an equality:
                # the order then still names the rank, so no planner walks another index in ticket_id
                # order instead. The cursor is past the rank (no branch), at it, or before it.
                rank = equal_params.pop()
                equal = equal[:-1]
                if after and rank == after[0]:
                    ranged = [f"({g}{column}, {g}ticket_id) {past} (?, ?)", f"{g}{column} {'>=' if descending else '<='} ?"]
                    range_params = [*after, rank]
                elif after and (rank < after[0]) != descending:
                    continue
                else:
                    ranged, range_params = [f"{g}{column} BETWEEN ? AND ?"], [rank, rank]
            elif after:
                ranged, range_params = [f"({g}{column}, {g}ticket_id) {past} (?, ?)"], after
            statements.append(f"SELECT {g}{column} AS sort_value, {g}ticket_id AS ticket_id FROM {source}"
                              f" WHERE {' AND '.join(equal + residual + ranged)} ORDER BY {ordering} LIMIT ?")
            params.extend([*equal_params, *residual_params, *range_params, limit + 1])
        if not statements:
            return None
        if len(statements) == 1:
            return statements[0], params
        merged = " UNION ALL ".join(f"SELECT sort_value, ticket_id FROM ({sql}) AS branch{i}"
                                    for i, sql in enumerate(statements))
        return merged + f" ORDER BY sort_value {order}, ticket_id {order} LIMIT ?", [*params, limit + 1]

    @staticmethod
    def queue(db: Db, where: TicketFilter, sort: str = "created_at", limit: int = 50, cursor: str | None = None) -> Page:
        query = TicketQueries.page_query(where, sort, limit, cursor)
        if query is None:
            return Page([], None)
        keys = db.all(*query)
        more = len(keys) > limit
        keys = keys[:limit]
        if not keys:
            return Page([], None)
        ids = [key["ticket_id"] for key in keys]
        found = {row["ticket_id"]: row for row in
                 db.all(f"SELECT * FROM {{p}}tf_tickets WHERE ticket_id IN ({', '.join('?' * len(ids))})", ids)}
        rows = [found[ticket_id] for ticket_id in ids if ticket_id in found]
        last = {SORTS[sort][0]: keys[-1]["sort_value"], "ticket_id": keys[-1]["ticket_id"]}
        return Page(rows, encode_cursor(sort, last) if more else None)

    @staticmethod
    def count(db: Db, where: TicketFilter, cap: int | None = None) -> int:
        """How many tickets the filter matches; with ``cap``, counting stops past it (a queue shows
        "10,000+", and its count costs at most ``cap`` index entries however big the desk grows)."""
        found = TicketQueries._where(where)
        if found is None:
            return 0
        clauses, params = found
        sql = " WHERE " + " AND ".join(clauses) if clauses else ""
        if cap is not None:
            row = db.one("SELECT COUNT(*) AS n FROM (SELECT 1 FROM {p}tf_tickets" + sql + " LIMIT ?) capped",
                         [*params, cap + 1])
            return int(row["n"]) if row else 0
        row = db.one("SELECT COUNT(*) AS n FROM {p}tf_tickets" + sql, params)
        return int(row["n"]) if row else 0

    @staticmethod
    def count_by(db: Db, *columns: str) -> list[dict[str, Any]]:
        allowed = {"status", "team_id", "priority", "ticket_type", "category", "channel", "assignee_id"}
        if not columns or set(columns) - allowed:
            raise ValueError(f"count by any of {sorted(allowed)}")
        names = ", ".join(columns)
        return db.all(f"SELECT {names}, COUNT(*) AS tickets FROM {{p}}tf_tickets GROUP BY {names} ORDER BY {names}")
