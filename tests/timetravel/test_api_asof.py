"""The HTTP reads as of a version or an instant, the diff endpoint and queues as of a past instant,
on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from api.asof import views_as_of
from tests.api.conftest import Api, build_api
from ticketflow.config import Settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def tapi(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    extra: dict[str, Any] = {"rate_limit_burst": 10_000, "rate_limit_per_second": 10_000}
    if request.param == "sqlite":
        settings = Settings(data_dir=tmp_path / "data", **extra)
    else:
        settings = Settings(database_url=request.getfixturevalue("postgres_url"), embedded_projections=True, **extra)
    yield from build_api(settings)


def _read(api: Api, who: str, path: str, **params: Any) -> Any:
    response = api.get(who, path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_ticket_as_of_a_version_or_instant_is_what_the_view_said_then(tapi: Api) -> None:
    ticket = tapi.open_ticket()
    tapi.caught_up()
    then = _read(tapi, "agent_a", f"/api/v1/tickets/{ticket}")
    moment = tapi.recorded_now()
    tapi.post("agent_a", f"/api/v1/tickets/{ticket}/replies", {"body": "已重置", "direction": "outbound"})
    tapi.post("agent_a", f"/api/v1/tickets/{ticket}/priority", {"priority": "urgent"})
    tapi.post("supervisor_a", f"/api/v1/tickets/{ticket}/assign", {"assignee_id": "emma.clark"})
    tapi.caught_up()
    now = _read(tapi, "agent_a", f"/api/v1/tickets/{ticket}")
    expected = {**then, "sla": []}
    assert _read(tapi, "agent_a", f"/api/v1/tickets/{ticket}", version=then["version"]) == expected
    assert _read(tapi, "agent_a", f"/api/v1/tickets/{ticket}", as_of=moment.isoformat()) == expected
    response = tapi.get("agent_a", f"/api/v1/tickets/{ticket}", params={"version": now["version"]})
    assert response.json() == {**now, "sla": []} and response.headers["ETag"] == f'"{now["version"]}"'


def test_as_of_reads_keep_the_team_scope_and_masking(tapi: Api) -> None:
    ticket = tapi.open_ticket(subject="发票开错了")
    assert tapi.get("agent_b", f"/api/v1/tickets/{ticket}", params={"version": 1}).status_code == 404
    assert _read(tapi, "auditor", f"/api/v1/tickets/{ticket}", version=1)["subject"] == "***"
    shown = tapi.get("compliance", f"/api/v1/tickets/{ticket}", params={"version": 1}, headers={"X-Access-Purpose": "complaint 42"})
    assert shown.json()["subject"] == "发票开错了"
    tapi.caught_up()
    log = _read(tapi, "compliance", "/api/v1/access-log", customer_id=str(tapi.customer))
    assert any("tickets" in str(entry) for entry in log), log


def test_bad_as_of_requests_are_refused_and_an_instant_before_the_ticket_is_404(tapi: Api) -> None:
    ticket = tapi.open_ticket()
    path = f"/api/v1/tickets/{ticket}"
    assert tapi.get("agent_a", path, params={"version": 99}).status_code == 422
    assert tapi.get("agent_a", path, params={"version": 1, "as_of": "2026-01-01T00:00:00Z"}).status_code == 422
    early = tapi.get("agent_a", path, params={"as_of": "2000-01-01T00:00:00Z"})
    assert early.status_code == 404 and "did not exist yet at 2000-01-01T00:00:00+00:00" in early.json()["detail"]
    import uuid

    assert tapi.get("agent_a", f"/api/v1/tickets/{uuid.uuid4()}", params={"version": 1}).status_code == 404


def test_a_customer_as_of_a_version_is_masked_and_its_unmasked_read_recorded(tapi: Api) -> None:
    response = tapi.client.patch(f"/api/v1/customers/{tapi.customer}", json={"company": "新公司"}, headers=tapi.headers("admin"))
    assert response.status_code == 200, response.text
    masked = _read(tapi, "admin", f"/api/v1/customers/{tapi.customer}", version=1)
    assert masked["company"] == "***" and masked["version"] == 1 and "company" in masked["masked"]
    shown = tapi.get("compliance", f"/api/v1/customers/{tapi.customer}", params={"version": 1},
                     headers={"X-Access-Purpose": "subject access request"}).json()
    assert shown["company"] == "华信科技" and shown["masked"] == []
    tapi.caught_up()  # the current read comes from the customers view: let it take in the PATCH
    assert _read(tapi, "compliance", f"/api/v1/customers/{tapi.customer}")["version"] == 2
    tapi.caught_up()
    log = _read(tapi, "compliance", "/api/v1/access-log", customer_id=str(tapi.customer))
    assert any("subject access request" in str(entry) for entry in log), log


def test_the_diff_endpoint_lists_field_changes_with_their_events(tapi: Api) -> None:
    ticket = tapi.open_ticket()
    tapi.post("agent_a", f"/api/v1/tickets/{ticket}/priority", {"priority": "urgent"})
    changes = _read(tapi, "agent_a", f"/api/v1/tickets/{ticket}/diff", from_version=1)
    assert [(c["field"], c["old"], c["new"], c["event_type"], c["actor_id"]) for c in changes] == [
        ("priority", "normal", "urgent", "Ticket.PriorityChanged", "li.wei")]
    full = _read(tapi, "auditor", f"/api/v1/tickets/{ticket}/diff")
    assert {c["field"]: c["new"] for c in full}["subject"] == "***"
    assert tapi.get("agent_b", f"/api/v1/tickets/{ticket}/diff").status_code == 404
    assert tapi.get("agent_a", f"/api/v1/tickets/{ticket}/diff", params={"from_version": 3, "to_version": 2}).status_code == 422


def test_the_queue_as_of_a_past_instant_is_the_queue_seen_then(tapi: Api) -> None:
    tickets = [tapi.open_ticket(subject=f"问题 {n}") for n in range(3)] + [tapi.open_ticket(who="agent_b", team="b")]
    tapi.post("agent_a", f"/api/v1/tickets/{tickets[0]}/priority", {"priority": "high"})
    tapi.caught_up()
    queries = [{}, {"status": "new"}, {"sort": "priority", "limit": 2}]
    seen = {(who, i): _read(tapi, who, "/api/v1/tickets", **q) for who in ("admin", "agent_a") for i, q in enumerate(queries)}
    moment = tapi.recorded_now()
    tapi.post("agent_a", f"/api/v1/tickets/{tickets[1]}/solve", {"resolution": "ok"})
    tapi.post("supervisor_a", f"/api/v1/tickets/{tickets[2]}/assign", {"assignee_id": "li.wei"})
    tapi.open_ticket(subject="later")
    tapi.caught_up()
    for (who, i), page in seen.items():
        assert _read(tapi, who, "/api/v1/tickets", as_of=moment.isoformat(), **queries[i]) == page, (who, queries[i])
    assert _read(tapi, "admin", "/api/v1/tickets", as_of=moment.isoformat()) != _read(tapi, "admin", "/api/v1/tickets")
    cursor = seen[("admin", 2)]["next_cursor"]
    assert cursor is not None
    second = _read(tapi, "admin", "/api/v1/tickets", as_of=moment.isoformat(), sort="priority", limit=2, cursor=cursor)
    assert len(second["items"]) == 2
    views = views_as_of(_Req(tapi), tapi.desk)  # type: ignore[arg-type]
    assert views.built == 1  # the pages above shared one temporary view
    assert _read(tapi, "admin", "/api/v1/tickets", as_of="2000-01-01T00:00:00Z")["items"] == []


def test_a_queue_too_far_back_is_refused(tapi: Api) -> None:
    tapi.open_ticket()
    views = views_as_of(_Req(tapi), tapi.desk)  # type: ignore[arg-type]
    views.max_replay = 1
    response = tapi.get("admin", "/api/v1/tickets", params={"as_of": datetime.now(UTC).isoformat()})
    assert response.status_code == 422 and "replays more than" in response.json()["detail"]


class _Req:
    """Just enough of a request for :func:`views_as_of`."""

    def __init__(self, api: Api) -> None:
        self.app = api.client.app


def test_the_backlog_report_as_of_a_past_instant_is_the_backlog_seen_then(tmp_path: Path) -> None:
    import time as _time
    from datetime import UTC, datetime

    from tests.api.conftest import build_api
    from ticketflow.config import Settings as _Settings

    for api in build_api(_Settings(data_dir=tmp_path / "data", automation=False)):
        api.open_ticket()
        api.caught_up()
        then = api.get("admin", "/api/v1/reports/backlog").json()
        _time.sleep(0.01)
        instant = datetime.now(UTC)
        _time.sleep(0.01)
        api.open_ticket()
        api.open_ticket(who="admin", team="b")
        api.caught_up()
        assert api.get("admin", "/api/v1/reports/backlog").json() != then
        past = api.get("admin", "/api/v1/reports/backlog", params={"as_of": instant.isoformat()})
        assert past.status_code == 200, past.text
        assert past.json() == then


def _worked(api: Api, score: int) -> None:
    """A ticket opened, answered, solved and rated."""
    ticket = api.open_ticket()
    for path, body in [("/replies", {"body": "您好, 已处理"}), ("/solve", {"resolution": "done"}),
                       ("/satisfaction", {"score": score, "comment": "好"})]:
        response = api.post("agent_a", f"/api/v1/tickets/{ticket}{path}", body)
        assert response.status_code in (200, 201), response.text
    api.caught_up()


@pytest.mark.parametrize("report", ["response-times", "satisfaction", "volume", "backlog"])
def test_every_tickets_report_as_of_a_past_instant_is_the_report_seen_then(tapi: Api, report: str) -> None:
    _worked(tapi, 5)
    then = _read(tapi, "admin", f"/api/v1/reports/{report}")
    assert then != []
    moment = tapi.recorded_now()
    _worked(tapi, 1)
    tapi.open_ticket(who="admin", team="b")
    tapi.caught_up()
    assert _read(tapi, "admin", f"/api/v1/reports/{report}") != then
    assert _read(tapi, "admin", f"/api/v1/reports/{report}", as_of=moment.isoformat()) == then
    assert _read(tapi, "agent_b", f"/api/v1/reports/{report}", as_of=moment.isoformat()) == []  # scoped to teams then too
