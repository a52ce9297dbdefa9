"""What a view batch's write of a row it read costs: an UPDATE of the changed columns against an upsert of every column.

    python bench/bench_batch_writes.py [--tickets 30000] [--batches 40] [--rows 50]

Seeds ``--tickets`` rows into the tickets view's table (its 17 indexes, SQLite, WAL, as a view store
opens it), then ``--batches`` transactions each change ``--rows`` random existing tickets as a reply
does (updated_at, version, position, interaction and reply counts) through :class:`projections.sql.Batch`:
once read first (``get``: the batch writes the changed columns alone, today's path), once put whole
without reading (the batch upserts every column, as every row was written before), alternating.
Prints this process's CPU per row written for each (the rows' and indexes' pages, the commit).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

from projections.sql import Batch, Db, Dialect, render
from projections.tickets import TICKETS


def seed_row(i: int, rng: random.Random) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(TICKETS.column_names)
    row.update(
        ticket_id=f"{rng.getrandbits(128):032x}", subject=f"工单 {i}", status=rng.choice(["new", "open", "pending", "solved"]),
        team_id=f"team-{i % 7}", assignee_id=f"agent-{i % 13}", priority="normal", priority_rank=i % 4,
        ticket_type="question", channel="api", category="login", customer_id=f"c-{i % 500}", tags="[]",
        created_at=f"2026-01-{i % 28 + 1:02d}T{i % 24:02d}:00:{i % 60:02d}", updated_at="2026-01-31T00:00:00",
        reply_count=0, note_count=0, interaction_count=0, work_minutes=0, reopen_count=0, reassignment_count=0,
        imported=0, sla_breached=0, version=1, position=i,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=30_000)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--rows", type=int, default=50)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="tf-bw-"))
    try:
        conn = sqlite3.connect(directory / "tickets.sqlite", isolation_level=None)
        conn.row_factory = sqlite3.Row
        for pragma in ("journal_mode = WAL", "synchronous = NORMAL", "secure_delete = ON"):  # as a view store
            conn.execute(f"PRAGMA {pragma}")
        for statement in TICKETS.ddl():
            conn.execute(render(statement, Dialect.SQLITE, ""))
        rng = random.Random(5)
        rows = [seed_row(i, rng) for i in range(args.tickets)]
        conn.execute("BEGIN")
        conn.executemany(render(TICKETS.upsert_sql, Dialect.SQLITE, ""), [TICKETS.values(r) for r in rows])
        conn.execute("COMMIT")
        ids = [r["ticket_id"] for r in rows]
        position = args.tickets
        spent = {"changed columns (read first)": 0.0, "every column (upsert)": 0.0}
        for number in range(args.batches * 2):
            read_first = number % 2 == 0
            chosen = rng.sample(ids, args.rows)
            started = time.process_time()
            conn.execute("BEGIN")
            batch = Batch(Db(conn.cursor(), Dialect.SQLITE, ""))
            for ticket_id in chosen:
                position += 1
                row = batch.get(TICKETS, ticket_id) if read_first else dict(conn.execute(
                    "SELECT * FROM tf_tickets WHERE ticket_id = ?", (ticket_id,)).fetchone())
                assert row is not None
                row.update(updated_at=f"2026-02-{rng.randrange(1, 29):02d}T{rng.randrange(24):02d}:00:00",
                           version=row["version"] + 1, position=position,
                           interaction_count=row["interaction_count"] + 1, reply_count=row["reply_count"] + 1)
                batch.put(TICKETS, row)
            batch.flush()
            conn.execute("COMMIT")
            spent["changed columns (read first)" if read_first else "every column (upsert)"] += time.process_time() - started
        conn.close()
        print(f"tickets table of {args.tickets:,} rows, {args.batches} transactions of {args.rows} reply-like changes each way:")
        for way, seconds in spent.items():
            print(f"  {way:30s} {seconds / (args.batches * args.rows) * 1000:.3f} ms CPU a row")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
