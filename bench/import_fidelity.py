"""How faithfully and how fast ``ticketflow import`` carries a log, for every preset.

    python bench/import_fidelity.py bpic2013 ../shared/data/bpic2013_incidents.csv [--limit-cases N]
    python bench/import_fidelity.py helpdesk ../shared/data/helpdesk_it.csv
    python bench/import_fidelity.py servicenow [FILE] [--cases 25000]   # no FILE: a generated export
    python bench/import_fidelity.py xes [--cases 2000]                  # round trip through ``export xes``
                                    [--instants 1000] [--seed 2013]

Imports the log into a scratch SQLite store (every default on: personal data sealed, the import's
batched writes), then compares the desk with the source, read by this script's own small reader (not
the importer's code):

* **final state**: for every case, the ticket now against the case's last row;
* **as of instants**: ``--instants`` (case, instant) pairs drawn with a fixed seed, each instant
  uniformly between the case's first and last row; the desk answers with its time travel on business
  time (``version_at(..., BUSINESS)``), the source with its rows up to that instant.

What a state is: bpic2013 and helpdesk (team, status), as the two logs say it; servicenow (status,
team, assignee, priority, category) from the rows (``tests/importing/test_servicenow_fidelity.py``'s
reader; without FILE the export is made by ``tests/importing/servicenow_export.py``, 25,000 incidents,
about 140,000 rows, fixed seed); xes: a generated ServiceNow export is imported into one desk, written
with ``export xes``, imported into a second desk, and each ticket's state (by team name) compared with
the first desk's, now and as of the instants.

Speed: events written per second of wall time and per second of this process's CPU time (the CPU
figure holds on a loaded machine; the load average is printed), and the ratio to raw eventsourcing
batch inserts of the same number of events into a scratch SQLite file (a bare aggregate, 200
aggregates per save: no metadata, sealing or checks), timed in the same run.

The source statuses of bpic2013 and helpdesk (the meaning of each activity, as the issue and the presets (ticketflow/importing/presets/) state it):
bpic2013 ``Accepted/In Progress|Assigned`` open, ``Accepted/Wait - User|Customer`` pending,
``Accepted/Wait|Wait - Implementation|Wait - Vendor`` on_hold, ``Queued/Awaiting Assignment`` new
until someone worked the case, then open, ``Completed/In Call|Resolved`` solved,
``Completed/Closed|Cancelled`` closed; helpdesk ``Insert ticket`` new, ``Take in charge ticket`` and
``Resolve SW anomaly`` open, ``Wait`` pending, ``Require upgrade``, ``Create SW anomaly`` and ``Schedule
intervention`` on_hold, ``Resolve ticket`` solved, ``Closed`` closed; other rows change nothing.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow.importing import ImportSummary, import_file
from ticketflow.timetravel import TimeBasis, version_at

BPIC = {
    ("Accepted", "In Progress"): "open",
    ("Accepted", "Assigned"): "open",
    ("Accepted", "Wait - User"): "pending",
    ("Accepted", "Wait - Customer"): "pending",
    ("Accepted", "Wait"): "on_hold",
    ("Accepted", "Wait - Implementation"): "on_hold",
    ("Accepted", "Wait - Vendor"): "on_hold",
    ("Queued", "Awaiting Assignment"): "queued",
    ("Completed", "In Call"): "solved",
    ("Completed", "Resolved"): "solved",
    ("Completed", "Closed"): "closed",
    ("Completed", "Cancelled"): "closed",
}
HELPDESK = {
    "Insert ticket": "new",
    "Take in charge ticket": "open",
    "Resolve SW anomaly": "open",
    "Wait": "pending",
    "Require upgrade": "on_hold",
    "Create SW anomaly": "on_hold",
    "Schedule intervention": "on_hold",
    "Resolve ticket": "solved",
    "Closed": "closed",
}
HELPDESK_TEAM = "Helpdesk IT (imported)"

State = tuple[str, str]  # (team name, status)


def source_states(fmt: str, path: Path) -> dict[str, list[tuple[datetime, State]]]:
    """Each case's states after each row, in time order (rows at equal times in file order)."""
    rows: dict[str, list[tuple[datetime, dict[str, str]]]] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            rows.setdefault(row["case:concept:name"], []).append(
                (datetime.fromisoformat(row["time:timestamp"]), row)
            )
    states: dict[str, list[tuple[datetime, State]]] = {}
    for case, events in rows.items():
        events.sort(key=lambda e: e[0])
        team, status = "", "new"
        timeline: list[tuple[datetime, State]] = []
        for at, row in events:
            if fmt == "bpic2013":
                team = row["org:group"].strip() or team
                meaning = BPIC.get((row["concept:name"], row["lifecycle:transition"]))
                if meaning == "queued":
                    meaning = "new" if status == "new" else "open"
            else:
                team = HELPDESK_TEAM
                meaning = HELPDESK.get(row["concept:name"])
                if meaning == "new" and timeline:
                    meaning = None  # a second "Insert ticket" changes nothing
            status = meaning or status
            timeline.append((at, (team, status)))
        states[case] = timeline
    return states


