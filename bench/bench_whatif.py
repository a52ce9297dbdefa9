"""What-if benchmark: the BPI Challenge 2013 incident log replayed under a candidate SLA policy and calendar.

    python bench/bench_whatif.py [--store PATH.sqlite3]   (imports the log first if the store is new)

1. imports ``/work/shared/data/bpic2013_incidents.csv`` (65,533 events, 7,554 cases) into a SQLite
   desk with the existing importer (once; the store is kept for reruns), and gives the desk an SLA
   policy: resolution within 5 days, around the clock;
2. in a fresh process, times ``ticketflow.whatif.run_whatif`` end to end (the log read once, both
   scenarios replayed, the comparison built) under a candidate: resolution within 30 business hours
   of a Brussels office calendar (Monday-Friday 08:00-18:00, holidays), and reports the peak RSS of
   that process and of the child it forks to replay the candidate scenario (``ticketflow.whatif`` replays
   the recorded and the candidate scenarios in two processes), with the load average. Target: < 10 s.
   ``--json-out PATH`` writes the report's JSON, to check that a change keeps it byte-identical.

    python bench/bench_whatif.py --events 1000000   (a desk history of a million events)

replicates the BPIC desk until its log holds that many events: each copy of a case is the same
recorded history under another ticket id (uuid5 of the case's id and the copy's number), written
through the desk's own mapper (so personal fields are sealed as live ones are); then times the same
what-if over it and reports the peak RSS. Target: < 3 minutes, memory bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

DATA = Path("/work/shared/data/bpic2013_incidents.csv")
CANDIDATE = {
    "calendars": [
        {
            "name": "Brussels office",
            "timezone": "Europe/Brussels",
            "weekly": {str(d): [["08:00", "18:00"]] for d in range(5)},
            "holidays": ["2011-12-26", "2012-01-02", "2012-04-09", "2012-05-01"],
        }
    ],
    "sla_policies": [
        {
            "name": "incidents",
            "position": 0,
            "calendar": "Brussels office",
            "targets": {
                p: {"resolution_time": {"minutes": 30 * 60}} for p in ("low", "normal", "high", "urgent")
            },
        }
    ],
}


def prepare(store: Path) -> None:
    from ticketflow.application import TicketDesk
    from ticketflow.commands.workflow import DefineSlaPolicy
    from ticketflow.config import Settings
    from ticketflow.domain.values import Channel, Role
    from ticketflow.importing import import_file
    from ticketflow.metadata import Caller

    desk = TicketDesk(Settings(database_url=f"sqlite:///{store}"))
    try:
        started = time.perf_counter()
        summary = import_file(desk, "bpic2013", DATA)
        print(f"imported {len(summary.tickets)} cases in {time.perf_counter() - started:.1f} s")
        targets = {
            p: {"resolution_time": {"minutes": 5 * 24 * 60, "business_hours": False}}
            for p in ("low", "normal", "high", "urgent")
        }
        desk.define_sla_policy(
            DefineSlaPolicy.model_validate({"name": "incidents", "position": 0, "targets": targets}),
            Caller("bench", Role.ADMIN, Channel.CLI),
        )
    finally:
        desk.close()


def replicate(source: Path, store: Path, events: int) -> None:
    """Copy the BPIC store and append copies of its cases until the log holds ``events`` events."""
    import dataclasses
    import shutil
    from uuid import uuid5

    from ticketflow.application import TicketDesk
    from ticketflow.config import Settings
    from ticketflow.domain import Ticket

    for suffix in ("", "-keys"):
        src = source.with_name(f"{source.stem}{suffix}{source.suffix if not suffix else '.sqlite'}")
        shutil.copyfile(
            src, store.with_name(f"{store.stem}{suffix}{store.suffix if not suffix else '.sqlite'}")
        )
    desk = TicketDesk(Settings(database_url=f"sqlite:///{store}"))
    try:
        started = time.perf_counter()
        end = desk.log_position()
        originals = []
        start = 1
        while start <= end:
            page = desk.recorder.select_notifications(start, 1000, stop=end)
            for notification in page:
                event = desk.mapper.to_domain_event(notification)
                if isinstance(event, Ticket.Event):
                    originals.append(event)
            start = page[-1].id + 1
        copy = 0
        while desk.log_position() < events:
            copy += 1
            batch = []
            for event in originals:
                twin = dataclasses.replace(event, originator_id=uuid5(event.originator_id, f"copy {copy}"))
                batch.append(desk.mapper.to_stored_event(twin))
                if len(batch) == 5000:
                    desk.recorder.insert_events(batch)
                    batch = []
            if batch:
                desk.recorder.insert_events(batch)
        print(
            f"replicated {copy} times to {desk.log_position()} events in {time.perf_counter() - started:.1f} s"
        )
    finally:
        desk.close()


def run(store: Path, json_out: Path | None = None) -> None:
    from ticketflow.application import TicketDesk
    from ticketflow.config import Settings
    from ticketflow.whatif import Period, run_whatif, to_json

    desk = TicketDesk(Settings(database_url=f"sqlite:///{store}"))
    started, cpu = time.perf_counter(), time.process_time()
    report = run_whatif(
        desk, Period(datetime(2010, 1, 1, tzinfo=UTC), datetime(2013, 1, 1, tzinfo=UTC)), CANDIDATE
    )
    text = to_json(report)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    desk.close()
    if json_out is not None:
        json_out.write_text(text, encoding="utf-8")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the candidate's replay process
    print(
        json.dumps(
            {
                "seconds": round(elapsed, 2),
                "cpu_seconds": round(cpu, 2),
                "child_cpu_seconds": round(children.ru_utime + children.ru_stime, 2),
                "peak_rss_mb": round(peak, 1),
                "child_peak_rss_mb": round(children.ru_maxrss / 1024, 1),
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "events_read": report["log"]["events_read"],
                "tickets": report["tickets"],
                "sla_totals": report["sla_totals"],
                "json_bytes": len(text),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--store", type=Path, default=Path(tempfile.gettempdir()) / "bench_whatif_bpic2013.sqlite3"
    )
    parser.add_argument(
        "--events", type=int, default=None, help="replicate the BPIC desk to this many events (e.g. 1000000)"
    )
    parser.add_argument(
        "--json-out", type=Path, default=None, help="write the report's JSON here (to compare bytes)"
    )
    parser.add_argument("--run", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run(args.store, args.json_out)
        return
    if not DATA.is_file():
        sys.exit(f"{DATA} is absent: the benchmark needs the BPIC 2013 log")
    if not args.store.exists():
        prepare(args.store)
    store = args.store
    if args.events is not None:
        store = args.store.with_name(f"{args.store.stem}-{args.events}{args.store.suffix}")
        if not store.exists():
            replicate(args.store, store, args.events)
    out = [] if args.json_out is None else ["--json-out", str(args.json_out)]
    subprocess.run([sys.executable, __file__, "--store", str(store), "--run", *out], check=True)


if __name__ == "__main__":
    main()
