"""A view: its tables, how each event changes them, and its SQLite / PostgreSQL stores.

Each view's store is an eventsourcing tracking recorder: the rows a batch of
events produces and the view's tracking position commit in one transaction,
so a view never counts an event twice or skips one, whatever crashes when.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache, lru_cache
from typing import Any, ClassVar, TypeVar

from eventsourcing.persistence import IntegrityError, Tracking, TrackingRecorder
from eventsourcing.projection import Projection
from eventsourcing.sqlite import SQLiteTrackingRecorder

from projections.erasure import erased_customer
from projections.sql import Batch, Db, Dialect, Table, register_functions, render
from ticketflow.domain import TicketflowAggregate

Event = TicketflowAggregate.Event
Positioned = tuple[Event, int]  # an event and its global log position
R = TypeVar("R")
_CREATED = re.compile(r"CREATE (?:VIRTUAL )?TABLE IF NOT EXISTS \{p\}(\w+)", re.IGNORECASE)
#: How long a view keeps trying to truncate its WAL after an erasure (readers may be busy).
ERASURE_CHECKPOINT_SECONDS = 5.0
log = logging.getLogger("ticketflow.projections")


class View(ABC):
    """The logic of one read model, independent of the database it lives in."""

    name: ClassVar[str]
    tables: ClassVar[tuple[Table, ...]]
    #: Whether the view copies personal data (and so purges it on ``Customer.Erased``, then compacts).
    purges_personal_data: ClassVar[bool] = False
    #: The version of the view's tables and of what ``apply`` writes into them. Raise it whenever
    #: either changes: a store built by an older version is refused until ``ticketflow rebuild VIEW``
    #: (which drops and recreates the tables, then replays the log with this code).
    version: ClassVar[int] = 1
    #: The event classes ``apply`` reacts to (subclasses included); None: every event. Events of other
    #: classes are not given to the view, and a read that feeds only such views skips decoding them
    #: (a rebuild of the team directory decodes the team events, not the whole log). A view that
    #: purges personal data lists ``Customer.Erased``.
    event_types: ClassVar[tuple[type, ...] | None] = None
    #: Tables kept beside the view's own in its store for another writer (the automation's marks): not
    #: cleared by a rebuild, and kept when a new version of the view drops and recreates its tables.
    bookkeeping: ClassVar[tuple[Table, ...]] = ()

    def wants(self, event_class: type) -> bool:
        """Whether events of ``event_class`` change the view (see :attr:`event_types`)."""
        return self.event_types is None or _is_subclass(event_class, self.event_types)

    def ddl(self, dialect: Dialect) -> list[str]:
        return [statement for table in self.tables for statement in table.ddl()]

    def table_names(self, dialect: Dialect) -> list[str]:
        """Every table the view creates on ``dialect`` (its ``tables`` and any extra, e.g. search terms)."""
        names = [m.group(1) for statement in self.ddl(dialect) if (m := _CREATED.search(statement))]
        return list(dict.fromkeys(names))

    def clear(self, db: Db) -> None:
        for table in self.tables:
            db.execute(f"DELETE FROM {{p}}{table.name}")

    def prepare(self, batch: Batch, events: Sequence[Positioned]) -> None:
        """Load, in a few queries, the rows the batch will touch (optional)."""

    @abstractmethod
    def apply(self, batch: Batch, event: Event, position: int) -> None:
        """Change the view's rows for one event. Only reads and writes ``batch``."""

    def finish(self, batch: Batch) -> None:
        """Write whatever the batch accumulated beyond its rows (optional)."""


@lru_cache(maxsize=4096)
def _is_subclass(event_class: type, event_types: tuple[type, ...]) -> bool:
    return issubclass(event_class, event_types)


#: One row per view: the version of the code that built the view's tables and rows.
VERSIONS_DDL = "CREATE TABLE IF NOT EXISTS {p}tf_view_versions (view TEXT PRIMARY KEY, version INTEGER NOT NULL)"
#: PostgreSQL: one process at a time creates view tables (held until its transaction ends).
_DDL_LOCK = "SELECT pg_advisory_xact_lock(hashtext('ticketflow view tables'))"
_STAMP = (
    "INSERT INTO {p}tf_view_versions (view, version) VALUES (?, ?) "
    "ON CONFLICT (view) DO UPDATE SET version = excluded.version"
)


