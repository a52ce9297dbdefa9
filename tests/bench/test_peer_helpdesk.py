"""bench/peer_helpdesk.py without a network or django-helpdesk: the lifecycle each system is sent, the
measured window, the ratios and tables, seeding, the queue read, and the generated Django settings.

The servers are fakes behind a fake connection (what ``load_client.Connection`` is to the real ones);
time is a fake clock that moves only when a fake
server answers (every request takes 10 ms of it), so every count below is exact."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import runpy
import sys
from pathlib import Path
from typing import Any

import pytest

from ticketflow.application import TicketDesk
from ticketflow.config import Settings

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("peer_helpdesk", REPO / "bench" / "peer_helpdesk.py")
assert spec is not None and spec.loader is not None
peer = importlib.util.module_from_spec(spec)
sys.modules["peer_helpdesk"] = peer  # dataclasses look their module up
spec.loader.exec_module(peer)
Answer = peer.Answer  # load_client's, as the bench imported it

TICKET = "6457ba06-1c2d-4e5f-8a9b-0123456789ab"
STEP_MS = 10


class FakeServer:
    """Answers like the real API (ids, statuses), records every request, advances the clock 10 ms each."""

    def __init__(self, fail: dict[str, int] | None = None, fail_status: int = 500) -> None:
        self.now_ms = 0  # whole milliseconds: the window edges compare exactly
        self.sent: list[tuple[str, str, Any]] = []
        self.queries: list[str] = []
        self.fail = dict(fail or {})  # path fragment -> how many of its requests fail, with fail_status
        self.fail_status = fail_status
        self.opened = 0
        self.closed = 0  # connections the client closed

    def clock(self) -> float:
        return self.now_ms / 1000

    def connect(self, desk: Any, timeout: float) -> FakeConnection:
        return FakeConnection(self, desk)

    def handle(self, method: str, target: str, body: Any) -> Answer:
        self.now_ms += STEP_MS
        path, _, query = target.partition("?")
        self.sent.append((method, path, body))
        self.queries.append(query)
        for fragment, left in self.fail.items():
            if left and fragment in path:
                self.fail[fragment] = left - 1
                return Answer(self.fail_status, b"boom", {})
        if method == "GET":
            return self.page(path)
        if path in ("/api/tickets/", "/api/v1/tickets"):
            self.opened += 1
            ticket: Any = self.opened if path == "/api/tickets/" else TICKET
            return json_answer(201, {"id": ticket})
        return json_answer(201 if method == "POST" else 200, {})

    def page(self, path: str) -> Answer:
        if path == "/api/tickets/":
            return json_answer(200, {"count": 3, "results": [{}, {}, {}]})
        return json_answer(200, {"items": [{}, {}], "next_cursor": None})


class FakeConnection:
    """The client's side: what ``peer.open_connection`` gives, over a ``FakeServer``."""

    def __init__(self, server: FakeServer, desk: Any) -> None:
        self.server, self.desk = server, desk

    async def request(self, method: str, path: str, body: Any = None) -> Answer:
        return self.server.handle(method, path, body)

    async def close(self) -> None:
        self.server.closed += 1


def json_answer(status: int, value: Any) -> Answer:
    return Answer(status, json.dumps(value).encode(), {"content-type": "application/json"})


def helpdesk(url: str = "http://helpdesk") -> Any:
    return peer.HelpdeskDesk("django-helpdesk", url, {"Authorization": "Token t"}, queue_id=4, agent_id=2)


def ticketflow(url: str = "http://ticketflow") -> Any:
    return peer.TicketflowDesk("ticketflow", url, {"Authorization": "Bearer t"}, customer="c1", team="t1")


def drive(desk: Any, server: FakeServer, start: float, end: float) -> Any:
    """One simulated agent over the fake server, measured between ``start`` and ``end`` (seconds)."""
    tally = peer.Tally()

    async def agent() -> None:
        go = asyncio.Event()
        go.set()
        await peer.client_loop(desk, 0, {"start": start, "end": end}, tally, go, server.connect, server.clock)

    asyncio.run(agent())
    assert server.closed == 1  # the agent's connection, closed when it stops
    return tally


def test_a_helpdesk_lifecycle_uses_its_real_api_assign_as_patch_and_followups_for_the_rest() -> None:
    server = FakeServer()
    drive(helpdesk(), server, 0.0, 0.06)  # exactly one lifecycle of six 10 ms requests
    assert server.sent == [
        ("POST", "/api/tickets/", {"queue": 4, "title": "压测工单 1", "description": "无法登录。",
                                   "submitter_email": "customer@example.com", "priority": 3}),
        ("PATCH", "/api/tickets/1/", {"assigned_to": 2}),
        ("POST", "/api/followups/", {"ticket": 1, "comment": "内部备注：已查看网关日志。", "public": False}),
        ("POST", "/api/followups/", {"ticket": 1, "comment": "您好，我们已经重置了您的密码。", "public": True}),
        ("POST", "/api/followups/", {"ticket": 1, "comment": "密码已重置。", "public": True, "new_status": 3}),
        ("POST", "/api/followups/", {"ticket": 1, "comment": "", "public": True, "new_status": 4}),
    ]


