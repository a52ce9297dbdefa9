"""Idempotency keys across crashes and storage failures (#11: 1-3)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from api import idempotency
from api.idempotency import IdempotencyStore, Outcome, Stored
from tests.api.conftest import Api
from ticketflow.config import Settings

LATER = int((Settings().idempotency_stale_seconds + 1) * 1_000_000)  # a running key is stale by then


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        settings = Settings(data_dir=tmp_path / "data")
    else:
        settings = Settings(database_url=request.getfixturevalue("postgres_url"), data_dir=tmp_path / "data")
    keys = IdempotencyStore(settings)
    yield keys
    keys.close()


def test_a_key_left_running_by_a_request_that_died_is_taken_over_once_it_is_stale(
    store: IdempotencyStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = 1796186507_330_017  # microseconds: a float4 column rounded such times, and takeovers never matched
    monkeypatch.setattr(idempotency, "_now_us", lambda: started)
    assert store.begin("caller", "key-1", "body") == (Outcome.NEW, None)
    assert store.begin("caller", "key-1", "body") == (Outcome.RUNNING, None)  # the first attempt may still run
    monkeypatch.setattr(idempotency, "_now_us", lambda: started + LATER)
    assert store.begin("caller", "key-1", "body") == (Outcome.NEW, None)  # it died: a retry takes over
    assert store.begin("caller", "key-1", "body") == (Outcome.RUNNING, None)  # ... exactly one retry
    store.finish("caller", "key-1", Stored(201, {"etag": '"1"'}, b'{"id": 1}'))
    outcome, stored = store.begin("caller", "key-1", "body")
    assert outcome is Outcome.REPLAY and stored is not None and stored.status == 201


def test_a_key_store_that_fails_answers_503_with_retry_after_never_500(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = api.client.app.state.services.idempotency  # type: ignore[attr-defined]

    def down(*_: Any) -> Any:
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(keys, "begin", down)
    response = api.post("admin", "/api/v1/customers", {"name": "张三"}, **{"Idempotency-Key": "k-down"})
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_database_error_from_the_desk_is_a_503(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    desk = api.client.app.state.services.desk  # type: ignore[attr-defined]

    def down(*_: Any, **__: Any) -> Any:
        raise psycopg.OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(desk, "handle", down)
    response = api.post("admin", "/api/v1/customers", {"name": "张三"})
    assert response.status_code == 503 and response.json()["type"].endswith("/storage_unavailable")


def test_when_recording_the_keys_outcome_fails_after_the_command_the_client_still_gets_its_answer_and_a_retry_it_once(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = api.client.app.state.services.idempotency  # type: ignore[attr-defined]
    finish = keys.finish

    def down(*_: Any) -> None:
        raise psycopg.OperationalError("the database went away after the command committed")

    monkeypatch.setattr(keys, "finish", down)
    body = {"name": "李四"}
    first = api.post("admin", "/api/v1/customers", body, **{"Idempotency-Key": "k-crash"})
    assert first.status_code == 201  # the command was written: the client hears so
    monkeypatch.setattr(keys, "finish", finish)
    assert api.post("admin", "/api/v1/customers", body, **{"Idempotency-Key": "k-crash"}).status_code == 409  # running
    now = idempotency._now_us()
    monkeypatch.setattr(idempotency, "_now_us", lambda: now + LATER)
    retried = api.post("admin", "/api/v1/customers", body, **{"Idempotency-Key": "k-crash"})
    assert retried.status_code == 201 and retried.json()["id"] == first.json()["id"] and retried.json()["replayed"]
    desk = api.client.app.state.services.desk  # type: ignore[attr-defined]
    registered = desk.recorder.select_notifications(1, 1000, topics=["ticketflow.domain.customer:Customer.Registered"])
    assert sum(1 for n in registered if str(n.originator_id) == first.json()["id"]) == 1  # written once


@pytest.fixture
def own_database(postgres_available: None) -> Iterator[str]:
    """A database of this test's own: terminating its connections touches no other test's."""
    from tests.conftest import POSTGRES_URL

    name = f"tf_drop_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_after_the_database_drops_every_connection_the_first_requests_succeed(own_database: str, tmp_path: Path) -> None:
    """What a restart does to the pools, without restarting the shared server: every connection of the
    desk is terminated by the server; the next reads and writes must not fail one by one. The desk has
    a database of its own, so terminating its connections cannot reach another test running meanwhile."""
    from tests.api.conftest import build_api

    settings = Settings(database_url=own_database, data_dir=tmp_path / "data", automation=False, embedded_projections=True,
                        rate_limit_burst=10_000, rate_limit_per_second=10_000)
    server = own_database
    for api in build_api(settings):
        for _ in range(3):  # several pooled connections in every pool
            api.open_ticket()
            api.caught_up()
            assert api.get("agent_a", "/api/v1/tickets").status_code == 200
        with psycopg.connect(server, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
            ).fetchone()[0]
        assert killed > 0
        statuses = [api.get("agent_a", "/api/v1/me").status_code, api.get("agent_a", "/api/v1/tickets").status_code]
        ticket = api.post("agent_a", "/api/v1/tickets", {"subject": "重启之后", "requester_id": str(api.customer),
                                                         "team_id": str(api.team_a)}, **{"Idempotency-Key": "after"})
        statuses.append(ticket.status_code)
        statuses.append(api.post("agent_a", f"/api/v1/tickets/{ticket.json()['id']}/notes", {"body": "好"}).status_code)
        assert statuses == [200, 200, 201, 200]
