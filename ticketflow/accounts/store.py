"""Where password hashes and console sessions live: outside the event log.

* SQLite: ``<store>-accounts.sqlite`` beside the event store (``secure_delete`` on, so a replaced
  hash or an ended session is overwritten on disk);
* PostgreSQL: the tables ``tf_credentials`` and ``tf_sessions`` in the store's schema, shared by
  every API worker;
* memory: an in-memory SQLite database of this process.

A credential row carries the serial of the ``PasswordSet`` event it belongs to: sign-in accepts
it only when the account's last ``PasswordSet`` has the same serial, so a password whose event
was recorded but whose hash was not stored (a crash between the two) fails closed.

Sessions are kept by the SHA-256 of their token (the cookie), never the token itself.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ticketflow.config import Settings, StorageKind

_TABLES = (
    "CREATE TABLE IF NOT EXISTS {p}tf_credentials (account_id TEXT PRIMARY KEY, serial INTEGER NOT NULL, "
    "hash TEXT NOT NULL, set_us BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {p}tf_sessions (token_hash TEXT PRIMARY KEY, account_id TEXT NOT NULL, "
    "csrf TEXT NOT NULL, created_us BIGINT NOT NULL, expires_us BIGINT NOT NULL, last_seen_us BIGINT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS tf_sessions_account ON {p}tf_sessions (account_id)",
)


@dataclass(frozen=True)
class Credential:
    serial: int
    hash: str


@dataclass(frozen=True)
class Session:
    account_id: str
    csrf: str
    created_us: int
    expires_us: int
    last_seen_us: int


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AccountStore:
    """Password hashes and sessions (SQLite file, in-memory SQLite, or PostgreSQL tables)."""

    def __init__(self, settings: Settings, recorder: Any) -> None:
        self._lock = threading.Lock()
        self.postgres = settings.storage is StorageKind.POSTGRES
        if self.postgres:
            self.datastore = recorder.datastore
            schema = self.datastore.schema
            self.prefix = '"' + schema.replace('"', '""') + '".' if schema else ""
        else:
            self.prefix = ""
            if settings.storage is StorageKind.MEMORY:
                path = ":memory:"
            else:
                store = settings.sqlite_path
                path = str(store.with_name(f"{store.stem}-accounts.sqlite"))
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA secure_delete = ON")
            if path != ":memory:":
                self._db.execute("PRAGMA journal_mode = WAL")
        with self._cursor() as cur:
            for statement in _TABLES:
                cur.execute(statement.format(p=self.prefix))

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self.postgres:
            with self.datastore.transaction(commit=True) as cursor:
                yield cursor
        else:
            with self._lock:
                yield self._db.cursor()

    def _sql(self, text: str) -> str:
        text = text.replace("{p}", self.prefix)
        return text.replace("?", "%s") if self.postgres else text

    def _one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._cursor() as cur:
            cur.execute(self._sql(sql), params)
            row = cur.fetchone()
        if row is None:
            return None
        return tuple(row.values()) if isinstance(row, dict) else tuple(row)

    def _run(self, sql: str, params: tuple[Any, ...]) -> int:
        with self._cursor() as cur:
            cur.execute(self._sql(sql), params)
            return int(cur.rowcount)

    # ------------------------------------------------------------------ credentials
    def credential(self, account_id: str) -> Credential | None:
        row = self._one("SELECT serial, hash FROM {p}tf_credentials WHERE account_id = ?", (account_id,))
        return Credential(int(row[0]), str(row[1])) if row else None

    def set_credential(self, account_id: str, serial: int, password_hash: str, now_us: int) -> None:
        self._run(
            "INSERT INTO {p}tf_credentials (account_id, serial, hash, set_us) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (account_id) DO UPDATE SET serial = excluded.serial, hash = excluded.hash, set_us = excluded.set_us",
            (account_id, serial, password_hash, now_us),
        )

    # ------------------------------------------------------------------ sessions
    def open_session(self, token: str, account_id: str, csrf: str, now_us: int, expires_us: int) -> None:
        self._run(
            "INSERT INTO {p}tf_sessions (token_hash, account_id, csrf, created_us, expires_us, last_seen_us) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (token_hash(token), account_id, csrf, now_us, expires_us, now_us),
        )

    def session(self, token: str) -> Session | None:
        row = self._one(
            "SELECT account_id, csrf, created_us, expires_us, last_seen_us FROM {p}tf_sessions WHERE token_hash = ?",
            (token_hash(token),),
        )
        return Session(str(row[0]), str(row[1]), int(row[2]), int(row[3]), int(row[4])) if row else None

    def touch(self, token: str, now_us: int) -> None:
        self._run("UPDATE {p}tf_sessions SET last_seen_us = ? WHERE token_hash = ?", (now_us, token_hash(token)))

    def end_session(self, token: str) -> None:
        self._run("DELETE FROM {p}tf_sessions WHERE token_hash = ?", (token_hash(token),))

    def end_sessions_of(self, account_id: str) -> int:
        return self._run("DELETE FROM {p}tf_sessions WHERE account_id = ?", (account_id,))

    def purge_expired(self, now_us: int) -> int:
        return self._run("DELETE FROM {p}tf_sessions WHERE expires_us < ?", (now_us,))

    def close(self) -> None:
        if not self.postgres:
            self._db.close()