def test_a_ticketflow_lifecycle_sends_the_same_six_steps_to_its_commands() -> None:
    server = FakeServer()
    drive(ticketflow(), server, 0.0, 0.06)
    base = f"/api/v1/tickets/{TICKET}"
    assert [(m, p) for m, p, _ in server.sent] == [
        ("POST", "/api/v1/tickets"), ("POST", f"{base}/assign"), ("POST", f"{base}/notes"),
        ("POST", f"{base}/replies"), ("POST", f"{base}/solve"), ("POST", f"{base}/close"),
    ]
    assert server.sent[0][2] == {"subject": "压测工单 1", "customer_id": "c1", "team_id": "t1"}
    assert server.sent[1][2] == {"assignee_id": "a1"}


def test_commands_and_lifecycles_count_when_they_complete_inside_the_window() -> None:
    server = FakeServer()
    # lifecycles run 0-60 ms and 60-120 ms; the third starts at 120 and stops at the window's end, 150 ms
    tally = drive(ticketflow(), server, 0.03, 0.15)
    assert len(server.sent) == 6 + 6 + 3
    assert len(tally.latencies) == 13  # answered at 30, 40, ... 150 ms
    assert tally.latencies == pytest.approx([STEP_MS] * 13)
    assert tally.lifecycles == 2  # closed at 60 and 120 ms
    assert not tally.errors


def test_a_failed_step_is_an_error_and_ends_its_lifecycle_uncounted() -> None:
    server = FakeServer(fail={"/solve": 1})
    tally = drive(ticketflow(), server, 0.0, 0.11)  # open..solve fails at 50 ms; a new lifecycle from 50
    assert [p.rsplit("/", 1)[-1] for _, p, _ in server.sent] == [
        "tickets", "assign", "notes", "replies", "solve", "tickets", "assign", "notes", "replies", "solve", "close",
    ]
    assert tally.lifecycles == 1
    assert len(tally.latencies) == 10
    assert tally.errors == {"solve: POST /api/v1/tickets/{id}/solve -> 500 boom": 1}


def level(system: str, clients: int, commands: int, lifecycles: int, p50: float, p99: float) -> Any:
    return peer.LevelResult(system, clients, 10.0, commands, lifecycles, p50, p99, errors=0, cpu_seconds=3.0)


def test_the_lifecycle_table_gives_each_system_per_level_and_the_ratio() -> None:
    results = [
        level("ticketflow", 8, 6000, 1000, 5.0, 40.0),
        level("django-helpdesk", 8, 1200, 200, 20.0, 200.0),
        level("ticketflow", 32, 9000, 1500, 30.0, 90.0),
    ]
    assert results[0].commands_per_s == 600.0
    assert results[0].lifecycles_per_s == 100.0
    assert results[0].cpu_ms_per_command == pytest.approx(0.5)
    lines = peer.lifecycle_table(results, "ticketflow", "django-helpdesk").splitlines()
    assert lines[1].split() == ["8", "ticketflow", "600.0", "100.0", "5.0", "40.0", "0.50", "0"]
    assert lines[2].split() == ["8", "django-helpdesk", "120.0", "20.0", "20.0", "200.0", "2.50", "0"]
    assert lines[3].split()[:6] == ["8", "ratio", "5.00x", "5.00x", "4.00x", "5.00x"]
    assert lines[4].split()[:2] == ["32", "ticketflow"]  # no peer at that level: no ratio row
    assert len(lines) == 5


def test_a_level_where_the_peer_finished_nothing_prints_no_ratio() -> None:
    results = [level("ticketflow", 32, 600, 60, 500.0, 900.0), level("django-helpdesk", 32, 50, 0, 3000.0, 4000.0)]
    ratio_row = peer.lifecycle_table(results, "ticketflow", "django-helpdesk").splitlines()[3].split()
    assert ratio_row[:6] == ["32", "ratio", "12.00x", "-", "6.00x", "4.44x"]


def test_a_ratio_over_nothing_is_not_a_number() -> None:
    assert peer.ratio(3.0, 1.5) == 2.0
    assert peer.ratio(3.0, 0.0) != peer.ratio(3.0, 0.0)


