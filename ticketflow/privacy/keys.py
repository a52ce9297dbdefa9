"""Per-customer data keys: the key that encrypts one customer's personal data, until erasure.

Erasure destroys the key (crypto-shredding): every stored event keeps its bytes, so the
history stays complete and verifiable, but that customer's personal fields can no longer
be read by anyone. Keys live apart from the events:

* SQLite: ``<store>-keys.sqlite`` beside the event store, with ``secure_delete`` on, so a
  destroyed key is overwritten on disk, not left in a free page;
* PostgreSQL: the table ``tf_subject_keys`` in the store's schema (vacuumed after erasure);
* memory: a dict.

Each process caches keys for a few seconds, so an erasure made by another process takes
effect everywhere within :data:`CACHE_SECONDS`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from typing import Any
from uuid import UUID

from ticketflow.config import Settings, StorageKind
from ticketflow.privacy.pg_rewrite import rewrite_tables

#: How long a process trusts its cached copy of a key (or of its absence).
CACHE_SECONDS = 2.0
KEY_BYTES = 32



def secure_sqlite(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A connection to a SQLite file holding secrets or personal data: a deleted row (a destroyed key,
    an erased entry) is overwritten on disk (``secure_delete``), in WAL mode like the desk's stores."""
    connection = sqlite3.connect(path, timeout=10)
    connection.execute("PRAGMA secure_delete = ON")
    connection.execute("PRAGMA journal_mode = WAL")
    return connection

class KeyStore(ABC):
    """Create-on-first-use, read and destroy per-customer keys."""

    def __init__(self) -> None:
        self._cache: dict[UUID, tuple[float, bytes | None]] = {}
        self._lock = threading.Lock()

    def key_for(self, subject: UUID, create: bool) -> bytes | None:
        """The subject's key; None when it was destroyed (or does not exist and ``create`` is false)."""
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(subject)
        if cached is not None and now - cached[0] < CACHE_SECONDS and (cached[1] is not None or not create):
            return cached[1]
        key, erased = self._load(subject)
        if key is None and create and not erased:
            key = self._create(subject, os.urandom(KEY_BYTES))
        with self._lock:
            self._cache[subject] = (now, key)
        return key

    def is_erased(self, subject: UUID) -> bool:
        return self._load(subject)[1]

    def destroy(self, subject: UUID) -> None:
        """Destroy the key for good (idempotent); the subject's personal data becomes unreadable."""
        self._destroy(subject)
        with self._lock:
            self._cache[subject] = (time.monotonic(), None)

    def forget(self, subject: UUID) -> None:
        """Drop this process's copy of the subject's key: the next use asks the store (an erasure by
        another process, seen in the log, takes effect here at once instead of after CACHE_SECONDS)."""
        with self._lock:
            self._cache.pop(subject, None)

    @abstractmethod
    def _load(self, subject: UUID) -> tuple[bytes | None, bool]:
        """(key or None, erased)."""

    @abstractmethod
    def _create(self, subject: UUID, key: bytes) -> bytes:
        """Store ``key`` unless another writer stored one first; return the stored key."""

    @abstractmethod
    def _destroy(self, subject: UUID) -> None: ...

    def close(self) -> None:
        pass


class MemoryKeyStore(KeyStore):
    def __init__(self) -> None:
        super().__init__()
        self._keys: dict[UUID, bytes | None] = {}

    def _load(self, subject: UUID) -> tuple[bytes | None, bool]:
        with self._lock:
            present = subject in self._keys
            key = self._keys.get(subject)
        return key, present and key is None

    def _create(self, subject: UUID, key: bytes) -> bytes:
        with self._lock:
            return self._keys.setdefault(subject, key) or key

    def _destroy(self, subject: UUID) -> None:
        with self._lock:
            self._keys[subject] = None


