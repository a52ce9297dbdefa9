"""What one transaction for all the views of a live batch would save, against one per view (today).

    python bench/bench_view_transactions.py [--tickets 300] [--rounds 40] [--sizes 1,8,32,128]

Under load the embedded view worker applies each batch of the log to every view, each view in
its own transaction on its own SQLite file (its rows and its position commit together). The
alternative: the views in one connection (``ATTACH``), one transaction a batch. This measures,
in CPU seconds of this process (steady on a machine others load too):

1. the views' CPU per live batch of N events (N = 1, 8, 32, 128), each batch a mix of the HTTP
   bench's lifecycle commands, and from it the fixed cost per batch (all views) and per event;
2. the part of that fixed cost one shared transaction could remove: a round of the per-view
   transaction frames as the worker runs them (connection from the pool, BEGIN, the position
   lock, the tracking row, COMMIT) for every view, against the same statements in one transaction
   over one connection with the other view files attached. Each file's commit (its WAL append)
   remains in both: SQLite commits a multi-file WAL transaction file by file.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from projections.readside import LIVE_BATCH, VIEWS, ReadSide
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import (
    AddNote,
    AddTeamMember,
    AssignTicket,
    FormTeam,
    OpenTicket,
    PostReply,
    RegisterCustomer,
    SolveTicket,
)
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller
from ticketflow.simulation import DeskSimulation

AGENT = Caller("li.wei", Role.AGENT, Channel.API)
ADMIN = Caller("bench", Role.ADMIN, Channel.API)
ASSIGNEES: dict = {}  # type: ignore[type-arg]  # ticket -> its assignee, so each assignment changes it


def cpu_ms(action) -> float:  # type: ignore[no-untyped-def]
    started = time.process_time()
    action()
    return (time.process_time() - started) * 1000


def write_commands(desk: TicketDesk, rng: random.Random, tickets: list, customer, team, count: int) -> None:  # type: ignore[no-untyped-def]
    """``count`` commands of the HTTP bench's lifecycle mix (open, assign, reply, note, solve)."""
    for _ in range(count):
        kind = rng.random()
        if kind < 0.2 or not tickets:
            tickets.append(desk.open_ticket(OpenTicket(subject="批处理 batch", requester_id=customer, team_id=team), AGENT).object_id)
        elif kind < 0.4:
            ticket = rng.choice(tickets)
            assignee = ASSIGNEES[ticket] = "a2" if ASSIGNEES.get(ticket) == "li.wei" else "li.wei"
            desk.assign_ticket(AssignTicket(ticket_id=ticket, assignee_id=assignee), AGENT)
        elif kind < 0.7:
            desk.post_reply(PostReply(ticket_id=rng.choice(tickets), body="您好 hello"), AGENT)
        elif kind < 0.9:
            desk.add_note(AddNote(ticket_id=rng.choice(tickets), body="备注 note"), AGENT)
        else:
            ticket = tickets.pop(rng.randrange(len(tickets)))
            desk.solve_ticket(SolveTicket(ticket_id=ticket, resolution="done"), AGENT)


def batches(desk: TicketDesk, read_side: ReadSide, sizes: list[int], rounds: int) -> None:
    rng = random.Random(7)
    customer = desk.register_customer(RegisterCustomer(name="批量客户"), ADMIN).object_id
    team = desk.form_team(FormTeam(name="batch"), ADMIN).object_id
    for agent in ("li.wei", "a2"):
        desk.add_team_member(AddTeamMember(team_id=team, agent_id=agent), ADMIN)
    tickets: list = []
    positions = {name: read_side.position(name) for name in read_side.stores}
    print(f"views' CPU per live batch, all {len(read_side.stores)} views, one transaction per view (today):")
    per_batch: dict[int, float] = {}
    for size in sizes:
        spent, events = 0.0, 0
        for _ in range(rounds):
            start = desk.log_position()
            write_commands(desk, rng, tickets, customer, team, size)
            events += desk.log_position() - start
            spent += cpu_ms(lambda: read_side.step_all(positions, LIVE_BATCH))
        per_batch[size] = spent / rounds
        print(f"  {size:4d} commands a batch ({events / rounds:6.1f} events): {spent / rounds:7.2f} ms CPU a batch, "
              f"{spent / events:5.3f} ms an event")
    small, big = min(sizes), max(sizes)
    per_command = (per_batch[big] - per_batch[small]) / (big - small)
    print(f"  fixed cost a batch (all views) ~ {per_batch[small] - per_command * small:.2f} ms; "
          f"~ {per_command:.3f} ms a command beyond it")


def frames(read_side: ReadSide, desk_name: str, rounds: int) -> None:
    # SQLite attaches at most 10 databases to a connection (SQLITE_MAX_ATTACHED): 11 views of 12
    # fit one connection; both variants run over the same 11, and the figures are per view.
    stores = dict(list(read_side.stores.items())[:11])
    position = {name: read_side.position(name) for name in stores}

    def per_view() -> None:
        for name, store in stores.items():
            with store._transaction(commit=True) as cursor:
                store._locked_position(cursor, desk_name)
                cursor.execute("UPDATE tracking SET notification_id = ? WHERE application_name = ?",
                               (position[name], desk_name))

    files = {name: store.datastore.pool.db_name for name, store in stores.items()}  # type: ignore[attr-defined]
    names = list(files)
    shared = sqlite3.connect(files[names[0]], isolation_level=None, check_same_thread=False)
    for i, name in enumerate(names[1:], 1):
        shared.execute(f"ATTACH DATABASE ? AS v{i}", (files[name],))
    schemas = ["main"] + [f"v{i}" for i in range(1, len(names))]

    def together() -> None:
        shared.execute("BEGIN IMMEDIATE")
        for schema, name in zip(schemas, names):
            shared.execute(f"UPDATE {schema}.tracking SET notification_id = notification_id WHERE application_name = ?", (desk_name,))
            shared.execute(f"SELECT notification_id FROM {schema}.tracking WHERE application_name = ?", (desk_name,)).fetchone()
            shared.execute(f"UPDATE {schema}.tracking SET notification_id = ? WHERE application_name = ?", (position[name], desk_name))
        shared.execute("COMMIT")

    for action in (per_view, together):  # warm both
        action()
    apart = sum(cpu_ms(per_view) for _ in range(rounds)) / rounds
    joined = sum(cpu_ms(together) for _ in range(rounds)) / rounds
    shared.close()
    views = len(names)
    print(f"transaction frames (position lock, tracking row, commit) over {views} views, CPU a batch:")
    print(f"  one transaction per view (today): {apart:.2f} ms;  one transaction, views attached: {joined:.2f} ms;"
          f"  saving {apart - joined:.2f} ms a batch, {(apart - joined) / views:.3f} ms a view")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=300, help="tickets of history before measuring")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--sizes", default="1,8,32,128", help="commands per live batch")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="tf-vtx-"))
    try:
        clock = FakeClock()
        desk = TicketDesk(Settings(data_dir=data), clock=clock)
        simulation = DeskSimulation(desk, clock, tickets=args.tickets, customers=50, seed=3)
        simulation.setup()
        simulation.run()
        read_side = ReadSide(desk)
        read_side.catch_up()
        print(f"{desk.log_position():,} events of history, {len(VIEWS)} views")
        batches(desk, read_side, [int(s) for s in args.sizes.split(",")], args.rounds)
        frames(read_side, desk.name, args.rounds * 5)
        read_side.close()
        desk.close()
    finally:
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