def state_at(timeline: list[tuple[datetime, Any]], at: datetime) -> Any:
    found = None
    for moment, state in timeline:
        if moment > at:
            break
        found = state
    return found


Timeline = list[tuple[datetime, tuple[Any, ...]]]


@dataclass
class Run:
    summary: ImportSummary
    wall: float
    cpu: float


def timed_import(desk: TicketDesk, preset: str, path: Path, limit_cases: int | None = None) -> Run:
    wall, cpu = time.perf_counter(), time.process_time()
    summary = import_file(desk, preset, path, limit_cases=limit_cases)
    return Run(summary, time.perf_counter() - wall, time.process_time() - cpu)


class Observer:
    """A ticket's state in a desk, now or at a version, in the shape the source's reader gives."""

    def __init__(self, desk: TicketDesk, fields: str, team_ids: bool = False) -> None:
        self.desk, self.fields, self.team_ids = desk, fields, team_ids
        self.names: dict[UUID, str] = {}

    def team(self, team_id: UUID | None) -> str | None:
        """The team's name (its id, for the desk an XES log was exported from: the log names teams by id)."""
        if team_id is None or self.team_ids:
            return None if team_id is None else str(team_id)
        if team_id not in self.names:
            self.names[team_id] = self.desk.get_team(team_id).name
        return self.names[team_id]

    def __call__(self, ticket_id: UUID, version: int | None = None) -> tuple[Any, ...]:
        ticket = self.desk.get_ticket(ticket_id, version)
        if self.fields == "team-status":
            return (self.team(ticket.team_id) or "", str(ticket.status))
        return (str(ticket.status), self.team(ticket.team_id), ticket.assignee_id, str(ticket.priority), ticket.category)


def compare(
    desk: TicketDesk, tickets: dict[str, UUID], expected: dict[str, Timeline], observe: Observer, instants: int, seed: int
) -> tuple[int, int, int]:
    """Cases whose final state matches, instants whose state matches, cases compared."""
    cases = [(case, ticket_id) for case, ticket_id in tickets.items() if case in expected]
    final_ok = sum(observe(ticket_id) == expected[case][-1][1] for case, ticket_id in cases)
    rng = random.Random(seed)
    instants_ok = 0
    for _ in range(instants):
        case, ticket_id = rng.choice(cases)
        first, last = expected[case][0][0], expected[case][-1][0]
        at = first + timedelta(seconds=rng.uniform(0, max((last - first).total_seconds(), 0.0)))
        version = version_at(desk, ticket_id, at, TimeBasis.BUSINESS)
        instants_ok += observe(ticket_id, version) == state_at(expected[case], at)
    return final_ok, instants_ok, len(cases)


def servicenow_states(path: Path) -> dict[str, Timeline]:
    from tests.importing.test_servicenow_fidelity import expected_histories

    return {
        number: [(u.at, (u.status, u.team, u.assignee, u.priority, u.category)) for u in history]
        for number, history in expected_histories(path).items()
    }


def desk_states(desk: TicketDesk, tickets: dict[str, UUID]) -> dict[str, Timeline]:
    """Each ticket's state after each of its events, keyed by the ticket id (what ``export xes`` names a case)."""
    observe = Observer(desk, "all", team_ids=True)
    timelines: dict[str, Timeline] = {}
    for ticket_id in tickets.values():
        history = desk.history(ticket_id)
        timelines[str(ticket_id)] = [(e.occurred_at, observe(ticket_id, e.originator_version)) for e in history]
    return timelines


