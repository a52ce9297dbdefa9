"""A view's PostgreSQL store (imported only when the store is PostgreSQL: it pulls in psycopg)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresTrackingRecorder

from projections.sql import Db, Dialect
from projections.view import _DDL_LOCK, ViewStore
from ticketflow.pg_ddl import SerialisedTrackingDdl
from ticketflow.privacy.pg_rewrite import rewrite_tables
from ticketflow.reconnect import retry_dead_connections

R = TypeVar("R")

#: A view batch's transaction does not wait for its WAL flush (see PostgresViewStore._batch_begun).
_BATCH_ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"


class PostgresViewStore(SerialisedTrackingDdl, ViewStore, PostgresTrackingRecorder):
    dialect = Dialect.POSTGRES

    def __init__(self, datastore: Any, **kwargs: Any) -> None:
        super().__init__(datastore, **kwargs)
        table = '"' + self.tracking_table_name.replace('"', '""') + '"'
        self._reset_tracking_sql = f"UPDATE {{p}}{table} SET notification_id = 0 WHERE application_name = ?"  # type: ignore[misc]
        self._select_tracking_sql = (  # type: ignore[misc]
            f"SELECT notification_id FROM {{p}}{table} WHERE application_name = ? FOR UPDATE"
        )

    @property
    def prefix(self) -> str:
        return '"' + self.datastore.schema.replace('"', '""') + '".'

    def _create_table(self, curs: Any) -> None:
        """The tracking table, under the same lock as the view's tables (see :meth:`create_table`)."""
        curs.execute(_DDL_LOCK)
        super()._create_table(curs)

    def _has_table(self, db: Db, name: str) -> bool:
        found = db.one("SELECT to_regclass(?) IS NOT NULL AS found", (f"{self.prefix}{name}",))
        return bool(found and found["found"])

    @contextmanager
    def _transaction(self, commit: bool) -> Iterator[Any]:
        if (held := self._held()) is not None:
            yield held
            return
        with self.datastore.transaction(commit=commit) as cursor:
            yield cursor

    @contextmanager
    def _read_only(self) -> Iterator[Any]:
        """A read's transaction (:meth:`read`; ``_transaction(commit=False)`` still rolls back whatever it
        did): ``BEGIN READ ONLY`` ... ``COMMIT``, not the library's ``BEGIN`` ...
        ``ROLLBACK``. The same for a read (nothing to keep or undo; a write fails instead of being
        undone), but psycopg empties a connection's prepared statements after every ``ROLLBACK``
        (``DEALLOCATE ALL``): each statement then ran unprepared five more times (parsed and planned
        on the server) before being prepared again, on every pooled connection the read had borrowed.
        The automation's due-work reads did that to ``project``'s connections several times a second."""
        with self.datastore.get_connection() as conn:
            conn.read_only = True
            try:
                with conn.transaction():
                    yield conn.cursor()
            finally:
                if not conn.closed:
                    conn.read_only = None

    def _batch_begun(self, cursor: Any) -> None:
        """A view batch's COMMIT does not wait for its WAL to reach the disk (``synchronous_commit =
        off`` for this transaction alone; the automation's marks, the sealer's checkpoints and the
        events keep the server's setting). Safe because of what the transaction holds: the rows made
        from events already durable in the log, and the position they reach, together. A crash may lose
        the last such commits (never a part of one); the view then restarts from the position that
        survived and makes the same rows again from the log. Nothing durable can depend on a lost batch:
        PostgreSQL's WAL is one sequence, and any durable COMMIT written after the batch was visible
        (the automation acting on the workflow view, say) flushes the batch's WAL with its own."""
        cursor.execute(_BATCH_ASYNC_COMMIT)

    def read(self, query: Callable[[Db], R]) -> R:
        """A read, retried on a pooled connection that died with a database restart."""
        return retry_dead_connections(lambda: self._read(query))

    def _read(self, query: Callable[[Db], R]) -> R:
        if (held := self._held()) is not None:
            return query(Db(held, self.dialect, self.prefix))
        with self._read_only() as cursor:
            return query(Db(cursor, self.dialect, self.prefix))

    def _insert_tracking_in(self, cursor: Any, tracking: Tracking) -> None:
        self._insert_tracking(cursor, tracking)

    def compact_after_erasure(self) -> None:
        """Rewrite the view's tables (``VACUUM FULL``): the purge's UPDATEs left the old row
        versions as dead tuples, and a plain VACUUM only marks their space free, it does not
        zero it. The rewrite copies the live rows into new files and drops the old ones (and
        rebuilds the indexes, whose entries held the old text too), once the transactions that
        could still see the old rows have ended. It locks each table for its duration (short for
        a view's size); see README "Erasure" for WAL and backups."""
        with self.datastore.get_connection() as connection:
            rewrite_tables(connection, [f"{self.prefix}{name}" for name in self.view.table_names(Dialect.POSTGRES)])
