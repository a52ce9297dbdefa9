"""Shared fixtures: a fake clock, callers, and desks on each store.

PostgreSQL tests use a fresh schema per test on the server named by
``TICKETFLOW_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
They skip when it is unreachable, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Property tests must not fail CI one run in N: every run draws the same examples (derandomize, no example
# database carried between runs), and a slow, loaded CI machine is not a failure (no deadline, no "too slow").
settings.register_profile(
    "ticketflow",
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ticketflow")

from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.config import Settings
from tests.support import Desk

POSTGRES_URL = os.environ.get("TICKETFLOW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def postgres_reachable() -> str | None:
    """None when the server answers, else the reason it does not."""
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return str(exc).strip().splitlines()[0]


@pytest.fixture(scope="session")
def postgres_available() -> None:
    reason = postgres_reachable()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL at {POSTGRES_URL} is unreachable: {reason}")
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} is unreachable: {reason}")


@pytest.fixture
def postgres_url(postgres_available: None) -> Iterator[str]:
    """A database URL on a fresh schema, dropped afterwards."""
    import psycopg

    schema = f"tf_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_URL}?schema={schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The embedded store's directory for CLI tests: what `ticketflow` reads from the environment."""
    directory = tmp_path / "desk"
    monkeypatch.setenv("TICKETFLOW_DATA_DIR", str(directory))
    monkeypatch.delenv("TICKETFLOW_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return directory


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))


@pytest.fixture
def desk(clock: FakeClock) -> Iterator[TicketDesk]:
    app = TicketDesk(Settings(database_url="memory://"), clock=clock)
    yield app
    app.close()


def _settings_for(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if kind == "memory":
        return Settings(database_url="memory://")
    if kind == "sqlite":
        return Settings(data_dir=tmp_path / "data")
    return Settings(database_url=request.getfixturevalue("postgres_url"), data_dir=tmp_path / "data")


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for each store: the same tests run on all three."""
    return _settings_for(request.param, request, tmp_path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def shared_store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for the stores several processes can share."""
    return _settings_for(request.param, request, tmp_path)


@pytest.fixture
def any_desk(store_settings: Settings, clock: FakeClock) -> Iterator[TicketDesk]:
    app = TicketDesk(store_settings, clock=clock)
    yield app
    app.close()


@pytest.fixture
def setup(desk: TicketDesk) -> Desk:
    return Desk(desk)


@pytest.fixture
def any_setup(any_desk: TicketDesk) -> Desk:
    return Desk(any_desk)

# The tests' webhook receivers listen on loopback, which a desk refuses as a webhook target by default
# (tests/outbox/test_webhook_targets.py checks that refusal with the setting cleared).
os.environ.setdefault("TICKETFLOW_WEBHOOK_ALLOWED_TARGETS", "127.0.0.1")
