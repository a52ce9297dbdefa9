"""HTTP command throughput and latency against a real ``ticketflow serve``, SQLite and PostgreSQL in one run.

    python bench/bench_http.py [--store sqlite|postgres|both] [--seconds 15] [--clients 1,8,32]
                               [--warmup 3] [--postgres URL] [--fsyncs] [--profile]

Each client is a task with its own keep-alive connection (``bench/load_client.py``: every client
on one asyncio loop, a tenth of the CPU per request of a thread with an ``httpx.Client`` each, which
took as much CPU as the server it measured and added its own GIL queue to the latencies); it loops
over a ticket's lifecycle: open, assign, reply, solve, close (5 commands, each one
request). Every request counts as one command; its latency is measured from send
to the full response. Each concurrency level runs ``--warmup`` seconds unmeasured,
then ``--seconds`` measured (only requests that start and end inside that window
count). Commands/s and the percentiles count 2xx answers; non-2xx answers and
transport failures are errors, printed grouped by kind (a failed step ends that
ticket's lifecycle and the client opens a new one).

* ``--store sqlite``: a fresh temporary data dir, 1 API worker, the views (and automation, sealer) in
  the child process ``serve`` runs for them (``TICKETFLOW_VIEWS_PROCESS=0 python bench/bench_http.py``:
  in threads of the API process, as before).
* ``--sqlite-standalone``: also SQLite with the views (and automation, sealer) in a
  ``ticketflow project`` process beside the one API process, on the other core.
* ``--store postgres``: a fresh schema on ``--postgres`` (dropped at the end),
  2 API workers and one ``ticketflow project`` process for the views.

The bench client shares this 2-core machine with the server, so figures are a
floor, and only figures printed by the same run compare. On Linux each level also
prints the servers' CPU per command (the serve and project processes and their
children, from /proc, over the measured window): the figure that says where a
configuration's cost is, whatever else the machine is doing; and the client's own (this process).

On PostgreSQL each level also prints what the server committed over the measured window:
``store commits`` (the event store's transactions: distinct ``xmin`` of the events written, so
exactly the commits that held events, whoever's saves they were: API or ``project``'s automation),
``xact_commit`` (``pg_stat_database`` of the bench's database: every transaction, reads included;
only this bench's own when ``--postgres`` names a database nothing else uses) and ``wal_sync``
(``pg_stat_wal``: WAL flushes of the whole server, other users' included). Each is also given per
command.

``--fsyncs`` (Linux, needs ``perf`` and the syscall tracepoints, i.e. root): each level also
prints the fsync and fdatasync calls of the servers over the measured window, per command
(counted by ``perf stat`` on the kernel's tracepoints, which costs the servers next to nothing).

``--profile`` (Linux): each level also prints the CPU of every server process over the measured
window (``serve``, each of its workers, ``project``) and, on PostgreSQL, of the backends connected to
the ``--postgres`` database (sampled from ``pg_stat_activity`` at both ends of the window; a backend
that ended inside it is missed): name a database only this bench uses, or the other users' backends
are counted too. ``bench/throughput_table.py`` makes one for the run.

Target (issue #14): >= 1,000 commands/s at 32 clients on SQLite, with p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import httpx
import load_client
import psycopg
from load_client import Answer, ClientError, Connection

TARGET_RATE = 1000.0  # issue #14: >= 1,000 acknowledged commands/s at 32 clients, p99 < 50 ms
TARGET_P99_MS = 50.0
PRINT_ERRORS = 5  # kinds of error printed per level, most frequent first
TICKET_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: The ``ticketflow`` script beside this interpreter (the venv's), else the one on PATH.
_BESIDE = Path(sys.executable).with_name("ticketflow")
TICKETFLOW = str(_BESIDE) if _BESIDE.exists() else shutil.which("ticketflow") or "ticketflow"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; the process's own session goes with it (uvicorn's workers)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    try:  # a worker left behind by its parent
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def listening_sockets(port: int) -> int | None:
    """How many TCP sockets listen on ``port`` (``serve --workers N`` binds one per worker), from
    /proc/net/tcp and tcp6; None where there is no /proc/net."""
    count, found = 0, False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        found = True
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                count += 1
    return count if found else None


class Server:
    """``ticketflow serve`` (and on PostgreSQL ``ticketflow project``) as subprocesses, logs in ``logdir``."""

    def __init__(self, env: dict[str, str], workers: int, project: bool, logdir: Path) -> None:
        self.env, self.workers, self.project, self.logdir = env, workers, project, logdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.logdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [TICKETFLOW, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.procs.append((name, proc))

    def token(self) -> str:
        out = subprocess.run(
            [TICKETFLOW, "token", "create", "--role", "admin", "--name", "bench"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if out.returncode != 0 or not out.stdout.strip():
            raise SystemExit(f"`ticketflow token create` failed ({out.returncode}): {out.stderr.strip()}")
        return out.stdout.strip().splitlines()[-1]

    def __enter__(self) -> Self:
        try:
            self._spawn(
                "serve",
                ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)],
            )
            if self.project:
                self._spawn("project", ["project", "--status-every", "0"])
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self, timeout: float = 180.0) -> None:  # a loaded machine starts the workers slowly
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    raise SystemExit(
                        f"`ticketflow {name}` exited with {proc.returncode}:\n{self.log_tail(name)}"
                    )
            try:
                answered = httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                answered = False
            # Every worker's own socket listening too (Linux): the clients connect at once, and a worker
            # whose socket did not exist yet would be given none of their connections.
            if answered and listening_sockets(self.port) in (None, self.workers):
                return
            time.sleep(0.1)
        raise SystemExit(
            f"the server did not answer /healthz within {timeout:g} s:\n{self.log_tail('serve')}"
        )

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.logdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def __exit__(self, *_: object) -> None:
        for _name, proc in reversed(self.procs):
            stop_process(proc)
        self.procs.clear()


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # ms, 2xx answers inside the measured window
    errors: Counter[str] = field(default_factory=Counter)  # kind of failure -> count
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, text: str) -> None:
        with self.lock:
            self.errors[TICKET_ID.sub("{id}", text)] += 1


async def client_loop(
    base: str,
    token: str,
    customer: str,
    team: str,
    window: dict[str, float],
    tally: Tally,
    ready: asyncio.Barrier,
    go: asyncio.Event,
) -> None:
    """One simulated client: ticket lifecycles over one keep-alive connection until the window ends."""
    latencies: list[float] = []
    client = Connection(base, {"Authorization": f"Bearer {token}"})
    try:
        await client.connect()
        await ready.wait()
        await go.wait()
        start, end = window["start"], window["end"]

        async def call(path: str, body: dict[str, Any]) -> Answer | None:
            began = time.perf_counter()
            try:
                answer = await client.request("POST", path, body)
            except ClientError as exc:
                if start <= began < end:
                    tally.error(f"POST {path}: {exc}")
                return None
            finished = time.perf_counter()
            measured = began >= start and finished <= end
            if not answer.is_success:
                if measured:
                    tally.error(f"POST {path} -> {answer.status} {answer.text[:300]}")
                return None
            if measured:
                latencies.append((finished - began) * 1000)
            return answer

        while time.perf_counter() < end:
            opened = await call(
                "/api/v1/tickets", {"subject": "bench 压测", "customer_id": customer, "team_id": team}
            )
            if opened is None:
                continue
            ticket = opened.json()["id"]
            for path, body in (
                ("/assign", {"assignee_id": "a1"}),
                ("/replies", {"body": "您好"}),
                ("/solve", {}),
                ("/close", {}),
            ):
                if time.perf_counter() >= end or await call(f"/api/v1/tickets/{ticket}{path}", body) is None:
                    break
    finally:
        await client.close()
    tally.latencies.extend(latencies)


def setup(base: str, token: str) -> tuple[str, str]:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = client.post(path, json=body)
            if not response.is_success:
                raise SystemExit(f"setup: POST {path} -> {response.status_code} {response.text[:500]}")
            return response.json()  # type: ignore[no-any-return]

        team = post("/api/v1/teams", {"name": "bench"})["id"]
        post(f"/api/v1/teams/{team}/members", {"agent_id": "a1"})
        customer = post("/api/v1/customers", {"name": "压测客户"})["id"]
    return customer, team


def _proc_stats() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds used so far), from Linux /proc."""
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, cpu seconds)
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone meanwhile
            stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return stats


