"""What the email channel keeps outside the event log, beside the customers' keys.

* the **blind index** of customers' email addresses: HMAC-SHA256 of the normalised address
  under a key derived from the desk's secret, mapped to the customer. The address itself is only
  stored sealed in the customer's events; the index finds the customer without decrypting every
  profile, and its entries are deleted when the customer is erased;
* the **raw messages** kept for audit: AES-256-GCM under the customer's key (erasure makes
  them unreadable, and erasure deletes them too), addressed by the SHA-256 of the ciphertext
  (a hash of the plaintext would outlive erasure as a fingerprint of the mail);
* **ticket references** (``#1a2b3c4d``) the desk put in subjects of mail it sent or answered;
* the **attachments** of received mail, sealed like the raw messages and addressed the same way: files
  in ``<store>-attachments/`` beside the event store (SQLite; a row in the mail store names each file's
  customer), rows of a bytea table (PostgreSQL);
* each IMAP mailbox's **high-water mark**: the folder's UIDVALIDITY and the last UID taken in, recorded
  only after the mail is committed (a crash in between fetches it again; intake is idempotent).

Stores: a dict (memory), ``<store>-mail.sqlite`` beside the event store (SQLite), tables
``tf_mail_*`` in the store's schema (PostgreSQL).
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any
from uuid import UUID

from ticketflow.config import Settings, StorageKind
from ticketflow.privacy.keys import secure_sqlite

_TABLES = (
    "CREATE TABLE IF NOT EXISTS {p}tf_mail_index (digest TEXT PRIMARY KEY, customer_id TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {p}tf_mail_raw (digest TEXT PRIMARY KEY, customer_id TEXT NOT NULL, data {blob})",
    "CREATE TABLE IF NOT EXISTS {p}tf_mail_refs (ref TEXT PRIMARY KEY, ticket_id TEXT NOT NULL)",
    (
        "CREATE TABLE IF NOT EXISTS {p}tf_mail_attachments (digest TEXT PRIMARY KEY, customer_id TEXT NOT NULL,"
        " size BIGINT NOT NULL, data {blob})"
    ),
    "CREATE INDEX IF NOT EXISTS tf_mail_attachments_customer ON {p}tf_mail_attachments (customer_id)",
    (
        "CREATE TABLE IF NOT EXISTS {p}tf_mail_imap (mailbox_id TEXT PRIMARY KEY, uidvalidity BIGINT NOT NULL,"
        " last_uid BIGINT NOT NULL)"
    ),
)


class MailStore(ABC):
    @abstractmethod
    def index(self, digest: str, customer_id: UUID) -> None:
        """Point the address digest at the customer (the newest registration wins)."""

    @abstractmethod
    def unindex(self, customer_id: UUID) -> None:
        """Forget every address digest of the customer."""

    @abstractmethod
    def lookup(self, digest: str) -> UUID | None: ...

    @abstractmethod
    def keep_raw(self, digest: str, customer_id: UUID, data: bytes) -> None:
        """Store one sealed message under the hash of its ciphertext (idempotent)."""

    @abstractmethod
    def raw(self, digest: str) -> tuple[UUID, bytes] | None: ...

    @abstractmethod
    def drop_raw(self, customer_id: UUID) -> int:
        """Delete the customer's sealed messages (erasure); how many there were."""

    @abstractmethod
    def add_ref(self, ref: str, ticket_id: UUID) -> None: ...

    @abstractmethod
    def ticket_of_ref(self, ref: str) -> UUID | None: ...

    @abstractmethod
    def keep_attachment(self, digest: str, customer_id: UUID, data: bytes) -> None:
        """Store one sealed attachment under the hash of its ciphertext (idempotent)."""

    @abstractmethod
    def attachment(self, digest: str) -> tuple[UUID, bytes] | None: ...

    @abstractmethod
    def drop_attachments(self, customer_id: UUID) -> int:
        """Delete the customer's sealed attachments (erasure); how many there were."""

    @abstractmethod
    def imap_mark(self, mailbox_id: UUID) -> tuple[int, int] | None:
        """The mailbox's (UIDVALIDITY, last UID taken in), or None before its first mail."""

    @abstractmethod
    def set_imap_mark(self, mailbox_id: UUID, uidvalidity: int, last_uid: int) -> None: ...

    def forget(self, customer_id: UUID) -> None:
        """Erasure: no index entry and no raw message of the customer stays."""
        self.unindex(customer_id)
        self.drop_raw(customer_id)
        self.drop_attachments(customer_id)

    def close(self) -> None:
        pass


