"""The dashboard over a whole year shows the figures of a plain computation over the tickets, for a
supervisor (their team) and an admin (every team), read as a long period is read on a large desk
(scanning the view rather than going through its index). Days are the desk's (Asia/Shanghai)."""

from __future__ import annotations

import csv
import io
import random
from datetime import UTC, date, datetime, time, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from projections import reports
from projections.sql import Db, ts
from projections.tickets import PRIORITY_RANK, TICKETS
from tests.console.conftest import Console
from tests.projections.test_report_figures import plain_response_times, plain_volume
from ticketflow.domain.values import Priority

ZONE = ZoneInfo("Asia/Shanghai")


def _seed_year(console: Console, today: date) -> None:
    rng = random.Random(15)
    teams = [str(console.seeded.team_a), str(console.seeded.team_b)]
    rows = []
    for i in range(800):
        created = datetime.combine(today, time(12), ZONE) - timedelta(minutes=rng.randrange(0, 400 * 24 * 60))
        replied = created + timedelta(seconds=rng.randrange(60, 4 * 86400)) if rng.random() < 0.9 else None
        solved = replied + timedelta(hours=rng.choice([1, 2, 3, 5.5])) if replied and rng.random() < 0.6 else None
        priority = rng.choice(list(Priority))
        row = dict.fromkeys(TICKETS.column_names)
        row.update(ticket_id=str(uuid4()), subject="s", ticket_type="incident", category="login", priority=priority.value,
                   priority_rank=PRIORITY_RANK[priority], status="solved" if solved else "open", channel="email",
                   customer_id=str(uuid4()), team_id=teams[i % 2], tags="[]", created_at=ts(created),
                   first_reply_at=ts(replied), solved_at=ts(solved), updated_at=ts(created), reply_count=0,
                   note_count=0, interaction_count=0, work_minutes=0, reopen_count=0, reassignment_count=0,
                   imported=0, version=1, position=10**6 + i)
        rows.append([row[c] for c in TICKETS.column_names])
    store = console.client.app.state.services.read_side.stores["tickets"]  # type: ignore[attr-defined]
    with store._transaction(commit=True) as cursor:  # rows written straight into the view
        Db(cursor, store.dialect, store.prefix).executemany(TICKETS.upsert(), rows)


def _csv(console: Console, chart: str, query: str) -> list[list[str]]:
    response = console.client.get(f"/dashboard/{chart}.csv?{query}")
    assert response.status_code == 200, response.text[:300]
    return list(csv.reader(io.StringIO(response.text.lstrip("\ufeff"))))[1:]


@pytest.mark.parametrize("who", ["supervisor_a", "admin"])
def test_a_year_of_the_dashboard_equals_a_plain_computation(console: Console, who: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reports, "SCAN_MIN_ROWS", 0)  # read as on a large desk
    today = datetime.now(UTC).astimezone(ZONE).date()
    _seed_year(console, today)
    since = today - timedelta(days=364)
    query = f"since={since}&until={today}"
    console.sign_in(who)
    assert console.client.get(f"/dashboard?{query}").status_code == 200
    start, end = datetime.combine(since, time.min, ZONE), datetime.combine(today + timedelta(days=1), time.min, ZONE)
    teams = {str(console.seeded.team_a)} if who == "supervisor_a" else None
    read = console.client.app.state.services.read_side.read  # type: ignore[attr-defined]

    plain = read("tickets", lambda db: plain_response_times(db, start, end, teams))
    shown = _csv(console, "response_times", query)
    assert [[int(r[2]), float(r[3]) if r[3] else None, int(r[4]), float(r[5]) if r[5] else None] for r in shown] == [
        [g["first_reply_hours"]["count"], g["first_reply_hours"]["median"], g["resolution_hours"]["count"],
         g["resolution_hours"]["median"]] for g in plain]
    assert sum(g["first_reply_hours"]["count"] for g in plain) > 300

    volume: dict[str, int] = {}
    for (day, _team), n in read("tickets", lambda db: plain_volume(db, start, end, teams, ZONE.key)).items():
        volume[day] = volume.get(day, 0) + n
    shown_volume: dict[str, int] = {}
    for day, _team, n in _csv(console, "volume", query):
        shown_volume[day] = shown_volume.get(day, 0) + int(n)
    assert shown_volume == volume and len(volume) > 150
