"""Group commit alone: N threads post replies through ``TicketDesk.handle`` on one SQLite desk, with
eventsourcing's own recorder (one transaction and fsync per save) and with the group commit.

    python bench/bench_group_commit.py [--threads 32] [--commands 25] [--postgres URL]

``--postgres URL``: the same on PostgreSQL (a fresh schema on that server, dropped at the end), with
eventsourcing's ``PostgresApplicationRecorder`` and with the desk's (ticketflow/pg_group_commit.py).
Also prints the transactions that wrote the events (distinct ``xmin`` of the events written: a
save, or a group) and the server's ``wal_sync`` delta (``pg_stat_wal``: the whole server's WAL
flushes, other users' included).

Each mode runs in its own process; on Linux with ``perf`` (root) the process's fdatasync calls are
counted on the syscall tracepoint (set-up saves included: one customer, two teams, a ticket per
thread, made one at a time). Prints commands/s, CPU per command, commits and fsyncs.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLAIN = {"APPLICATION_RECORDER_TOPIC": "eventsourcing.sqlite:SQLiteApplicationRecorder"}
PLAIN_POSTGRES = {"APPLICATION_RECORDER_TOPIC": "eventsourcing.postgres:PostgresApplicationRecorder"}


def _pg_counters(url: str, schema: str) -> tuple[int, int]:
    """(newest position, the server's wal_sync so far)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        (position,) = conn.execute(  # type: ignore[misc]
            f'SELECT coalesce(max(notification_id), 0) FROM "{schema}".ticketdesk_events'
        ).fetchone()
        (syncs,) = conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()  # type: ignore[misc]
    return int(position), int(syncs)


def run_postgres(mode: str, threads: int, commands: int, url: str) -> None:
    import uuid

    import psycopg

    sys.path.insert(0, str(REPO))
    from tests.support import AGENT, Desk
    from ticketflow.application import TicketDesk
    from ticketflow.commands import PostReply
    from ticketflow.config import Settings

    schema = f"bench_gc_{uuid.uuid4().hex[:10]}"
    directory = Path(tempfile.mkdtemp(prefix="tf-group-commit-"))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        settings = Settings(database_url=f"{url}?schema={schema}", data_dir=directory, pool_size=8)
        desk = TicketDesk(settings, env=PLAIN_POSTGRES if mode == "plain" else None)
        setup = Desk(desk)
        tickets = [setup.open(f"工单 {n}") for n in range(threads)]

        def work(ticket_id: object) -> None:
            for n in range(commands):
                desk.handle(PostReply(ticket_id=ticket_id, body=f"回复 {n}"), AGENT)  # type: ignore[arg-type]

        workers = [threading.Thread(target=work, args=(t,)) for t in tickets]
        start = _pg_counters(url, schema)
        cpu, wall = time.process_time(), time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        end = _pg_counters(url, schema)
        with psycopg.connect(url, autocommit=True) as conn:
            (store,) = conn.execute(  # type: ignore[misc]
                f'SELECT count(DISTINCT xmin::text) FROM "{schema}".ticketdesk_events WHERE notification_id > %s',
                (start[0],),
            ).fetchone()
        total = threads * commands
        print(f"{mode:>6}: {total / wall:7.0f} commands/s  CPU {cpu / total * 1000:.2f} ms/command (this process)"
              f"  {end[0] - start[0]:,} events in {store:,} transactions ({store / total:.3f}/command)"
              f"  wal_sync {end[1] - start[1]:,} (whole server)", flush=True)
        desk.close()
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        shutil.rmtree(directory, ignore_errors=True)


def run(mode: str, threads: int, commands: int) -> None:
    sys.path.insert(0, str(REPO))
    from tests.support import AGENT, Desk
    from ticketflow.application import TicketDesk
    from ticketflow.commands import PostReply
    from ticketflow.config import Settings

    directory = Path(tempfile.mkdtemp(prefix="tf-group-commit-"))
    try:
        desk = TicketDesk(Settings(data_dir=directory), env=PLAIN if mode == "plain" else None)
        setup = Desk(desk)
        tickets = [setup.open(f"工单 {n}") for n in range(threads)]
        setup_saves = desk.log_position()

        def work(ticket_id: object) -> None:
            for n in range(commands):
                desk.handle(PostReply(ticket_id=ticket_id, body=f"回复 {n}"), AGENT)  # type: ignore[arg-type]

        workers = [threading.Thread(target=work, args=(t,)) for t in tickets]
        cpu, wall = time.process_time(), time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        total = threads * commands
        stats = getattr(desk.recorder, "group_stats", None)
        grouped = f"  {stats.commits} commits for {stats.saves} saves" if stats else "  one commit per save"
        print(f"{mode:>6}: {total / wall:7.0f} commands/s  CPU {cpu / total * 1000:.2f} ms/command{grouped}"
              f"  (set-up: {setup_saves} events)", flush=True)
        desk.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--commands", type=int, default=25, help="replies per thread")
    parser.add_argument("--postgres", help="PostgreSQL server URL: bench the PostgreSQL store instead")
    parser.add_argument("--mode", choices=["plain", "group"], help=argparse.SUPPRESS)  # one child process
    args = parser.parse_args()
    if args.mode:
        if args.postgres:
            run_postgres(args.mode, args.threads, args.commands, args.postgres)
        else:
            run(args.mode, args.threads, args.commands)
        return
    if args.postgres:
        for mode in ("plain", "group"):
            subprocess.run([sys.executable, __file__, "--mode", mode, "--threads", str(args.threads),
                            "--commands", str(args.commands), "--postgres", args.postgres], check=True)
        return
    perf = shutil.which("perf")
    for mode in ("plain", "group"):
        child = [sys.executable, __file__, "--mode", mode, "--threads", str(args.threads),
                 "--commands", str(args.commands)]
        if perf is None:
            subprocess.run(child, check=True)
            continue
        with tempfile.NamedTemporaryFile(suffix=".csv") as out:
            subprocess.run([perf, "stat", "-x", ",", "-o", out.name, "-e", "syscalls:sys_enter_fdatasync",
                            "--", *child], check=True)
            counts = [line.split(",")[0] for line in Path(out.name).read_text().splitlines()
                      if "sys_enter_fdatasync" in line]
            if counts and counts[0].isdigit():
                print(f"        fdatasync calls: {int(counts[0]):,}", flush=True)
            else:
                print("        (fdatasync not counted: perf could not read the tracepoint; it needs root)")


if __name__ == "__main__":
    main()
