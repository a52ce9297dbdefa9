"""The automation's look at the work due: ``due_work`` and ``next_due`` on a workflow view of N tickets.

Each ticket has the work rows a desk keeps for it (an SLA row and, for solved ones, survey, follow-up and
auto-close rows), most of them already worked: the SLA rows marked by the automation as due again at the
ticket's next SLA instant (open tickets, spread over the next days) or done (closed ones), the others settled
by the log; ``--due`` of them are due now. Rows and marks are written the way the view and the automation write
them (``mark_work``), so the figures follow whatever the code keeps. Prints the CPU per query, best of
``--rounds`` rounds of ``--repeat`` calls each, in one read transaction per call as the automation reads.

    python bench/bench_due_work.py --tickets 1000 10000 [--database-url postgresql://...?schema=...]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from projections.readside import ReadSide
from projections.sql import Db, ts
from projections.workflow import MARKS, WORK, due_work, mark_work, next_due
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.config import Settings

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def seed(db: Db, tickets: int, due: int) -> None:
    rng = random.Random(1)
    rows, marks = [], []
    stamp = 0

    def row(kind: str, object_id: str, due_at: str, state: str) -> dict[str, Any]:
        nonlocal stamp
        stamp += 1
        values = dict.fromkeys(WORK.column_names) | {
            "kind": kind,
            "object_id": object_id,
            "due_at": due_at,
            "state": state,
            "stamp": stamp,
        }
        if "todo_at" in values:  # as the view writes it (no mark yet for the row's stamp)
            values["todo_at"] = due_at if state == "due" else None
        rows.append([values[c] for c in WORK.column_names])
        return values

    for i in range(tickets):
        ticket = f"00000000-0000-0000-0000-{i:012d}"
        sla = row("sla", ticket, "", "due")
        if i < due:
            continue  # changed since the last look: due now
        closed = rng.random() < 0.6
        later = ts(NOW + timedelta(minutes=rng.randrange(30, 7 * 24 * 60)))
        marks.append((sla, "done" if closed else "due", None if closed else later))
        if closed:
            for kind in ("survey", "follow_up", "auto_close"):
                row(kind, ticket, ts(NOW - timedelta(days=3)) or "", "done")
    db.executemany(WORK.upsert_sql, rows)
    for work, state, due_at in marks:
        mark_work(db, work, state, due_at)
    db.execute("ANALYZE {p}tf_work")
    db.execute(f"ANALYZE {{p}}{MARKS.name}")


def timed(read_side: ReadSide, query: Any, repeat: int, rounds: int) -> tuple[float, float, int]:
    """Best CPU of this process and best wall time per call, in ms (PostgreSQL: the server's work is in the wall
    time only), and the rows found."""
    best, best_wall = float("inf"), float("inf")
    found = 0
    for _ in range(rounds):
        started, wall = time.process_time(), time.perf_counter()
        for _ in range(repeat):
            found = len(read_side.read("workflow", query) or [])
        best = min(best, (time.process_time() - started) / repeat)
        best_wall = min(best_wall, (time.perf_counter() - wall) / repeat)
    return best * 1000, best_wall * 1000, found


def run(tickets: int, due: int, repeat: int, rounds: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(database_url=database_url) if database_url else Settings(data_dir=Path(tmp))
        desk = TicketDesk(settings, clock=FakeClock(NOW))
        read_side = ReadSide(desk, ["workflow"])
        try:
            read_side.stores["workflow"].write(lambda db: seed(db, tickets, due))
            until = ts(NOW) or ""
            work_ms, work_wall, found = timed(
                read_side, lambda db: due_work(db, "sla", until), repeat, rounds
            )
            ahead = ts(NOW + timedelta(days=8)) or ""
            next_ms, next_wall, _ = timed(read_side, lambda db: [next_due(db, until, ahead)], repeat, rounds)
            print(
                f"{tickets:>7} tickets, {found} SLA rows due: due_work {work_ms:.3f} ms CPU ({work_wall:.3f} wall), "
                f"next_due {next_ms:.3f} ms CPU ({next_wall:.3f} wall) (best of {rounds} x {repeat}; load {os.getloadavg()[0]:.1f})"
            )
        finally:
            read_side.stores["workflow"].write(
                lambda db: [db.execute(f"DELETE FROM {{p}}{t}") for t in ("tf_work", MARKS.name)]
            )
            read_side.close()
            desk.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--due", type=int, default=5, help="SLA rows due now (changed since the last look)")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--database-url", default=None, help="PostgreSQL (a schema of your own): the views there"
    )
    args = parser.parse_args()
    for tickets in args.tickets:
        run(tickets, args.due, args.repeat, args.rounds, args.database_url)


if __name__ == "__main__":
    main()