class MemoryMailStore(MailStore):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._index: dict[str, UUID] = {}
        self._raw: dict[str, tuple[UUID, bytes]] = {}
        self._refs: dict[str, UUID] = {}
        self._marks: dict[UUID, tuple[int, int]] = {}
        self._attachments: dict[str, tuple[UUID, bytes]] = {}

    def index(self, digest: str, customer_id: UUID) -> None:
        with self._lock:
            self._index[digest] = customer_id

    def unindex(self, customer_id: UUID) -> None:
        with self._lock:
            self._index = {d: c for d, c in self._index.items() if c != customer_id}

    def lookup(self, digest: str) -> UUID | None:
        return self._index.get(digest)

    def keep_raw(self, digest: str, customer_id: UUID, data: bytes) -> None:
        with self._lock:
            self._raw.setdefault(digest, (customer_id, data))

    def raw(self, digest: str) -> tuple[UUID, bytes] | None:
        return self._raw.get(digest)

    def drop_raw(self, customer_id: UUID) -> int:
        with self._lock:
            gone = [d for d, (c, _) in self._raw.items() if c == customer_id]
            for digest in gone:
                del self._raw[digest]
        return len(gone)

    def add_ref(self, ref: str, ticket_id: UUID) -> None:
        with self._lock:
            self._refs.setdefault(ref, ticket_id)

    def ticket_of_ref(self, ref: str) -> UUID | None:
        return self._refs.get(ref)

    def keep_attachment(self, digest: str, customer_id: UUID, data: bytes) -> None:
        with self._lock:
            self._attachments.setdefault(digest, (customer_id, data))

    def attachment(self, digest: str) -> tuple[UUID, bytes] | None:
        return self._attachments.get(digest)

    def drop_attachments(self, customer_id: UUID) -> int:
        with self._lock:
            gone = [d for d, (c, _) in self._attachments.items() if c == customer_id]
            for digest in gone:
                del self._attachments[digest]
        return len(gone)

    def imap_mark(self, mailbox_id: UUID) -> tuple[int, int] | None:
        return self._marks.get(mailbox_id)

    def set_imap_mark(self, mailbox_id: UUID, uidvalidity: int, last_uid: int) -> None:
        with self._lock:
            self._marks[mailbox_id] = (uidvalidity, last_uid)


class SqlMailStore(MailStore):
    """SQLite and PostgreSQL: the same statements, their own placeholders and connections."""

    def __init__(self, prefix: str, placeholder: str, blob: str) -> None:
        self.p, self.ph = prefix, placeholder
        for statement in _TABLES:
            self._run(statement.format(p=prefix, blob=blob), ())

    @abstractmethod
    def _run(self, sql: str, params: tuple[Any, ...], fetch: bool = False) -> list[Any]: ...

    def _sql(self, sql: str) -> str:
        return sql.replace("{p}", self.p).replace("?", self.ph)

    def index(self, digest: str, customer_id: UUID) -> None:
        self._run(
            self._sql(
                "INSERT INTO {p}tf_mail_index (digest, customer_id) VALUES (?, ?) "
                "ON CONFLICT (digest) DO UPDATE SET customer_id = excluded.customer_id"
            ),
            (digest, str(customer_id)),
        )

    def unindex(self, customer_id: UUID) -> None:
        self._run(self._sql("DELETE FROM {p}tf_mail_index WHERE customer_id = ?"), (str(customer_id),))

    def lookup(self, digest: str) -> UUID | None:
        rows = self._run(
            self._sql("SELECT customer_id FROM {p}tf_mail_index WHERE digest = ?"), (digest,), fetch=True
        )
        return UUID(rows[0][0]) if rows else None

    def keep_raw(self, digest: str, customer_id: UUID, data: bytes) -> None:
        self._run(
            self._sql(
                "INSERT INTO {p}tf_mail_raw (digest, customer_id, data) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
            ),
            (digest, str(customer_id), data),
        )

    def raw(self, digest: str) -> tuple[UUID, bytes] | None:
        rows = self._run(
            self._sql("SELECT customer_id, data FROM {p}tf_mail_raw WHERE digest = ?"), (digest,), fetch=True
        )
        return (UUID(rows[0][0]), bytes(rows[0][1])) if rows else None

    def drop_raw(self, customer_id: UUID) -> int:
        rows = self._run(
            self._sql("DELETE FROM {p}tf_mail_raw WHERE customer_id = ? RETURNING digest"),
            (str(customer_id),),
            fetch=True,
        )
        return len(rows)

    def add_ref(self, ref: str, ticket_id: UUID) -> None:
        self._run(
            self._sql("INSERT INTO {p}tf_mail_refs (ref, ticket_id) VALUES (?, ?) ON CONFLICT DO NOTHING"),
            (ref, str(ticket_id)),
        )

    def ticket_of_ref(self, ref: str) -> UUID | None:
        rows = self._run(self._sql("SELECT ticket_id FROM {p}tf_mail_refs WHERE ref = ?"), (ref,), fetch=True)
        return UUID(rows[0][0]) if rows else None

    # Attachments: the row names the customer; the bytes are in the row (PostgreSQL) or in a file (SQLite).
    def _put_bytes(self, digest: str, data: bytes) -> bytes | None:
        """Keep the bytes outside the row if this store does; what goes into the row's data column."""
        return data

    def _get_bytes(self, digest: str, row_data: Any) -> bytes | None:
        return None if row_data is None else bytes(row_data)

    def _drop_bytes(self, digest: str) -> None:
        pass

    def keep_attachment(self, digest: str, customer_id: UUID, data: bytes) -> None:
        row_data = self._put_bytes(digest, data)
        self._run(
            self._sql(
                "INSERT INTO {p}tf_mail_attachments (digest, customer_id, size, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING"
            ),
            (digest, str(customer_id), len(data), row_data),
        )

    def attachment(self, digest: str) -> tuple[UUID, bytes] | None:
        rows = self._run(
            self._sql("SELECT customer_id, data FROM {p}tf_mail_attachments WHERE digest = ?"),
            (digest,),
            fetch=True,
        )
        if not rows:
            return None
        data = self._get_bytes(digest, rows[0][1])
        return None if data is None else (UUID(rows[0][0]), data)

    def drop_attachments(self, customer_id: UUID) -> int:
        rows = self._run(
            self._sql("DELETE FROM {p}tf_mail_attachments WHERE customer_id = ? RETURNING digest"),
            (str(customer_id),),
            fetch=True,
        )
        for (digest,) in rows:
            self._drop_bytes(digest)
        return len(rows)

    def imap_mark(self, mailbox_id: UUID) -> tuple[int, int] | None:
        rows = self._run(
            self._sql("SELECT uidvalidity, last_uid FROM {p}tf_mail_imap WHERE mailbox_id = ?"),
            (str(mailbox_id),),
            fetch=True,
        )
        return (int(rows[0][0]), int(rows[0][1])) if rows else None

    def set_imap_mark(self, mailbox_id: UUID, uidvalidity: int, last_uid: int) -> None:
        self._run(
            self._sql(
                "INSERT INTO {p}tf_mail_imap (mailbox_id, uidvalidity, last_uid) VALUES (?, ?, ?) "
                "ON CONFLICT (mailbox_id) DO UPDATE SET uidvalidity = excluded.uidvalidity, "
                "last_uid = excluded.last_uid"
            ),
            (str(mailbox_id), uidvalidity, last_uid),
        )


