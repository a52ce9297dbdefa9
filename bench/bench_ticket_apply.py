"""What the tickets view's indexes cost each event it applies, over a big seeded view.

    python bench/bench_ticket_apply.py [--tickets 200000] [--lifecycles 400] [--postgres URL]

Seeds ``--tickets`` rows into the tickets view as ``bench_queues.py`` does (its own tables and
indexes, filled in bulk, indexed, analysed), then applies the events of ``--lifecycles`` ticket
lifecycles (open in a team, every other one tagged, assign, note, raise the priority, solve, close:
six events each, made by a desk in memory) to it: half one event per transaction (a quiet desk's live worker), half
100 per transaction (a busy one's). Prints this process's CPU time per event (on SQLite the whole
cost of the write; on PostgreSQL only the client's share) and the wall time per event.

Run it with another checkout's code (``PYTHONPATH=../other``) to compare index sets: the seed comes
from this directory's ``bench_queues.py``.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench_queues import Seed, seed
from eventsourcing.persistence import Tracking

from projections.readside import ReadSide
from ticketflow.application import TicketDesk
from ticketflow.commands import (
    AddNote,
    AddTeamMember,
    AssignTicket,
    ChangePriority,
    CloseTicket,
    FormTeam,
    OpenTicket,
    RegisterCustomer,
    SolveTicket,
)
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Priority, Role
from ticketflow.metadata import Caller


def lifecycle_events(lifecycles: int) -> list[Any]:
    """The domain events of ``lifecycles`` ticket lifecycles, in log order."""
    desk = TicketDesk(Settings(database_url="memory://"))
    admin = Caller("bench", Role.ADMIN, Channel.API)
    customer = desk.register_customer(RegisterCustomer(name="压测客户"), admin).object_id
    team = desk.form_team(FormTeam(name="bench"), admin).object_id
    desk.add_team_member(AddTeamMember(team_id=team, agent_id="agent1"), admin)
    for i in range(lifecycles):
        tags = ["billing"] if i % 2 else []  # every other ticket tagged: its tag row follows each event
        opened = OpenTicket(subject=f"写入成本 {i}", requester_id=customer, team_id=team, tags=tags)
        ticket = desk.open_ticket(opened, admin).object_id
        desk.assign_ticket(AssignTicket(ticket_id=ticket, assignee_id="agent1"), admin)
        desk.add_note(AddNote(ticket_id=ticket, body="备注 note"), admin)
        desk.change_priority(ChangePriority(ticket_id=ticket, priority=Priority.URGENT), admin)
        desk.solve_ticket(SolveTicket(ticket_id=ticket), admin)
        desk.close_ticket(CloseTicket(ticket_id=ticket), admin)
    notifications = desk.recorder.select_notifications(1, desk.log_position())
    events = [desk.mapper.to_domain_event(n) for n in notifications]
    desk.close()
    return events


def apply(read_side: ReadSide, events: list[Any], batch: int, first: int) -> tuple[float, float]:
    """Apply ``events`` in batches; (CPU ms, wall ms) per event."""
    store = read_side.stores["tickets"]
    name = read_side.desk.name
    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, len(events), batch):
        chunk = [(event, first + start + i) for i, event in enumerate(events[start : start + batch])]
        store.process_batch(chunk, Tracking(notification_id=chunk[-1][1], application_name=name))
    return ((time.process_time() - cpu) * 1000 / len(events), (time.perf_counter() - wall) * 1000 / len(events))


def run(settings: Settings, tickets: int, lifecycles: int, kind: str) -> None:
    desk = TicketDesk(settings)
    read_side = ReadSide(desk, ["tickets"])
    try:
        started = time.perf_counter()
        seed(read_side, Seed(tickets, random.Random(7)))
        print(f"{kind}: seeded {tickets:,} rows and indexed them in {time.perf_counter() - started:.0f} s")
        events = lifecycle_events(lifecycles)
        half = len(events) // 2
        # Positions after the seed's (the view is at 0); the second half continues the first's.
        cpu1, wall1 = apply(read_side, events[:half], 1, 1)
        cpu100, wall100 = apply(read_side, events[half:], 100, 1 + half)
        print(f"  one event per transaction: {half:,} events, CPU {cpu1:.3f} ms/event, wall {wall1:.3f} ms/event")
        print(f"  100 events per transaction: {len(events) - half:,} events, CPU {cpu100:.3f} ms/event,"
              f" wall {wall100:.3f} ms/event")
    finally:
        read_side.close()
        desk.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=200_000)
    parser.add_argument("--lifecycles", type=int, default=400)
    parser.add_argument("--postgres", default="", help="also run on this PostgreSQL database (a schema is made and dropped)")
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="tf-bench-apply-"))
    try:
        run(Settings(data_dir=directory), args.tickets, args.lifecycles, "SQLite")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if args.postgres:
        import psycopg

        schema = f"tf_bench_apply_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            run(Settings(database_url=f"{args.postgres}?schema={schema}"), args.tickets, args.lifecycles, "PostgreSQL")
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
