"""Every queue the API and the console can ask for reads its index in order: no plan scans a whole
view table or sorts more than a page per branch (EXPLAIN on SQLite and PostgreSQL).

The filter combinations are enumerated from the fields of ``TicketFilter`` (what the API's
``GET /api/v1/tickets`` and the console's queues build), so a filter added there is checked here
without being listed: every field alone, every pair of fields, each with every sort (with a cursor too for single
fields and the console's queues). The view holds a few thousand seeded rows (analysed), opened in an
order other than the rows'. PostgreSQL is told to avoid whole-table scans, bitmap scans and sorts
wherever it has another way (``enable_* = off``), so a scan or sort left in a plan is one the statement
cannot do without: the check is about the statement's shape, not about the costs of a tiny table
(``bench/bench_queues.py`` prints the plans the planners pick at 1,000,000 rows).
"""

from __future__ import annotations

import itertools
import json
import random
import re
import typing
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from operator import itemgetter
from typing import Any
from uuid import UUID

import pytest

from projections.readside import ReadSide
from projections.sql import Db, Dialect, dumps, ts
from projections.tickets import (
    BREACHED,
    BY_ID_COVERING,
    LIVE,
    LIVE_STATUSES,
    PRIORITY_RANK,
    SLA_ATTENTION_LIMIT,
    SORTS,
    TICKET_TAGS,
    TICKETS,
    TicketFilter,
    TicketQueries,
    encode_cursor,
)
from projections.workflow import SLA_CLOCKS
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Priority, Status, TicketType

TEAMS = [str(UUID(int=i + 1)) for i in range(4)]
AGENTS = [f"agent{i}" for i in range(8)]
CUSTOMERS = [str(UUID(int=1000 + i)) for i in range(200)]
TAGS = ["billing", "vip", "rare"]
ROWS = 2000
#: Values for the fields whose type alone does not say what a real one looks like; any other field
#: gets one from its type (see ``example``).
KNOWN: dict[str, Any] = {
    "status": ("new", "open"),
    "priority": ("urgent", "high"),
    "team_id": TEAMS[0],
    "teams": (TEAMS[0], TEAMS[1]),
    "assignee_id": AGENTS[0],
    "customer_id": CUSTOMERS[0],
    "ticket_type": TicketType.INCIDENT.value,
    "channel": Channel.EMAIL.value,
    "category": "login",
    "tag": "rare",
    "ticket_ids": tuple(str(UUID(int=10_000 + i)) for i in range(0, 40, 2)),
    "sla_due_before": ts(datetime(2026, 3, 1, 4, tzinfo=UTC)),
}


def example(name: str, kind: Any) -> Any:
    """A value for filter field ``name`` of type ``kind`` that narrows the queue."""
    if name in KNOWN:
        return KNOWN[name]
    options = set(typing.get_args(kind)) - {type(None)} or {kind}
    if bool in options:
        return True
    if datetime in options:
        return datetime(2026, 6, 1, tzinfo=UTC)
    if str in options:
        return "x"
    if any(typing.get_origin(o) is tuple for o in options):
        return ("x", "y")
    raise AssertionError(f"TicketFilter.{name}: give this test an example value of {kind}")


def filters() -> list[TicketFilter]:
    hints = typing.get_type_hints(TicketFilter)
    values = {f.name: example(f.name, hints[f.name]) for f in fields(TicketFilter)}
    chosen = [TicketFilter()]
    for size in (1, 2):
        chosen += [TicketFilter(**{n: values[n] for n in names}) for names in itertools.combinations(values, size)]
    # The console's queues as an agent sees them: scoped to their teams and triage, several statuses.
    scope: dict[str, Any] = {"teams": (TEAMS[0], TEAMS[1]), "include_teamless": True}
    chosen += [
        TicketFilter(**scope, assignee_id=AGENTS[0], status=("new", "open", "pending", "on_hold")),
        TicketFilter(**scope, unassigned=True, status=("new", "open", "on_hold")),
        TicketFilter(**scope, status=("pending",), priority=("urgent",), tag="vip"),
        TicketFilter(**scope, ticket_ids=values["ticket_ids"], status=("new", "open", "on_hold")),
        TicketFilter(**scope, sla_due_before=values["sla_due_before"], status=("new", "open", "on_hold")),
        TicketFilter(**scope, sla_breached=True, status=("new", "open", "on_hold")),
        TicketFilter(**scope, status=("new", "open"), tag="rare", channel="email", ticket_type="incident"),
    ]
    return chosen


