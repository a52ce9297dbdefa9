"""Queue page latency for every filter the API and the console offer, with rows seeded into the view.

    python bench/bench_queues.py [--tickets 1000000] [--postgres postgresql://postgres@127.0.0.1:5432/DB]
                                 [--rounds 30] [--keep DIR]

Seeds ``--tickets`` rows straight into the tickets view (no events: the view's own tables and
indexes, filled in bulk, then indexed and analysed as a rebuild does), on SQLite and, with
``--postgres``, on a fresh schema of that database (dropped after). Then, for each filter
combination (each console queue as an agent scoped to two teams and as an admin, each API filter
alone and with a status pair) and each sort order, times ``--rounds`` first pages and as many second
pages (from the first page's cursor), and prints p50/p99 in milliseconds, worst first, and any plan
that scans the whole table. The SLA clocks are seeded too (one per ticket), so the "due soon" queues
read them as the console does: in the page's own statement (``TicketFilter.sla_due_before``). Also this process's CPU time per page (on SQLite, the query's whole cost;
on PostgreSQL only the client's share, so there the first page's key query is also timed by the server:
EXPLAIN ANALYZE's execution time, "srv"): on a busy machine, wall times mostly measure the wait for a core. The data: 12 teams, 80 agents, 50,000 customers, two years of
tickets, statuses weighted like a desk that keeps its history (64% closed, 15% solved, 21% being
worked), tags from common (20%) to rare (0.02%).
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from projections.readside import ReadSide
from projections.sql import Db, Dialect, dumps, ts
from projections.tickets import PRIORITY_RANK, SORTS, TICKET_TAGS, TICKETS, Page, TicketFilter, TicketQueries
from projections.workflow import SLA_CLOCKS
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Priority, TicketType

STATUS_WEIGHTS = {"new": 3, "open": 10, "pending": 5, "on_hold": 3, "solved": 15, "closed": 64}
TAGS = {"billing": 0.20, "vip": 0.05, "outage": 0.01, "legal-hold": 0.0002}
CHANNELS = [Channel.EMAIL, Channel.PHONE, Channel.WEB_FORM, Channel.CHAT, Channel.IM, Channel.API]
CATEGORIES = ["login", "billing", "network", "hardware", "account", "email", "printer", "vpn", "mobile", "other"]
ACTIVE = ("new", "open", "pending", "on_hold")
WORKING = ("new", "open", "on_hold")
#: The share of tickets that breached an SLA target at some point (most of them long closed).
BREACHED = 0.08
#: "SLA due soon" (the console's DUE_SOON): a running clock due within this long.
DUE_SOON = timedelta(hours=4)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Seed:
    """The seeded desk: its teams, agents (each in one or two teams), customers and rows."""

    def __init__(self, tickets: int, rng: random.Random) -> None:
        self.tickets = tickets
        self.rng = rng
        self.teams = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(12)]
        self.agents = [f"agent{i}" for i in range(80)]
        self.agent_teams = {a: sorted({self.teams[i % 12], self.teams[(i * 7 + 3) % 12]}) for i, a in enumerate(self.agents)}
        self.customers = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(50_000)]
        self.now = datetime(2026, 12, 1, tzinfo=UTC)
        self.sample_ids: list[str] = []
        self.tag_rows: list[list[Any]] = []
        #: Which tickets breached an SLA target (BREACHED of them), drawn apart from ``rng`` so the other
        #: columns are the same as a seed without breaches.
        self.late = random.Random(1414)
        #: The SLA clocks (tf_sla_clocks rows): each ticket being worked has a resolution clock running
        #: (due from an hour ago to five days on; past due: breached), a pending one a paused clock, and
        #: a solved or closed ticket a fulfilled one. Drawn apart from ``rng`` too.
        self.clocks: list[list[Any]] = []
        self.clock_rng = random.Random(1415)

    def rows(self) -> Any:
        rng = self.rng
        statuses, weights = list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values())
        priorities = list(Priority)
        for i in range(self.tickets):
            ticket_id = str(uuid.UUID(int=rng.getrandbits(128)))
            if i % max(1, self.tickets // 5000) == 0:
                self.sample_ids.append(ticket_id)
            created = self.now - timedelta(seconds=rng.randrange(0, 2 * 365 * 86400))
            status = rng.choices(statuses, weights)[0]
            priority = rng.choices(priorities, [30, 55, 12, 3])[0]
            agent = rng.choice(self.agents)
            team = None if status == "new" and rng.random() < 0.1 else rng.choice(self.agent_teams[agent])
            assignee = None if status == "new" or rng.random() < 0.02 else agent
            tags = sorted(tag for tag, share in TAGS.items() if rng.random() < share)
            updated = min(self.now, created + timedelta(seconds=rng.randrange(0, 30 * 86400)))
            breached_at = (ts(created + timedelta(seconds=self.late.randrange(3600, 3 * 86400)))
                           if self.late.random() < BREACHED else None)
            row = {
                "ticket_id": ticket_id, "subject": f"工单 {i}", "ticket_type": rng.choice(list(TicketType)).value,
                "category": rng.choice(CATEGORIES), "priority": priority.value, "priority_rank": PRIORITY_RANK[priority],
                "status": status, "channel": rng.choice(CHANNELS).value, "customer_id": rng.choice(self.customers),
                "team_id": team, "assignee_id": assignee, "tags": dumps(tags), "created_at": ts(created),
                "first_reply_at": None, "updated_at": ts(updated), "solved_at": None, "closed_at": None,
                "reply_count": 0, "note_count": 0, "interaction_count": 0, "work_minutes": 0, "reopen_count": 0,
                "reassignment_count": 0, "satisfaction": None, "merged_into": None, "imported": 0, "source_counters": None,
                "sla_breached": int(breached_at is not None), "sla_breached_at": breached_at, "version": 1,
                "position": i + 1,
            }
            self.tag_rows += [[{"tag": tag, **row}[c] for c in TICKET_TAGS.column_names] for tag in tags]
            self.clocks.append(self.clock(ticket_id, status))
            yield [row[c] for c in TICKETS.column_names]


    def clock(self, ticket_id: str, status: str) -> list[Any]:
        due = self.now + timedelta(seconds=self.clock_rng.randrange(-3600, 5 * 86400))
        state = {"pending": "paused", "solved": "fulfilled", "closed": "fulfilled"}.get(
            status, "breached" if due < self.now else "active")
        row = dict.fromkeys(SLA_CLOCKS.column_names) | {
            "ticket_id": ticket_id, "metric": "resolution", "cycle": "0", "state": state, "target_minutes": 480,
            "business_hours": 1, "elapsed_minutes": 0, "due_at": ts(due), "policy": "standard", "policy_version": 1}
        return [row[c] for c in SLA_CLOCKS.column_names]


def seed(read_side: ReadSide, data: Seed) -> None:
    """The tickets view's rows; and the SLA clocks, when the read side has the workflow view
    (``bench_ticket_apply.py`` seeds the tickets view alone)."""
    seed_tickets(read_side, data)
    if "workflow" not in read_side.stores:
        return
    store = read_side.stores["workflow"]
    with store._transaction(commit=True) as cursor:
        if store.dialect is Dialect.POSTGRES:
            columns = ", ".join(SLA_CLOCKS.column_names)
            with cursor.copy(f"COPY {store.prefix}{SLA_CLOCKS.name} ({columns}) FROM STDIN") as copy:
                for row in data.clocks:
                    copy.write_row(row)
        else:
            Db(cursor, store.dialect, store.prefix).executemany(SLA_CLOCKS.upsert_sql, data.clocks)
        cursor.execute(f"ANALYZE {store.prefix}{SLA_CLOCKS.name}")


def seed_tickets(read_side: ReadSide, data: Seed) -> None:
    store = read_side.stores["tickets"]
    store.reset(read_side.desk.name, drop_indexes=True)
    with store._transaction(commit=True) as cursor:
        if store.dialect is Dialect.POSTGRES:
            columns = ", ".join(TICKETS.column_names)
            with cursor.copy(f"COPY {store.prefix}{TICKETS.name} ({columns}) FROM STDIN") as copy:
                for row in data.rows():
                    copy.write_row(row)
            with cursor.copy(f"COPY {store.prefix}{TICKET_TAGS.name} ({', '.join(TICKET_TAGS.column_names)}) FROM STDIN") as copy:
                for row in data.tag_rows:
                    copy.write_row(row)
        else:
            db = Db(cursor, store.dialect, store.prefix)
            db.executemany(TICKETS.upsert_sql, data.rows())
            db.executemany(TICKET_TAGS.upsert_sql, data.tag_rows)
    store.create_indexes()
    with store._transaction(commit=True) as cursor:
        # Planner statistics, as autovacuum (PostgreSQL) or `PRAGMA optimize` (SQLite) keep them in service.
        cursor.execute(f"ANALYZE {store.prefix}tf_tickets")
        cursor.execute(f"ANALYZE {store.prefix}tf_ticket_tags")


def combinations(data: Seed, read_side: ReadSide) -> dict[str, Callable[[], TicketFilter]]:
    """Each queue the console shows and each filter the API takes, with a parameter drawn per call.
    The "due soon" queues read the SLA clocks as the console does (in the page's statement)."""
    rng = data.rng

    def agent_scope() -> dict[str, Any]:
        agent = rng.choice(data.agents)
        return {"teams": tuple(data.agent_teams[agent]), "include_teamless": False, "_agent": agent}

    def scoped(**fixed: Any) -> Callable[[], TicketFilter]:
        def make() -> TicketFilter:
            scope = agent_scope()
            agent = scope.pop("_agent")
            values = {k: (v(agent) if callable(v) else v) for k, v in fixed.items()}
            return TicketFilter(**scope, **values)
        return make

    def desk(**fixed: Any) -> Callable[[], TicketFilter]:
        return lambda: TicketFilter(**{k: (v() if callable(v) else v) for k, v in fixed.items()})

    due_before = ts(data.now + DUE_SOON)

    sla = due_before  # the console's due-soon queue: the tickets of the (at most 2,000) soonest running clocks

    breached = {"sla_breached": True}

    combos: dict[str, Callable[[], TicketFilter]] = {
        # The console's queues (queues.py queue_filter): an agent scoped to their teams, an admin desk-wide.
        "console mine (agent)": scoped(assignee_id=lambda a: a, status=ACTIVE),
        "console team (agent, 2 teams)": scoped(status=ACTIVE),
        "console unassigned (agent)": scoped(unassigned=True, status=WORKING),
        "console pending (agent)": scoped(status=("pending",)),
        "console due soon (agent)": scoped(sla_due_before=sla, status=WORKING),
        "console due soon (admin)": desk(sla_due_before=sla, status=WORKING),
        "console due soon + urgent,high (agent)": scoped(sla_due_before=sla, status=WORKING, priority=("urgent", "high")),
        "console due soon + tag vip (agent)": scoped(sla_due_before=sla, status=WORKING, tag="vip"),
        "console breached (agent)": scoped(**breached, status=WORKING),
        "console breached (admin)": desk(**breached, status=WORKING),
        "console breached + urgent,high (agent)": scoped(**breached, status=WORKING, priority=("urgent", "high")),
        "console breached + channel (agent)": scoped(**breached, status=WORKING, channel=lambda a: rng.choice(CHANNELS).value),
        "console team + category (agent)": scoped(status=ACTIVE, category=lambda a: rng.choice(CATEGORIES)),
        "console all (admin)": desk(status=ACTIVE),
        "console unassigned (admin)": desk(unassigned=True, status=WORKING),
        "console team + urgent,high (agent)": scoped(status=ACTIVE, priority=("urgent", "high")),
        "console team + tag vip (agent)": scoped(status=ACTIVE, tag="vip"),
        "console team + type + channel (agent)": scoped(status=ACTIVE, ticket_type=lambda a: rng.choice(list(TicketType)).value,
                                                        channel=lambda a: rng.choice(CHANNELS).value),
        "console team + assignee (agent)": scoped(status=ACTIVE, assignee_id=lambda a: rng.choice(data.agents)),
        # The API (GET /api/v1/tickets), admin (desk-wide) and agent-scoped.
        "api no filter (admin)": desk(),
        "api no filter (agent)": scoped(),
        "api status new+open (admin)": desk(status=("new", "open")),
        "api status new+open (agent)": scoped(status=("new", "open")),
        "api status closed (admin)": desk(status=("closed",)),
        "api team_id (admin)": desk(team_id=lambda: rng.choice(data.teams)),
        "api team_id + new,open (admin)": desk(team_id=lambda: rng.choice(data.teams), status=("new", "open")),
        "api assignee (admin)": desk(assignee_id=lambda: rng.choice(data.agents)),
        "api assignee + open (admin)": desk(assignee_id=lambda: rng.choice(data.agents), status=("open",)),
        "api unassigned (admin)": desk(unassigned=True),
        "api priority urgent (admin)": desk(priority=("urgent",)),
        "api priority urgent + new,open (agent)": scoped(priority=("urgent",), status=("new", "open")),
        "api ticket_type (admin)": desk(ticket_type=lambda: rng.choice(list(TicketType)).value),
        "api category (admin)": desk(category=lambda: rng.choice(CATEGORIES)),
        "api channel (admin)": desk(channel=lambda: rng.choice(CHANNELS).value),
        "api tag billing 20% (admin)": desk(tag="billing"),
        "api tag outage 1% (admin)": desk(tag="outage"),
        "api tag outage 1% + new,open (agent)": scoped(tag="outage", status=("new", "open")),
        "api tag legal-hold 0.02% (admin)": desk(tag="legal-hold"),
        "api customer_id (admin)": desk(customer_id=lambda: rng.choice(data.customers)),
        "api updated_since 1 day (admin)": desk(updated_since=data.now - timedelta(days=1)),
        "api updated_since 1 day (agent)": scoped(updated_since=lambda a: data.now - timedelta(days=1)),
    }
    return combos


def plan_problems(read_side: ReadSide, where: TicketFilter, sort: str) -> list[str]:
    """The plan lines that read the whole table or sort more than a page per branch."""
    store = read_side.stores["tickets"]
    query = TicketQueries.page_query(where, sort, 50)
    if query is None:
        return []
    sql, params = query
    if store.dialect is Dialect.POSTGRES:
        lines = read_side.read("tickets", lambda db: [next(iter(r.values())) for r in db.all("EXPLAIN " + sql, params)])
        return [line.strip() for line in lines if "Seq Scan" in line]
    rows = read_side.read("tickets", lambda db: db.all("EXPLAIN QUERY PLAN " + sql, params))
    return [r["detail"] for r in rows if r["detail"].startswith(("SCAN tf_tickets", "SCAN t", "SCAN g"))]


def read_page(db: Db, where: TicketFilter, sort: str, cursor: str | None) -> Page:
    return TicketQueries.queue(db, where, sort, 50, cursor)


def server_time(read_side: ReadSide, where: TicketFilter, sort: str) -> float | None:
    """PostgreSQL: the first page's key query as the server times it (EXPLAIN ANALYZE's execution time,
    in ms): the client's CPU is not the query's cost there. None on SQLite (its CPU is this process's)."""
    query = TicketQueries.page_query(where, sort, 50)
    if read_side.stores["tickets"].dialect is not Dialect.POSTGRES or query is None:
        return None
    sql, params = query

    def explain(db: Db) -> float:
        row = db.one("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        assert row is not None
        document = next(iter(row.values()))
        return float((json.loads(document) if isinstance(document, str) else document)[0]["Execution Time"])

    return read_side.read("tickets", explain)


def measure(read_side: ReadSide, data: Seed, rounds: int, kind: str, only: str = "") -> tuple[float, float]:
    """Print every combination's p50/p99 (worst first) and the plans that scan; the worst wall-clock p99 and
    the worst CPU p99 of this process, in ms (on a busy machine the wall time is mostly the wait for a core)."""
    combos = {label: make for label, make in combinations(data, read_side).items() if only in label}
    results = []
    problems = []
    for label, make in combos.items():
        for sort in SORTS:
            first, second, cpu, server = [], [], [], []
            for _ in range(rounds):
                if "updated_since" in label and sort not in ("updated_at", "-updated_at"):
                    continue
                where = make()
                started, cpu_started = time.perf_counter(), time.process_time()
                page = read_side.read("tickets", partial(read_page, where=where, sort=sort, cursor=None))
                first.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - cpu_started) * 1000)
                if (on_server := server_time(read_side, where, sort)) is not None:
                    server.append(on_server)
                if page.next_cursor:
                    started, cpu_started = time.perf_counter(), time.process_time()
                    read_side.read("tickets", partial(read_page, where=where, sort=sort, cursor=page.next_cursor))
                    second.append((time.perf_counter() - started) * 1000)
                    cpu.append((time.process_time() - cpu_started) * 1000)
            if not first:
                continue
            problems += [f"{label} sort={sort}: {p}" for p in plan_problems(read_side, make(), sort)]
            times = first + second
            server_cells = f"{percentile(server, 0.5):8.2f} {percentile(server, 0.99):8.2f}" if server else ""
            results.append((percentile(times, 0.99), percentile(times, 0.5), label, sort, len(times),
                            percentile(cpu, 0.5), percentile(cpu, 0.99), server_cells))
    results.sort(reverse=True)
    print(f"\nqueue pages, {data.tickets:,} tickets in the view ({kind}), 50 per page, first and second pages,"
          f" {rounds} draws each:")
    server_heads = f"  {'srv p50':>8} {'srv p99':>8}" if kind == "PostgreSQL" else ""
    print(f"  {'filter':<44} {'sort':<12} {'p50 ms':>8} {'p99 ms':>8}  pages  {'CPU p50':>8} {'CPU p99':>8}{server_heads}")
    for p99, p50, label, sort, n, cpu50, cpu99, cells in results:
        print(f"  {label:<44} {sort:<12} {p50:8.2f} {p99:8.2f}  {n:5}  {cpu50:8.2f} {cpu99:8.2f}  {cells}".rstrip())
    every = [r[0] for r in results]
    print(f"  worst p99 {max(every):.2f} ms; {sum(1 for t in every if t >= 20)} of {len(every)} combinations at or over 20 ms")
    print("  plans scanning the whole table: " + ("none" if not problems else "\n    " + "\n    ".join(problems)))
    return max(every), max(r[6] for r in results)


