"""A real log replayed through the importer: its SLA results match a computation straight from the CSV.

A sample of the BPI Challenge 2013 incident log (``../shared/data/bpic2013_incidents.csv``): every
12th case in order of first appearance, spread over the whole file (its first cases are all
long-running incidents still open in 2012, a one-sided sample), is written with all its rows, in
file order, to a small CSV and imported into a fresh desk. Every imported ticket's resolution
clock is then measured with :func:`ticketflow.sla.measure.measure` under a simple policy (one resolution target for every priority), and compared per case with an
independent computation written here from the CSV rows alone, following the row meanings the
importer documents (the ``bpic2013`` preset, ``ticketflow/importing/presets/bpic2013.toml``, and
``ticketflow/importing/engine.py``):

* the clock starts at the case's first row and stops at its resolution: the first
  ``Completed/Resolved``, ``Completed/Closed``, ``Completed/Cancelled`` or ``Completed/In Call``
  row (completed in the call: the importer keeps the source's "Completed" as a fact, and any
  work after it as a reopen);
* ``Accepted/Wait - User`` and ``- Customer`` pend the incident, ``Accepted/Wait``,
  ``- Implementation`` and ``- Vendor`` put it on hold: the clock pauses;
* any ``Accepted/...`` work row or ``Queued`` row resumes it;
* ``Unmatched`` rows change nothing.

Only cases with unambiguous semantics are compared: resolved in the log and never worked again
after their resolution (no reopen). The others are counted as skipped, by reason.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import SHARED_DATA
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow.importing import ImportSummary, import_file
from ticketflow.sla.calendar import BusinessCalendar, weekly_hours
from ticketflow.sla.measure import Measurement, Metric, State, Target, measure

pytestmark = pytest.mark.shared_data

LOG = SHARED_DATA / "bpic2013_incidents.csv"
#: Every STRIDE-th case of the log's 7,554: 630 cases, enough to compare (> 300), imported in ~5 s.
STRIDE = 12
SAMPLE_CASES = 630
MIN_COMPARED = 300

CALENDAR_TARGET = timedelta(days=5)  # around the clock
BUSINESS_TARGET = timedelta(hours=30)  # three working days of Brussels office hours
BRUSSELS = ZoneInfo("Europe/Brussels")
OFFICE_OPEN, OFFICE_CLOSE = time(8), time(18)  # Monday to Friday
OFFICE = BusinessCalendar("Europe/Brussels", weekly_hours("mon-fri", "08:00", "18:00"))

PENDING_WAITS = {"Wait - User", "Wait - Customer"}
HOLD_WAITS = {"Wait", "Wait - Implementation", "Wait - Vendor"}
FINISHING = {"Resolved", "Closed", "Cancelled", "In Call"}


# ------------------------------------------------------------- the independent model
Interval = tuple[datetime, datetime]
Spent = Callable[[datetime, datetime], timedelta]  # time counted between two instants


@dataclass(frozen=True)
class Expected:
    """A case's resolution clock from its CSV rows: the intervals it ran, or why it is not compared."""

    running: tuple[Interval, ...] = ()
    waiting: tuple[Interval, ...] = ()  # pending or on hold before the resolution
    skipped: str | None = None

    @staticmethod
    def total(intervals: tuple[Interval, ...], spent: Spent) -> timedelta:
        return sum((spent(a, b) for a, b in intervals), timedelta(0))


def when(record: dict[str, str]) -> datetime:
    return datetime.fromisoformat(record["time:timestamp"]).astimezone(UTC)


def finishes(record: dict[str, str]) -> bool:
    return record["concept:name"] == "Completed" and record["lifecycle:transition"] in FINISHING


def expected_clock(records: list[dict[str, str]]) -> Expected:
    """Walk a case's rows (in time order, ties in file order) with the documented semantics."""
    ordered = sorted(records, key=when)
    running: list[Interval] = []
    waiting: list[Interval] = []
    state, since = "running", when(ordered[0])  # the ticket opens at the first row
    for i, record in enumerate(ordered):
        status, sub, at = record["concept:name"], record["lifecycle:transition"], when(record)
        if status == "Unmatched":
            continue
        later = [r for r in ordered[i + 1 :] if r["concept:name"] != "Unmatched"]
        if finishes(record):
            (running if state == "running" else waiting).append((since, at))
            if not all(finishes(r) for r in later):  # worked again after its resolution
                return Expected(skipped="worked again after its resolution (reopened)")
            return Expected(tuple(running), tuple(waiting))
        if status == "Accepted" and sub in PENDING_WAITS | HOLD_WAITS:
            if state == "running":
                running.append((since, at))
                since = at
            state = "pending" if sub in PENDING_WAITS else "on hold"
            continue
        else:  # Accepted/In Progress, Accepted/Assigned, Queued/Awaiting Assignment
            resumes = state != "running"
        if resumes:
            waiting.append((since, at))
            state, since = "running", at
    return Expected(skipped="not resolved in the log")


