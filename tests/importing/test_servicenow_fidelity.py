"""A realistic ServiceNow-style export imports faithfully through the ``servicenow`` preset.

The export is generated (``servicenow_export.py``, fixed seed) with the quirks of real ones, and
the test first checks that each quirk really occurs in the file. The expected states are worked
out here from the CSV rows by a small reader of its own (not the importer's code): a case's rows
ordered by ``sys_mod_count``, its state as of an instant the last row updated at or before it.
Then 100% of final states (status, team, assignee, priority, category) and 100% of the states as
of 1,000 past instants (drawn with a fixed seed, on business time) must match, and the source's
``reopen_count`` / ``reassignment_count`` must be reproducible from the events, and every ticket
must keep the export's final counters as ``source_counters``.
"""

from __future__ import annotations

import csv
import random
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

from tests.importing.servicenow_export import generate
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.config import Settings
from ticketflow.domain import Ticket
from ticketflow.importing import import_file
from ticketflow.timetravel import TimeBasis, version_at

INSTANTS = 1_000
STATUS = {
    "New": "new", "Active": "open", "Awaiting User Info": "pending", "Awaiting Evidence": "pending",
    "Awaiting Vendor": "on_hold", "Awaiting Problem": "on_hold", "Resolved": "solved", "Closed": "closed",
}
PRIORITY = {"1 - Critical": "urgent", "2 - High": "high", "3 - Moderate": "normal", "4 - Low": "low"}


@dataclass(frozen=True)
class Expected:
    at: datetime
    status: str
    team: str | None
    assignee: str | None
    priority: str
    category: str
    reopens: int
    reassignments: int


def when(text: str) -> datetime:
    """``dd/mm/yyyy hh:mm``, day first, in UTC."""
    day, month, year, hour, minute = (int(part) for part in re.split(r"[/ :]", text))
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def name(text: str) -> str:
    """A person or category as ticketflow names them: spaces become underscores."""
    return text.replace(" ", "_")


def expected_histories(path: Path) -> dict[str, list[Expected]]:
    rows: dict[str, list[dict[str, str]]] = defaultdict(list)
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            rows[row["number"]].append(row)
    histories = {}
    for number, updates in rows.items():
        updates.sort(key=lambda r: int(r["sys_mod_count"]))
        histories[number] = [
            Expected(
                when(r["sys_updated_at"]), STATUS[r["incident_state"]],
                None if r["assignment_group"] == "?" else r["assignment_group"],
                None if r["assigned_to"] == "?" else name(r["assigned_to"]), PRIORITY[r["priority"]],
                name(r["category"]), int(r["reopen_count"]), int(r["reassignment_count"]),
            )
            for r in updates
        ]
    return histories


def state_at(history: list[Expected], instant: datetime) -> Expected:
    return [update for update in history if update.at <= instant][-1]


