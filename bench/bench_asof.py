"""Time-travel benchmark: a ticket with ``--events`` events read at random versions.

    python bench/bench_asof.py [--events 10000] [--reads 200] [--store sqlite|memory|postgres]
                               [--postgres-url postgresql://postgres@127.0.0.1:5432/test]  (in a scratch schema, dropped after)

Side by side, in the same run and at the same random versions:

1. **as-of read**: ``desk.get_ticket(id, version)``: the nearest snapshot at or below the
   version, then the events after it (the library's version-limited get);
2. **full replay**: every event from version 1 up to the version, no snapshot;
3. **as-of API row**: (1) plus what ``GET /api/v1/tickets/{id}?version=`` adds (the two
   counters the aggregate does not keep, read from the stored records by topic);
4. **version for an instant**: the binary search from a recorded time to a version.

Prints p50/p99 of each and the p99 speed-up of (1) and (3) over (2); the target is >= 20x.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from eventsourcing.application import project_aggregate

from projections.asof import ticket_row
from ticketflow import metadata
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import FormTeam, OpenTicket, RegisterCustomer
from ticketflow.config import Settings
from ticketflow.domain import Ticket
from ticketflow.domain.values import Channel, Direction, InteractionKind, Role
from ticketflow.metadata import Caller
from ticketflow.timetravel import event_at, version_at

ADMIN = Caller("bench", Role.ADMIN, Channel.CLI)
AGENT = Caller("li.wei", Role.AGENT, Channel.API)
KINDS = (InteractionKind.NOTE, InteractionKind.REPLY, InteractionKind.CALL)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def build(desk: TicketDesk, events: int) -> uuid.UUID:
    customer = desk.register_customer(RegisterCustomer(name="Bench"), ADMIN).object_id
    team = desk.form_team(FormTeam(name="Bench"), ADMIN).object_id
    ticket_id = desk.open_ticket(OpenTicket(subject="long-lived", requester_id=customer, team_id=team), ADMIN).object_id
    while (version := desk.get_ticket(ticket_id).version) < events:
        ticket: Ticket = desk.get_ticket(ticket_id)
        with metadata.recording(metadata.context_for(AGENT, uuid.uuid4(), desk.clock.now())):
            for n in range(min(500, events - version)):
                kind = KINDS[n % 3]
                direction = Direction.INTERNAL if kind is InteractionKind.NOTE else Direction.OUTBOUND
                ticket.record_interaction(kind, uuid.uuid4(), direction, AGENT.actor_id, "phone", f"entry {n}")
        desk.save(ticket)
    return ticket_id


def timed(versions: list[int], read: Callable[[int], object]) -> list[float]:
    out = []
    for version in versions:
        start = time.perf_counter()
        read(version)
        out.append((time.perf_counter() - start) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--reads", type=int, default=200)
    parser.add_argument("--store", choices=("sqlite", "memory", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    if args.store == "sqlite":
        settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="bench-asof-")))
    elif args.store == "memory":
        settings = Settings(database_url="memory://")
    else:
        schema = scratch_schema(args.postgres_url)  # a schema of its own, dropped at the end
        settings = Settings(database_url=f"{args.postgres_url}?schema={schema}")
    # The aggregate cache is off so that every read goes to the store, as a cold as-of read does.
    desk = TicketDesk(settings.model_copy(update={"aggregate_cache_size": 0}), clock=FakeClock(datetime(2026, 3, 2, 9, tzinfo=UTC)))
    start = time.perf_counter()
    ticket_id = build(desk, args.events)
    last = desk.get_ticket(ticket_id).version
    print(f"store {args.store}: ticket with {last} events built in {time.perf_counter() - start:.1f} s "
          f"(snapshot every {desk.settings.snapshot_interval})")

    rng = random.Random(args.seed)
    versions = [rng.randint(1, last) for _ in range(args.reads)]
    full_reads = versions[: max(20, args.reads // 5)]  # full replay is slow: fewer samples, same distribution
    asof = timed(versions, lambda v: desk.get_ticket(ticket_id, v))
    row = timed(versions, lambda v: ticket_row(desk, desk.get_ticket(ticket_id, v)))
    full = timed(full_reads, lambda v: project_aggregate(None, desk.events.get(ticket_id, lte=v)))
    instants = []
    for v in versions[:50]:
        event = event_at(desk, ticket_id, v)
        assert event is not None
        instants.append(event.timestamp)
    search = []
    for moment in instants:
        t0 = time.perf_counter()
        version_at(desk, ticket_id, moment)
        search.append((time.perf_counter() - t0) * 1000)

    print(f"{'read':<32}{'n':>6}{'p50 ms':>10}{'p99 ms':>10}")
    for name, values in [("as-of (snapshot + tail)", asof), ("as-of API row", row),
                         ("full replay", full), ("instant -> version (search)", search)]:
        print(f"{name:<32}{len(values):>6}{percentile(values, 0.5):>10.2f}{percentile(values, 0.99):>10.2f}")
    speedup = percentile(full, 0.99) / percentile(asof, 0.99)
    row_speedup = percentile(full, 0.99) / percentile(row, 0.99)
    print(f"p99 speed-up vs full replay: as-of {speedup:.0f}x, as-of API row {row_speedup:.0f}x (target >= 20x)")
    desk.close()
    if args.store == "postgres":
        drop_schema(args.postgres_url, schema)


def scratch_schema(url: str) -> str:
    import psycopg

    schema = f"bench_asof_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return schema


def drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
