"""Read-side benchmarks, compared side by side in one run.

    python bench/bench_views.py [--events 200000] [--data DIR] [--queue-tickets 200000]

1. Rebuild throughput of every view over a demo store of at least ``--events``
   events (built once with the desk simulation and kept in ``--data``), next to
   the raw speed of reading and deserialising the same notifications.
2. Live lag on the embedded SQLite default: p50/p99 from a command's commit to
   its visibility in the tickets view, under a steady command load.
3. Queue query latency (p50/p99) with ``--queue-tickets`` rows in the tickets view.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

from projections.readside import REBUILD_BATCH, VIEWS, ReadSide
from projections.sql import ts
from projections.tickets import PRIORITY_RANK, TICKETS, TicketFilter, TicketQueries
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock, SystemClock
from ticketflow.commands import AddNote, FormTeam, AddTeamMember, OpenTicket, RegisterCustomer
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Priority, Role, Status
from ticketflow.metadata import Caller
from ticketflow.simulation import DeskSimulation


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def build_store(data: Path, events: int) -> Settings:
    settings = Settings(data_dir=data)
    desk = TicketDesk(settings, clock=FakeClock(datetime.now(UTC)))
    have = desk.log_position()
    if have < events:
        print(f"building a demo store of {events:,} events in {data} (have {have:,}); this takes a while...")
        while desk.log_position() < events:
            clock = FakeClock(datetime.now(UTC))
            run_desk = TicketDesk(settings, clock=clock)
            tickets = max(100, (events - run_desk.log_position()) // 8)
            simulation = DeskSimulation(run_desk, clock, tickets=min(tickets, 5000), customers=800, days=90)
            simulation.setup()
            simulation.run()
            run_desk.close()
            print(f"  {desk.log_position():,} events")
    desk.close()
    return settings


def raw_read(desk: TicketDesk) -> tuple[float, float]:
    """Events per second of reading and decoding the whole log, and the CPU seconds it took."""
    started, cpu = time.perf_counter(), time.process_time()
    position, count = 1, 0
    while True:
        notifications = desk.recorder.select_notifications(position, REBUILD_BATCH)
        if not notifications:
            break
        for notification in notifications:
            desk.mapper.to_domain_event(notification)
        count += len(notifications)
        position = notifications[-1].id + 1
    return count / (time.perf_counter() - started), time.process_time() - cpu


def rebuild(settings: Settings) -> dict[str, tuple[float, float]]:
    """Each ratio twice: wall-clock throughput against the raw read's (what the target names), and CPU
    seconds of the raw read over CPU seconds of the rebuild (steady on a machine others load too).
    Answers view name -> (wall ratio, CPU ratio)."""
    ratios: dict[str, tuple[float, float]] = {}
    desk = TicketDesk(settings)
    events = desk.log_position()
    raw, raw_cpu = raw_read(desk)
    # Views in a scratch directory: the same events, read from the bench store.
    views_settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="tf-views-")))
    read_side = ReadSide(desk, store_settings=views_settings)
    print(f"rebuild over {events:,} events (raw read + deserialise: {raw:,.0f} events/s, {raw_cpu:.2f} s CPU)")
    total = total_cpu = 0.0
    for name in VIEWS:
        started, cpu = time.perf_counter(), time.process_time()
        read_side.rebuild(name)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        total += elapsed
        total_cpu += cpu
        ratios[name] = (events / elapsed / raw, raw_cpu / cpu)
        print(
            f"  {name:<16} {events / elapsed:10,.0f} events/s  ratio to raw {events / elapsed / raw:.2f}x"
            f"  CPU {cpu:6.2f} s, CPU ratio {raw_cpu / cpu:.2f}x"
        )
    started, cpu = time.perf_counter(), time.process_time()
    read_side.rebuild_all()
    together, together_cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        f"  all views, one after another: {events / total:,.0f} events/s ({events / total / raw:.2f}x raw, "
        f"CPU {total_cpu:.2f} s); all views from one shared read: {events / together:,.0f} events/s "
        f"({events / together / raw:.2f}x raw, CPU {together_cpu:.2f} s)"
    )
    read_side.close()
    desk.close()
    shutil.rmtree(views_settings.data_dir, ignore_errors=True)
    return ratios


def live_lag(seconds: float, rate: float) -> None:
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="tf-lag-")))
    desk = TicketDesk(settings, clock=SystemClock())
    admin = Caller("bench", Role.ADMIN, Channel.API)
    customer = desk.register_customer(RegisterCustomer(name="压测客户"), admin).object_id
    team = desk.form_team(FormTeam(name="bench"), admin).object_id
    desk.add_team_member(AddTeamMember(team_id=team, agent_id="a1"), admin)
    read_side = ReadSide(desk)
    read_side.start()
    lags: list[float] = []
    tickets = []
    deadline = time.monotonic() + seconds
    interval = 1.0 / rate
    while time.monotonic() < deadline:
        began = time.monotonic()
        if not tickets or random.random() < 0.3:
            result = desk.open_ticket(OpenTicket(subject="延迟测试 lag", requester_id=customer, team_id=team), admin)
            tickets.append(result.object_id)
        else:
            result = desk.add_note(AddNote(ticket_id=random.choice(tickets), body="note 备注"), admin)
        committed = time.monotonic()
        assert result.position is not None
        if not read_side.wait(result.position, timeout=5, names=["tickets"]):
            raise SystemExit("the tickets view did not catch up within 5 s")
        lags.append((time.monotonic() - committed) * 1000)
        time.sleep(max(0.0, interval - (time.monotonic() - began)))
    read_side.close()
    desk.close()
    shutil.rmtree(settings.data_dir, ignore_errors=True)
    print(
        f"live lag, embedded SQLite, {len(lags)} commands at ~{rate:.0f}/s with all {len(VIEWS)} views following: "
        f"p50 {percentile(lags, 0.5):.1f} ms, p99 {percentile(lags, 0.99):.1f} ms, max {max(lags):.1f} ms"
    )


def queue_latency(rows: int, store: str | None) -> None:
    settings = Settings(database_url=store) if store else Settings(data_dir=Path(tempfile.mkdtemp(prefix="tf-q-")))
    desk = TicketDesk(settings)
    read_side = ReadSide(desk, ["tickets"])
    store_ = read_side.stores["tickets"]
    teams = [str(uuid4()) for _ in range(12)]
    agents = [f"agent{i}" for i in range(80)]
    now = datetime.now(UTC)
    rng = random.Random(7)
    statuses = [s.value for s in Status]
    weights = [3, 10, 5, 3, 15, 64]

    def insert(db) -> None:  # type: ignore[no-untyped-def]
        batch = []
        for i in range(rows):
            created = now - timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
            status = rng.choices(statuses, weights)[0]
            priority = rng.choice(list(Priority))
            row = dict.fromkeys(TICKETS.column_names)
            row.update(
                ticket_id=str(uuid4()), subject=f"ticket {i}", ticket_type="incident", category="login",
                priority=priority.value, priority_rank=PRIORITY_RANK[priority], status=status, channel="email",
                customer_id=str(uuid4()), team_id=rng.choice(teams),
                assignee_id=None if status == "new" else rng.choice(agents), tags="[]",
                created_at=ts(created), updated_at=ts(created + timedelta(hours=rng.randrange(0, 200))),
                reply_count=0, note_count=0, interaction_count=0, work_minutes=0, reopen_count=0,
                reassignment_count=0, imported=0, version=1, position=i,
            )
            batch.append([row[c] for c in TICKETS.column_names])
        db.executemany(TICKETS.upsert(), batch)

    with store_._transaction(commit=True) as cursor:  # noqa: SLF001 - bench fixture data
        from projections.sql import Db

        insert(Db(cursor, store_.dialect, store_.prefix))
    with store_._transaction(commit=True) as cursor:  # noqa: SLF001
        # Planner statistics, as autovacuum (PostgreSQL) or `PRAGMA optimize` (SQLite) keep them in service.
        cursor.execute(f"ANALYZE {store_.prefix}tf_tickets")
    queries = {
        "team queue (team + open/pending, oldest first)": lambda: TicketFilter(team_id=rng.choice(teams), status=("open", "pending")),
        "my tickets (assignee + open)": lambda: TicketFilter(assignee_id=rng.choice(agents), status=("open",)),
        "unassigned new": lambda: TicketFilter(unassigned=True, status=("new",)),
        "urgent and high, open": lambda: TicketFilter(priority=("urgent", "high"), status=("open",)),
        "updated in the last hour": lambda: TicketFilter(updated_since=now + timedelta(hours=100)),
    }
    sorts = {"urgent and high, open": "priority", "updated in the last hour": "updated_at"}  # as the API picks
    kind = "PostgreSQL" if store else "SQLite"
    print(f"queue queries with {rows:,} tickets in the view ({kind}), 50 per page:")
    for label, make in queries.items():
        times = []
        for _ in range(300):
            where = make()
            sort = sorts.get(label, "created_at")
            started = time.perf_counter()
            read_side.read("tickets", lambda db, w=where, s=sort: TicketQueries.queue(db, w, s, 50))
            times.append((time.perf_counter() - started) * 1000)
        print(f"  {label:<48} p50 {percentile(times, 0.5):6.2f} ms  p99 {percentile(times, 0.99):6.2f} ms")
    read_side.close()
    desk.close()
    if not store:
        shutil.rmtree(settings.data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()) / "ticketflow-bench-store")
    parser.add_argument("--queue-tickets", type=int, default=200_000)
    parser.add_argument("--lag-seconds", type=float, default=20)
    parser.add_argument("--lag-rate", type=float, default=50, help="commands per second during the lag test")
    parser.add_argument("--postgres", default="", help="also run queue latency on this PostgreSQL URL (with ?schema=)")
    parser.add_argument("--only", choices=["rebuild", "lag", "queues"], default=None)
    args = parser.parse_args()
    if args.only in (None, "rebuild"):
        rebuild(build_store(args.data, args.events))
    if args.only in (None, "lag"):
        live_lag(args.lag_seconds, args.lag_rate)
    if args.only in (None, "queues"):
        queue_latency(args.queue_tickets, None)
        if args.postgres:
            queue_latency(args.queue_tickets, args.postgres)


if __name__ == "__main__":
    main()
