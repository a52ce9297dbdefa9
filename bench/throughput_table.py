"""Issue #14's throughput table from one run: every row measured by the existing benches, then printed as Markdown.

    python bench/throughput_table.py [--only sqlite,postgres,peer,demo,queues,views] [--sqlite-workers N]
                                     [--seconds 15] [--warmup 3] [--peer-clients 1,8,32] [--peer-seconds 10]
                                     [--demo-tickets 1000] [--queue-tickets 1000000] [--queue-rounds 30]
                                     [--views-events 200000] [--views-data DIR] [--postgres URL] [--no-fsyncs]

The parts, each the existing bench's own functions (this file only runs them and reads their figures):

* ``sqlite`` (``bench_http``): ``ticketflow serve`` on SQLite, its defaults (1 API worker; views,
  automation, sealer and personal-data encryption in-process), 32 clients over HTTP: commands/s, p99,
  the server's CPU per command (every server process, from /proc) and its fsync/fdatasync calls per
  command (``perf stat`` on the syscall tracepoints: Linux, root; ``--no-fsyncs`` to skip). With
  ``--sqlite-workers N`` (N > 1) the same rows again for ``serve --workers N`` on SQLite.
* ``postgres`` (``bench_http``): ``serve --workers 2`` + ``project`` on a fresh database made for the
  run on ``--postgres``'s server (dropped at the end), 32 clients: commands/s, and the CPU per process
  over the measured window — every server process and every PostgreSQL backend of that database
  (which only this run uses, so they are all its own).
* ``peer`` (``peer_helpdesk``): the six-command lifecycle against django-helpdesk (installed into its
  own venv on first use), WAL, DRF API under gunicorn, at ``--peer-clients``: the lifecycles/s ratio.
* ``demo``: ``ticketflow demo --seed 1 --tickets N`` on a fresh data dir, wall time and CPU.
* ``queues`` (``bench_queues``): every queue filter and sort over ``--queue-tickets`` rows seeded into
  the tickets view (SQLite): the worst p99.
* ``views`` (``bench_views``): every view's rebuild against the raw read + decode of the same log
  (a demo store of ``--views-events`` events, built once and kept in ``--views-data``).

Each part prints its own bench's output as it runs; a part that fails is reported in its rows and the
others still run. At the end: the table (measure | target | measured | met?), the load average at the
start and the end, the machine and the date. The measure column names the sizes actually run, so a
quick run (e.g. ``--queue-tickets 20000 --demo-tickets 100``) is not mistaken for the issue's.

Everything shares the machine with the client and the other parts run one after another, so
wall-clock figures are a floor on a busy machine: read them with the load average printed beside them.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the benches beside this file
import bench_http
import bench_queues
import bench_views
import peer_helpdesk

from ticketflow.config import Settings

PARTS = ("sqlite", "postgres", "peer", "demo", "queues", "views")
CLIENTS = 32


@dataclass(frozen=True)
class Row:
    """One line of the table: ``met`` is None when the row has no pass/fail target or was not measured."""

    measure: str
    target: str
    measured: str
    met: bool | None

    def cells(self) -> list[str]:
        met = "—" if self.met is None else ("yes" if self.met else "**no**")
        return [self.measure, self.target, self.measured, met]


def markdown(rows: list[Row]) -> str:
    """The rows as a Markdown table; a ``|`` inside a cell is escaped so it stays one cell."""
    lines = ["| measure | target | measured | met? |", "|---|---|---|---|"]
    for row in rows:
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row.cells()) + " |")
    return "\n".join(lines)


def not_run(measure: str, target: str, why: str) -> Row:
    return Row(measure, target, why, None)


def ms(value: float) -> str:
    return f"{value:.2f} ms"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def speed() -> str:
    """How fast one core of this machine runs Python right now: the best of three timings of a fixed loop.
    A shared virtual machine's speed drifts (the same loop took 0.71-1.04 s between two minutes here), and
    every figure of the table moves with it: this line says how fast the machine was at each end."""
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        total = 0
        for i in range(3_000_000):
            total += i
        best = min(best, time.perf_counter() - began)
    return f"{best * 1000:.0f} ms for 3,000,000 Python additions (best of 3)"


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}: {os.cpu_count()} cores{f' ({model})' if model else ''}, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def revision() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=Path(__file__).resolve().parent,
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "?"


# --- the parts: each answers its rows -----------------------------------------------------------

SQLITE_CPU = (
    f"server CPU per acknowledged command, everything on (views, automation, sealer, encryption), {CLIENTS} clients, SQLite",
    "≤ 1.0 ms",
)
SQLITE_RATE = (
    f"acknowledged commands/s at {CLIENTS} clients, SQLite embedded default",
    "≥ 1,000, p99 < 50 ms",
)
FSYNCS = (f"fsyncs per acknowledged command at {CLIENTS} clients", "≤ 0.2 (group commit)")
PG_RATE = ("same, PostgreSQL, `serve --workers 2` + `project`", "≥ 1,000")
PEER = (
    "ticket lifecycles/s vs django-helpdesk (WAL, DRF API, gunicorn), same run",
    "reported (≥ 40× follows from the rows above)",
)


def http_args(args: argparse.Namespace, fsyncs: bool, profile: bool, sqlite_workers: int = 1) -> argparse.Namespace:
    return argparse.Namespace(
        clients=[CLIENTS], warmup=args.warmup, seconds=args.seconds, fsyncs=fsyncs, profile=profile,
        sqlite_workers=sqlite_workers,
    )


def level_32(results: list[bench_http.LevelResult]) -> bench_http.LevelResult:
    return next(r for r in results if r.clients == CLIENTS)


def part_sqlite(args: argparse.Namespace) -> list[Row]:
    rows = sqlite_rows(args, 1)
    if args.sqlite_workers > 1:  # the same rows again for `serve --workers N` on the same store
        rows += sqlite_rows(args, args.sqlite_workers)
    return rows


def sqlite_rows(args: argparse.Namespace, workers: int) -> list[Row]:
    level = level_32(bench_http.bench_sqlite(http_args(args, not args.no_fsyncs, profile=False, sqlite_workers=workers)))
    cpu = level.cpu_ms_per_command
    per_command = level.fsyncs_per_command
    window = f"{level.commands:,} commands in {level.seconds:g} s, {level.errors} errors"
    served = "" if workers == 1 else f" — `serve --workers {workers}`"
    return [
        Row(
            SQLITE_CPU[0] + served, SQLITE_CPU[1],
            "not measured (no /proc)" if cpu is None else f"{ms(cpu)} ({window})",
            None if cpu is None else cpu <= 1.0,
        ),
        Row(
            SQLITE_RATE[0] + served, SQLITE_RATE[1],
            f"{level.commands_per_s:,.0f}, p99 {level.p99:.0f} ms (p50 {level.p50:.0f} ms)"
            + (
                f"; the load client used {ms(level.client_cpu_seconds / level.commands * 1000)}/command"
                if level.client_cpu_seconds is not None and level.commands
                else ""
            ),
            level.commands_per_s >= 1000 and level.p99 < 50,
        ),
        Row(
            FSYNCS[0] + served, FSYNCS[1],
            "not counted (needs `perf` and root)"
            if per_command is None
            else f"{per_command:.3f} ({level.fsyncs:,} fsync/fdatasync calls)",
            None if per_command is None else per_command <= 0.2,
        ),
    ]


def database_url(server: str, database: str) -> str:
    """``server``'s URL naming ``database`` instead of its own (query string kept)."""
    parts = urlsplit(server)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def part_postgres(args: argparse.Namespace) -> list[Row]:
    import psycopg

    database = f"tf_bench_table_{uuid.uuid4().hex[:8]}"  # its own: every backend on it is this run's
    with psycopg.connect(args.postgres, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
    try:
        level = level_32(
            bench_http.bench_postgres(database_url(args.postgres, database), http_args(args, False, True))
        )
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}"')
    cpu = level.cpu_ms_per_command
    backends = sum(v for k, v in level.processes.items() if k.startswith("postgres backend"))
    detail = f"server CPU {ms(cpu)}/command" if cpu is not None else "server CPU not measured"
    if backends and level.commands:
        detail += f" + PostgreSQL backends {ms(backends / level.commands * 1000)}/command"
    return [
        Row(
            *PG_RATE,
            f"{level.commands_per_s:,.0f}, p99 {level.p99:.0f} ms ({detail})",
            level.commands_per_s >= 1000,
        )
    ]


