"""Lists, queues and reports as of a business instant, on a desk whose history was imported.

Imported history happened years before the desk recorded it: as of a 2016 instant on business time
the queue and the reports show the tickets as they stood then; on recorded time the desk held
nothing then, and the answer says so. The expected answers are computed here, in plain Python,
from the facts the test imported (not from any view), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid5

import pytest

from tests.api.conftest import Api, build_api
from ticketflow.commands import ImportedFact, OpenTicket, RecordImportedFacts
from ticketflow.commands.imported import FactKind
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Priority, Role, Status
from ticketflow.metadata import Caller

IMPORTER = Caller("import:servicenow", Role.SYSTEM, Channel.IMPORT)
START = datetime(2016, 1, 4, 8, 0, tzinfo=UTC)
NAMESPACE = UUID("0b5e3f0e-52a4-4d4c-8c1e-7d7d2a4f1c90")
PEOPLE = ("Frederic", "李伟", "emma.clark", None)
CATEGORIES = ("网络", "software", "hardware")
LATER_STATUSES = (Status.OPEN, Status.PENDING, Status.ON_HOLD, Status.SOLVED, Status.CLOSED)


@dataclass
class Case:
    """One imported ticket: when it was opened, its opening state, and its facts in time order."""

    ticket_id: UUID
    opened_at: datetime
    team_id: UUID | None
    category: str
    facts: list[ImportedFact] = field(default_factory=list)

    def state_at(self, at: datetime) -> dict[str, Any] | None:
        """The ticket's fields as of ``at`` by business time (None: not opened yet)."""
        if self.opened_at > at:
            return None
        state: dict[str, Any] = {"status": "new", "team_id": self.team_id, "assignee_id": None,
                                 "priority": "normal", "category": self.category}
        for fact in self.facts:
            if fact.occurred_at > at:
                break
            if fact.kind == "status":
                state["status"] = str(fact.status)
            elif fact.kind == "placement":
                state["team_id"], state["assignee_id"] = fact.team_id, fact.assignee_id
            elif fact.kind == "priority":
                state["priority"] = str(fact.priority)
            elif fact.kind == "category":
                state["category"] = fact.category
        return {**state, "team_id": str(state["team_id"]) if state["team_id"] else None}


def import_history(api: Api, tickets: int = 12, seed: int = 2016) -> list[Case]:
    """Import ``tickets`` tickets with random (seeded) histories in early 2016, through the application."""
    rng = random.Random(seed)
    teams = (api.team_a, api.team_b, None)
    cases = []
    for n in range(tickets):
        opened_at = START + timedelta(hours=rng.randrange(0, 24 * 20))
        team_id, category = rng.choice(teams[:2]), rng.choice(CATEGORIES)
        ticket_id = api.desk.open_ticket(OpenTicket(
            subject=f"INC{n:07d} 打印机无法连接", requester_id=api.customer, team_id=team_id, category=category,
            occurred_at=opened_at), IMPORTER).object_id
        case = Case(ticket_id, opened_at, team_id, category)
        when, status = opened_at, Status.NEW
        for m in range(rng.randrange(2, 8)):
            when += timedelta(hours=rng.randrange(1, 24 * 6), minutes=rng.randrange(60))
            kind = rng.choice((FactKind.STATUS, FactKind.STATUS, FactKind.PLACEMENT, FactKind.PRIORITY, FactKind.CATEGORY))
            values: dict[str, Any] = {}
            if kind == "status":
                status = Status.OPEN if status is Status.CLOSED else rng.choice(LATER_STATUSES)
                values["status"] = status
            elif kind == "placement":
                values = {"team_id": rng.choice(teams), "assignee_id": rng.choice(PEOPLE)}
            elif kind == "priority":
                values["priority"] = rng.choice(list(Priority))
            else:
                values["category"] = rng.choice(CATEGORIES)
            case.facts.append(ImportedFact(fact_id=uuid5(NAMESPACE, f"{n}/{m}"), kind=kind, occurred_at=when, **values))
        api.desk.handle(RecordImportedFacts(ticket_id=ticket_id, facts=case.facts), IMPORTER)
        cases.append(case)
    api.caught_up()
    return cases


