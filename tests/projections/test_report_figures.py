"""The dashboard's reports, however the database computes them, give the figures of a plain Python
computation over the rows: response times (count, mean, median, p90), volume per day, satisfaction
and SLA compliance, on SQLite and PostgreSQL, over a varied desk (ties, odd and even groups, a lone
ticket, tickets never replied to, hours before the ticket was opened, team-less tickets, means on a
rounding tie) and whichever way the period is read (through an index, or scanning the table)."""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from projections import reports, workflow
from projections.readside import ReadSide
from projections.sql import Db, Dialect, ts
from projections.tickets import PRIORITY_RANK, TICKETS
from projections.workflow import SLA_OUTCOMES
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.config import Settings
from ticketflow.domain.values import Priority

START = datetime(2026, 1, 1, tzinfo=UTC)
TEAMS = [str(uuid4()) for _ in range(3)]
LONE, TIE = str(uuid4()), str(uuid4())  # teams of a few chosen tickets
SINCE, UNTIL = START + timedelta(days=3, hours=16), START + timedelta(days=40, hours=16)  # mid-day bounds


def _desk_rows(rng: random.Random) -> tuple[list[dict[str, Any]], list[list[Any]]]:
    tickets: list[dict[str, Any]] = []

    def ticket(team: str | None, priority: Priority, created: datetime, replied: timedelta | None,
               solved: timedelta | None, score: int | None = None) -> None:
        row = dict.fromkeys(TICKETS.column_names)
        row.update(ticket_id=str(uuid4()), subject="s", ticket_type="incident", category="login", priority=priority.value,
                   priority_rank=PRIORITY_RANK[priority], status=rng.choice(["new", "open", "solved", "closed"]),
                   channel="email", customer_id=str(uuid4()), team_id=team, tags="[]", created_at=ts(created),
                   first_reply_at=ts(created + replied) if replied is not None else None,
                   solved_at=ts(created + solved) if solved is not None else None, updated_at=ts(created),
                   satisfaction=score, reply_count=0, note_count=0, interaction_count=0, work_minutes=0,
                   reopen_count=0, reassignment_count=0, imported=0, version=1, position=len(tickets))
        tickets.append(row)

    for _ in range(1500):
        created = START + timedelta(seconds=rng.randrange(0, 45 * 86400), microseconds=rng.randrange(0, 10**6))
        shape = rng.random()
        if shape < 0.3:  # round hours: many equal values
            replied: timedelta | None = timedelta(hours=rng.choice([1, 2, 2, 4, 8]))
        elif shape < 0.9:
            replied = timedelta(seconds=rng.uniform(-600, 5 * 86400))  # a few replies recorded "before" the ticket
        else:
            replied = None
        solved = replied + timedelta(seconds=rng.uniform(0, 9 * 86400)) if replied is not None and rng.random() < 0.7 else None
        ticket(rng.choice([*TEAMS, None]), rng.choice(list(Priority)), created, replied, solved,
               rng.choice([None, None, 1, 2, 3, 4, 5]))
    day = START + timedelta(days=10, hours=3)
    ticket(LONE, Priority.URGENT, day, timedelta(hours=3), None)  # a lone ticket in its group
    ticket(LONE, Priority.HIGH, day, None, None)  # a group never replied to
    # Means right on a rounding tie (1.0005 h and 2.0015 h: how the sum is rounded decides).
    for reply_hours, solve_hours in ((1.0, 2.001), (1.001, 2.002)):
        ticket(TIE, Priority.URGENT, day, timedelta(hours=reply_hours), timedelta(hours=solve_hours))
    outcomes = []
    for row in tickets:
        for metric, at in (("first_reply_time", row["first_reply_at"]), ("resolution_time", row["solved_at"])):
            if at is not None:
                outcome = rng.choice(["fulfilled", "fulfilled", "breached"])
                outcomes.append([row["ticket_id"], metric, "0", outcome, at, row["team_id"], row["priority"], "p", 1])
    return tickets, outcomes


@pytest.fixture
def read_side(shared_store_settings: Settings) -> Iterator[ReadSide]:
    desk = TicketDesk(shared_store_settings, clock=FakeClock(START))
    side = ReadSide(desk, ["tickets", "workflow"])
    tickets, outcomes = _desk_rows(random.Random(2026))
    for view, table, rows in (("tickets", TICKETS, [[r[c] for c in TICKETS.column_names] for r in tickets]),
                              ("workflow", SLA_OUTCOMES, outcomes)):
        store = side.stores[view]
        with store._transaction(commit=True) as cursor:  # rows written straight into the view
            Db(cursor, store.dialect, store.prefix).executemany(table.upsert(), rows)
    yield side
    side.close()
    desk.close()