_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class SQLiteMailStore(SqlMailStore):
    """The mail store's tables in ``<store>-mail.sqlite``; attachments as files in ``<store>-attachments/``
    (one per ciphertext, named by its digest: a database file stays small, a backup copies files)."""

    def __init__(self, path: str, attachments_dir: str | None = None) -> None:
        self.path = path
        self.attachments_dir = Path(attachments_dir or str(Path(path).with_suffix("")) + "-attachments")
        self._local = threading.local()
        super().__init__("", "?", "BLOB")

    def _file(self, digest: str) -> Path:
        if not _DIGEST.match(digest):
            raise ValueError("not an attachment digest")
        return self.attachments_dir / digest[:2] / digest

    def _put_bytes(self, digest: str, data: bytes) -> bytes | None:
        target = self._file(digest)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            partial = target.with_name(f"{digest}.{os.getpid()}.{threading.get_ident()}.partial")
            with open(partial, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(partial, target)  # whole or absent: a crash never leaves half a file under the name
        return None

    def _get_bytes(self, digest: str, row_data: Any) -> bytes | None:
        try:
            return self._file(digest).read_bytes()
        except (FileNotFoundError, ValueError):
            return None

    def _drop_bytes(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            self._file(digest).unlink()

    def _connect(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = secure_sqlite(self.path)  # an erased entry is overwritten
        return connection

    def _run(self, sql: str, params: tuple[Any, ...], fetch: bool = False) -> list[Any]:
        with self._connect() as db:
            cursor = db.execute(sql, params)
            return cursor.fetchall() if fetch else []


class PostgresMailStore(SqlMailStore):
    def __init__(self, datastore: Any) -> None:
        self.datastore = datastore
        prefix = '"' + datastore.schema.replace('"', '""') + '".' if datastore.schema else ""
        super().__init__(prefix, "%s", "BYTEA")

    def _run(self, sql: str, params: tuple[Any, ...], fetch: bool = False) -> list[Any]:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(sql, params)
            return [tuple(row.values()) for row in cursor.fetchall()] if fetch else []


def open_mail_store(settings: Settings, recorder: Any) -> MailStore:
    if settings.storage is StorageKind.MEMORY:
        return MemoryMailStore()
    if settings.storage is StorageKind.SQLITE:
        path = settings.sqlite_path
        return SQLiteMailStore(
            str(path.with_name(f"{path.stem}-mail.sqlite")), str(path.with_name(f"{path.stem}-attachments"))
        )
    return PostgresMailStore(recorder.datastore)