class SQLiteKeyStore(KeyStore):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self._local = threading.local()
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS tf_subject_keys ("
                "subject_id TEXT PRIMARY KEY, key BLOB, created_at REAL, erased_at REAL)"
            )

    def _connect(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = secure_sqlite(self.path)
        return connection

    def _load(self, subject: UUID) -> tuple[bytes | None, bool]:
        row = self._connect().execute(
            "SELECT key, erased_at FROM tf_subject_keys WHERE subject_id = ?", (str(subject),)
        ).fetchone()
        if row is None:
            return None, False
        return (bytes(row[0]) if row[0] is not None else None), row[1] is not None

    def _create(self, subject: UUID, key: bytes) -> bytes:
        with self._connect() as db:
            db.execute(
                "INSERT OR IGNORE INTO tf_subject_keys (subject_id, key, created_at) VALUES (?, ?, ?)",
                (str(subject), key, time.time()),
            )
        stored, _ = self._load(subject)
        return stored or key

    def _destroy(self, subject: UUID) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO tf_subject_keys (subject_id, key, created_at, erased_at) VALUES (?, NULL, ?, ?) "
                "ON CONFLICT (subject_id) DO UPDATE SET key = NULL, erased_at = excluded.erased_at",
                (str(subject), time.time(), time.time()),
            )
        self._connect().execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no copy of the key left in the WAL


class PostgresKeyStore(KeyStore):
    def __init__(self, datastore: Any) -> None:
        super().__init__()
        self.datastore = datastore
        schema = '"' + datastore.schema.replace('"', '""') + '".' if datastore.schema else ""
        self.table = f"{schema}tf_subject_keys"
        with datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table} ("
                "subject_id TEXT PRIMARY KEY, key BYTEA, created_at DOUBLE PRECISION, erased_at DOUBLE PRECISION)"
            )

    def _load(self, subject: UUID) -> tuple[bytes | None, bool]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT key, erased_at FROM {self.table} WHERE subject_id = %s", (str(subject),))
            row = cursor.fetchone()
        if row is None:
            return None, False
        key = row["key"]
        return (bytes(key) if key is not None else None), row["erased_at"] is not None

    def _create(self, subject: UUID, key: bytes) -> bytes:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"INSERT INTO {self.table} (subject_id, key, created_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (subject_id) DO NOTHING",
                (str(subject), key, time.time()),
            )
        stored, _ = self._load(subject)
        return stored or key

    def _destroy(self, subject: UUID) -> None:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                f"INSERT INTO {self.table} (subject_id, key, created_at, erased_at) VALUES (%s, NULL, %s, %s) "
                "ON CONFLICT (subject_id) DO UPDATE SET key = NULL, erased_at = EXCLUDED.erased_at",
                (str(subject), time.time(), time.time()),
            )
        # The old row version (the key) stays in the table's file as a dead tuple until the table
        # is rewritten: a plain VACUUM only marks its space reusable. VACUUM FULL copies the live
        # rows into a new file and drops the old one (it cannot run in a transaction), once no
        # transaction that could still see the key is open (ticketflow.privacy.pg_rewrite).
        with self.datastore.get_connection() as connection:
            was = connection.autocommit
            connection.autocommit = True
            try:
                rewrite_tables(connection, [self.table])
            finally:
                connection.autocommit = was


def open_key_store(settings: Settings, recorder: Any) -> KeyStore:
    """The key store for the configured database (``recorder``: the desk's event recorder)."""
    if settings.storage is StorageKind.MEMORY:
        return MemoryKeyStore()
    if settings.storage is StorageKind.SQLITE:
        path = settings.sqlite_path
        return SQLiteKeyStore(str(path.with_name(f"{path.stem}-keys.sqlite")))
    return PostgresKeyStore(recorder.datastore)


class LazyKeyStore:
    """Opens the real key store on first use (the desk builds its mapper before its recorder)."""

    def __init__(self, opener: Any) -> None:
        self._opener = opener
        self._store: KeyStore | None = None
        self._lock = threading.Lock()

    @property
    def store(self) -> KeyStore:
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = self._opener()
        return self._store

    def key_for(self, subject: UUID, create: bool) -> bytes | None:
        return self.store.key_for(subject, create)

    def is_erased(self, subject: UUID) -> bool:
        return self.store.is_erased(subject)

    def destroy(self, subject: UUID) -> None:
        self.store.destroy(subject)

    def forget(self, subject: UUID) -> None:
        if self._store is not None:  # a store not opened yet holds no key
            self._store.forget(subject)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