def run(
    settings: Settings, data: Seed, rounds: int, kind: str, vacuum: Callable[[], None] | None = None, only: str = "",
    reuse: bool = False,
) -> tuple[float, float]:
    """Seed ``data`` into the tickets view of ``settings``' store and time every combination; the worst
    wall-clock and CPU p99 in ms (see :func:`measure`). ``reuse``: the store was seeded by an earlier run
    (``--schema``): time it as it is."""
    desk = TicketDesk(settings)
    read_side = ReadSide(desk, ["tickets", "workflow"])
    try:
        started = time.perf_counter()
        if reuse:
            for _ in data.rows():  # the same draws as a seeding run (the combinations draw after them)
                pass
        else:
            seed(read_side, data)
            if vacuum is not None:
                vacuum()
            print(f"{kind}: seeded {data.tickets:,} rows and indexed them in {time.perf_counter() - started:.0f} s")
        return measure(read_side, data, rounds, kind, only)
    finally:
        read_side.close()
        desk.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--postgres", default="", help="also run on this PostgreSQL database (a schema is made and dropped)")
    parser.add_argument("--only-postgres", action="store_true")
    parser.add_argument("--keep", default="", help="seed the SQLite desk in this (new) directory and keep it")
    parser.add_argument("--schema", default="", help="PostgreSQL: seed this schema (made if missing) and keep it;"
                        " if it was seeded already (same --tickets), time it as it is (A/B runs on one seed)")
    parser.add_argument("--only", default="", help="time only the combinations whose name contains this text")
    args = parser.parse_args()
    if not args.only_postgres:
        directory = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="tf-bench-queues-"))
        directory.mkdir(parents=True, exist_ok=True)
        try:
            run(Settings(data_dir=directory), Seed(args.tickets, random.Random(7)), args.rounds, "SQLite", only=args.only)
        finally:
            if not args.keep:
                shutil.rmtree(directory, ignore_errors=True)
    if args.postgres:
        import psycopg

        schema = args.schema or f"tf_bench_queues_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            seeded = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = %s AND tablename = 'tf_sla_clocks'",
                                  (schema,)).fetchone()
            reuse = bool(args.schema and seeded and seeded[0] and conn.execute(
                f'SELECT count(*) FROM "{schema}".tf_sla_clocks').fetchone() == (args.tickets,))
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        def vacuum() -> None:  # the visibility map autovacuum keeps: index-only scans then skip the heap
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'VACUUM "{schema}".tf_tickets')
                conn.execute(f'VACUUM "{schema}".tf_ticket_tags')
                conn.execute(f'VACUUM "{schema}".tf_sla_clocks')

        try:
            run(Settings(database_url=f"{args.postgres}?schema={schema}"), Seed(args.tickets, random.Random(7)),
                args.rounds, "PostgreSQL", vacuum, args.only, reuse)
        finally:
            if not args.schema:
                with psycopg.connect(args.postgres, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
