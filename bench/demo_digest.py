"""Run ``ticketflow demo`` on a fresh store and print its CPU and a digest of the event log it wrote.

    PYTHONPATH=$PWD python bench/demo_digest.py --seed 1 [--tickets 200] [--customers 8 --days 3]

The demo runs in a child process (``python -m ticketflow_cli demo ...`` on a temporary data dir):
its CPU is the child's user + system time (``resource.getrusage(RUSAGE_CHILDREN)``), printed with
the wall time and the load average before and after. The digest is the sha256 of a dump of the log:
for each notification its topic, originator id, version and the decoded event's fields, in log order
(the wall-clock ``timestamp`` left out; UUIDs named by their first appearance, as
``tests/cli/test_demo_determinism.py`` does, since a few commands draw random ids). Two runs that
print the same digest wrote the same events in the same order with the same data.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def digest(data_dir: Path) -> tuple[str, int]:
    from ticketflow.application import TicketDesk
    from ticketflow.config import Settings

    desk = TicketDesk(Settings(data_dir=data_dir))
    names: dict[str, str] = {}

    def rename(match: re.Match[str]) -> str:
        return names.setdefault(match.group(0), f"id{len(names)}")

    sha = hashlib.sha256()
    count = 0
    try:
        for notification in desk.recorder.select_notifications(1, 10_000_000):
            event = desk.mapper.to_domain_event(notification)
            fields = sorted((k, v) for k, v in vars(event).items() if k != "timestamp")
            line = repr((notification.topic, str(notification.originator_id), notification.originator_version, fields))
            sha.update(UUID_TEXT.sub(rename, line).encode())
            sha.update(b"\n")
            count += 1
    finally:
        desk.close()
    return sha.hexdigest(), count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tickets", type=int)
    parser.add_argument("--customers", type=int)
    parser.add_argument("--days", type=int)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    argv = ["demo", "--seed", str(args.seed)]
    for name in ("tickets", "customers", "days"):
        if getattr(args, name) is not None:
            argv += [f"--{name}", str(getattr(args, name))]
    with tempfile.TemporaryDirectory(prefix="demo-digest-") as tmp:
        env = dict(os.environ, TICKETFLOW_DATA_DIR=tmp)
        load_before = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ticketflow_cli", *argv], env=env, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_after = os.getloadavg()[0]
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        sha, count = digest(Path(tmp))
    print(
        f"{args.label} demo {' '.join(argv[1:])}: {cpu:.1f} s CPU, {wall:.1f} s wall, load {load_before:.1f} -> "
        f"{load_after:.1f}; {count} events sha256 {sha}",
        flush=True,
    )


if __name__ == "__main__":
    main()
