"""Group commit alone: N threads post replies through ``TicketDesk.handle`` on one SQLite desk, with
eventsourcing's own recorder (one transaction and fsync per save) and with the group commit.

    python bench/bench_group_commit.py [--threads 32] [--commands 25]

Each mode runs in its own process; on Linux with ``perf`` (root) the process's fdatasync calls are
counted on the syscall tracepoint (set-up saves included: one customer, two teams, a ticket per
thread, made one at a time). Prints commands/s, CPU per command, commits and fsyncs.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLAIN = {"APPLICATION_RECORDER_TOPIC": "eventsourcing.sqlite:SQLiteApplicationRecorder"}


def run(mode: str, threads: int, commands: int) -> None:
    sys.path.insert(0, str(REPO))
    from tests.support import AGENT, Desk
    from ticketflow.application import TicketDesk
    from ticketflow.commands import PostReply
    from ticketflow.config import Settings

    directory = Path(tempfile.mkdtemp(prefix="tf-group-commit-"))
    try:
        desk = TicketDesk(Settings(data_dir=directory), env=PLAIN if mode == "plain" else None)
        setup = Desk(desk)
        tickets = [setup.open(f"工单 {n}") for n in range(threads)]
        setup_saves = desk.log_position()

        def work(ticket_id: object) -> None:
            for n in range(commands):
                desk.handle(PostReply(ticket_id=ticket_id, body=f"回复 {n}"), AGENT)  # type: ignore[arg-type]

        workers = [threading.Thread(target=work, args=(t,)) for t in tickets]
        cpu, wall = time.process_time(), time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        total = threads * commands
        stats = getattr(desk.recorder, "group_stats", None)
        grouped = f"  {stats.commits} commits for {stats.saves} saves" if stats else "  one commit per save"
        print(f"{mode:>6}: {total / wall:7.0f} commands/s  CPU {cpu / total * 1000:.2f} ms/command{grouped}"
              f"  (set-up: {setup_saves} events)", flush=True)
        desk.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--commands", type=int, default=25, help="replies per thread")
    parser.add_argument("--mode", choices=["plain", "group"], help=argparse.SUPPRESS)  # one child process
    args = parser.parse_args()
    if args.mode:
        run(args.mode, args.threads, args.commands)
        return
    perf = shutil.which("perf")
    for mode in ("plain", "group"):
        child = [sys.executable, __file__, "--mode", mode, "--threads", str(args.threads),
                 "--commands", str(args.commands)]
        if perf is None:
            subprocess.run(child, check=True)
            continue
        with tempfile.NamedTemporaryFile(suffix=".csv") as out:
            subprocess.run([perf, "stat", "-x", ",", "-o", out.name, "-e", "syscalls:sys_enter_fdatasync",
                            "--", *child], check=True)
            counts = [line.split(",")[0] for line in Path(out.name).read_text().splitlines()
                      if "sys_enter_fdatasync" in line]
            if counts and counts[0].isdigit():
                print(f"        fdatasync calls: {int(counts[0]):,}", flush=True)
            else:
                print("        (fdatasync not counted: perf could not read the tracepoint; it needs root)")


if __name__ == "__main__":
    main()