# ------------------------------------------------------------------ the plain computations
def _hours_per_row(db: Db, since: datetime | None, until: datetime | None, teams: set[str] | None) -> list[dict[str, Any]]:
    """Every ticket of the period with its hours as the database subtracts them (numeric on PostgreSQL)."""
    where, params = reports._range(since, until, teams)

    def hours(column: str) -> str:
        if db.dialect is Dialect.POSTGRES:
            return f"EXTRACT(EPOCH FROM ({column}::timestamptz - created_at::timestamptz)) / 3600.0"
        return f"(julianday({column}) - julianday(created_at)) * 24.0"

    return db.all(f"SELECT team_id, priority, created_at, satisfaction, {hours('first_reply_at')} AS first_reply,"
                  f" {hours('solved_at')} AS resolution FROM {{p}}tf_tickets{where}", params)


def _plain_stats(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "mean": None, "median": None, "p90": None}
    ordered = sorted(values)
    return {"count": len(ordered), "mean": round(statistics.fmean(ordered), 3),
            "median": round(statistics.median(ordered), 3), "p90": round(ordered[math.ceil(0.9 * len(ordered)) - 1], 3)}


def plain_response_times(db: Db, since: datetime | None, until: datetime | None, teams: set[str] | None) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for row in _hours_per_row(db, since, until, teams):
        replied, solved = groups[(row["team_id"] or "", row["priority"])]
        if row["first_reply"] is not None:
            replied.append(float(row["first_reply"]))
        if row["resolution"] is not None:
            solved.append(float(row["resolution"]))
    return [{"team_id": team or None, "priority": priority, "first_reply_hours": _plain_stats(groups[(team, priority)][0]),
             "resolution_hours": _plain_stats(groups[(team, priority)][1])} for team, priority in sorted(groups)]


def _local(value: str, zone: str, width: int) -> str:
    """The first ``width`` characters of a stored UTC time as local time in ``zone``."""
    return datetime.fromisoformat(value).astimezone(ZoneInfo(zone)).isoformat()[:width]


def plain_volume(db: Db, since: datetime | None, until: datetime | None, teams: set[str] | None,
                 zone: str = "UTC") -> dict[tuple[str, Any], int]:
    """Tickets per day in ``zone`` and team."""
    return dict(Counter((_local(row["created_at"], zone, 10), row["team_id"])
                        for row in _hours_per_row(db, since, until, teams)))


def plain_satisfaction(db: Db, since: datetime | None, until: datetime | None, teams: set[str] | None) -> dict[Any, Counter[int]]:
    scores: dict[Any, Counter[int]] = defaultdict(Counter)
    for row in _hours_per_row(db, since, until, teams):
        if row["satisfaction"] is not None:
            scores[row["team_id"]][int(row["satisfaction"])] += 1
    return scores


def plain_sla(db: Db, since: str | None, until: str | None, teams: set[str] | None) -> dict[tuple[Any, ...], list[int]]:
    totals: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
    for row in db.all("SELECT * FROM {p}tf_sla_outcomes"):
        if (teams is None or row["team_id"] in teams) and (since is None or row["at"] >= since) \
                and (until is None or row["at"] < until):
            totals[(row["at"][:7], row["team_id"], row["priority"], row["metric"])][row["outcome"] == "breached"] += 1
    return totals


PERIODS = [(None, None, None), (SINCE, UNTIL, None), (SINCE, UNTIL, {TEAMS[0], TEAMS[2], LONE}),
           (None, UNTIL, {TEAMS[1]}), (SINCE, None, set())]

#: Every way a report may read the period on SQLite: as the planner likes (a small desk), scanning
#: the table, or through an index.
READS: dict[str, dict[str, Any]] = {
    "planner": {},
    "scan": {"SCAN_MIN_ROWS": 0, "SCAN_SHARE": 0.0},
    "index": {"SCAN_MIN_ROWS": 0, "SCAN_SHARE": 1.0},
}


