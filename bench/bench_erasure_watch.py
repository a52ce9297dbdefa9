"""What following other processes' erasures costs a command and a cached read.

    python bench/bench_erasure_watch.py [--commands 2000] [--store sqlite|postgres]
                                        [--postgres-url postgresql://postgres@127.0.0.1:5432/test]  (scratch schema, dropped after)

Every command (and every read answered from the aggregate cache outside a command) first asks the log's
end position, and reads the erasures since only when the log moved (``ErasureWatch.follow``). Side by side,
on one desk and one ticket, alternating rounds so the machine's load hits both alike:

1. ``ChangePriority`` commands with the watch following (as shipped);
2. the same commands with ``follow`` replaced by a no-op (what the cache cost before: nothing);
3. ``follow()`` alone with the log unmoved (the position check), and after one write by another desk
   (position check + the erasure-topic query).

Prints per-command wall and CPU (process time) medians of each, and the difference.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import ChangePriority, FormTeam, OpenTicket, RegisterCustomer
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Priority, Role
from ticketflow.metadata import Caller

ADMIN = Caller("admin.root", Role.ADMIN, Channel.CLI)
PRIORITIES = [Priority.HIGH, Priority.NORMAL]


def per_call(fn: Callable[[], object], n: int) -> tuple[float, float]:
    """(wall µs, CPU µs) per call, over n calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return (time.perf_counter() - wall) / n * 1e6, (time.process_time() - cpu) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commands", type=int, default=2000)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        schema = None
        if args.store == "postgres":
            import psycopg

            schema = f"bench_erasure_watch_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(args.postgres_url, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            settings = Settings(
                database_url=f"{args.postgres_url}?schema={schema}", data_dir=Path(tmp) / "data"
            )
        else:
            settings = Settings(data_dir=Path(tmp) / "data")
        try:
            run(settings, args.commands)
        finally:
            if schema is not None:
                with psycopg.connect(args.postgres_url, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def run(settings: Settings, commands: int) -> None:
    clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    desk = TicketDesk(settings, clock=clock)
    other = TicketDesk(settings, clock=clock)
    try:
        customer = desk.register_customer(
            RegisterCustomer(name="王小明", email="x@example.cn"), ADMIN
        ).object_id
        team = desk.form_team(FormTeam(name="技术支持"), ADMIN).object_id
        ticket = desk.open_ticket(
            OpenTicket(subject="无法登录", requester_id=customer, team_id=team), ADMIN
        ).object_id
        count = iter(range(10**9))

        def command() -> None:
            i = next(count)
            desk.change_priority(ChangePriority(ticket_id=ticket, priority=PRIORITIES[i % 2]), ADMIN)

        follow = desk.erasure_watch.follow
        rounds = 10
        n = max(1, commands // (2 * rounds))
        on, off = [], []
        for _ in range(rounds):
            on.append(per_call(command, n))
            desk.erasure_watch.follow = lambda: set()  # type: ignore[method-assign]
            off.append(per_call(command, n))
            desk.erasure_watch.follow = follow  # type: ignore[method-assign]
        unmoved = per_call(follow, 2000)

        def moved() -> None:
            other.change_priority(
                ChangePriority(ticket_id=ticket, priority=PRIORITIES[next(count) % 2]), ADMIN
            )

        moved_cost = []
        for _ in range(200):
            moved()
            moved_cost.append(per_call(follow, 1))

        def med(xs: list[tuple[float, float]], k: int) -> float:
            return statistics.median(x[k] for x in xs)

        print(f"store: {settings.describe_store()}; {2 * rounds * n} commands, {rounds} alternating rounds")
        print(f"command, watch following:  {med(on, 0):8.1f} µs wall  {med(on, 1):8.1f} µs CPU")
        print(f"command, watch off:        {med(off, 0):8.1f} µs wall  {med(off, 1):8.1f} µs CPU")
        print(
            f"difference:                {med(on, 0) - med(off, 0):8.1f} µs wall  {med(on, 1) - med(off, 1):8.1f} µs CPU"
        )
        print(f"follow(), log unmoved:     {unmoved[0]:8.1f} µs wall  {unmoved[1]:8.1f} µs CPU")
        print(
            f"follow(), log moved by 1:  {med(moved_cost, 0):8.1f} µs wall  {med(moved_cost, 1):8.1f} µs CPU"
        )
    finally:
        other.close()
        desk.close()


if __name__ == "__main__":
    main()
