"""Full verification of a sealed log, next to raw SHA-256 over the same stored bytes.

    python bench/bench_verify.py [--events 1000000] [--store sqlite|postgres]
                                 [--postgres-url postgresql://postgres@127.0.0.1:5432/test]
                                 [--workers N]

Builds a store of ``--events`` stored events (real events of a small desk, their stored
bytes cloned onto synthetic tickets of 5 events each: bulk-inserted, not replayed through
commands), seals it, then in the same run times:

1. **raw SHA-256**: ``hashlib.sha256(state)`` over every stored state, already in memory;
2. **read + SHA-256**: the same, reading the rows from the store page by page;
3. **full verification**: ``verify_store`` (re-hash, chains, tree, every checkpoint root,
   signatures; snapshots off: the synthetic streams have none), in one process and then with
   ``--workers`` processes (the parallel pass ``ticketflow audit verify`` uses on large logs).

Targets: (3) >= 100,000 events/s and >= 0.3x (2).
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
import uuid
from pathlib import Path

from eventsourcing.persistence import StoredEvent

from projections.integrity.keys import KeyRing
from projections.integrity.rawlog import log_rows
from projections.integrity.sealer import Sealer
from projections.integrity.verifier import default_workers, verify_store
from ticketflow.application import TicketDesk
from ticketflow.commands import AddNote, AddTeamMember, FormTeam, OpenTicket, RegisterCustomer
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller

PER_TICKET = 5


def build(desk: TicketDesk, events: int) -> None:
    admin, agent = Caller("admin.root", Role.ADMIN, Channel.CLI), Caller("li.wei", Role.AGENT, Channel.API)
    customer = desk.register_customer(RegisterCustomer(name="王小明", email="xiaoming@example.cn"), admin).object_id
    team = desk.form_team(FormTeam(name="技术支持"), admin).object_id
    desk.add_team_member(AddTeamMember(team_id=team, agent_id="li.wei"), admin)
    ticket = desk.open_ticket(OpenTicket(subject="样本工单 sample ticket", requester_id=customer, team_id=team), agent).object_id
    for i in range(PER_TICKET - 1):
        desk.add_note(AddNote(ticket_id=ticket, body=f"第 {i} 条备注 note with some realistic length " * 3), agent)
    samples = desk.recorder.select_events(ticket)
    # psycopg's pipelined executemany stalls on very large batches here: smaller ones on PostgreSQL
    batch_size = 1_000 if desk.settings.database_url else 20_000
    remaining = events - desk.log_position()
    batch: list[StoredEvent] = []
    while remaining > 0:
        oid = uuid.uuid4()
        for sample in samples[: min(PER_TICKET, remaining)]:
            batch.append(StoredEvent(oid, sample.originator_version, sample.topic, sample.state))
            remaining -= 1
        if len(batch) >= batch_size or remaining <= 0:
            desk.recorder.insert_events(batch)
            batch = []


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:>12,.0f} events/s ({seconds:.2f} s)"


def main() -> None:  # noqa: PLR0915 - a linear script
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--every-events", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=default_workers(1 << 62),
                        help="processes for the parallel verification (default: the CPUs, at most 4)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    schema = None
    if args.store == "postgres":
        import psycopg

        schema = f"bench_verify_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.postgres_url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        settings = Settings(data_dir=scratch, database_url=f"{args.postgres_url}?schema={schema}")
    else:
        settings = Settings(data_dir=scratch)
    desk = TicketDesk(settings)
    try:
        started = time.perf_counter()
        build(desk, args.events)
        total = desk.log_position()
        print(f"store: {settings.describe_store()}; {total:,} events built in {time.perf_counter() - started:.1f} s")

        sealer = Sealer(desk, every_events=args.every_events, every_seconds=1e9, keys=KeyRing(scratch / "keys"))
        started = time.perf_counter()
        sealer.catch_up(checkpoint=True)
        print(f"seal (hash, chain, tree, sign every {args.every_events:,}): {rate(total, time.perf_counter() - started)}")

        states: list[bytes] = []
        started = time.perf_counter()
        for row in log_rows(desk):  # the verifier's own reader: same rows, same pages
            hashlib.sha256(row[4]).digest()
            states.append(row[4])
        read_and_hash = time.perf_counter() - started
        started = time.perf_counter()
        for state in states:
            hashlib.sha256(state).digest()
        raw = time.perf_counter() - started
        print(f"raw SHA-256 over the stored bytes (in memory): {rate(len(states), raw)}; "
              f"{sum(map(len, states)) / len(states):.0f} bytes/event")
        print(f"read + SHA-256 (same rows, same pages):        {rate(len(states), read_and_hash)}")
        del states

        for label, workers in (("single process", 1), (f"parallel, {args.workers} workers", args.workers)):
            started = time.perf_counter()
            report = verify_store(desk, sealer.store, snapshots=False, workers=workers)
            verify = time.perf_counter() - started
            assert report.ok, report.problems[:3]
            print(f"full verification, {label} ({report.checkpoints} checkpoints): {rate(report.sealed, verify)}")
            print(f"  ratio to read + SHA-256: {read_and_hash / verify:.2f}x; to in-memory SHA-256: {raw / verify:.3f}x")
        sealer.close()
    finally:
        desk.close()
        if schema is not None:
            import psycopg

            with psycopg.connect(args.postgres_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