@pytest.fixture(params=list(READS))
def reading(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in READS[request.param].items():
        monkeypatch.setattr(reports, name, value)
    return str(request.param)


Period = tuple[datetime | None, datetime | None, set[str] | None]


def each_period(read_side: ReadSide, view: str, report: Callable[[Db, Period], Any], plain: Callable[[Db, Period], Any],
                ) -> list[Any]:
    """The report and the plain computation for every period, asserted equal; the reports."""
    reported = []
    for period in PERIODS:
        got = read_side.read(view, lambda db: report(db, period))  # noqa: B023 - called at once
        assert got == read_side.read(view, lambda db: plain(db, period)), period  # noqa: B023
        reported.append(got)
    return reported


def test_response_times_equal_a_plain_computation(read_side: ReadSide, reading: str) -> None:
    reported = each_period(read_side, "tickets", lambda db, p: reports.response_times(db, *p),
                           lambda db, p: plain_response_times(db, *p))
    counts = {group[metric]["count"] for got in reported for group in got for metric in reports.METRICS}
    assert {0, 1} < counts and any(n % 2 == 0 for n in counts) and any(n > 50 and n % 2 for n in counts)


def test_a_mean_on_a_rounding_tie_is_added_up_exactly(read_side: ReadSide, monkeypatch: pytest.MonkeyPatch) -> None:
    exact: list[str] = []
    added_up = reports._exact_mean

    def counted(db: Db, column: str, *args: Any) -> float:
        exact.append(column)
        return added_up(db, column, *args)

    monkeypatch.setattr(reports, "_exact_mean", counted)
    got = read_side.read("tickets", lambda db: reports.response_times(db, None, None, {TIE}))
    assert got == read_side.read("tickets", lambda db: plain_response_times(db, None, None, {TIE}))
    (tie,) = got
    assert tie["first_reply_hours"]["count"] == 2 and tie["first_reply_hours"]["median"] in (1.0, 1.001)
    if read_side.stores["tickets"].dialect is Dialect.POSTGRES:  # SQLite adds every group up in Python
        assert set(exact) == {"first_reply_at", "solved_at"}


def test_volume_per_team_and_day_equals_a_plain_count(read_side: ReadSide, reading: str) -> None:
    def counts(db: Db, period: Period) -> dict[tuple[str, Any], int]:
        rows = reports.volume(db, "team", *period)
        assert [r["day"] for r in rows] == sorted(r["day"] for r in rows)
        return {(r["day"], r["value"]): int(r["tickets"]) for r in rows}

    each_period(read_side, "tickets", counts, lambda db, p: plain_volume(db, *p))
    priorities = read_side.read("tickets", lambda db: reports.volume(db, "priority", SINCE, UNTIL))
    assert sum(int(r["tickets"]) for r in priorities) == sum(
        read_side.read("tickets", lambda db: plain_volume(db, SINCE, UNTIL, None)).values())


def test_satisfaction_equals_a_plain_count(read_side: ReadSide, reading: str) -> None:
    def scores(db: Db, period: Period) -> dict[Any, dict[str, int]]:
        return {r["team_id"]: r["scores"] for r in reports.satisfaction(db, *period)}

    def plain(db: Db, period: Period) -> dict[Any, dict[str, int]]:
        return {team: {str(s): n[s] for s in range(1, 6)} for team, n in plain_satisfaction(db, *period).items()}

    each_period(read_side, "tickets", scores, plain)


def test_sla_compliance_equals_a_plain_count(read_side: ReadSide, reading: str) -> None:
    def outcomes(db: Db, period: Period) -> dict[tuple[Any, ...], list[int]]:
        rows = workflow.sla_compliance(db, "month", ts(period[0]), ts(period[1]), period[2])
        return {(r["period"], r["team_id"], r["priority"], r["metric"]): [r["fulfilled"], r["breached"]] for r in rows}

    each_period(read_side, "workflow", outcomes, lambda db, p: dict(plain_sla(db, ts(p[0]), ts(p[1]), p[2])))


# ------------------------------------------------------------------ days and months in the desk's time zone
#: East of UTC, a half-hour offset, and a zone with summer time (its day is 23 or 25 hours twice a year).
ZONES = ["Asia/Shanghai", "Asia/Kolkata", "America/New_York"]


@pytest.mark.parametrize("zone", ZONES)
def test_volume_counts_each_ticket_on_its_day_in_the_desks_time_zone(read_side: ReadSide, zone: str) -> None:
    def counts(db: Db, period: Period) -> dict[tuple[str, Any], int]:
        rows = reports.volume(db, "team", *period, zone=zone)
        assert [r["day"] for r in rows] == sorted(r["day"] for r in rows)
        return {(r["day"], r["value"]): int(r["tickets"]) for r in rows}

    reported = each_period(read_side, "tickets", counts, lambda db, p: plain_volume(db, *p, zone=zone))
    utc = read_side.read("tickets", lambda db: reports.volume(db, "team"))
    assert {(r["day"], r["value"]) for r in utc} != set(reported[0])  # the zone moved tickets to other days


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("period", ["day", "month"])
def test_sla_compliance_counts_each_outcome_in_its_period_in_the_desks_time_zone(
    read_side: ReadSide, zone: str, period: str
) -> None:
    width = {"day": 10, "month": 7}[period]

    def outcomes(db: Db, bounds: Period) -> dict[tuple[Any, ...], list[int]]:
        rows = workflow.sla_compliance(db, period, ts(bounds[0]), ts(bounds[1]), bounds[2], zone=zone)
        return {(r["period"], r["team_id"], r["priority"], r["metric"]): [r["fulfilled"], r["breached"]] for r in rows}

    def plain(db: Db, bounds: Period) -> dict[tuple[Any, ...], list[int]]:
        since, until, teams = ts(bounds[0]), ts(bounds[1]), bounds[2]
        totals: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0, 0])
        for row in db.all("SELECT * FROM {p}tf_sla_outcomes"):
            if (teams is None or row["team_id"] in teams) and (since is None or row["at"] >= since) \
                    and (until is None or row["at"] < until):
                key = (_local(row["at"], zone, width), row["team_id"], row["priority"], row["metric"])
                totals[key][row["outcome"] == "breached"] += 1
        return dict(totals)

    each_period(read_side, "workflow", outcomes, plain)