def test_a_servicenow_export_with_real_quirks_imports_with_every_state_matching(
    shared_store_settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    path = generate(tmp_path / "incident_history.csv")
    histories = expected_histories(path)
    with path.open(encoding="utf-8", newline="") as handle:
        file_rows = list(csv.DictReader(handle))
    by_case: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in file_rows:
        by_case[row["number"]].append(row)

    # each quirk really occurs in the generated file
    assert any(r["assigned_to"] != "?" and r["assignment_group"] == "?" for r in file_rows), "assignee before group"
    assert any(a.team and not b.team for h in histories.values() for a, b in pairwise(h)), "cleared group"
    assert any(a.assignee and not b.assignee for h in histories.values() for a, b in pairwise(h)), "cleared assignee"
    assert any(u.status == "new" and u.assignee for h in histories.values() for u in h), "New with an assignee"
    assert any(
        a.status == "closed" and b.status == "open" for h in histories.values() for a, b in pairwise(h)
    ), "reopen after close"
    states = {r["incident_state"] for r in file_rows}
    assert {"Awaiting User Info", "Awaiting Evidence", "Awaiting Vendor", "Awaiting Problem"} <= states
    assert any(int(r["sys_updated_at"][:2]) > 12 for r in file_rows), "day-first times (a day past 12)"
    assert any(
        int(b["sys_mod_count"]) - int(a["sys_mod_count"]) > 1
        for rows in by_case.values()
        for a, b in pairwise(sorted(rows, key=lambda r: int(r["sys_mod_count"])))
    ), "gaps in sys_mod_count"
    assert any(min(int(r["sys_mod_count"]) for r in rows) > 0 for rows in by_case.values()), "export starts late"
    follows = ("incident_state", "assignment_group", "assigned_to", "priority", "category")
    assert any(
        all(a[c] == b[c] for c in follows)
        for rows in by_case.values()
        for a, b in pairwise(sorted(rows, key=lambda r: int(r["sys_mod_count"])))
    ), "rows whose state did not change"
    assert any(
        int(rows[0]["sys_mod_count"]) > int(rows[-1]["sys_mod_count"]) for rows in by_case.values()
    ), "rows newest first"
    assert any(a.at == b.at and a != b for h in histories.values() for a, b in pairwise(h)), "same-minute updates"

    desk = TicketDesk(shared_store_settings, clock=clock)
    try:
        summary = import_file(desk, "servicenow", path)
        assert summary.refused == {} and summary.rejected_rows == 0
        assert set(summary.tickets) == set(histories)
        teams: dict[object, str] = {}

        def team_name(team_id: object) -> str | None:
            if team_id is None:
                return None
            if team_id not in teams:
                teams[team_id] = desk.get_team(team_id).name  # type: ignore[arg-type]
            return teams[team_id]

        def observed(ticket: Ticket) -> tuple[str, str | None, str | None, str, str]:
            return (str(ticket.status), team_name(ticket.team_id), ticket.assignee_id, str(ticket.priority), ticket.category)

        def wanted(update: Expected) -> tuple[str, str | None, str | None, str, str]:
            return (update.status, update.team, update.assignee, update.priority, update.category)

        # 100% of final states
        finals = {number: desk.get_ticket(ticket_id) for number, ticket_id in summary.tickets.items()}
        final_mismatches = [
            number for number, history in histories.items() if observed(finals[number]) != wanted(history[-1])
        ]
        assert final_mismatches == []

        # 100% of the states as of 1,000 past instants, business time
        rng = random.Random(1000)
        numbers = sorted(histories)
        checked = []
        for _ in range(INSTANTS):
            number = rng.choice(numbers)
            history = histories[number]
            span = (history[-1].at - history[0].at) + timedelta(hours=6)
            instant = history[0].at + timedelta(seconds=rng.randrange(1, int(span.total_seconds())) // 60 * 60 + 30)
            ticket_id = summary.tickets[number]
            ticket = desk.get_ticket(ticket_id, version_at(desk, ticket_id, instant, TimeBasis.BUSINESS))
            checked.append(observed(ticket) == wanted(state_at(history, instant)))
        assert len(checked) == INSTANTS and all(checked), f"{checked.count(False)} of {INSTANTS} instants differ"

        # the source's counters, reproduced from the events (over the exported part of each history)
        for number, history in histories.items():
            events = desk.history(summary.tickets[number])
            reopens = sum(isinstance(e, Ticket.Reopened) for e in events)
            moves = sum(isinstance(e, Ticket.Transferred) and e.from_team_id is not None for e in events)
            assert reopens == history[-1].reopens - history[0].reopens, number
            assert moves == history[-1].reassignments - history[0].reassignments, number

        # ... and kept as they are: every ticket ends with the export's final counters
        counters = ("sys_mod_count", "reassignment_count", "reopen_count")
        kept_mismatches = [
            number for number, rows in by_case.items()
            if finals[number].source_counters
            != {c: int(max(rows, key=lambda r: int(r["sys_mod_count"]))[c]) for c in counters}
        ]
        assert kept_mismatches == []
    finally:
        desk.close()