def _tree(roots: list[int], stats: dict[int, tuple[int, float]]) -> set[int]:
    wanted, frontier = set(roots), list(roots)
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _) in stats.items():
            if ppid == parent and pid not in wanted:
                wanted.add(pid)
                frontier.append(pid)
    return wanted


def tree_cpu_seconds(roots: list[int]) -> float | None:
    """CPU seconds used so far by these processes and all their descendants (Linux /proc)."""
    if not Path("/proc").is_dir():
        return None
    stats = _proc_stats()
    return sum(stats[pid][1] for pid in _tree(roots, stats) if pid in stats)


class PgCommits:
    """What PostgreSQL committed between two samples: the event store's transactions (distinct ``xmin``
    of the events written between the two log positions), ``xact_commit`` of the database, ``wal_sync``
    of the server."""

    def __init__(self, url: str, schema: str) -> None:
        self.url = url
        self.table = f'"{schema}".ticketdesk_events'

    def sample(self) -> tuple[int, int, int]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            (position,) = conn.execute(f"SELECT coalesce(max(notification_id), 0) FROM {self.table}").fetchone()  # type: ignore[misc]
            (commits,) = conn.execute(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()").fetchone()  # type: ignore[misc]
            (syncs,) = conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()  # type: ignore[misc]
        return int(position), int(commits), int(syncs)

    def backends(self) -> list[int]:
        """The server processes of every other session on this database (all of them this bench's
        when the database is its own)."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        return [int(pid) for (pid,) in rows]

    def describe(self, start: tuple[int, int, int], end: tuple[int, int, int], done: int) -> str:
        with psycopg.connect(self.url, autocommit=True) as conn:
            (store,) = conn.execute(  # type: ignore[misc]
                f"SELECT count(DISTINCT xmin::text) FROM {self.table} WHERE notification_id > %s AND notification_id <= %s",
                (start[0], end[0]),
            ).fetchone()
        events = end[0] - start[0]
        xact, syncs = end[1] - start[1], end[2] - start[2]
        return (
            f"\n        PostgreSQL: {events:,} events in {store:,} store commits ({store / done:.3f}/command), "
            f"xact_commit {xact:,} ({xact / done:.2f}/command), wal_sync {syncs:,} ({syncs / done:.3f}/command, whole server)"
        )


class FsyncCounter:
    """``perf stat`` on the fsync/fdatasync tracepoints of these processes (and their children)."""

    EVENTS = ("syscalls:sys_enter_fsync", "syscalls:sys_enter_fdatasync")

    def __init__(self, roots: list[int]) -> None:
        self.output = Path(tempfile.mkstemp(prefix="tf-fsyncs-", suffix=".csv")[1])
        pids = ",".join(str(pid) for pid in sorted(_tree(roots, _proc_stats())))
        self.proc = subprocess.Popen(
            ["perf", "stat", "-x", ",", "-o", str(self.output), "-e", ",".join(self.EVENTS), "-p", pids],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def stop(self) -> int | None:
        """The calls counted since the start; None when perf could not count them."""
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
            counts = [
                line.split(",")[0] for line in self.output.read_text().splitlines()
                if any(line.endswith(event) or f",{event}," in line for event in self.EVENTS)
            ]
            return sum(int(c) for c in counts) if counts and all(c.isdigit() for c in counts) else None
        except (OSError, subprocess.TimeoutExpired):
            return None
        finally:
            self.output.unlink(missing_ok=True)


@dataclass(frozen=True)
class LevelResult:
    """One concurrency level's figures: the 2xx answers inside the measured window and what the servers
    used meanwhile (``processes``: CPU seconds per server process and PostgreSQL backend, by label)."""

    clients: int
    seconds: float
    commands: int
    p50: float
    p99: float
    errors: int
    cpu_seconds: float | None = None
    fsyncs: int | None = None
    processes: dict[str, float] = field(default_factory=dict)
    client_cpu_seconds: float | None = None  # the load client's (this process), over the same window

    @property
    def commands_per_s(self) -> float:
        return self.commands / self.seconds

    @property
    def cpu_ms_per_command(self) -> float | None:
        return self.cpu_seconds / self.commands * 1000 if self.cpu_seconds is not None and self.commands else None

    @property
    def fsyncs_per_command(self) -> float | None:
        return self.fsyncs / self.commands if self.fsyncs is not None and self.commands else None


def process_cpu(roots: list[int], backends: list[int]) -> dict[int, tuple[str, float]]:
    """pid -> (label, CPU seconds so far) for these processes, their descendants and the given
    PostgreSQL backends (Linux /proc; empty elsewhere)."""
    if not Path("/proc").is_dir():
        return {}
    stats = _proc_stats()
    found: dict[int, tuple[str, float]] = {}
    for pid in sorted(_tree(roots, stats)):
        if pid in stats:
            found[pid] = (_label(pid, "server"), stats[pid][1])
    for pid in backends:
        if pid in stats:
            found[pid] = ("postgres backend", stats[pid][1])
    return found


def _label(pid: int, default: str) -> str:
    """``ticketflow serve`` / ``ticketflow project`` / the process's command name."""
    try:
        argv = (Path("/proc") / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return default
    words = [Path(a.decode(errors="replace")).name for a in argv if a]
    for verb in ("serve", "project"):
        if verb in words:
            return f"ticketflow {verb}"
    text = " ".join(words)
    if "multiprocessing.spawn" in text:
        return "serve worker"  # one of uvicorn's `--workers` processes
    if "multiprocessing.resource_tracker" in text:
        return "resource tracker"
    return " ".join(words[:2])[:40] or default


def cpu_profile(start: dict[int, tuple[str, float]], end: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds per process over a window, labelled ``label [pid]``: a process that appeared during
    the window counts all its CPU; one that ended during it is missing (its share is lost)."""
    return {f"{label} [{pid}]": used - (start[pid][1] if pid in start else 0.0) for pid, (label, used) in end.items()}


def profile_lines(processes: dict[str, float], done: int) -> list[str]:
    """The per-process CPU of a level, most first, per command, with the PostgreSQL backends summed."""
    if not processes or not done:
        return []
    backends = [v for k, v in processes.items() if k.startswith("postgres backend")]
    rows = [(name, used) for name, used in processes.items() if not name.startswith("postgres backend")]
    if backends:
        busiest = max(backends)
        rows.append((f"{len(backends)} postgres backends (busiest {busiest:.2f} s)", sum(backends)))
    total = sum(processes.values())
    rows.sort(key=lambda row: -row[1])
    return [
        f"{name:<44} {used:7.2f} s  {used / done * 1000:6.2f} ms/command  {used / total if total else 0:4.0%}"
        for name, used in rows
    ]


def run_level(
    base: str, token: str, customer: str, team: str, clients: int, warmup: float, seconds: float,
    server_pids: list[int] | None = None, count_fsyncs: bool = False, pg: PgCommits | None = None,
    profile: bool = False,
) -> LevelResult:
    tally = Tally()
    window: dict[str, float] = {}
    cpu: list[float | None] = []
    client_cpu: list[float] = []
    fsyncs: list[int | None] = []
    pg_samples: list[tuple[int, int, int]] = []
    per_process: list[dict[int, tuple[str, float]]] = []

    def sample_cpu() -> None:  # the servers' CPU (and fsyncs) at the start and the end of the measured window
        counter: FsyncCounter | None = None
        for edge in ("start", "end"):
            time.sleep(max(0.0, window[edge] - time.perf_counter()))
            cpu.append(tree_cpu_seconds(server_pids or []))
            client_cpu.append(time.process_time())  # this process: the load client (the sampler only sleeps)
            if profile:
                per_process.append(process_cpu(server_pids or [], pg.backends() if pg is not None else []))
            if pg is not None:
                pg_samples.append(pg.sample())
            if count_fsyncs and edge == "start":
                counter = FsyncCounter(server_pids or [])
        if counter is not None:
            fsyncs.append(counter.stop())

    def open_window() -> None:  # run once, when every client is connected-ready, before any is released
        began = time.perf_counter()
        window.update(start=began + warmup, end=began + warmup + seconds)
        sampler.start()

    sampler = threading.Thread(target=sample_cpu, daemon=True)

    async def level() -> None:
        ready, go = asyncio.Barrier(clients + 1), asyncio.Event()
        tasks = [
            asyncio.create_task(client_loop(base, token, customer, team, window, tally, ready, go))
            for _ in range(clients)
        ]
        await ready.wait()  # every client connected: the window opens, then all are released at once
        open_window()
        go.set()
        await asyncio.wait(tasks, timeout=warmup + seconds + 120)

    load_client.run(level)
    if window:  # the sampler was started with it
        sampler.join(5)
    done = len(tally.latencies)
    rate = done / seconds
    p50 = percentile(tally.latencies, 0.5) if done else float("nan")
    p99 = percentile(tally.latencies, 0.99) if done else float("nan")
    client = client_cpu[1] - client_cpu[0] if len(client_cpu) == 2 else None
    errors = sum(tally.errors.values())
    used = cpu[1] - cpu[0] if len(cpu) == 2 and cpu[0] is not None and cpu[1] is not None else None
    print(
        f"  {clients:>3} clients  {rate:8,.0f} commands/s  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
        f"errors {errors}  [{done:,} commands answered 2xx in {seconds:g} s]"
        + (f"  server CPU {used / done * 1000:.2f} ms/command ({used / seconds:.0%} of a core)" if used and done else "")
        + (f"  client CPU {client / done * 1000:.2f} ms/command" if client is not None and done else "")
        + (f"  fsyncs {fsyncs[0]:,} ({fsyncs[0] / done:.3f}/command)" if fsyncs and fsyncs[0] is not None and done else "")
        + (pg.describe(pg_samples[0], pg_samples[1], done) if pg is not None and len(pg_samples) == 2 and done else ""),
        flush=True,
    )
    if count_fsyncs and (not fsyncs or fsyncs[0] is None):
        print("        (fsyncs not counted: `perf stat` on the syscall tracepoints failed; it needs root)", flush=True)
    for text, count in tally.errors.most_common(PRINT_ERRORS):
        print(f"        {count:>6} x {text}", flush=True)
    if len(tally.errors) > PRINT_ERRORS:
        print(f"        ... and {len(tally.errors) - PRINT_ERRORS} more kinds of error", flush=True)
    processes = cpu_profile(per_process[0], per_process[1]) if len(per_process) == 2 else {}
    if processes:
        print("        CPU per process over the window:", flush=True)
        for line in profile_lines(processes, done):
            print(f"          {line}", flush=True)
    return LevelResult(
        clients, seconds, done, p50, p99, errors, used, fsyncs[0] if fsyncs else None, processes, client
    )


PASSED_THROUGH = {"TICKETFLOW_COMMANDS_ON_LOOP", "TICKETFLOW_AUTOMATION", "TICKETFLOW_SEAL", "TICKETFLOW_VIEWS_PROCESS", "TICKETFLOW_ENCRYPT_PERSONAL_DATA", "TICKETFLOW_HTTP_PARSER", "TICKETFLOW_GROUP_COMMIT_WAIT_MS"}


def views_where(env: dict[str, str], project: bool) -> str:
    """Where the server's views run, as its settings say (TICKETFLOW_VIEWS_PROCESS may be passed through)."""
    if project:
        return "views by `ticketflow project`"
    if "TICKETFLOW_DATABASE_URL" in env or env.get("TICKETFLOW_VIEWS_PROCESS", "1").lower() in ("0", "false", "no", "off"):
        return "views in-process (threads of the API process)"
    return "views in serve's child process (`ticketflow project` run by serve)"


def bench_store(
    label: str, env: dict[str, str], workers: int, project: bool, args: argparse.Namespace,
    pg: PgCommits | None = None,
) -> list[LevelResult]:
    """Start the server(s), run each of ``args.clients`` levels, stop; the levels' figures."""
    results: list[LevelResult] = []
    env = {
        # a clean configuration, but the switches one may compare (e.g. TICKETFLOW_SEAL=0)
        **{k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_") or k in PASSED_THROUGH},
        **env,
        "TICKETFLOW_RATE_LIMIT_PER_SECOND": "100000",
        "TICKETFLOW_RATE_LIMIT_BURST": "100000",
    }
    with tempfile.TemporaryDirectory(prefix="tf-http-logs-") as logs:
        server = Server(env, workers, project, Path(logs))
        token = server.token()
        with server:
            customer, team = setup(server.url, token)
            print(f"{label}: {workers} API worker(s), {views_where(env, project)}", flush=True)
            for clients in args.clients:
                results.append(run_level(server.url, token, customer, team, clients, args.warmup, args.seconds,
                                         [proc.pid for _, proc in server.procs], args.fsyncs, pg,
                                         getattr(args, "profile", False)))
            for name, proc in server.procs:
                if proc.poll() is not None:
                    print(f"  `ticketflow {name}` died ({proc.returncode}):\n{server.log_tail(name)}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument(
        "--sqlite-standalone", action="store_true",
        help="also run SQLite with the views in a `ticketflow project` process (the API process then only serves)",
    )
    parser.add_argument(
        "--sqlite-workers", type=int, default=1,
        help="`serve --workers N` for the SQLite run (default 1, the embedded default; N > 1: N API processes "
        "and one view process)",
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per concurrency level")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each level")
    parser.add_argument(
        "--clients",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 8, 32],
        help="concurrency levels, comma-separated",
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get("TICKETFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        help="PostgreSQL server for --store postgres (a fresh schema is made and dropped)",
    )
    parser.add_argument(
        "--fsyncs", action="store_true",
        help="also count the servers' fsync/fdatasync calls per command (Linux `perf stat`, needs root)",
    )
    parser.add_argument(
        "--profile", action="store_true",
        help="also print each level's CPU per process: every server process and (PostgreSQL) every backend of the "
        "--postgres database (Linux /proc; name a database only this bench uses to count only its backends)",
    )
    args = parser.parse_args()
    print(
        f"HTTP lifecycle mix (open, assign, reply, solve, close), {args.warmup:g} s warm-up + "
        f"{args.seconds:g} s per level; target: >= {TARGET_RATE:.0f} commands/s at 32 clients "
        f"on SQLite with p99 < {TARGET_P99_MS:.0f} ms",
        flush=True,
    )
    if args.store in ("sqlite", "both"):
        bench_sqlite(args)
    if args.sqlite_standalone and args.store in ("sqlite", "both"):
        data = Path(tempfile.mkdtemp(prefix="tf-http-"))
        try:
            env = {"TICKETFLOW_DATA_DIR": str(data), "TICKETFLOW_EMBEDDED_PROJECTIONS": "0"}
            bench_store("SQLite", env, 1, True, args)
        finally:
            shutil.rmtree(data, ignore_errors=True)
    if args.store in ("postgres", "both"):
        bench_postgres(args.postgres, args)


def bench_sqlite(args: argparse.Namespace) -> list[LevelResult]:
    """``serve`` (1 API worker, the views in its child process: the embedded default; ``--sqlite-workers N``:
    N API workers and that view process) on a fresh temporary data dir."""
    data = Path(tempfile.mkdtemp(prefix="tf-http-"))
    try:
        workers = getattr(args, "sqlite_workers", 1)
        return bench_store("SQLite", {"TICKETFLOW_DATA_DIR": str(data)}, workers, False, args)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def bench_postgres(postgres: str, args: argparse.Namespace) -> list[LevelResult]:
    """``serve --workers 2`` + ``project`` on a fresh schema of ``postgres`` (dropped at the end)."""
    schema = f"bench_http_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        url = f"{postgres}?schema={schema}"
        return bench_store("PostgreSQL", {"TICKETFLOW_DATABASE_URL": url}, 2, True, args, PgCommits(postgres, schema))
    finally:
        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
