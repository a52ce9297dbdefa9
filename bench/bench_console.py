"""Server time of the console's queue pages and dashboard at a large desk (p99 < 100 / 300 ms at 200,000 tickets).

    python bench/bench_console.py [--tickets 200000] [--repeat 30] [--database-url postgresql://...] [--dashboard-only]

Seeds ``--tickets`` rows, created over the last year, straight into the tickets view (replied,
solved, closed and rated as their status says), their SLA outcomes into the workflow view and
SLA clocks into its bookkeeping, on a fresh SQLite desk (or a PostgreSQL one: ``--database-url``,
on an empty schema, e.g. ``postgresql://postgres@127.0.0.1:5432/bench?schema=bench1``). Signs in as
an agent of one of 12 teams and as an admin, and times every queue and a set of filter combinations
over HTTP in-process (TestClient: the server's whole handling, page rendering included), then the
dashboard over the last 30 days (its default), 90 days and a whole year (365 days). Prints p50 / p99
per page and overall.
"""

from __future__ import annotations

import argparse
import gc
import logging
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from projections.sql import Db, ts  # noqa: E402
from projections.tickets import PRIORITY_RANK, TICKETS  # noqa: E402
from projections.workflow import SLA_CLOCKS, SLA_OUTCOMES  # noqa: E402
from ticketflow.commands import AddTeamMember, FormTeam  # noqa: E402
from ticketflow.commands.accounts import CreateAccount  # noqa: E402
from ticketflow.config import Settings  # noqa: E402
from ticketflow.domain.values import Channel, Priority, Role, Status  # noqa: E402
from ticketflow.metadata import Caller  # noqa: E402

ADMIN = Caller("bench-admin", Role.ADMIN, Channel.CLI)
PASSWORD = "bench-password-1"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def seed(app: object, tickets: int) -> None:
    services = app.state.services  # type: ignore[attr-defined]
    desk = services.desk
    teams = [desk.form_team(FormTeam(name=f"服务组 {i}"), ADMIN).object_id for i in range(12)]
    agents = [f"agent{i}" for i in range(80)]
    for i, agent in enumerate(agents):
        desk.add_team_member(AddTeamMember(team_id=teams[i % 12], agent_id=agent), ADMIN)
    desk.create_account(CreateAccount(username="agent0", display_name="Agent 0", role=Role.AGENT, agent_id="agent0"),
                        ADMIN, PASSWORD)
    desk.create_account(CreateAccount(username="boss", display_name="Admin", role=Role.ADMIN), ADMIN, PASSWORD)
    services.read_side.wait(desk.log_position(), 30)
    rng = random.Random(7)
    now = datetime.now(UTC)
    statuses = [s.value for s in Status]
    weights = [3, 10, 5, 3, 15, 64]
    rows, clocks, outcomes = [], [], []
    for i in range(tickets):
        created = now - timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
        status = rng.choices(statuses, weights)[0]
        priority = rng.choice(list(Priority))
        team = teams[i % 12]
        agent = agents[(i % 12) + 12 * rng.randrange(0, 6)] if status != "new" else None
        row = dict.fromkeys(TICKETS.column_names)
        ticket_id = str(uuid4())
        # What the dashboard's response times, satisfaction and SLA charts read: replied unless new, solved
        # and closed as the status says, a rating on a third of the solved ones (times never in the future).
        replied = None if status == "new" else min(now, created + timedelta(seconds=rng.randrange(60, 3 * 86400)))
        solved = (min(now, replied + timedelta(seconds=rng.randrange(60, 10 * 86400)))
                  if replied is not None and status in ("solved", "closed") else None)
        closed = min(now, solved + timedelta(days=3)) if solved is not None and status == "closed" else None
        row.update(
            ticket_id=ticket_id, subject=f"工单 {i} 打印机", ticket_type="incident", category="login",
            priority=priority.value, priority_rank=PRIORITY_RANK[priority], status=status,
            channel=rng.choice(["email", "phone", "web_form", "chat"]), customer_id=str(uuid4()), team_id=str(team),
            assignee_id=agent, tags='["vip"]' if i % 10 == 0 else "[]", created_at=ts(created),
            first_reply_at=ts(replied), solved_at=ts(solved), closed_at=ts(closed),
            satisfaction=rng.randint(1, 5) if solved is not None and rng.random() < 0.3 else None,
            updated_at=ts(created + timedelta(hours=rng.randrange(0, 200))), reply_count=0, note_count=0,
            interaction_count=0, work_minutes=0, reopen_count=0, reassignment_count=0, imported=0, version=1,
            position=i,
        )
        rows.append([row[c] for c in TICKETS.column_names])
        for metric, at in (("first_reply_time", replied), ("resolution_time", solved)):
            if at is not None:
                outcome = "breached" if rng.random() < 0.1 else "fulfilled"
                outcomes.append([ticket_id, metric, "0", outcome, ts(at), str(team), priority.value, "standard", 1])
        if status in ("new", "open", "on_hold"):
            due = now + timedelta(minutes=rng.randrange(-600, 3000))
            state = "breached" if due < now else "active"
            clock = dict.fromkeys(SLA_CLOCKS.column_names)
            clock.update(ticket_id=ticket_id, metric="resolution", cycle="0", state=state, target_minutes=480,
                         business_hours=1, elapsed_minutes=0, due_at=ts(due), policy="standard", policy_version=1)
            clocks.append([clock[c] for c in SLA_CLOCKS.column_names])
    for view, table, batch in (("tickets", TICKETS, rows), ("workflow", SLA_CLOCKS, clocks),
                               ("workflow", SLA_OUTCOMES, outcomes)):
        store = services.read_side.stores[view]
        with store._transaction(commit=True) as cursor:  # noqa: SLF001 - bench fixture data
            Db(cursor, store.dialect, store.prefix).executemany(table.upsert(), batch)
        with store._transaction(commit=True) as cursor:  # noqa: SLF001
            cursor.execute(f"ANALYZE {store.prefix}{table.name}")