def part_peer(args: argparse.Namespace) -> list[Row]:
    python = peer_helpdesk.ensure_helpdesk_venv(args.venv)
    print(f"django-helpdesk {peer_helpdesk.helpdesk_version(python)}", flush=True)
    for line in peer_helpdesk.differences(args.peer_workers):
        print(f"* {line}")
    with tempfile.TemporaryDirectory(prefix="peer-logs-") as logs:
        results = peer_helpdesk.lifecycles(
            python, args.peer_workers, args.peer_clients, args.warmup, args.peer_seconds, Path(logs)
        )
    ours, theirs = peer_helpdesk.NAMES
    cells = []
    times, ratio = peer_helpdesk.times, peer_helpdesk.ratio
    for clients in args.peer_clients:
        a = next(r for r in results if r.system == ours and r.clients == clients)
        b = next(r for r in results if r.system == theirs and r.clients == clients)
        # A level where django-helpdesk closed no lifecycle inside the window has no lifecycle ratio
        # ("-"); its commands/s ratio still says how far apart the two are.
        cells.append(
            f"{clients} clients: lifecycles {times(ratio(a.lifecycles_per_s, b.lifecycles_per_s))}"
            f" ({a.lifecycles_per_s:,.1f} vs {b.lifecycles_per_s:,.1f}/s),"
            f" commands {times(ratio(a.commands_per_s, b.commands_per_s))}"
        )
    return [Row(*PEER, "; ".join(cells), None)]


