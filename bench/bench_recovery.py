"""Recovery time of the embedded (SQLite) desk on a large store: `serve` killed with SIGKILL, restarted,
seconds until /readyz answers 200 (min/median/max; wall clock and the CPU time the process used, which
a busy machine does not inflate), and how far the views lag when it does.

    python bench/bench_recovery.py --events 1000000 [--data DIR] [--restarts 3]

The store is seeded by a raw batch insert: tickets (one `Ticket.Opened`, then notes, fewer than a
snapshot interval each) made as domain events of the real schema, turned into stored events by the
desk's own mapper (personal fields sealed per customer, the writer MAC that the sealer requires) and
inserted ``--batch`` rows per transaction straight into the recorder: no command handling, no
projection on the way. The seeded tickets are marked ``imported`` (history migrated into the desk, as
`ticketflow import` writes it), so the automation has no routing or SLA work left over from them:
the restarts measure a desk that was caught up in every respect, not one with 100,000 tickets to route. Then every view and the sealer catch up once (timed), so the restarts start
from a caught-up desk, as a desk that was running would. ``--data`` keeps the seeded store for the
next run (it is reused when it already holds enough events).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4, uuid5

import httpx

from projections.integrity.sealer import Sealer
from projections.readside import ReadSide
from ticketflow.application import ID_NAMESPACE, TicketDesk
from ticketflow.commands import AddNote, FormTeam, OpenTicket, RegisterCustomer
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller

REPO = Path(__file__).resolve().parents[1]
NOTES_PER_TICKET = 9  # 10 events a ticket: under the snapshot interval (50), as most tickets are


def seed(desk: TicketDesk, events: int, batch: int) -> None:
    """Append tickets to ``desk``'s log until it holds at least ``events`` events."""
    admin = Caller("bench", Role.ADMIN, Channel.API)
    customer = desk.register_customer(RegisterCustomer(name="恢复测试客户"), admin).object_id
    team = desk.form_team(FormTeam(name=f"恢复测试 {uuid4().hex[:6]}"), admin).object_id
    # One ticket through the application: its events are the templates of every seeded one.
    opened = desk.open_ticket(OpenTicket(subject="模板", requester_id=customer, team_id=team), admin).object_id
    desk.add_note(AddNote(ticket_id=opened, body="模板备注"), admin)
    template_open, template_note = desk.events.get(opened)
    left = events - desk.log_position()
    tickets = max(0, -(-left // (NOTES_PER_TICKET + 1)))
    at = datetime.now(UTC) - timedelta(days=90)
    step = timedelta(days=89) / max(1, tickets * (NOTES_PER_TICKET + 1))
    pending: list[Any] = []
    started, written = time.perf_counter(), 0
    for number in range(tickets):
        command = uuid4()
        ticket = uuid5(ID_NAMESPACE, f"Ticket:{command}")
        pending.append(_like(template_open, ticket, 1, command, at, subject=f"恢复测试 {number}"))
        for version in range(2, NOTES_PER_TICKET + 2):
            at += step
            note = uuid4()
            pending.append(_like(template_note, ticket, version, note, at, body=f"备注 {number}-{version}",
                                 interaction_id=uuid5(ID_NAMESPACE, f"interaction:{note}")))
        at += step
        if len(pending) >= batch or number == tickets - 1:
            desk.recorder.insert_events([desk.mapper.to_stored_event(e) for e in pending])
            written += len(pending)
            pending = []
            rate = written / (time.perf_counter() - started)
            print(f"\r  seeded {written:,} events ({rate:,.0f}/s)", end="", flush=True)
    print()


def _like(template: Any, ticket: UUID, version: int, command: UUID, at: datetime, **changes: Any) -> Any:
    """A copy of ``template`` as another ticket's event: its own id, version, command and times."""
    fields = {**vars(template), "originator_id": ticket, "originator_version": version, "timestamp": at,
              "occurred_at": at, "command_id": str(command), "correlation_id": str(command), "imported": True,
              **changes}
    return type(template)(**fields)


def catch_up(desk: TicketDesk) -> None:
    started = time.perf_counter()
    read_side = ReadSide(desk)
    done = [0]

    def report(events: int) -> None:
        done[0] += events
        if done[0] % 100_000 < events:
            print(f"\r  views: {done[0]:,} events ({done[0] / (time.perf_counter() - started):,.0f}/s)", end="", flush=True)

    try:
        read_side.catch_up(progress=report)
        print()
    finally:
        read_side.close()
    print(f"  views caught up in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    sealer = Sealer(desk)
    try:
        sealer.catch_up(checkpoint=True)
    finally:
        sealer.close()
    print(f"  sealer caught up in {time.perf_counter() - started:.1f} s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (Linux /proc): what a busy machine does not inflate."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def restart(env: dict[str, str], port: int) -> tuple[float, float, int]:
    """Start `serve`; seconds (wall, then CPU of the process) until /readyz is 200 and the largest view
    lag it then reports. Then SIGKILL."""
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "ticketflow_cli", "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while time.monotonic() < started + 300:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                if response.status_code == 200:
                    seconds, cpu = time.monotonic() - started, _cpu_seconds(process.pid)
                    return seconds, cpu, max((v["lag"] for v in response.json()["views"]), default=0)
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise RuntimeError(f"serve exited with {process.returncode} before it was ready")
            time.sleep(0.02)
        raise RuntimeError("serve was not ready within 300 s")
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # a crash, not a clean stop
        process.wait()


def restarts(data: Path, count: int, label: str) -> tuple[list[float], list[float], int]:
    """Start once, then ``count`` restarts after SIGKILL: their seconds to ready (wall, CPU) and the
    largest lag seen."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TICKETFLOW_DATA_DIR": str(data)}
    env.pop("TICKETFLOW_DATABASE_URL", None)
    port = _free_port()
    times, cpus, lags = [], [], []
    for number in range(count + 1):
        seconds, cpu, lag = restart(env, port)
        print(f"  {label}, {'first start' if number == 0 else f'restart {number} after SIGKILL'}:"
              f" /readyz 200 after {seconds:.2f} s ({cpu:.2f} s of CPU), largest view lag then {lag}")
        if number:
            times.append(seconds)
            cpus.append(cpu)
            lags.append(lag)
    return times, cpus, max(lags)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, help="keep the seeded store here (default: a temporary directory)")
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--batch", type=int, default=20_000, help="events per insert transaction")
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="tf-recovery-"))
    try:
        settings = Settings(data_dir=data / "data")
        desk = TicketDesk(settings)
        try:
            if desk.log_position() < args.events:
                print(f"seeding {data} to {args.events:,} events")
                seed(desk, args.events, args.batch)
            catch_up(desk)
            events = desk.log_position()
        finally:
            desk.close()
        big = restarts(data / "data", args.restarts, f"{events:,} events")
        # The same restarts on a store with a handful of events: what starting the process costs on
        # this machine (imports, the app), so the store's own share of the time can be read off.
        small_dir = Path(tempfile.mkdtemp(prefix="tf-recovery-small-"))
        try:
            small = TicketDesk(Settings(data_dir=small_dir / "data"))
            try:
                seed(small, 10, args.batch)
                catch_up(small)
                few = small.log_position()
            finally:
                small.close()
            baseline = restarts(small_dir / "data", args.restarts, f"{few} events")
        finally:
            shutil.rmtree(small_dir, ignore_errors=True)
        for label, (times, cpus, lag) in ((f"{events:,} events", big), (f"{few} events (baseline)", baseline)):
            print(f"SQLite, {label}: restart -> /readyz 200 in {min(times):.2f} / {statistics.median(times):.2f} /"
                  f" {max(times):.2f} s (min/median/max of {len(times)}; CPU {min(cpus):.2f} /"
                  f" {statistics.median(cpus):.2f} / {max(cpus):.2f} s), largest view lag at ready {lag}")
    finally:
        if args.data is None:
            shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