def seed(read_side: ReadSide) -> None:
    """A deterministic desk: every status, team (and none), agent (and none), tag and priority."""
    rng, late = random.Random(14), random.Random(15)  # late: which tickets breached an SLA target
    tickets, tags = [], []
    for i in range(ROWS):
        status, priority = rng.choice(list(Status)).value, rng.choice(list(Priority))
        breached_at = ts(datetime(2026, 1, 2 + late.randrange(20), tzinfo=UTC)) if late.random() < 0.3 else None
        chosen = [tag for tag in TAGS if rng.random() < {"billing": 0.2, "vip": 0.05, "rare": 0.005}[tag]]
        row = dict.fromkeys(TICKETS.column_names) | {
            "ticket_id": str(UUID(int=10_000 + i)), "subject": f"工单 {i}", "status": status,
            "ticket_type": rng.choice(list(TicketType)).value, "category": rng.choice(["login", "vpn", "mail"]),
            "priority": priority.value, "priority_rank": PRIORITY_RANK[priority], "channel": rng.choice(list(Channel)).value,
            "customer_id": rng.choice(CUSTOMERS), "team_id": rng.choice([*TEAMS, None]),
            "assignee_id": rng.choice([*AGENTS, None]), "tags": dumps(chosen),
            # Opened in an order other than the rows' (as imported history is): no index is the heap's order.
            "created_at": ts(datetime(2026, 1, 1, tzinfo=UTC).replace(microsecond=rng.randrange(10**6))),
            "updated_at": ts(datetime(2026, 2, 1, tzinfo=UTC).replace(microsecond=rng.randrange(10**6))),
            "sla_breached": int(breached_at is not None), "sla_breached_at": breached_at,
            "imported": 0, "version": 1, "position": i + 1,
        }
        tickets.append([row[c] for c in TICKETS.column_names])
        tags += [[{"tag": tag, **row}[c] for c in TICKET_TAGS.column_names] for tag in chosen]
    # Stored in an order other than the ticket ids' too (a desk's ids are random UUIDs): reading given
    # tickets by id then costs a table page per ticket, as it does in service.
    random.Random(16).shuffle(tickets)
    store = read_side.stores["tickets"]
    with store._transaction(commit=True) as cursor:
        db = Db(cursor, store.dialect, store.prefix)
        db.executemany(TICKETS.upsert_sql, tickets)
        db.executemany(TICKET_TAGS.upsert_sql, tags)
        cursor.execute(f"ANALYZE {store.prefix}tf_tickets")
        cursor.execute(f"ANALYZE {store.prefix}tf_ticket_tags")
    # An SLA clock per ticket (the automation's bookkeeping in the workflow view): running, paused, met or
    # breached, due from 2026-02-28 12:00 to 2026-03-02 12:00 (the "due soon" bound: 2026-03-01 04:00).
    clock_rng = random.Random(17)
    clocks = []
    for i in range(ROWS):
        due = datetime(2026, 2, 28, 12, tzinfo=UTC) + timedelta(minutes=clock_rng.randrange(2 * 24 * 60))
        row = dict.fromkeys(SLA_CLOCKS.column_names) | {
            "ticket_id": str(UUID(int=10_000 + i)), "metric": "resolution", "cycle": "0",
            "state": clock_rng.choice(["active", "active", "paused", "fulfilled", "breached"]), "due_at": ts(due)}
        clocks.append([row[c] for c in SLA_CLOCKS.column_names])
    workflow = read_side.stores["workflow"]
    with workflow._transaction(commit=True) as cursor:
        Db(cursor, workflow.dialect, workflow.prefix).executemany(SLA_CLOCKS.upsert_sql, clocks)
        cursor.execute(f"ANALYZE {workflow.prefix}tf_sla_clocks")


def a_cursor(sort: str) -> str:
    """A cursor in the middle of the seeded rows (see ``seed``), so rows lie on both sides of it."""
    column, _ = SORTS[sort]
    middle = {"created_at": ts(datetime(2026, 1, 1, microsecond=500_000, tzinfo=UTC)),
              "updated_at": ts(datetime(2026, 2, 1, microsecond=500_000, tzinfo=UTC)), "priority_rank": 2}
    return encode_cursor(sort, {column: middle[column], "ticket_id": str(UUID(int=10_500))})