class ViewStore(TrackingRecorder):
    """What the workers and readers need from a view's store, on either database."""

    view: View
    dialect: ClassVar[Dialect]

    def create_table(self) -> None:
        """The tracking table, the versions table, and the view's tables, unless the store was built
        by another version of the view: its tables are then left as they are (the new statements
        may not apply to them) until a rebuild drops and recreates them."""
        super().create_table()  # type: ignore[misc]  # the recorder class this is mixed into
        with self._transaction(commit=True) as cursor:
            db = Db(cursor, self.dialect, self.prefix)
            if self.dialect is Dialect.POSTGRES:
                # Processes starting together (serve's workers, project) would race to create the
                # same tables: CREATE TABLE IF NOT EXISTS is not safe against that.
                db.execute(_DDL_LOCK)
            db.execute(VERSIONS_DDL)
            stored = self._version_in(db)
            if stored is None:  # a new store, or one built before views carried versions (all were 1)
                names = self.view.table_names(self.dialect)
                existed = bool(names) and self._has_table(db, names[0])
                stored = 1 if existed else self.view.version
                db.execute(_STAMP.replace("DO UPDATE SET version = excluded.version", "DO NOTHING"),
                           (self.view.name, stored))
            if stored == self.view.version:
                for statement in self.view.ddl(self.dialect):
                    cursor.execute(render(statement, self.dialect, self.prefix))

    def _version_in(self, db: Db) -> int | None:
        row = db.one("SELECT version FROM {p}tf_view_versions WHERE view = ?", (self.view.name,))
        return int(row["version"]) if row else None

    def _has_table(self, db: Db, name: str) -> bool:
        raise NotImplementedError

    def stored_version(self) -> int:
        """The version of the view's code that built this store (see :attr:`View.version`)."""
        with self._transaction(commit=False) as cursor:
            version = self._version_in(Db(cursor, self.dialect, self.prefix))
        return self.view.version if version is None else version

    @property
    def prefix(self) -> str:
        raise NotImplementedError

    @contextmanager
    def _transaction(self, commit: bool) -> Iterator[Any]:
        raise NotImplementedError
        yield

    def _insert_tracking_in(self, cursor: Any, tracking: Tracking) -> None:
        raise NotImplementedError

    def process_batch(self, events: Sequence[Positioned], tracking: Tracking, previous: int | None = None) -> None:
        """Apply events and record the tracking position, all in one transaction.

        With ``previous``, the batch commits only if the view is still at that position
        (compare-and-set): a rebuild that reset the view, or another worker that got
        there first, makes this batch roll back instead of skipping or repeating events.
        """
        own_transaction = self._held() is None
        with self._transaction(commit=True) as cursor:
            if own_transaction:
                self._batch_begun(cursor)
            if previous is not None:
                current = self._locked_position(cursor, tracking.application_name)
                if current != previous:
                    raise IntegrityError(
                        f"view {self.view.name} is at {current}, not {previous}: batch not applied"
                    )
            events = self._apply_in(cursor, events)
            self._insert_tracking_in(cursor, tracking)
        if self.view.purges_personal_data and any(erased_customer(event) for event, _ in events):
            self.compact_after_erasure()

    def _batch_begun(self, cursor: Any) -> None:
        """At the start of a batch's own transaction (its rows and its tracking position, nothing else)."""

    def _apply_in(self, cursor: Any, events: Sequence[Positioned]) -> Sequence[Positioned]:
        """Change the view's rows for the events it takes (returned), in the transaction of ``cursor``."""
        if self.view.event_types is not None:
            wants = self.view.wants
            events = [item for item in events if wants(type(item[0]))]
        batch = Batch(Db(cursor, self.dialect, self.prefix))
        self.view.prepare(batch, events)
        for event, position in events:
            self.view.apply(batch, event, position)
        batch.flush()
        self.view.finish(batch)
        return events

    def apply_held(self, events: Sequence[Positioned]) -> None:
        """Apply events in this thread's :meth:`holding` block without moving the view's position: the
        holder records the position once (:meth:`process_batch` with the block's last events, or none)
        before the block commits."""
        cursor = self._held()
        if cursor is None:
            raise RuntimeError(f"view {self.view.name}: apply_held outside a holding block")
        applied = self._apply_in(cursor, events)
        if self.view.purges_personal_data and any(erased_customer(event) for event, _ in applied):
            self.__dict__["_purged_while_held"] = True  # compacted once the block has committed

    def compact_after_erasure(self) -> None:
        """After a batch that purged an erased customer's data: leave no old copy of it in the
        database's files (SQLite: the write-ahead log; PostgreSQL: dead tuples)."""

    def _locked_position(self, cursor: Any, application_name: str) -> int:
        """The view's position, read under the write lock of this transaction."""
        db = Db(cursor, self.dialect, self.prefix)
        if self.dialect is Dialect.SQLITE:
            db.execute(self._lock_tracking_sql, (application_name,))  # takes the write lock now
        row = db.one(self._select_tracking_sql, (application_name,))
        return int(row["notification_id"]) if row else 0

    def reset(self, application_name: str, drop_indexes: bool = False) -> None:
        """Empty the view and move its tracking position back to the start, atomically.

        ``drop_indexes``: also drop the tables' secondary indexes, for a bulk reload that
        ends with :meth:`create_indexes` (loading first and indexing after is faster than
        keeping every index up to date row by row)."""
        with self._transaction(commit=True) as cursor:
            # Lock the position first, as a batch does: clearing rows a worker's batch is
            # about to touch before queueing for the position would deadlock with it.
            self._locked_position(cursor, application_name)
            db = Db(cursor, self.dialect, self.prefix)
            if self._version_in(db) != self.view.version:
                # Built by another version of the view: its tables may differ, so make them anew.
                kept = {table.name for table in self.view.bookkeeping}
                for name in self.view.table_names(self.dialect):
                    if name not in kept:
                        cursor.execute(f"DROP TABLE IF EXISTS {self.prefix}{name}")
                for statement in self.view.ddl(self.dialect):
                    cursor.execute(render(statement, self.dialect, self.prefix))
                db.execute(_STAMP, (self.view.name, self.view.version))
            self.view.clear(db)
            if drop_indexes:
                for table in self.view.tables:
                    for drop, _ in table.index_ddl():
                        cursor.execute(render(drop, self.dialect, self.prefix))
            cursor.execute(render(self._reset_tracking_sql, self.dialect, self.prefix), (application_name,))

    def create_indexes(self) -> None:
        """(Re)create the tables' secondary indexes; those that exist are left as they are."""
        with self._transaction(commit=True) as cursor:
            for table in self.view.tables:
                for _, create in table.index_ddl():
                    cursor.execute(render(create, self.dialect, self.prefix))

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Every transaction this thread opens on the store until the block ends is one transaction,
        committed when the block ends (rolled back when it raises): reads see the block's own writes,
        and nothing of them is seen elsewhere before. For a writer that feeds a view events its
        desk has not saved yet (``ticketflow demo``), so the view commits only after the events do."""
        if self.__dict__.get("_holding") is not None:
            raise RuntimeError(f"view {self.view.name}: already held")
        with self._transaction(commit=True) as cursor:
            self.__dict__["_holding"] = (threading.get_ident(), cursor)
            try:
                yield
            finally:
                self.__dict__["_holding"] = None
        if self.__dict__.pop("_purged_while_held", False):
            self.compact_after_erasure()

    def _held(self) -> Any | None:
        """The cursor of this thread's :meth:`holding` block, if it is in one."""
        holding = self.__dict__.get("_holding")
        return holding[1] if holding is not None and holding[0] == threading.get_ident() else None

    def read(self, query: Callable[[Db], R]) -> R:
        """Run a query in a read-only transaction."""
        with self._transaction(commit=False) as cursor:
            return query(Db(cursor, self.dialect, self.prefix))

    def write(self, change: Callable[[Db], R]) -> R:
        """Run a change in its own write transaction, outside the projection batches (the
        webhook sender's delivery states: rows the view itself only ever inserts)."""
        with self._transaction(commit=True) as cursor:
            return change(Db(cursor, self.dialect, self.prefix))

    _reset_tracking_sql: ClassVar[str] = ""
    _lock_tracking_sql: ClassVar[str] = ""
    _select_tracking_sql: ClassVar[str] = ""


