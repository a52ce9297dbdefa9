"""CPU per command of the HTTP request path alone: the app, in-process, without a socket.

    python bench/bench_request_path.py [--tickets 200] [--clients 8] [--rounds 3] [--profile N] [--reads N]

What ``bench/bench_http.py`` measures over real HTTP, without the client, the network, the
views, the automation and the sealer (``embedded_projections`` off): the ASGI app of
``ticketflow serve`` (middleware, routing, dependencies, validation, the command, its save
with encryption and writer MAC, the response, metrics and the access log) is called directly
with the same lifecycle (open, assign, reply, solve, close) from ``--clients`` concurrent
callers on one event loop, so concurrent saves still commit together. SQLite store in a fresh
temporary directory per round.

Prints, per round, the process CPU seconds (every thread: the event loop and the worker
threads the commands run in) per command, of which the event loop thread's and the desk's (the
CPU of the threads inside ``TicketDesk.handle``: decide, encrypt, save), the request path's (the
rest: all but the desk's), and commands/s; the best round is the figure
(this machine is shared: CPU time, unlike wall time, hardly depends on the load).
``--profile N`` profiles one more round with cProfile (the event loop thread only; the command
runs in worker threads) and prints its N costliest functions.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from api.app import create_app
from ticketflow.commands import AddTeamMember, FormTeam, RegisterCustomer
from ticketflow.commands.access import IssueToken
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller

ADMIN = Caller("admin.bench", Role.ADMIN, Channel.CLI)
LIFECYCLE: tuple[tuple[str, dict[str, Any]], ...] = (
    ("/assign", {"assignee_id": "a1"}),
    ("/replies", {"body": "您好"}),
    ("/solve", {}),
    ("/close", {}),
)


async def call(app: Any, token: str, path: str, body: dict[str, Any] | None) -> tuple[int, bytes]:
    """POST ``body`` as JSON to ``path``; ``body=None`` is a GET."""
    payload = json.dumps(body).encode() if body is not None else b""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST" if body is not None else "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"authorization", f"Bearer {token}".encode()),
            *([(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
              if body is not None else []),
        ],
    }
    sent = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def lifecycles(
    app: Any, token: str, customer: str, team: str, tickets: int, opened: list[str] | None = None
) -> int:
    done = 0
    for _ in range(tickets):
        status, body = await call(
            app, token, "/api/v1/tickets", {"subject": "bench 压测", "customer_id": customer, "team_id": team}
        )
        if status != 201:
            raise SystemExit(f"open -> {status} {body[:300]!r}")
        ticket = json.loads(body)["id"]
        if opened is not None:
            opened.append(ticket)
        done += 1
        for path, payload in LIFECYCLE:
            status, body = await call(app, token, f"/api/v1/tickets/{ticket}{path}", payload)
            if status != 200:
                raise SystemExit(f"{path} -> {status} {body[:300]!r}")
            done += 1
    return done


class DeskCpu:
    """The CPU seconds threads spend inside ``desk.handle`` (every command's own work, its save too)."""

    def __init__(self, desk: Any) -> None:
        self.seconds, self._lock, handle = 0.0, threading.Lock(), desk.handle

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return handle(*args, **kwargs)
            finally:
                spent = time.thread_time() - started
                with self._lock:
                    self.seconds += spent

        desk.handle = timed


@asynccontextmanager
async def bench_desk() -> AsyncIterator[tuple[Any, str, str, str]]:
    """A fresh desk behind the app (no view workers, no rate limit) with a team, a customer and an admin
    token: the app, the token, the customer's and the team's ids; its files removed after."""
    data = Path(tempfile.mkdtemp(prefix="tf-reqpath-"))
    try:
        settings = Settings(
            data_dir=data, embedded_projections=False, rate_limit_per_second=1e6, rate_limit_burst=1_000_000
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            desk = app.state.services.desk
            team = desk.form_team(FormTeam(name="bench"), ADMIN).object_id
            desk.add_team_member(AddTeamMember(team_id=team, agent_id="a1"), ADMIN)
            customer = desk.register_customer(RegisterCustomer(name="压测客户"), ADMIN).object_id
            _, token = desk.issue_token(IssueToken(name="bench", role=Role.ADMIN), ADMIN)
            assert token is not None
            yield app, token, str(customer), str(team)
    finally:
        shutil.rmtree(data, ignore_errors=True)


async def run_round(
    tickets: int, clients: int, profiler: cProfile.Profile | None
) -> tuple[float, float, float, float, int]:
    async with bench_desk() as (app, token, customer, team):
        await lifecycles(app, token, customer, team, 2)  # warm-up: first-call costs out of the way
        per_client = max(1, tickets // clients)
        desk = DeskCpu(app.state.services.desk)
        cpu, loop, wall = time.process_time(), time.thread_time(), time.perf_counter()
        if profiler is not None:
            profiler.enable()
        counts = await asyncio.gather(
            *(lifecycles(app, token, customer, team, per_client) for _ in range(clients))
        )
        if profiler is not None:
            profiler.disable()
        cpu, loop, wall = time.process_time() - cpu, time.thread_time() - loop, time.perf_counter() - wall
    return cpu, loop, desk.seconds, wall, sum(counts)


async def read_round(tickets: int, clients: int, reads: int) -> tuple[float, float, int]:
    """CPU per ``GET /api/v1/tickets/{id}`` (the read path: api.deps.reads, the view, the response):
    ``tickets`` lifecycles are run and the views caught up first (not measured), then each caller
    reads its tickets ``reads`` times."""
    async with bench_desk() as (app, token, customer, team):
        per_client = max(1, tickets // clients)
        opened: list[list[str]] = [[] for _ in range(clients)]
        await asyncio.gather(
            *(lifecycles(app, token, customer, team, per_client, opened[i]) for i in range(clients))
        )
        app.state.services.read_side.catch_up()

        async def reader(ids: list[str]) -> int:
            for _ in range(reads):
                for ticket in ids:
                    status, body = await call(app, token, f"/api/v1/tickets/{ticket}", None)
                    if status != 200:
                        raise SystemExit(f"GET -> {status} {body[:300]!r}")
            return reads * len(ids)

        await reader(opened[0][:2])  # warm-up
        cpu, wall = time.process_time(), time.perf_counter()
        counts = await asyncio.gather(*(reader(ids) for ids in opened))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu, wall, sum(counts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=200, help="lifecycles per round (5 commands each)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent callers")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the N costliest functions")
    parser.add_argument("--reads", type=int, default=0, metavar="N",
                        help="instead: CPU per GET of a ticket, each ticket read N times")
    args = parser.parse_args()
    if args.reads:
        best = float("inf")
        for number in range(1, args.rounds + 1):
            cpu, wall, done = asyncio.run(read_round(args.tickets, args.clients, args.reads))
            best = min(best, cpu / done * 1000)
            print(f"  reads round {number}: {cpu / done * 1000:.3f} ms CPU/read, {done / wall:,.0f} reads/s ({done} reads)",
                  flush=True)
        print(f"best: {best:.3f} ms CPU/read (load average {os.getloadavg()[0]:.1f})")
        return
    print(
        f"request path in-process: {args.tickets} lifecycles x 5 commands, {args.clients} callers, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    best, best_path = float("inf"), float("inf")
    for number in range(1, args.rounds + 1):
        cpu, loop, desk, wall, done = asyncio.run(run_round(args.tickets, args.clients, None))
        best, best_path = min(best, cpu / done * 1000), min(best_path, (cpu - desk) / done * 1000)
        print(
            f"  round {number}: {cpu / done * 1000:.3f} ms CPU/command (event loop {loop / done * 1000:.3f}, "
            f"desk {desk / done * 1000:.3f}, request path {(cpu - desk) / done * 1000:.3f}), "
            f"{done / wall:,.0f} commands/s ({done} commands, {cpu:.2f} s CPU, {wall:.2f} s wall)",
            flush=True,
        )
    print(f"best: {best:.3f} ms CPU/command, request path {best_path:.3f} ms (load average {os.getloadavg()[0]:.1f})")
    if args.profile:
        profiler = cProfile.Profile(time.thread_time)  # CPU time of the event loop thread
        asyncio.run(run_round(args.tickets, args.clients, profiler))
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)


if __name__ == "__main__":
    main()