def test_the_data_access_report_counts_each_read_in_its_period_in_the_desks_time_zone(
    shared_store_settings: Settings,
) -> None:
    from projections.access_log import ACCESS
    from projections.compliance import data_access_report

    desk = TicketDesk(shared_store_settings, clock=FakeClock(START))
    side = ReadSide(desk, ["access"])
    customer = str(uuid4())
    # 2026-10-31 23:30 and 2026-11-01 17:00 UTC: 2026-11-01 07:30 and 2026-11-02 01:00 in Shanghai.
    reads = [[n, customer, "ops.li", "admin", '["name"]', "DSR-1", str(uuid4()), "history", at]
             for n, at in enumerate(["2026-10-31T23:30:00.000000+00:00", "2026-11-01T17:00:00.000000+00:00"], 1)]
    store = side.stores["access"]
    with store._transaction(commit=True) as cursor:
        Db(cursor, store.dialect, store.prefix).executemany(ACCESS.upsert(), reads)
    try:
        def periods(period: str, zone: str, **filters: Any) -> list[tuple[str, int]]:
            rows = side.read("access", lambda db: data_access_report(db, period, zone=zone, **filters))
            return [(r["period"], r["reads"]) for r in rows]

        assert periods("day", "UTC") == [("2026-10-31", 1), ("2026-11-01", 1)]
        assert periods("day", "Asia/Shanghai") == [("2026-11-01", 1), ("2026-11-02", 1)]
        assert periods("month", "UTC") == [("2026-10", 1), ("2026-11", 1)]
        assert periods("month", "Asia/Shanghai") == [("2026-11", 2)]
        assert periods("day", "Asia/Shanghai", by_customer=True, actor_id="ops.li") == [
            ("2026-11-01", 1), ("2026-11-02", 1)]
        assert periods("year", "America/New_York", since="2026-11-01T00:00:00.000000+00:00") == [("2026", 1)]
    finally:
        side.close()
        desk.close()


@pytest.mark.parametrize("zone", ["UTC", "Asia/Shanghai", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York",
                                  "America/St_Johns", "Europe/Berlin", "Australia/Lord_Howe", "Pacific/Chatham"])
def test_sqlites_local_time_equals_pythons_conversion_around_every_change_of_offset(zone: str) -> None:
    from projections.sql import local_time_text

    rng = random.Random(zone)
    moments = [START + timedelta(seconds=rng.randrange(0, 2 * 365 * 86400), microseconds=rng.randrange(10**6))
               for _ in range(2000)]
    local = ZoneInfo(zone)
    hour = START
    while hour < START + timedelta(days=2 * 365):  # each side of every change of offset (summer time)
        if (hour + timedelta(hours=1)).astimezone(local).utcoffset() != hour.astimezone(local).utcoffset():
            moments += [hour + timedelta(hours=1, microseconds=d) for d in (-1, 0)]
            moments += [hour + timedelta(minutes=m) for m in (0, 15, 30, 45)]
        hour += timedelta(hours=1)
    for moment in moments:
        stored = ts(moment)
        assert stored is not None
        for width in (4, 7, 10, 13, 16, 19):
            assert local_time_text(stored, zone, width) == moment.astimezone(local).isoformat()[:width], (stored, width)
