"""Idempotency keys: a retried POST gets the first response back and writes nothing.

Keys are scoped to the caller's token and kept at least 24 hours. The store is
shared by every API process (a table in PostgreSQL, a file beside the SQLite
store), so a retry that lands on another worker is still recognised. The command
id is also derived from the key, so even two copies of one request racing each
other cannot record an event twice.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from typing import Any
from uuid import uuid4

from ticketflow.config import Settings, StorageKind

KEEP_SECONDS = 48 * 3600
#: How often a process clears keys past their keeping time.
PURGE_EVERY_SECONDS = 3600


class Outcome(Enum):
    NEW = "new"
    REPLAY = "replay"
    MISMATCH = "mismatch"
    RUNNING = "running"


@dataclass(frozen=True)
class Stored:
    status: int
    headers: dict[str, str]
    body: bytes


# ``created_us``: integer microseconds (exact on both databases: a REAL column is float4 on
# PostgreSQL, which rounded the time and made every takeover's compare-and-set miss); ``owner``:
# a token per attempt, which a takeover compares and replaces.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {t} ("
    "scope TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, state TEXT NOT NULL, "
    "status INTEGER, headers TEXT, body TEXT, created_us BIGINT NOT NULL, owner TEXT NOT NULL, "
    "PRIMARY KEY (scope, key))"
)

#: Errors of the key store's database (it is down, restarting, or the disk is full).
STORE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error,)
try:
    import psycopg
    import psycopg_pool

    STORE_ERRORS += (psycopg.Error, psycopg_pool.PoolTimeout)
except ImportError:  # pragma: no cover - psycopg is a dependency
    pass


def _now_us() -> int:
    return time.time_ns() // 1000


class IdempotencyStore:
    def __init__(self, settings: Settings, memory_tag: str = "") -> None:
        self.postgres = settings.storage is StorageKind.POSTGRES
        self.stale_us = int(settings.idempotency_stale_seconds * 1_000_000)
        self._lock = threading.Lock()
        if self.postgres:
            from psycopg_pool import ConnectionPool

            env = settings.eventsourcing_env()
            schema = env.get("POSTGRES_SCHEMA", "public").replace('"', '""')
            self.table = f'"{schema}".tf_idempotency_keys'
            conninfo = (
                f"host={env['POSTGRES_HOST']} port={env['POSTGRES_PORT']} dbname={env['POSTGRES_DBNAME']} "
                f"user={env['POSTGRES_USER']}" + (f" password={env['POSTGRES_PASSWORD']}" if env["POSTGRES_PASSWORD"] else "")
            )
            # check: a connection that died with a database restart is replaced before use, so the
            # first request after recovery succeeds instead of failing on a stale connection.
            self._pool = ConnectionPool(conninfo, min_size=1, max_size=4, kwargs={"autocommit": True}, open=True,
                                        check=ConnectionPool.check_connection)
        else:
            self.table = "tf_idempotency_keys"
            if settings.storage is StorageKind.MEMORY:
                name, uri = f"file:tf_idem_{memory_tag}?mode=memory&cache=shared", True
            else:
                settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
                name, uri = str(settings.sqlite_path.with_name("api.sqlite")), False
            self._sqlite = sqlite3.connect(name, uri=uri, check_same_thread=False, isolation_level=None, timeout=10)
            if not uri:
                self._sqlite.execute("PRAGMA journal_mode=WAL")
        with self._cursor() as cur:
            cur.execute(_SCHEMA.format(t=self.table))
        self.purge()

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self.postgres:
            with self._pool.connection() as conn, conn.cursor() as cur:
                yield cur
        else:
            with self._lock:
                yield self._sqlite.cursor()

    def _sql(self, text: str) -> str:
        text = text.replace("{t}", self.table)
        return text.replace("?", "%s") if self.postgres else text

    def begin(self, scope: str, key: str, fingerprint: str) -> tuple[Outcome, Stored | None]:
        now = _now_us()
        if time.time() - self._purged_at > PURGE_EVERY_SECONDS:
            self.purge()
        with self._cursor() as cur:
            cur.execute(
                self._sql("INSERT INTO {t} (scope, key, fingerprint, state, created_us, owner) VALUES (?, ?, ?, 'running', ?, ?) "
                          "ON CONFLICT (scope, key) DO NOTHING"),
                (scope, key, fingerprint, now, uuid4().hex),
            )
            if cur.rowcount == 1:
                return Outcome.NEW, None
            cur.execute(self._sql("SELECT fingerprint, state, status, headers, body, created_us, owner FROM {t}"
                                  " WHERE scope = ? AND key = ?"), (scope, key))
            row = cur.fetchone()
        if row is None:  # purged between the two statements
            return self.begin(scope, key, fingerprint)
        stored_fingerprint, state, status, headers, body, created, owner = row
        if stored_fingerprint != fingerprint:
            return Outcome.MISMATCH, None
        if state == "running":
            if now - int(created) > self.stale_us and self._take_over(scope, key, owner, now):
                return Outcome.NEW, None
            return Outcome.RUNNING, None
        return Outcome.REPLAY, Stored(int(status), json.loads(headers), body.encode("latin-1"))

    def _take_over(self, scope: str, key: str, owner: str, now: int) -> bool:
        """Claim a key whose request died (compare-and-set on the attempt's owner token). The retry
        then runs the command again with the same command id, so what the dead attempt wrote is
        recognised and answered, never written twice."""
        with self._cursor() as cur:
            cur.execute(
                self._sql("UPDATE {t} SET created_us = ?, owner = ? WHERE scope = ? AND key = ? AND state = 'running'"
                          " AND owner = ?"),
                (now, uuid4().hex, scope, key, owner),
            )
            return bool(cur.rowcount == 1)

    def finish(self, scope: str, key: str, stored: Stored) -> None:
        with self._cursor() as cur:
            cur.execute(
                self._sql("UPDATE {t} SET state = 'done', status = ?, headers = ?, body = ? WHERE scope = ? AND key = ?"),
                (stored.status, json.dumps(stored.headers), stored.body.decode("latin-1"), scope, key),
            )

    def abandon(self, scope: str, key: str) -> None:
        """Forget a key whose request failed on our side (5xx), so a retry runs again."""
        with self._cursor() as cur:
            cur.execute(self._sql("DELETE FROM {t} WHERE scope = ? AND key = ?"), (scope, key))

    def purge(self, keep_seconds: float = KEEP_SECONDS) -> None:
        self._purged_at = time.time()
        with self._cursor() as cur:
            cur.execute(self._sql("DELETE FROM {t} WHERE created_us < ?"), (_now_us() - int(keep_seconds * 1_000_000),))

    def close(self) -> None:
        if self.postgres:
            self._pool.close()
        else:
            self._sqlite.close()
