"""SQLite connections keep their compiled statements (ticketflow/sqlite_store.py): eventsourcing's pool
opens its connections with a statement cache of one (``cached_statements=True``), so two statements
run in turn were compiled again every time. SQLite calls a connection's authorizer only while it
compiles a statement: the calls counted tell whether a statement run again was compiled again."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.sqlite import SQLiteConnectionPool
from eventsourcing.utils import Environment

from projections.readside import ReadSide
from ticketflow.application import TicketDesk
from ticketflow.config import SQLITE_FACTORY_TOPIC, Settings
from ticketflow.sqlite_store import StatementCachingPool


def _compilations(connection: sqlite3.Connection, rounds: int) -> list[int]:
    """Authorizer calls so far after each of ``rounds`` rounds of two statements run in turn (a call:
    an action checked while compiling). One authorizer for all the rounds: setting one expires the
    connection's compiled statements."""
    calls: list[Any] = []

    def authorizer(*args: Any) -> int:
        calls.append(args)
        return sqlite3.SQLITE_OK

    connection.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
    connection.set_authorizer(authorizer)
    counts = []
    for _ in range(rounds):
        connection.execute("SELECT x FROM t WHERE x = ?", (1,)).fetchall()
        connection.execute("SELECT x + 1 FROM t").fetchall()
        counts.append(len(calls))
    connection.set_authorizer(None)
    return counts


def _pool(topic: str, path: Path) -> SQLiteConnectionPool:
    factory = InfrastructureFactory.construct(Environment("t", {"PERSISTENCE_MODULE": topic, "SQLITE_DBNAME": str(path)}))
    pool = factory.datastore.pool  # type: ignore[attr-defined]
    assert isinstance(pool, SQLiteConnectionPool)
    return pool


def test_statements_run_again_are_not_compiled_again(tmp_path: Path) -> None:
    connection = _pool(SQLITE_FACTORY_TOPIC, tmp_path / "store.sqlite")._create_connection()
    try:
        counts = _compilations(connection._sqlite_conn, 5)
        assert counts[0] > 0
        assert counts == [counts[0]] * 5  # compiled in the first round only
    finally:
        connection.close()


def test_the_library_pool_compiles_them_every_time(tmp_path: Path) -> None:
    """What the factory fixes (should eventsourcing fix it, this fails: the factory can then go)."""
    connection = _pool("eventsourcing.sqlite", tmp_path / "store.sqlite")._create_connection()
    try:
        first, second, third = _compilations(connection._sqlite_conn, 3)
        assert 0 < first < second < third
    finally:
        connection.close()


def test_the_factory_keeps_the_library_pool_settings(tmp_path: Path) -> None:
    env = {"PERSISTENCE_MODULE": SQLITE_FACTORY_TOPIC, "SQLITE_DBNAME": str(tmp_path / "s.sqlite"),
           "SQLITE_LOCK_TIMEOUT": "7"}
    pool = InfrastructureFactory.construct(Environment("t", env)).datastore.pool  # type: ignore[attr-defined]
    library = InfrastructureFactory.construct(Environment("t", {**env, "PERSISTENCE_MODULE": "eventsourcing.sqlite"}))
    expected = library.datastore.pool  # type: ignore[attr-defined]
    assert isinstance(pool, StatementCachingPool)
    for name in ("db_name", "lock_timeout", "pool_size", "max_overflow", "pool_timeout", "max_age", "pre_ping"):
        assert getattr(pool, name) == getattr(expected, name), name
    connection = pool._create_connection()
    try:
        raw = connection._sqlite_conn
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.row_factory is sqlite3.Row
        assert raw.isolation_level is None
    finally:
        connection.close()


def test_the_event_store_and_the_views_use_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.eventsourcing_env()["PERSISTENCE_MODULE"] == SQLITE_FACTORY_TOPIC
    desk = TicketDesk(settings)
    read_side = ReadSide(desk)
    try:
        assert isinstance(desk.recorder.datastore.pool, StatementCachingPool)  # type: ignore[attr-defined]
        for name, store in read_side.stores.items():
            assert isinstance(store.datastore.pool, StatementCachingPool), name  # type: ignore[attr-defined]
    finally:
        read_side.close()
        desk.close()
