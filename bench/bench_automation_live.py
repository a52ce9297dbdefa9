"""The automation thread's CPU per command under bench_http's load, in one process, without HTTP.

    python bench/bench_automation_live.py [--clients 32] [--seconds 10] [--store sqlite|postgres]
                                          [--postgres URL] [--profile]

A fresh desk (SQLite file, or a fresh PostgreSQL schema dropped at the end) with a team, an agent
and a customer, as ``bench_http.py`` sets up; the views' worker and the automation thread run as in
``ticketflow serve`` (embedded). ``--clients`` threads loop over bench_http's lifecycle (open,
assign, reply, solve, close) through the desk for ``--seconds``; then the views and the automation
finish what is left. Printed: the commands, the automation's passes, the CPU of its passes
(``time.thread_time`` in its thread) per command, the process's CPU per command and the load average
at both ends. Only runs close in time compare (the machine is shared); interleave before and after.
``--profile``: a cProfile (CPU clock) of the automation's passes.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from projections.automation import Automation
from projections.readside import ReadSide
from ticketflow.application import TicketDesk
from ticketflow.commands import (
    AddTeamMember,
    AssignTicket,
    CloseTicket,
    FormTeam,
    OpenTicket,
    PostReply,
    RegisterCustomer,
    SolveTicket,
)
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller

ADMIN = Caller("bench", Role.ADMIN, Channel.CLI)
AGENT = Caller("a1", Role.AGENT, Channel.API)


class Timed(Automation):
    """The automation, summing the CPU of its passes (and profiling them when asked)."""

    def __init__(self, *args: Any, profile: cProfile.Profile | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.spent, self.passes, self.profile = 0.0, 0, profile

    def run_once(self) -> Any:
        began = time.thread_time()
        if self.profile is not None:
            self.profile.enable()
        try:
            return super().run_once()
        finally:
            if self.profile is not None:
                self.profile.disable()
            self.spent += time.thread_time() - began
            self.passes += 1


def run(settings: Settings, clients: int, seconds: float, profile: cProfile.Profile | None) -> None:
    desk = TicketDesk(settings)
    read_side = ReadSide(desk)
    automation = Timed(desk, read_side, profile=profile)
    try:
        team = desk.form_team(FormTeam(name="bench"), ADMIN).object_id
        desk.add_team_member(AddTeamMember(team_id=team, agent_id="a1"), ADMIN)
        customer = desk.register_customer(RegisterCustomer(name="压测客户"), ADMIN).object_id
        read_side.start()
        automation.start()
        counts: list[int] = []
        end = time.monotonic() + seconds

        def client() -> None:
            n = 0
            while time.monotonic() < end:
                ticket = desk.open_ticket(OpenTicket(subject="bench 压测", requester_id=customer, team_id=team), AGENT)
                ticket_id = ticket.object_id
                desk.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="a1"), AGENT)
                desk.post_reply(PostReply(ticket_id=ticket_id, body="您好"), AGENT)
                desk.solve_ticket(SolveTicket(ticket_id=ticket_id), AGENT)
                desk.close_ticket(CloseTicket(ticket_id=ticket_id), AGENT)
                n += 5
            counts.append(n)

        load = os.getloadavg()[0]
        began = time.process_time()
        threads = [threading.Thread(target=client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        read_side.wait(desk.log_position(), timeout=30)
        time.sleep(1.5)  # the automation's last passes over what the views showed last
        held = f"feed {len(automation.feed)} tickets, {automation.feed.held()} events held"
        automation.stop()
        read_side.stop()
        process = time.process_time() - began
        commands = sum(counts)
        print(f"{commands} commands, {automation.passes} automation passes: automation CPU "
              f"{automation.spent / commands * 1000:.3f} ms/command ({automation.spent:.2f} s); process CPU "
              f"{process / commands * 1000:.2f} ms/command; {held}; load average {load:.1f} -> {os.getloadavg()[0]:.1f}")
    finally:
        read_side.close()
        desk.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--postgres", default=os.environ.get("TICKETFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    profile = cProfile.Profile(time.thread_time) if args.profile else None
    with tempfile.TemporaryDirectory() as tmp:
        schema = None
        if args.store == "postgres":
            schema = f"bench_autolive_{uuid.uuid4().hex[:10]}"
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            settings = Settings(data_dir=Path(tmp), database_url=f"{args.postgres}?schema={schema}")
        else:
            settings = Settings(data_dir=Path(tmp))
        try:
            run(settings, args.clients, args.seconds, profile)
        finally:
            if schema:
                with psycopg.connect(args.postgres, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    if profile is not None:
        pstats.Stats(profile).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
