"""Desks opened at the same moment on one existing PostgreSQL schema (what `serve --workers N` and
`ticketflow project` do when they restart together): each round starts ``--desks`` threads that
wait at a barrier, then each opens a `TicketDesk` (its DDL runs on open) and closes it; prints how
many opens succeeded and each error seen.

    python bench/concurrent_start.py [--desks 3] [--rounds 20] [--postgres URL]

Before ticketflow/pg_ddl.py, 14 of 60 opens failed with "tuple concurrently updated" (see README
"Reliability: crash trials"); a `project` that fails so at start leaves every view behind.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import uuid
from collections import Counter
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ticketflow.application import TicketDesk
from ticketflow.config import Settings


def storm(settings: Settings, desks: int, rounds: int) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    for _ in range(rounds):
        barrier = threading.Barrier(desks)

        def open_one(barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                TicketDesk(settings).close()
                outcome = "opened"
            except Exception as exc:  # noqa: BLE001 - counted and printed
                outcome = str(exc).rsplit(": ", 1)[-1].strip()
            with lock:
                outcomes[outcome] += 1

        threads = [threading.Thread(target=open_one) for _ in range(desks)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--desks", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--postgres", default=os.environ.get("TICKETFLOW_TEST_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    schema = f"tf_start_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(args.postgres, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        with tempfile.TemporaryDirectory(prefix="tf-start-") as data:
            settings = Settings(data_dir=Path(data), database_url=f"{args.postgres}?schema={schema}")
            TicketDesk(settings).close()  # the schema exists: every round is a restart
            outcomes = storm(settings, args.desks, args.rounds)
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    total = sum(outcomes.values())
    print(f"{args.desks} desks at once x {args.rounds} rounds: {outcomes['opened']}/{total} opened"
          + "".join(f"; {count} failed: {error}" for error, count in outcomes.items() if error != "opened"))


if __name__ == "__main__":
    main()