_TABLE_SEARCH = re.compile(r"^(SEARCH|SCAN) (tf_tickets|tf_ticket_tags|tf_sla_clocks|t|g)\b")
_BOUNDED_SQLITE = re.compile(r"\((ticket_id|customer_id)=\?")


def sqlite_problems(plan: list[dict[str, Any]]) -> list[str]:
    """A table scanned whole, or sorted after reading more than one branch's page of rows."""
    problems = [f"full scan: {row['detail']}" for row in plan if _TABLE_SEARCH.match(row["detail"])
                and row["detail"].startswith("SCAN")]
    for row in plan:
        if "TEMP B-TREE" in row["detail"]:
            siblings = [r["detail"] for r in plan if r["parent"] == row["parent"] and _TABLE_SEARCH.match(r["detail"])]
            if any(not _BOUNDED_SQLITE.search(s) for s in siblings):
                problems.append(f"sorts what it read from {siblings}")
    return problems


_OUR_TABLES = {"tf_tickets", "tf_ticket_tags", "tf_sla_clocks"}
_BOUNDED_PG = re.compile(r"^\(+(\w+\.)?(ticket_id|customer_id) = ")
#: The leading column of each index of the queues' tables, by its name (PostgreSQL names its keys ..._pkey).
_LEADING = {
    **{table.index_name(columns, partial): columns[0] for table in (TICKETS, TICKET_TAGS, SLA_CLOCKS)
       for columns, partial in (*((c, False) for c in table.indexes), *((c, True) for c, _ in table.partial_indexes))},
    **{f"{table.name}_pkey": table.key[0] for table in (TICKETS, TICKET_TAGS, SLA_CLOCKS)},
}


def _scans(node: dict[str, Any], limited: bool = False) -> list[tuple[dict[str, Any], bool]]:
    """Each scan under ``node``, and whether a Limit stands between it and ``node``."""
    if node["Node Type"] in ("Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Index Scan", "Bitmap Heap Scan"):
        found = [(node, limited)]
    else:
        found = []
    for child in node.get("Plans", []):
        found += _scans(child, limited or node["Node Type"] == "Limit")
    return found


def postgres_problems(plan: dict[str, Any]) -> list[str]:
    problems = []
    for scan, _ in _scans(plan):
        index = scan.get("Index Name", "")
        ours = scan.get("Relation Name") in _OUR_TABLES or index.startswith(("tf_tickets", "tf_ticket_tags", "tf_sla_clocks"))
        if ours and scan["Node Type"] == "Seq Scan":
            problems.append(f"full scan of {scan['Relation Name']}")
        if ours and scan["Node Type"] in ("Index Scan", "Index Only Scan", "Bitmap Index Scan") and "Index Cond" not in scan:
            problems.append(f"whole index {index} read")
        elif ours and index and not re.search(rf"\b{_LEADING[index]}\b", scan.get("Index Cond", "")):
            # A condition on a later column only: PostgreSQL cannot seek with it, so it reads the index from
            # its start (a partial index led by the column its condition fixes did: the condition is left
            # out of the index conditions, as the index's own implies it).
            problems.append(f"index {index} read from its start (no condition on {_LEADING[index]})")

    def sorts(node: dict[str, Any]) -> None:
        if node["Node Type"] in ("Sort", "Incremental Sort"):
            for scan, limited in _scans(node):
                if scan["Node Type"] == "Bitmap Heap Scan" or limited:
                    continue
                if not _BOUNDED_PG.match(scan.get("Index Cond", "")):
                    problems.append(f"sorts what {scan['Node Type']} {scan.get('Index Name', '')} read")
        for child in node.get("Plans", []):
            sorts(child)

    sorts(plan)
    return problems