class _Raw(Aggregate):
    @event("Happened")
    def happen(self, n: int) -> None:
        self.n = n


def raw_insert_rate(events: int, scratch: Path) -> tuple[float, float]:
    """Events per second (wall, CPU) eventsourcing itself writes to SQLite in batches (200 aggregates of
    10 events a save)."""
    app: Application[UUID] = Application(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(scratch / "raw.sqlite")})
    try:
        started, cpu, written = time.perf_counter(), time.process_time(), 0
        while written < events:
            batch = []
            for _ in range(200):
                aggregate = _Raw()
                for n in range(9):
                    aggregate.happen(n)
                batch.append(aggregate)
            app.save(*batch)
            written += 200 * 10
        return written / (time.perf_counter() - started), written / (time.process_time() - cpu)
    finally:
        app.close()


def generated_servicenow(scratch: Path, cases: int, seed: int) -> Path:
    from tests.importing.servicenow_export import generate

    return generate(scratch / "incident_history.csv", cases=cases, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("format", choices=["bpic2013", "helpdesk", "servicenow", "xes"])
    parser.add_argument("file", type=Path, nargs="?")
    parser.add_argument("--limit-cases", type=int, default=None)
    parser.add_argument("--cases", type=int, default=None, help="cases of a generated export (servicenow, xes)")
    parser.add_argument("--instants", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2013)
    args = parser.parse_args()
    if args.format in ("bpic2013", "helpdesk") and args.file is None:
        parser.error(f"{args.format} needs the log FILE")

    with tempfile.TemporaryDirectory(prefix="tf-fidelity-") as name:
        scratch = Path(name)
        desk = TicketDesk(Settings(data_dir=scratch / "desk"))
        second: TicketDesk | None = None
        try:
            if args.format in ("bpic2013", "helpdesk"):
                expected = {case: [(at, s) for at, s in timeline] for case, timeline in source_states(args.format, args.file).items()}
                run = timed_import(desk, args.format, args.file, args.limit_cases)
                measured, observe, label = desk, Observer(desk, "team-status"), "team and status"
            elif args.format == "servicenow":
                path = args.file or generated_servicenow(scratch, args.cases or 25_000, 2016)
                expected = servicenow_states(path)
                run = timed_import(desk, "servicenow", path, args.limit_cases)
                measured, observe, label = desk, Observer(desk, "all"), "status, team, assignee, priority, category"
            else:
                from ticketflow.export import export_xes

                source = import_file(desk, "servicenow", generated_servicenow(scratch, args.cases or 2_000, 2016))
                export_xes(desk, scratch / "tickets.xes")
                expected = desk_states(desk, source.tickets)
                second = TicketDesk(Settings(data_dir=scratch / "copy"))
                run = timed_import(second, "xes", scratch / "tickets.xes", args.limit_cases)
                measured, observe, label = second, Observer(second, "all"), "status, team, assignee, priority, category"
            final_ok, instants_ok, compared = compare(measured, run.summary.tickets, expected, observe, args.instants, args.seed)
        finally:
            desk.close()
            if second is not None:
                second.close()
        raw, raw_cpu = raw_insert_rate(max(run.summary.events_written, 20_000), scratch)
    summary, written = run.summary, run.summary.events_written
    total = len(expected) if args.limit_cases is None else min(args.limit_cases, len(expected))
    print(
        f"{args.format}: {len(summary.tickets):,} of {total:,} cases imported as tickets, {written:,} events;"
        f" {sum(summary.refused.values()):,} commands refused, {sum(summary.skipped.values()):,} rows or parts skipped"
    )
    print(
        f"speed: {run.wall:.1f} s wall ({written / run.wall:,.0f} events/s), {run.cpu:.1f} s CPU"
        f" ({written / run.cpu:,.0f} events/CPU-s); raw eventsourcing batch inserts here {raw:,.0f} events/s"
        f" ({raw_cpu:,.0f} events/CPU-s), ratio {written / run.wall / raw:.2f} wall, {written / run.cpu / raw_cpu:.2f} CPU;"
        f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(f"final {label} matches: {final_ok / compared:.1%} ({final_ok:,}/{compared:,})")
    print(
        f"{label} as of {args.instants:,} instants (seed {args.seed}) match:"
        f" {instants_ok / args.instants:.1%} ({instants_ok:,}/{args.instants:,})"
    )


if __name__ == "__main__":
    main()
