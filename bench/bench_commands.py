"""In-process command throughput: ticketflow vs a raw eventsourcing Application, same run.

    python bench/bench_commands.py [--tickets 300] [--rounds 3] [--postgres URL]

Each ticket goes through open, assign, reply, note, solve, close: 6 commands,
7 events, 6 saves, each command loading the ticket first (as any command does).
The raw baseline does exactly that on a plain eventsourcing aggregate: the same
saves of the same number of plain events, each after a repository.get, with no
metadata, validation, referential checks or idempotency. Rounds alternate
(raw, ticketflow, raw, ...) on fresh stores; the best round of each is compared,
because this machine is shared and noisy. Prints both and the ratio.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import (
    AddNote, AddTeamMember, AssignTicket, CloseTicket, FormTeam, OpenTicket, PostReply, RegisterCustomer,
    SolveTicket,
)
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller

COMMANDS_PER_TICKET = 6
EVENTS_PER_TICKET = 7


class PlainTicket(Aggregate):
    @event("Opened")
    def __init__(self, subject: str) -> None:
        self.subject = subject
        self.status = "new"

    @event("Assigned")
    def assign(self, assignee: str) -> None:
        self.assignee = assignee

    @event("MarkedOpen")
    def mark_open(self) -> None:
        self.status = "open"

    @event("Replied")
    def reply(self, body: str) -> None:
        pass

    @event("Noted")
    def note(self, body: str) -> None:
        pass

    @event("Solved")
    def solve(self) -> None:
        self.status = "solved"

    @event("Closed")
    def close_ticket(self) -> None:
        self.status = "closed"


class RawApp(Application[uuid.UUID]):
    pass


def run_raw(env: dict[str, str], tickets: int) -> float:
    app = RawApp(env=env)
    started = time.perf_counter()
    for i in range(tickets):
        ticket = PlainTicket(subject=f"无法登录 {i}")
        app.save(ticket)
        steps: list[Callable[[PlainTicket], None]] = [
            lambda t: (t.assign("li.wei"), t.mark_open()),
            lambda t: t.reply("您好"),
            lambda t: t.note("internal"),
            lambda t: t.solve(),
            lambda t: t.close_ticket(),
        ]
        for step in steps:
            loaded = app.repository.get(ticket.id)
            step(loaded)
            app.save(loaded)
    elapsed = time.perf_counter() - started
    app.close()
    return elapsed


def run_ticketflow(settings: Settings, tickets: int) -> float:
    desk = TicketDesk(settings, clock=FakeClock())
    admin = Caller("admin", Role.ADMIN, Channel.CLI)
    agent = Caller("li.wei", Role.AGENT, Channel.API)
    customer = desk.register_customer(RegisterCustomer(name="王小明"), admin).object_id
    team = desk.form_team(FormTeam(name="技术支持"), admin).object_id
    desk.add_team_member(AddTeamMember(team_id=team, agent_id="li.wei"), admin)
    started = time.perf_counter()
    for i in range(tickets):
        t = desk.open_ticket(OpenTicket(subject=f"无法登录 {i}", requester_id=customer, team_id=team), agent).object_id
        desk.assign_ticket(AssignTicket(ticket_id=t, assignee_id="li.wei"), agent)
        desk.post_reply(PostReply(ticket_id=t, body="您好"), agent)
        desk.add_note(AddNote(ticket_id=t, body="internal"), agent)
        desk.solve_ticket(SolveTicket(ticket_id=t), agent)
        desk.close_ticket(CloseTicket(ticket_id=t), agent)
    elapsed = time.perf_counter() - started
    desk.close()
    return elapsed


def sqlite_stores(workdir: Path) -> tuple[Callable[[], dict[str, str]], Callable[[], Settings]]:
    def raw_env() -> dict[str, str]:
        path = workdir / f"raw-{uuid.uuid4().hex}.sqlite"
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)}

    def settings() -> Settings:
        return Settings(data_dir=workdir / f"tf-{uuid.uuid4().hex}")

    return raw_env, settings


def postgres_stores(url: str, schemas: list[str]) -> tuple[Callable[[], dict[str, str]], Callable[[], Settings]]:
    def new_schema() -> str:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        schemas.append(schema)
        return schema

    def raw_env() -> dict[str, str]:
        env = Settings(database_url=f"{url}?schema={new_schema()}").eventsourcing_env()
        return env

    def settings() -> Settings:
        return Settings(database_url=f"{url}?schema={new_schema()}")

    return raw_env, settings


def compare(name: str, raw_env: Callable[[], dict[str, str]], settings: Callable[[], Settings], tickets: int, rounds: int) -> None:
    raw_times, tf_times = [], []
    for _ in range(rounds):
        raw_times.append(run_raw(raw_env(), tickets))
        tf_times.append(run_ticketflow(settings(), tickets))
    commands = tickets * COMMANDS_PER_TICKET
    raw_rate = commands / min(raw_times)
    tf_rate = commands / min(tf_times)
    print(
        f"{name:<10} raw eventsourcing {raw_rate:8,.0f} saves/s | ticketflow {tf_rate:8,.0f} commands/s "
        f"({tf_rate * EVENTS_PER_TICKET / COMMANDS_PER_TICKET:,.0f} events/s) | ratio {tf_rate / raw_rate:.2f}x "
        f"[best of {rounds}, {tickets} tickets, {commands} commands each]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TICKETFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="server for the PostgreSQL comparison ('' to skip)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        compare("SQLite", *sqlite_stores(Path(tmp)), args.tickets, args.rounds)
    if args.postgres:
        schemas: list[str] = []
        try:
            compare("PostgreSQL", *postgres_stores(args.postgres, schemas), args.tickets, args.rounds)
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                for schema in schemas:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