def vacuum(settings: Settings, prefix: str) -> None:
    """PostgreSQL: the visibility map autovacuum keeps in service (an index-only scan then skips the heap,
    and the planner knows it)."""
    import psycopg

    env = settings.eventsourcing_env()
    with psycopg.connect(host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"], dbname=env["POSTGRES_DBNAME"],
                         user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"] or None, autocommit=True) as conn:
        for table in ("tf_tickets", "tf_ticket_tags", "tf_sla_clocks"):
            conn.execute(f"VACUUM ANALYZE {prefix}{table}")


@pytest.fixture
def seeded(shared_store_settings: Settings) -> Any:
    desk = TicketDesk(shared_store_settings, clock=FakeClock(datetime(2026, 3, 1, tzinfo=UTC)))
    read_side = ReadSide(desk, ["tickets", "workflow"])
    seed(read_side)
    if read_side.stores["tickets"].dialect is Dialect.POSTGRES:
        vacuum(shared_store_settings, read_side.stores["tickets"].prefix)
    yield read_side
    read_side.close()
    desk.close()


def test_every_queue_filter_sort_and_cursor_reads_its_index_in_order(seeded: ReadSide) -> None:
    dialect = seeded.stores["tickets"].dialect
    chosen = filters()
    # A cursor adds the same keyset condition to every branch: checked on each field alone and each console queue.
    with_cursor = [w for w in chosen if sum(1 for v in vars(w).values() if v not in (None, (), False)) != 2]
    combos: list[tuple[TicketFilter, str, str | None]] = [(where, sort, None) for where in chosen for sort in SORTS]
    combos += [(where, sort, a_cursor(sort)) for where in with_cursor for sort in SORTS]

    def explain(db: Db) -> list[str]:
        failures = []
        if dialect is Dialect.POSTGRES:
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort", "enable_incremental_sort"):
                db.execute(f"SET LOCAL {setting} = off")
        for where, sort, cursor in combos:
            query = TicketQueries.page_query(where, sort, 50, cursor)
            if query is None:
                continue
            sql, params = query
            if dialect is Dialect.POSTGRES:
                row = db.one("EXPLAIN (FORMAT JSON) " + sql, params)
                assert row is not None
                document = next(iter(row.values()))
                plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
                problems = postgres_problems(plan)
            else:
                problems = sqlite_problems(db.all("EXPLAIN QUERY PLAN " + sql, params))
            if problems:
                failures.append(f"{where} sort={sort} cursor={cursor is not None}: {sorted(set(problems))}")
        return failures

    failures = seeded.read("tickets", explain)
    assert len(combos) > 600
    assert not failures, f"{len(failures)} queue plans read more than their index order:\n" + "\n".join(failures[:8])


#: The filters a queue checks on the entries of the index it walks (the lead's columns, QUEUE_CHECKED, a
#: tag's rows' columns; a queue of given tickets, the "SLA due soon" one, on BY_ID_COVERING's, which holds
#: the live tickets alone, so such a queue is asked for live statuses here, as the console does): one
#: customer's tickets are read by key.
_FROM_INDEX_ALONE = {"status", "teams", "include_teamless", "team_id", "assignee_id", "unassigned", "priority",
                     "ticket_type", "channel", "category", "updated_since", "tag", "sla_breached", "ticket_ids",
                     "sla_due_before"}


def test_a_queue_on_any_placement_priority_type_channel_category_or_sla_list_is_read_from_its_indexes_alone(
    seeded: ReadSide,
) -> None:
    """However few of the tickets a branch walks match the filters, it reads no table row: each filter
    its index does not lead with is checked on the index entry (SQLite: a covering index; PostgreSQL:
    an index-only scan)."""
    dialect = seeded.stores["tickets"].dialect
    # Given ids and the due-soon clocks together (no caller combines them): two key sets, probed on
    # whichever index (PostgreSQL picks the primary key); each alone is checked here.
    chosen = [w for w in filters() if {n for n, v in vars(w).items() if v not in (None, (), False)} <= _FROM_INDEX_ALONE
              and (w.ticket_ids is None or w.sla_due_before is None)]
    chosen = [replace(w, status=w.status or LIVE_STATUSES) if (w.ticket_ids is not None or w.sla_due_before is not None)
              and not set(w.status or LIVE_STATUSES) - set(LIVE_STATUSES) else w for w in chosen]
    chosen = [w for w in chosen if (w.ticket_ids is None and w.sla_due_before is None) or w.status]
    chosen.append(TicketFilter(teams=(TEAMS[0], TEAMS[1]), status=("new", "open", "pending", "on_hold"),
                               ticket_type="incident", channel="email", priority=("urgent", "high"), category="login"))
    chosen.append(TicketFilter(teams=(TEAMS[0], TEAMS[1]), include_teamless=True, tag="vip", ticket_type="incident",
                               channel="email", priority=("urgent", "high"), category="login", assignee_id=AGENTS[1]))
    combos = [(where, sort, cursor) for where in chosen for sort in SORTS for cursor in (None, a_cursor(sort))
              if where.updated_since is None or SORTS[sort][0] == "updated_at"]

    def explain(db: Db) -> list[str]:
        failures = []
        if dialect is Dialect.POSTGRES:
            for setting in ("enable_seqscan", "enable_bitmapscan", "enable_sort", "enable_incremental_sort"):
                db.execute(f"SET LOCAL {setting} = off")
        for where, sort, cursor in combos:
            query = TicketQueries.page_query(where, sort, 50, cursor)
            if query is None:
                continue
            sql, params = query
            if dialect is Dialect.POSTGRES:
                row = db.one("EXPLAIN (FORMAT JSON) " + sql, params)
                assert row is not None
                document = next(iter(row.values()))
                plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
                reads = [f"{scan['Node Type']} {scan.get('Index Name', scan.get('Relation Name'))}"
                         for scan, _ in _scans(plan)]
                table_reads = [r for r in reads if not r.startswith("Index Only Scan")]
            else:
                reads = [r["detail"] for r in db.all("EXPLAIN QUERY PLAN " + sql, params) if _TABLE_SEARCH.match(r["detail"])]
                table_reads = [r for r in reads if "COVERING INDEX" not in r]
            if table_reads or not reads:
                failures.append(f"{where} sort={sort} cursor={cursor is not None}: {sorted(set(reads))}")
        return failures

    failures = seeded.read("tickets", explain)
    assert len(combos) > 300
    assert not failures, f"{len(failures)} queue plans read table rows:\n" + "\n".join(failures[:8])


def test_a_queue_merged_from_branches_pages_through_every_matching_ticket_once_in_order(seeded: ReadSide) -> None:
    """Statuses, teams and tags expanded into branches: the merged pages equal a plain sort of the
    matching rows, whatever the sort, with no ticket repeated or skipped across cursors."""
    every = seeded.read("tickets", lambda db: db.all("SELECT * FROM {p}tf_tickets"))
    cases = [
        TicketFilter(status=("new", "open")),
        TicketFilter(teams=(TEAMS[0], TEAMS[1]), include_teamless=True, status=("open", "pending", "solved")),
        TicketFilter(tag="billing", status=("new", "closed"), priority=("urgent", "low")),
        TicketFilter(unassigned=True, teams=(TEAMS[2], TEAMS[3])),
        # A branch per priority rank when sorted by priority; the filters checked on index entries.
        TicketFilter(teams=(TEAMS[0], TEAMS[1]), priority=("high", "normal"), status=("open", "closed")),
        TicketFilter(priority=("urgent",), category="login"),
        TicketFilter(team_id=TEAMS[1], teams=(TEAMS[0], TEAMS[1]), priority=("low", "urgent")),
        # The breached queue: its own branches (any status), or checked on a tag's or an assignee's entries.
        TicketFilter(sla_breached=True),
        TicketFilter(sla_breached=True, teams=(TEAMS[0], TEAMS[1]), include_teamless=True, priority=("high", "low")),
        TicketFilter(sla_breached=True, tag="billing"),
    ]
    for where in cases:
        for sort, (column, descending) in SORTS.items():
            expected = sorted((r for r in every if matches(r, where)), key=itemgetter(column, "ticket_id"), reverse=descending)
            seen: list[str] = []
            cursor: str | None = None
            while True:
                page = seeded.read("tickets", partial(TicketQueries.queue, where=where, sort=sort, limit=50, cursor=cursor))
                seen += [r["ticket_id"] for r in page.rows]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert seen == [r["ticket_id"] for r in expected], (where, sort)
            assert len(expected) > 50  # more than one page, so cursors were followed


def matches(row: dict[str, Any], where: TicketFilter) -> bool:
    scope = set(where.teams or ()) | ({None} if where.include_teamless else set())
    return (
        (not where.status or row["status"] in where.status)
        and (not where.priority or row["priority"] in where.priority)
        and (where.tag is None or where.tag in json.loads(row["tags"]))
        and (where.teams is None or row["team_id"] in scope)
        and (not where.unassigned or row["assignee_id"] is None)
        and (not where.sla_breached or row["sla_breached"] == 1)
        and all(getattr(where, name) in (None, row[name]) for name in ("team_id", "ticket_type", "category", "channel"))
    )


def test_the_breached_queue_walks_partial_indexes_that_hold_only_breached_tickets(seeded: ReadSide) -> None:
    """The breached queue's indexes hold the breached tickets alone (the others cost them no write), and
    its pages, sorted any way, walk them: the statement states their condition as they do."""
    dialect = seeded.stores["tickets"].dialect
    partial = {TICKETS.index_name(columns, partial=True) for columns, condition in TICKETS.partial_indexes
               if condition == BREACHED}
    assert len(partial) == 3
    scope: dict[str, Any] = {"teams": (TEAMS[0], TEAMS[1]), "include_teamless": True}

    def walked(db: Db) -> list[tuple[str, set[str]]]:
        found = []
        if dialect is Dialect.POSTGRES:
            # On a few thousand rows, 30% breached, PostgreSQL's costs may prefer walking a status index and
            # checking each entry (at 1,000,000 rows, 8% breached, they do not: bench/bench_queues.py); that
            # the statement can walk the partial indexes is what is checked, with the other queue indexes
            # dropped in this transaction, which is rolled back.
            # Every other index of the table goes (the queue indexes, the covering one, whatever else a
            # status or team lookup has), so no autovacuum's statistics can tip the choice between them.
            others = db.all(
                "SELECT i.indexrelid::regclass::text AS name, c.conname FROM pg_index i"
                " LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid"
                " WHERE i.indrelid = to_regclass(?) AND NOT i.indexrelid = ANY(ARRAY(SELECT to_regclass(n)"
                " FROM unnest(?::text[]) n))",
                (db.prefix + "tf_tickets", [db.prefix + name for name in sorted(partial)]))
            for row in others:
                if row["conname"]:
                    db.execute(f'ALTER TABLE {{p}}tf_tickets DROP CONSTRAINT "{row["conname"]}"')
                else:
                    db.execute(f"DROP INDEX {row['name']}")
            db.execute("SET LOCAL enable_seqscan = off")
        for where in (TicketFilter(sla_breached=True), TicketFilter(**scope, sla_breached=True, status=("new", "open"))):
            for sort in SORTS:
                query = TicketQueries.page_query(where, sort, 50)
                assert query is not None
                if dialect is Dialect.POSTGRES:
                    row = db.one("EXPLAIN (FORMAT JSON) " + query[0], query[1])
                    assert row is not None
                    document = next(iter(row.values()))
                    plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
                    scans = [scan for scan, _ in _scans(plan)]
                    assert not [scan for scan in scans if scan["Node Type"] == "Seq Scan"], (sort, scans)
                    # A bitmap heap scan reads the rows its bitmap index scan (named below it) found.
                    names = {scan["Index Name"] for scan in scans if "Index Name" in scan}
                else:
                    details = [r["detail"] for r in db.all("EXPLAIN QUERY PLAN " + query[0], query[1])]
                    names = {m.group(1) for d in details if (m := re.search(r"INDEX (\w+)", d))}
                found.append((sort, names))
        return found

    with seeded.stores["tickets"]._transaction(commit=False) as cursor:
        store = seeded.stores["tickets"]
        plans = walked(Db(cursor, store.dialect, store.prefix))
    for sort, names in plans:
        assert names and names <= partial, (sort, names)
    if dialect is Dialect.SQLITE:
        indexed = seeded.read("tickets", lambda db: [
            db.scalar(f"SELECT COUNT(*) FROM {{p}}tf_tickets INDEXED BY {name} WHERE sla_breached = 1") for name in partial])
        breached = seeded.read("tickets", lambda db: db.scalar("SELECT COUNT(*) FROM {p}tf_tickets WHERE +sla_breached = 1"))
        assert indexed == [breached] * 3 and 0 < breached < ROWS
    else:
        # This test's schema's indexes only (other schemas of the database may hold indexes of the same names).
        prefix = seeded.stores["tickets"].prefix
        sizes = seeded.read("tickets", lambda db: db.all(
            "SELECT c.relname, c.reltuples FROM pg_class c WHERE c.oid = ANY(ARRAY(SELECT to_regclass(n) FROM"
            " unnest(?::text[]) n))", ([prefix + name for name in sorted(partial)],)))
        breached = seeded.read("tickets", lambda db: db.scalar("SELECT COUNT(*) FROM {p}tf_tickets WHERE sla_breached = 1"))
        assert len(sizes) == 3 and all(0 < row["reltuples"] <= breached < ROWS for row in sizes)


def test_the_due_soon_queue_pages_through_the_tickets_of_the_soonest_running_clocks_in_one_statement(
    seeded: ReadSide,
) -> None:
    """``sla_due_before``: the tickets with a running SLA clock due by the bound, read from the workflow
    view's clocks in the page's own statement, narrowed by the other filters, sorted and paged as any queue."""
    bound = KNOWN["sla_due_before"]
    clocks = seeded.read("workflow", lambda db: db.all("SELECT ticket_id, state, due_at FROM {p}tf_sla_clocks"))
    due = {c["ticket_id"] for c in clocks if c["state"] == "active" and c["due_at"] <= bound}
    assert 0 < len(due) < SLA_ATTENTION_LIMIT  # every due clock is looked at here
    every = seeded.read("tickets", lambda db: db.all("SELECT * FROM {p}tf_tickets"))
    working = ("new", "open", "on_hold")
    cases = [
        (TicketFilter(sla_due_before=bound, status=working), lambda r: r["status"] in working),
        (TicketFilter(sla_due_before=bound, status=working, teams=(TEAMS[0],), include_teamless=True,
                      priority=("urgent", "high")),
         lambda r: r["status"] in working and r["team_id"] in (TEAMS[0], None) and r["priority"] in ("urgent", "high")),
    ]
    for where, keep in cases:
        for sort in SORTS:
            column, descending = SORTS[sort]
            expected = sorted((r for r in every if r["ticket_id"] in due and keep(r)),
                              key=itemgetter(column, "ticket_id"), reverse=descending)
            seen: list[str] = []
            cursor = None
            while True:
                page = seeded.read("tickets", lambda db, c=cursor, s=sort, w=where: TicketQueries.queue(db, w, s, 7, c))  # type: ignore[misc]
                seen += [r["ticket_id"] for r in page.rows]
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor
            assert seen == [r["ticket_id"] for r in expected], (where, sort)
            assert seen
        counted = seeded.read("tickets", lambda db, w=where: TicketQueries.count(db, w))  # type: ignore[misc]
        assert counted == sum(1 for r in every if r["ticket_id"] in due and keep(r))


def test_the_due_soon_queue_probes_the_live_tickets_covering_index_by_id(seeded: ReadSide) -> None:
    """The console's due-soon queue (live statuses) probes each clock's ticket in BY_ID_COVERING's partial
    index of the live tickets, by ticket id, reading no table row; asked for other statuses, it reads the
    tickets by key (still at most SLA_ATTENTION_LIMIT of them)."""
    dialect = seeded.stores["tickets"].dialect
    live = TICKETS.index_name(BY_ID_COVERING, partial=True)
    assert (BY_ID_COVERING, LIVE) in TICKETS.partial_indexes
    scope: dict[str, Any] = {"teams": (TEAMS[0], TEAMS[1]), "include_teamless": True}
    bound = KNOWN["sla_due_before"]

    def reads(db: Db, where: TicketFilter, sort: str) -> list[str]:
        query = TicketQueries.page_query(where, sort, 50)
        assert query is not None
        if dialect is Dialect.POSTGRES:
            row = db.one("EXPLAIN (FORMAT JSON) " + query[0], query[1])
            assert row is not None
            document = next(iter(row.values()))
            plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
            return [f"{scan['Node Type']} {scan.get('Index Name', scan.get('Relation Name'))} {scan.get('Index Cond', '')}"
                    for scan, _ in _scans(plan) if "tf_sla_clocks" not in scan.get("Index Name", "tf_sla_clocks")]
        return [r["detail"] for r in db.all("EXPLAIN QUERY PLAN " + query[0], query[1])
                if _TABLE_SEARCH.match(r["detail"]) and "tf_sla_clocks" not in r["detail"]]

    for statuses in (("new", "open", "on_hold"), ("pending",), LIVE_STATUSES):
        for sort in SORTS:
            where = TicketFilter(**scope, sla_due_before=bound, status=statuses, priority=("urgent", "high"))
            found = seeded.read("tickets", partial(reads, where=where, sort=sort))
            if dialect is Dialect.POSTGRES:
                assert found and all(r.startswith(f"Index Only Scan {live} ") and "ticket_id = ANY" in r for r in found), found
            else:
                assert found and all(f"USING COVERING INDEX {live} (ticket_id=?)" in r for r in found), found
    # Solved tickets are not in it: read by key (the primary key), bounded by the clocks all the same.
    found = seeded.read("tickets", partial(reads, where=TicketFilter(sla_due_before=bound, status=("solved",)), sort="created_at"))
    assert found and not any(live in r for r in found), found