def test_summarising_a_tally_takes_its_percentiles_and_counts() -> None:
    tally = peer.Tally(latencies=[float(ms) for ms in range(1, 101)], lifecycles=7)
    tally.error("x")
    result = peer.summarise("ticketflow", 1, 4.0, tally)
    assert (result.commands, result.lifecycles, result.p50, result.p99, result.errors) == (100, 7, 51.0, 100.0, 1)
    assert result.cpu_ms_per_command is None


def test_a_seeded_ticketflow_store_holds_exactly_that_many_distinct_opened_tickets(tmp_path: Path) -> None:
    position = peer.seed_ticketflow(tmp_path, 5, batch=2)  # batches of 2: a full one, then the rest
    desk = TicketDesk(Settings(data_dir=tmp_path))
    try:
        notifications = desk.notification_log.select(start=1, limit=10)
        assert [n.topic.rsplit(":", 1)[-1] for n in notifications] == [
            "Customer.Registered", "Team.Formed", *["Ticket.Opened"] * 5,
        ]
        assert len({n.originator_id for n in notifications[2:]}) == 5
        assert position == desk.log_position() == 7
    finally:
        desk.close()


def test_the_first_queue_read_is_retried_while_the_views_are_behind() -> None:
    server = FakeServer(fail={"/api/v1/tickets": 2}, fail_status=503)
    result = peer.read_queue(ticketflow(), 20_000, 2, min_position=20_002, connect=server.connect)
    assert len(server.sent) == 2 + 1 + 2
    assert (result.reads, result.rows) == (2, 2)


def test_queue_reads_stop_at_three_once_the_time_budget_is_spent() -> None:
    server = FakeServer()
    result = peer.read_queue(ticketflow(), 20_000, 50, connect=server.connect, budget=0.0)
    assert result.reads == 3
    assert len(server.sent) == 4  # and the unmeasured first read


def test_the_queue_read_asks_each_system_for_its_open_statuses_and_waits_only_on_the_first() -> None:
    server = FakeServer()
    tf = peer.read_queue(ticketflow(), 2000, 3, min_position=77, connect=server.connect)
    hd = peer.read_queue(helpdesk(), 2000, 2, connect=server.connect)
    assert [(m, p) for m, p, _ in server.sent] == [("GET", "/api/v1/tickets")] * 4 + [("GET", "/api/tickets/")] * 3
    assert (tf.system, tf.tickets, tf.reads, tf.rows) == ("ticketflow", 2000, 3, 2)
    assert (hd.system, hd.reads, hd.rows) == ("django-helpdesk", 2, 3)


def test_the_queue_reads_carry_the_open_status_filters() -> None:
    server = FakeServer()
    peer.read_queue(ticketflow(), 1, 1, min_position=9, connect=server.connect)
    peer.read_queue(helpdesk(), 1, 1, connect=server.connect)
    assert server.queries == [
        "status=new&status=open&limit=25&min_position=9", "status=new&status=open&limit=25",
        "status=1%2C2&page_size=25", "status=1%2C2&page_size=25",
    ]


def test_the_queue_table_gives_the_latency_ratio_per_size() -> None:
    results = [
        peer.QueueResult("ticketflow", 2000, 50, 25, 4.0, 8.0),
        peer.QueueResult("django-helpdesk", 2000, 50, 25, 40.0, 100.0),
    ]
    lines = peer.queue_table(results, "ticketflow", "django-helpdesk").splitlines()
    assert lines[1].split() == ["2,000", "ticketflow", "50", "25", "4.0", "8.0"]
    assert lines[3].split()[:4] == ["2,000", "ratio", "10.00x", "12.50x"]


def test_the_generated_django_settings_put_sqlite_in_wal_mode_and_enable_the_token_api(tmp_path: Path) -> None:
    database = peer.write_helpdesk_project(tmp_path)
    settings = runpy.run_path(str(tmp_path / "hdbench" / "settings.py"))  # plain Python: no django needed
    db = settings["DATABASES"]["default"]
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["NAME"] == str(database) == str(tmp_path / "helpdesk.sqlite3")
    pragmas = [p.strip() for p in db["OPTIONS"]["init_command"].split(";") if p.strip()]
    assert "PRAGMA journal_mode=WAL" in pragmas
    assert "PRAGMA synchronous=FULL" in pragmas
    assert settings["HELPDESK_API_ENABLED"] is True
    assert "rest_framework.authtoken" in settings["INSTALLED_APPS"]
    assert settings["REST_FRAMEWORK"]["DEFAULT_AUTHENTICATION_CLASSES"] == [
        "rest_framework.authentication.TokenAuthentication"
    ]
    assert settings["ROOT_URLCONF"] == "hdbench.urls"
    assert (tmp_path / "hdbench" / "wsgi.py").read_text().count("hdbench.settings") == 1