PAGES = [
    "/queues?queue=mine", "/queues?queue=team", "/queues?queue=unassigned", "/queues?queue=due_soon",
    "/queues?queue=breached", "/queues?queue=pending", "/queues?queue=team&status=new&status=open",
    "/queues?queue=team&priority=urgent&priority=high", "/queues?queue=team&channel=email&sort=-updated_at",
    "/queues?queue=team&tag=vip", "/queues?queue=team&ticket_type=incident&category=login&sort=priority",
    "/queues?queue=team&assignee=agent12&sort=-created_at",
]


def dashboard_pages(settings: Settings) -> list[tuple[str, str]]:
    """The dashboard over its default period (the last 30 days), the last 90 days and a whole year."""
    today = datetime.now(ZoneInfo(settings.time_zone)).date()
    pages = [("30 days (the default)", "/dashboard")]
    for days in (90, 365):
        pages.append((f"{days} days", f"/dashboard?since={today - timedelta(days=days - 1)}&until={today}"))
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url", help="a PostgreSQL desk on an empty schema (default: SQLite in a temp dir)")
    parser.add_argument("--dashboard-only", action="store_true", help="time the dashboard only, not the queue pages")
    args = parser.parse_args()
    logging.getLogger("ticketflow.access").disabled = True  # one JSON line per request would drown the figures

    data = Path(tempfile.mkdtemp(prefix="tf-console-bench-"))
    settings = Settings(data_dir=data, database_url=args.database_url, automation=False, seal=False,
                        embedded_projections=True)
    app = create_app(settings)
    with TestClient(app) as client:
        started = time.perf_counter()
        seed(app, args.tickets)
        print(f"seeded {args.tickets:,} tickets in {time.perf_counter() - started:.1f} s"
              f" ({args.database_url or data})")
        gc.collect()
        gc.freeze()  # as `serve` does once started: what start-up made is never scanned again
        overall: list[float] = []
        for who in () if args.dashboard_only else ("agent0", "boss"):
            client.cookies.clear()
            client.post("/signin", data={"username": who, "password": PASSWORD})
            for page in PAGES:
                if who == "boss" and "queue=mine" in page:
                    continue
                timings = []
                for _ in range(args.repeat):
                    start = time.perf_counter()
                    response = client.get(page)
                    timings.append((time.perf_counter() - start) * 1000)
                    assert response.status_code == 200, response.text[:200]
                overall += timings
                print(f"{who:7} {page:60} p50 {percentile(timings, .5):6.1f} ms  p99 {percentile(timings, .99):6.1f} ms")
        if overall:
            print(f"all queue pages: p50 {percentile(overall, .5):.1f} ms, p99 {percentile(overall, .99):.1f} ms"
                  f" over {len(overall)} requests (target p99 < 100 ms)")
        for label, page in dashboard_pages(settings):
            dashboard: list[float] = []
            cpu: list[float] = []  # this process's CPU time: steadier than the clock on a busy machine
            for who in ("agent0", "boss"):
                client.cookies.clear()
                client.post("/signin", data={"username": who, "password": PASSWORD})
                for _ in range(max(3, args.repeat // 2)):
                    start, start_cpu = time.perf_counter(), time.process_time()
                    response = client.get(page)
                    dashboard.append((time.perf_counter() - start) * 1000)
                    cpu.append((time.process_time() - start_cpu) * 1000)
                    assert response.status_code == 200, response.text[:200]
            print(f"dashboard, {label:21}, agent and admin: p50 {percentile(dashboard, .5):6.1f} ms,"
                  f" p99 {percentile(dashboard, .99):6.1f} ms over {len(dashboard)} requests (target p99 < 300 ms);"
                  f" CPU of this process p50 {percentile(cpu, .5):6.1f} ms"
                  + (" (PostgreSQL's own not included)" if args.database_url else ""))


if __name__ == "__main__":
    main()