def part_demo(args: argparse.Namespace) -> list[Row]:
    measure = f"`ticketflow demo` ({args.demo_tickets:,} tickets, all automation)"
    data = Path(tempfile.mkdtemp(prefix="tf-demo-"))
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TICKETFLOW_") or k in bench_http.PASSED_THROUGH
        },
        "TICKETFLOW_DATA_DIR": str(data),
    }
    command = [bench_http.TICKETFLOW, "demo", "--seed", "1", "--tickets", str(args.demo_tickets)]
    try:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        out = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    finally:
        shutil.rmtree(data, ignore_errors=True)
    print("\n".join(out.stdout.splitlines()[-25:]), flush=True)
    if out.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(command[1:])}` exited with {out.returncode}: {out.stderr.strip()[-500:]}"
        )
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    print(f"demo: {wall:.1f} s wall, {cpu:.1f} s CPU (`ticketflow {' '.join(command[1:])}`)", flush=True)
    return [Row(measure, "≤ 10 s", f"{wall:.1f} s wall ({cpu:.1f} s CPU)", wall <= 10)]


def part_queues(args: argparse.Namespace) -> list[Row]:
    measure = (
        f"queue page, every filter combination the API and console offer, {args.queue_tickets:,} tickets "
        "(view rows seeded directly), SQLite"
    )
    directory = Path(tempfile.mkdtemp(prefix="tf-bench-queues-"))
    try:
        worst, worst_cpu = bench_queues.run(
            Settings(data_dir=directory),
            bench_queues.Seed(args.queue_tickets, random.Random(7)),
            args.queue_rounds,
            "SQLite",
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return [
        Row(
            measure,
            "p99 < 20 ms",
            f"worst p99 {ms(worst)} wall, {ms(worst_cpu)} CPU ({args.queue_rounds} draws × 2 pages each)",
            worst < 20,
        )
    ]


def part_views(args: argparse.Namespace) -> list[Row]:
    settings = bench_views.build_store(args.views_data, args.views_events)
    ratios = bench_views.rebuild(settings)
    wall_name, (wall, _) = min(ratios.items(), key=lambda kv: kv[1][0])
    cpu_name, (_, cpu) = min(ratios.items(), key=lambda kv: kv[1][1])
    return [
        Row(
            f"view rebuild vs raw pull+decode, every view ({len(ratios)} views)",
            "≥ 0.5× each",
            f"lowest {wall:.2f}× ({wall_name}); by CPU lowest {cpu:.2f}× ({cpu_name})",
            wall >= 0.5,
        )
    ]


PART_ROWS: dict[str, Callable[[argparse.Namespace], list[Row]]] = {
    "sqlite": part_sqlite,
    "postgres": part_postgres,
    "peer": part_peer,
    "demo": part_demo,
    "queues": part_queues,
    "views": part_views,
}


def failed_rows(part: str, args: argparse.Namespace, error: str) -> list[Row]:
    """What a part that raised leaves in the table: its rows, each saying it failed and why."""
    heads = {
        "sqlite": [SQLITE_CPU, SQLITE_RATE, FSYNCS],
        "postgres": [PG_RATE],
        "peer": [PEER],
        "demo": [(f"`ticketflow demo` ({args.demo_tickets:,} tickets, all automation)", "≤ 10 s")],
        "queues": [(f"queue page, every filter combination, {args.queue_tickets:,} tickets", "p99 < 20 ms")],
        "views": [("view rebuild vs raw pull+decode, every view", "≥ 0.5× each")],
    }[part]
    return [not_run(measure, target, f"failed: {error}") for measure, target in heads]


def parse_parts(text: str) -> list[str]:
    """``--only``'s comma-separated part names, in the table's order; an unknown name is an error."""
    wanted = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [p for p in wanted if p not in PARTS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}"
        )
    return [p for p in PARTS if p in wanted]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only", type=parse_parts, default=list(PARTS), help=f"comma-separated parts: {','.join(PARTS)}"
    )
    parser.add_argument(
        "--seconds", type=float, default=15.0, help="measured seconds of the HTTP benches (32 clients)"
    )
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each HTTP level")
    parser.add_argument("--sqlite-workers", type=int, default=1,
                        help="also run the SQLite rows with `serve --workers N` (N > 1), after the default's")
    parser.add_argument(
        "--no-fsyncs", action="store_true", help="do not count fsyncs (they need `perf` and root)"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "TICKETFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="PostgreSQL server: a database is made on it for the run and dropped after",
    )
    parser.add_argument("--peer-clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32])
    parser.add_argument("--peer-seconds", type=float, default=10.0, help="measured seconds per peer level")
    parser.add_argument(
        "--peer-workers", type=int, default=os.cpu_count() or 1, help="django-helpdesk's gunicorn workers"
    )
    parser.add_argument(
        "--venv", type=Path, default=peer_helpdesk.DEFAULT_VENV, help="django-helpdesk's own venv"
    )
    parser.add_argument("--demo-tickets", type=int, default=1000)
    parser.add_argument("--queue-tickets", type=int, default=1_000_000)
    parser.add_argument("--queue-rounds", type=int, default=30, help="draws per queue filter and sort")
    parser.add_argument(
        "--views-events", type=int, default=200_000, help="events in the store the views rebuild from"
    )
    parser.add_argument(
        "--views-data",
        type=Path,
        default=Path(tempfile.gettempdir()) / "ticketflow-bench-store",
        help="the demo store for the rebuild, built once and kept",
    )
    args = parser.parse_args()

    code = revision()  # the code that runs: HEAD may move during a long run
    began, load_start, speed_start = datetime.now(UTC), load(), speed()
    print(
        f"issue #14 table: parts {', '.join(args.only)}; load average at start {load_start}; "
        f"one core: {speed_start}",
        flush=True,
    )
    rows: list[Row] = []
    took: list[str] = []
    for part in args.only:
        print(f"\n=== {part} (load average {load()}) ===", flush=True)
        started = time.perf_counter()
        try:
            rows += PART_ROWS[part](args)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - any part that fails is reported in its rows; the others still run
            traceback.print_exc()
            rows += failed_rows(
                part,
                args,
                f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
            )
        took.append(f"{part} {time.perf_counter() - started:.0f} s")
        if part != args.only[-1]:  # the rows so far: a run stopped before its end still says them
            print(f"\n(table so far, load average {load()})\n{markdown(rows)}", flush=True)
    print(
        f"\n## Issue #14 throughput table (one run, `{' '.join(['python', 'bench/throughput_table.py', *sys.argv[1:]])}`)\n"
    )
    print(markdown(rows))
    print(f"\n- load average (1/5/15 min) at start {load_start}, at end {load()}")
    print(f"- one core's speed at start {speed_start}, at end {speed()}")
    print(f"- machine {machine()}")
    print(
        f"- date {began:%Y-%m-%d %H:%M} – {datetime.now(UTC):%H:%M} UTC, revision {code}; parts took {', '.join(took)}"
    )


if __name__ == "__main__":
    main()
