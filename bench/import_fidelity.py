"""How faithfully ``ticketflow import`` carries a real log: final team and state as of past instants.

    python bench/import_fidelity.py bpic2013 ../shared/data/bpic2013_incidents.csv [--limit-cases N]
                                    [--instants 1000] [--seed 2013]

Imports the log into a scratch SQLite store, then compares the desk with the source, read by this
script's own small reader (not the importer's code):

* **final team**: for every case, the team of the ticket now against the team of the case's last row
  (``org:group``; the helpdesk log has one team for everything);
* **final status**: the ticket's status now against the status the source's last status row says;
* **as of instants**: ``--instants`` (case, instant) pairs drawn with a fixed seed, each instant
  uniformly between the case's first and last row; the desk answers with its time travel on business
  time (``version_at(..., BUSINESS)``), the source with its rows up to that instant; both team and
  status must match.

The source statuses (the meaning of each activity, as the issue and the presets (ticketflow/importing/presets/) state it):
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
import random
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from uuid import UUID

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow.importing import import_file
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
        team, status, timeline = "", "new", []
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


def state_at(timeline: list[tuple[datetime, State]], at: datetime) -> State | None:
    found = None
    for moment, state in timeline:
        if moment > at:
            break
        found = state
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("format", choices=["bpic2013", "helpdesk"])
    parser.add_argument("file", type=Path)
    parser.add_argument("--limit-cases", type=int, default=None)
    parser.add_argument("--instants", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=2013)
    args = parser.parse_args()

    expected = source_states(args.format, args.file)
    with tempfile.TemporaryDirectory(prefix="tf-fidelity-") as scratch:
        desk = TicketDesk(Settings(data_dir=Path(scratch)))
        try:
            started = time.perf_counter()
            summary = import_file(desk, args.format, args.file, limit_cases=args.limit_cases)
            elapsed = time.perf_counter() - started
            names: dict[UUID | None, str] = {None: ""}

            def team_name(team_id: UUID | None) -> str:
                if team_id not in names:
                    names[team_id] = desk.get_team(team_id).name  # type: ignore[arg-type]
                return names[team_id]

            def desk_state(ticket_id: UUID, version: int | None = None) -> State:
                ticket = desk.get_ticket(ticket_id, version)
                return team_name(ticket.team_id), str(ticket.status)

            cases = list(summary.tickets.items())
            team_ok = status_ok = 0
            for case, ticket_id in cases:
                team, status = desk_state(ticket_id)
                want_team, want_status = expected[case][-1][1]
                team_ok += team == want_team
                status_ok += status == want_status
            rng = random.Random(args.seed)
            instants_ok = 0
            for _ in range(args.instants):
                case, ticket_id = rng.choice(cases)
                first, last = expected[case][0][0], expected[case][-1][0]
                at = first + timedelta(seconds=rng.uniform(0, max((last - first).total_seconds(), 0.0)))
                version = version_at(desk, ticket_id, at, TimeBasis.BUSINESS)
                instants_ok += desk_state(ticket_id, version) == state_at(expected[case], at)
        finally:
            desk.close()
    missing = len(expected) if args.limit_cases is None else args.limit_cases
    print(
        f"{args.format}: {len(cases):,} of {missing:,} cases imported as tickets, {summary.events_written:,} events"
        f" in {elapsed:.0f} s; {sum(summary.refused.values()):,} commands refused,"
        f" {sum(summary.skipped.values()):,} rows or parts skipped"
    )
    print(f"final team matches:   {team_ok / len(cases):.1%} ({team_ok:,}/{len(cases):,})")
    print(f"final status matches: {status_ok / len(cases):.1%} ({status_ok:,}/{len(cases):,})")
    print(
        f"team and status as of {args.instants:,} instants (seed {args.seed}) match:"
        f" {instants_ok / args.instants:.1%} ({instants_ok:,}/{args.instants:,})"
    )


if __name__ == "__main__":
    main()
