"""What the SLA clock's per-ticket cache saves: the automation's CPU per command, cache on vs off.

    python bench/bench_automation_cache.py [--tickets 100] [--exchanges 10] [--store sqlite|postgres]

A fresh desk (SQLite file, or a fresh PostgreSQL schema) with routing rules and an SLA policy on a
business calendar. Each ticket is opened, then goes through ``--exchanges`` rounds of a customer
message and an agent reply; after every command the views catch up and the automation makes a pass
(it looks at the changed ticket's SLA clocks). The CPU time of the automation's passes (this thread's,
``time.thread_time``) is summed and divided by the commands; the same workload runs with the cache
(``clock_cache_tickets`` = the default) and without (0: every look replays the ticket's whole history),
alternating, best of ``--rounds``. Both runs must record the same SLA events (checked).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from projections.automation import CLOCK_CACHE_TICKETS, Automation
from projections.readside import ReadSide
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import AddTeamMember, FormTeam, OpenTicket, PostReply, RegisterCustomer
from ticketflow.commands.workflow import DefineCalendar, DefineSlaPolicy, PublishRoutingRules
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Direction, Role
from ticketflow.metadata import Caller

ADMIN = Caller("bench", Role.ADMIN, Channel.CLI)
AGENT = Caller("li.wei", Role.AGENT, Channel.API)
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai


def one_run(settings: Settings, tickets: int, exchanges: int, cache: int) -> tuple[float, int, Counter[str]]:
    clock = FakeClock(START)
    desk = TicketDesk(settings, clock=clock)
    read_side = ReadSide(desk)
    try:
        team = desk.form_team(FormTeam(name="技术支持"), ADMIN).object_id
        desk.add_team_member(AddTeamMember(team_id=team, agent_id="li.wei"), ADMIN)
        customer = desk.register_customer(RegisterCustomer(name="王小明", email="x@example.cn"), ADMIN).object_id
        desk.publish_routing_rules(PublishRoutingRules(rules=[], default_team_id=team), ADMIN)
        calendar = desk.define_calendar(DefineCalendar(
            name="上海", timezone="Asia/Shanghai", weekly={str(d): [("09:00", "18:00")] for d in range(5)},
        ), ADMIN).object_id
        desk.define_sla_policy(DefineSlaPolicy.model_validate({
            "name": "standard", "position": 0, "calendar_id": calendar,
            "targets": {p: {"first_reply_time": {"minutes": 60}, "next_reply_time": {"minutes": 120},
                            "resolution_time": {"minutes": 2400}} for p in ("low", "normal", "high", "urgent")},
        }), ADMIN)
        automation = Automation(desk, read_side, clock_cache_tickets=cache)
        customer_caller = Caller(str(customer), Role.CUSTOMER, Channel.WEB_FORM)
        spent = 0.0
        commands = 0

        def command(action: object) -> None:
            nonlocal spent, commands
            commands += 1
            clock.advance(timedelta(minutes=7))
            read_side.catch_up()
            began = time.thread_time()
            automation.run_once()
            spent += time.thread_time() - began

        ids = []
        for i in range(tickets):
            ids.append(desk.open_ticket(OpenTicket(subject=f"无法登录 {i}", requester_id=customer), customer_caller).object_id)
            command(None)
        for _ in range(exchanges):
            for ticket in ids:
                desk.post_reply(PostReply(ticket_id=ticket, body="还是不行", direction=Direction.INBOUND), customer_caller)
                command(None)
                desk.post_reply(PostReply(ticket_id=ticket, body="您好，正在处理"), AGENT)
                command(None)
        recorded: Counter[str] = Counter(
            type(e).__name__ for t in ids for e in desk.history(t) if type(e).__name__.startswith("Sla")
        )
        return spent, commands, recorded
    finally:
        read_side.close()
        desk.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100)
    parser.add_argument("--exchanges", type=int, default=10, help="customer message + agent reply rounds per ticket")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--postgres", default=os.environ.get("TICKETFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    )
    args = parser.parse_args()
    best: dict[int, float] = {}
    outcomes: dict[int, Counter[str]] = {}
    for r in range(args.rounds):
        for cache in (CLOCK_CACHE_TICKETS, 0):
            schema = None
            with tempfile.TemporaryDirectory() as tmp:
                if args.store == "postgres":
                    schema = f"bench_autocache_{uuid.uuid4().hex[:10]}"
                    with psycopg.connect(args.postgres, autocommit=True) as conn:
                        conn.execute(f'CREATE SCHEMA "{schema}"')
                    settings = Settings(data_dir=Path(tmp), database_url=f"{args.postgres}?schema={schema}")
                else:
                    settings = Settings(data_dir=Path(tmp))
                try:
                    spent, commands, recorded = one_run(settings, args.tickets, args.exchanges, cache)
                finally:
                    if schema:
                        with psycopg.connect(args.postgres, autocommit=True) as conn:
                            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
            per = spent / commands * 1000
            best[cache] = min(best.get(cache, per), per)
            outcomes[cache] = recorded
            label = f"cache {cache:>6} tickets" if cache else "no cache (full replay)"
            print(f"round {r + 1}: {label}: automation CPU {per:.2f} ms/command ({commands} commands, "
                  f"{spent:.1f} s), SLA events {dict(sorted(recorded.items()))}", flush=True)
    assert outcomes[CLOCK_CACHE_TICKETS] == outcomes[0], "the cache changed the SLA decisions"
    print(f"automation CPU per command, best of {args.rounds}: with the cache {best[CLOCK_CACHE_TICKETS]:.2f} ms, "
          f"without {best[0]:.2f} ms ({best[0] / best[CLOCK_CACHE_TICKETS]:.2f}x); "
          f"{args.tickets} tickets x {1 + 2 * args.exchanges} commands on {args.store}")


if __name__ == "__main__":
    main()