class SQLiteViewStore(ViewStore, SQLiteTrackingRecorder):
    dialect = Dialect.SQLITE
    _reset_tracking_sql = "UPDATE tracking SET notification_id = 0 WHERE application_name = ?"
    _lock_tracking_sql = "UPDATE tracking SET notification_id = notification_id WHERE application_name = ?"
    _select_tracking_sql = "SELECT notification_id FROM tracking WHERE application_name = ?"

    @property
    def prefix(self) -> str:
        return ""

    def _has_table(self, db: Db, name: str) -> bool:
        return db.one("SELECT 1 AS found FROM sqlite_master WHERE name = ?", (name,)) is not None

    @contextmanager
    def _transaction(self, commit: bool) -> Iterator[Any]:
        if (held := self._held()) is not None:
            yield held
            return
        with self.datastore.get_connection(commit=commit) as connection:
            raw = connection._sqlite_conn  # per-connection settings, see below
            if id(raw) not in self._tuned:
                # A view is rebuildable and commits its rows with its position, so it does
                # not need an fsync per commit: WAL + NORMAL stays consistent after a crash,
                # at worst a little behind, and the worker catches up from its position.
                raw.execute("PRAGMA synchronous = NORMAL")
                # Erasure overwrites personal data in place: zero the freed and overwritten
                # content rather than leave the old text readable in free pages of the file.
                raw.execute("PRAGMA secure_delete = ON")
                self._tuned.add(id(raw))
            if self.attached and not getattr(connection, "_tf_attached", False):
                # Another view's file, read in this view's statements (``{workflow}``: the "SLA due
                # soon" queue joins the SLA clocks). ATTACH is refused inside a transaction: here,
                # once per connection (a new connection is a new object, whatever its id).
                for alias, db_name in self.attached.items():
                    raw.execute("ATTACH DATABASE ? AS " + alias, (db_name,))
                connection._tf_attached = True  # type: ignore[attr-defined]
            register_functions(raw)  # each time: cheap, and a new connection may reuse an old one's id
            with connection.transaction(commit=commit) as cursor:
                yield cursor

    def _insert_tracking_in(self, cursor: Any, tracking: Tracking) -> None:
        self._insert_tracking(cursor, tracking)

    def compact_after_erasure(self) -> None:
        """Copy the WAL into the database and truncate it to zero bytes: the purge overwrote the
        rows in place (``secure_delete`` zeroes what was freed), but the WAL still holds the pages
        as they were before. A reader on an older snapshot (another process) keeps the WAL busy
        for a moment: retry, then say so."""
        deadline = time.monotonic() + ERASURE_CHECKPOINT_SECONDS
        while True:
            with self.datastore.get_connection(commit=True) as connection:
                busy, _, _ = connection._sqlite_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                return
            if time.monotonic() > deadline:
                log.warning("view %s: the WAL could not be truncated after an erasure (readers busy); "
                            "it will be at the next checkpoint", self.view.name)
                return
            time.sleep(0.02)

    @property
    def attached(self) -> dict[str, str]:
        """Other views' SQLite files this view's connections attach (alias -> database name)."""
        attached: dict[str, str] = self.__dict__.setdefault("_attached", {})
        return attached

    @property
    def _tuned(self) -> set[int]:
        tuned: set[int] = self.__dict__.setdefault("_tuned_connections", set())
        return tuned


@cache
def store_class(view_class: type[View], dialect: Dialect) -> type[ViewStore]:
    """The store class of a view on a database (what the eventsourcing factory instantiates)."""
    if dialect is Dialect.SQLITE:
        base: type[ViewStore] = SQLiteViewStore
    else:  # imported here: eventsourcing.postgres pulls in psycopg, ~0.1 s a process that SQLite never needs
        from projections.view_pg import PostgresViewStore

        base = PostgresViewStore
    return type(f"{base.__name__}[{view_class.name}]", (base,), {"view": view_class()})


class ViewProjection(Projection[ViewStore]):
    """The eventsourcing projection of a view: every event, in order, exactly once."""

    topics: tuple[str, ...] = ()

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self.view.process_batch([(domain_event, tracking.notification_id)], tracking)

    def process_batch(self, events: Sequence[Positioned], tracking: Tracking, previous: int | None = None) -> None:
        """Many events in one transaction (what the workers and rebuilds use)."""
        self.view.process_batch(events, tracking, previous)


def __getattr__(name: str) -> Any:
    """``PostgresViewStore`` still importable from here (it lives in projections/view_pg.py)."""
    if name == "PostgresViewStore":
        from projections.view_pg import PostgresViewStore

        return PostgresViewStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