def _api(request: pytest.FixtureRequest, tmp_path: Path, **extra: Any) -> Iterator[Api]:
    extra = {"rate_limit_burst": 10_000, "rate_limit_per_second": 10_000, "automation": False, **extra}
    if request.param == "sqlite":
        settings = Settings(data_dir=tmp_path / "data", **extra)
    else:
        settings = Settings(database_url=request.getfixturevalue("postgres_url"), embedded_projections=True, **extra)
    yield from build_api(settings)


STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=STORES)
def desk_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """A desk with the default basis (recorded)."""
    yield from _api(request, tmp_path)


@pytest.fixture(params=STORES)
def business_api(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    """A desk whose as-of reads go by business time unless they say otherwise (TICKETFLOW_AS_OF_BASIS=business)."""
    yield from _api(request, tmp_path, as_of_basis="business")


def _instants(cases: list[Case], count: int = 6, seed: int = 7) -> list[datetime]:
    """Instants spread over the imported history (fixed seed), to the second."""
    rng = random.Random(seed)
    last = max(f.occurred_at for c in cases for f in c.facts)
    span = int((last - START).total_seconds())
    return sorted(START + timedelta(seconds=rng.randrange(span)) for _ in range(count))


def _queue(api: Api, **params: Any) -> tuple[dict[str, dict[str, Any]], Any]:
    response = api.get("admin", "/api/v1/tickets", params={"limit": 200, **params})
    assert response.status_code == 200, response.text
    fields = ("status", "team_id", "assignee_id", "priority", "category")
    return {row["ticket_id"]: {f: row[f] for f in fields} for row in response.json()["items"]}, response


def _expected_queue(cases: list[Case], at: datetime) -> dict[str, dict[str, Any]]:
    return {str(c.ticket_id): state for c in cases if (state := c.state_at(at)) is not None}


def _report(api: Api, path: str, **params: Any) -> Any:
    response = api.get("admin", path, params=params)
    assert response.status_code == 200, response.text
    return response


def test_the_queue_as_of_a_business_instant_is_the_imported_tickets_as_they_stood_then(desk_api: Api) -> None:
    cases = import_history(desk_api)
    for at in _instants(cases):
        queue, response = _queue(desk_api, as_of=at.isoformat(), as_of_basis="business")
        assert queue == _expected_queue(cases, at), at
        assert response.headers["X-As-Of-Basis"] == "business"
        assert (response.json()["note"] is None) == bool(queue)  # a note only when nothing had happened yet
    # Filters apply to the tickets as they were then.
    at = _instants(cases)[-1]
    pending, _ = _queue(desk_api, as_of=at.isoformat(), as_of_basis="business", status="pending")
    assert set(pending) == {t for t, s in _expected_queue(cases, at).items() if s["status"] == "pending"}


def test_on_recorded_time_the_desk_held_nothing_in_2016_and_the_answer_says_so(desk_api: Api) -> None:
    cases = import_history(desk_api)
    at = _instants(cases)[2]
    assert _expected_queue(cases, at)  # on business time there is something to show
    queue, response = _queue(desk_api, as_of=at.isoformat())  # the desk's default basis: recorded
    assert queue == {} and response.headers["X-As-Of-Basis"] == "recorded"
    note = response.json()["note"]
    assert note is not None and f"nothing at or before {at.isoformat()} on recorded time" in note
    assert "as_of_basis=business" in note and response.headers["X-As-Of-Note"] == note
    backlog = _report(desk_api, "/api/v1/reports/backlog", as_of=at.isoformat(), as_of_basis="recorded")
    assert backlog.json() == [] and "nothing at or before" in backlog.headers["X-As-Of-Note"]
    # Recorded now: every ticket in its final state (the other answer).
    now = desk_api.recorded_now()
    queue, response = _queue(desk_api, as_of=now.isoformat(), as_of_basis="recorded")
    assert queue == _expected_queue(cases, now) and response.json()["note"] is None


def test_before_any_imported_history_the_business_answer_says_where_it_begins(desk_api: Api) -> None:
    cases = import_history(desk_api)
    before = START - timedelta(days=400)
    queue, response = _queue(desk_api, as_of=before.isoformat(), as_of_basis="business")
    first = min(c.opened_at for c in cases)
    assert queue == {}
    assert response.json()["note"].startswith(f"the log holds nothing at or before {before.isoformat()} on business time")
    assert first.isoformat() in response.json()["note"]


def test_the_backlog_and_volume_as_of_a_business_instant_count_the_imported_facts(desk_api: Api) -> None:
    cases = import_history(desk_api)
    for at in _instants(cases, count=4, seed=11):
        states = _expected_queue(cases, at)
        backlog = _report(desk_api, "/api/v1/reports/backlog", as_of=at.isoformat(), as_of_basis="business").json()
        assert {(r["status"], r["team_id"]): r["tickets"] for r in backlog} == dict(
            Counter((s["status"], s["team_id"]) for s in states.values()))
        opened = {str(c.ticket_id): c.opened_at.date().isoformat() for c in cases}
        volume = _report(desk_api, "/api/v1/reports/volume", by="category", as_of=at.isoformat(),
                         as_of_basis="business").json()
        assert {(r["day"], r["value"]): r["tickets"] for r in volume} == dict(
            Counter((opened[t], s["category"]) for t, s in states.items()))


def test_every_report_takes_the_basis_and_says_which_it_went_by(desk_api: Api) -> None:
    import_history(desk_api, tickets=3)
    at = (START + timedelta(days=40)).isoformat()
    for path in ("backlog", "volume", "response-times", "satisfaction", "sla"):
        for basis in ("business", "recorded"):
            response = _report(desk_api, f"/api/v1/reports/{path}", as_of=at, as_of_basis=basis)
            assert response.headers["X-As-Of-Basis"] == basis
            assert ("X-As-Of-Note" in response.headers) == (basis == "recorded"), (path, basis)
    refused = desk_api.get("admin", "/api/v1/reports/backlog", params={"as_of": at, "as_of_basis": "yesterday"})
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json")


def test_a_desk_set_to_business_time_reads_imported_history_by_default(business_api: Api) -> None:
    cases = import_history(business_api)
    case = cases[0]
    at = case.facts[0].occurred_at
    ticket = business_api.get("admin", f"/api/v1/tickets/{case.ticket_id}", params={"as_of": at.isoformat()})
    assert ticket.status_code == 200, ticket.text
    expected = case.state_at(at)
    assert expected is not None
    assert {k: ticket.json()[k] for k in expected} == expected
    queue, response = _queue(business_api, as_of=at.isoformat())
    assert queue == _expected_queue(cases, at) and response.headers["X-As-Of-Basis"] == "business"
    # The query parameter overrides the desk's setting.
    queue, response = _queue(business_api, as_of=at.isoformat(), as_of_basis="recorded")
    assert queue == {} and response.headers["X-As-Of-Basis"] == "recorded"


def test_a_ticket_before_it_existed_on_the_chosen_basis_is_404_saying_when_it_began(desk_api: Api) -> None:
    case = import_history(desk_api, tickets=2)[1]
    path = f"/api/v1/tickets/{case.ticket_id}"
    before = case.opened_at - timedelta(minutes=1)
    refused = desk_api.get("admin", path, params={"as_of": before.isoformat(), "as_of_basis": "business"})
    assert refused.status_code == 404 and refused.headers["content-type"].startswith("application/problem+json")
    detail = refused.json()["detail"]
    assert f"did not exist yet at {before.isoformat()} (business time)" in detail
    assert f"its first event is at {case.opened_at.isoformat()} on business time" in detail
    # The desk's default basis (recorded): the ticket was recorded years later; the detail says it did exist on business time.
    after = case.opened_at + timedelta(minutes=1)
    refused = desk_api.get("admin", path, params={"as_of": after.isoformat()})
    assert refused.status_code == 404
    assert "(recorded time)" in refused.json()["detail"] and "it did exist then on that basis" in refused.json()["detail"]
    shown = desk_api.get("admin", path, params={"as_of": after.isoformat(), "as_of_basis": "business"})
    assert shown.status_code == 200 and shown.json()["status"] == "new"
