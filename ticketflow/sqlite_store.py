"""SQLite connections that keep their prepared statements.

eventsourcing's SQLite pool opens every connection with ``sqlite3.connect(..., cached_statements=True)``:
the argument is the size of the connection's statement cache, and ``True`` is 1. Each connection
then keeps only the statement it ran last, so a run of different statements (a command's reads and
writes, a view batch's loads and upserts, the automation's looks) compiles each one anew every time
it runs: SQLite's parser and planner on every execute. :class:`SQLiteFactory` is eventsourcing's
factory with connections that keep :data:`STATEMENT_CACHE` statements (Python's default is 128).

Measured: ``ticketflow demo --seed 1`` (1,000 tickets) 12.3 s -> 9.5 s CPU, the same events
(``bench/demo_digest.py``, interleaved with main, two rounds each).

It is named in the eventsourcing environment (``PERSISTENCE_MODULE``: ``config.SQLITE_FACTORY_TOPIC``) of
the event store and of every SQLite view (:meth:`ticketflow.config.Settings.eventsourcing_env`,
``projections.readside``).
"""

from __future__ import annotations

import sqlite3

from eventsourcing.persistence import InterfaceError
from eventsourcing.sqlite import SQLITE3_DEFAULT_LOCK_TIMEOUT, SQLiteConnection, SQLiteConnectionPool
from eventsourcing.sqlite import SQLiteFactory as _LibrarySQLiteFactory
from eventsourcing.utils import Environment, EnvType

#: Statements each connection keeps compiled. A view's connection runs a few dozen distinct texts
#: (more with IN lists of varying length); twice Python's default leaves room for them all.
STATEMENT_CACHE = 256

class StatementCachingPool(SQLiteConnectionPool):
    """eventsourcing's SQLite pool, whose connections keep :data:`STATEMENT_CACHE` compiled statements."""

    def _create_connection(self) -> SQLiteConnection:
        """A connection as the library's pool makes it (URI name, any thread, autocommit, the lock
        timeout, WAL on a file, rows as ``sqlite3.Row``), with a statement cache worth the name."""
        try:
            raw = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                cached_statements=STATEMENT_CACHE,
                timeout=self.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
            )
        except (sqlite3.Error, TypeError) as exc:
            raise InterfaceError(exc) from exc
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            (mode,) = raw.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                raw.execute("PRAGMA journal_mode=WAL")
                self.journal_mode_was_changed_to_wal = True
            self.is_journal_mode_wal = True
        raw.row_factory = sqlite3.Row
        return SQLiteConnection(sqlite_conn=raw, max_age=self.max_age)


class SQLiteFactory(_LibrarySQLiteFactory):
    """eventsourcing's SQLite factory, its datastore's pool a :class:`StatementCachingPool` (the same
    settings: it has opened no connection yet when replaced)."""

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        library = self.datastore.pool
        self.datastore.pool = StatementCachingPool(
            db_name=library.db_name, lock_timeout=library.lock_timeout, pool_size=library.pool_size,
            max_overflow=library.max_overflow, pool_timeout=library.pool_timeout, max_age=library.max_age,
            pre_ping=library.pre_ping,
        )