def around_the_clock(a: datetime, b: datetime) -> timedelta:
    return b - a


def brussels_office_time(a: datetime, b: datetime) -> timedelta:
    """Time between ``a`` and ``b`` within Monday-Friday 08:00-18:00, Brussels local time."""
    total = timedelta(0)
    day = a.astimezone(BRUSSELS).date()
    while day <= b.astimezone(BRUSSELS).date():
        if day.weekday() < 5:
            opens = datetime.combine(day, OFFICE_OPEN, BRUSSELS).astimezone(UTC)
            closes = datetime.combine(day, OFFICE_CLOSE, BRUSSELS).astimezone(UTC)
            start, end = max(a, opens), min(b, closes)
            if end > start:
                total += end - start
        day += timedelta(days=1)
    return total


# ------------------------------------------------------------------------ the replay
@dataclass(frozen=True)
class Replay:
    desk: TicketDesk
    summary: ImportSummary
    cases: dict[str, list[dict[str, str]]]  # case id -> its rows, in file order
    now: datetime


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replay]:
    """Every STRIDE-th case of the real log, all its rows, imported into a fresh desk."""
    if not LOG.is_file():
        pytest.skip(f"the real service-desk logs are not here: {LOG} is absent (a fresh machine)")
    seen: dict[str, int] = {}  # case id -> its rank by first appearance
    cases: dict[str, list[dict[str, str]]] = {}
    with LOG.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or [])
        for record in reader:
            case = record["case:concept:name"]
            if seen.setdefault(case, len(seen)) % STRIDE == 0:
                cases.setdefault(case, []).append(record)
    subset = tmp_path_factory.mktemp("bpic2013") / "bpic2013_subset.csv"
    with subset.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for records in cases.values():
            writer.writerows(records)
    desk = TicketDesk(Settings(database_url="memory://"))
    try:
        summary = import_file(desk, "bpic2013", subset)
        latest = max(when(r) for records in cases.values() for r in records)
        yield Replay(desk, summary, cases, now=latest + timedelta(days=1))
    finally:
        desk.close()


def resolution(replay: Replay, case: str, target: Target, calendar: BusinessCalendar) -> Measurement:
    events = replay.desk.history(replay.summary.tickets[case])
    found = measure(events, lambda priority: {Metric.RESOLUTION: target}, calendar, replay.now)
    (clock,) = [m for m in found if m.metric is Metric.RESOLUTION]
    return clock


def test_the_sample_imports_every_case_without_a_refusal(replay: Replay) -> None:
    assert replay.summary.refused == {}, replay.summary.refusals
    assert list(replay.summary.tickets) == list(replay.cases)
    assert len(replay.cases) == SAMPLE_CASES


@pytest.mark.parametrize(
    ("target", "calendar", "spent"),
    [
        # around the clock even though the desk's calendar is the office's: the target says so
        pytest.param(Target(CALENDAR_TARGET, False), OFFICE, around_the_clock, id="calendar-5d"),
        pytest.param(Target(BUSINESS_TARGET, True), OFFICE, brussels_office_time, id="brussels-30h"),
    ],
)
def test_resolution_results_match_an_independent_computation_from_the_csv(
    replay: Replay, target: Target, calendar: BusinessCalendar, spent: Spent
) -> None:
    skipped: Counter[str] = Counter()
    outcomes: Counter[State] = Counter()
    disagreements: list[str] = []
    decided_by_pauses = 0
    for case, records in replay.cases.items():
        expected = expected_clock(records)
        if expected.skipped is not None:
            skipped[expected.skipped] += 1
            continue
        elapsed = Expected.total(expected.running, spent)
        breached = elapsed > target.duration
        measured = resolution(replay, case, target, calendar)
        outcomes[measured.state] += 1
        agrees = measured.state is (State.BREACHED if breached else State.FULFILLED)
        if not agrees or abs(measured.elapsed - elapsed) > timedelta(seconds=1):
            disagreements.append(f"{case}: measured {measured.state} {measured.elapsed}, expected {elapsed}")
        if not breached and elapsed + Expected.total(expected.waiting, spent) > target.duration:
            decided_by_pauses += 1  # without the pauses it would have breached
    compared = sum(outcomes.values())
    print(
        f"\n{target.duration} ({'business' if target.business_hours else 'calendar'} hours): "
        f"{compared} cases compared, {dict(skipped)} skipped; "
        f"{outcomes[State.FULFILLED]} fulfilled, {outcomes[State.BREACHED]} breached; "
        f"{decided_by_pauses} fulfilled only thanks to the pauses"
    )
    assert disagreements == [], f"{len(disagreements)} of {compared} cases disagree:\n" + "\n".join(
        disagreements[:20]
    )
    assert compared + sum(skipped.values()) == SAMPLE_CASES
    assert compared > MIN_COMPARED
    assert set(outcomes) == {State.FULFILLED, State.BREACHED}
    assert min(outcomes.values()) > 50
    assert decided_by_pauses > 0  # the pauses matter to the outcome, so the comparison tests them
