"""Group commit on PostgreSQL: concurrent saves of one process share one transaction and one COMMIT.

The queue and the leader are SQLite's (:class:`ticketflow.group_commit.GroupCommit`): a save queues
its stored events and waits; one leader at a time takes every save waiting and writes them here,
then hands each its notification ids. What changes is the transaction, which keeps everything
eventsourcing's own ``PostgresApplicationRecorder.insert_events`` does for one save:

* it takes the event table's ``EXCLUSIVE`` lock first (``_lock_table``, with the store's
  ``lock_timeout``) and holds it to the COMMIT, and sends the table's ``NOTIFY``. The lock is what
  keeps positions in commit order across processes: ``notification_id`` is a sequence, so without it
  a transaction could take lower ids than another that commits first, and a reader tailing the log
  (the views, the sealer, the webhook outbox: each reads ``notification_id >= its position``) would
  pass over events that appear later below its position. Under the lock each group takes its ids and
  commits before any other writer (another worker, ``project``, a CLI) takes one;
* with the lock held, it looks up which ``(originator_id, originator_version)`` of the group are
  taken already: nothing else can insert events while the lock is held, so this is the
  optimistic-concurrency check of every save of the group, against the table and against the
  group's earlier saves. A save that lost its race is answered alone with ``IntegrityError`` (the
  desk turns that into a 409, or its usual retry; a retried command is recognised by its command id)
  and never reaches the ``INSERT``, so it takes no position: the log stays gap-free;
* the other saves are written by one ``INSERT`` (one round trip, ids in the order given), behind a
  savepoint. Should it fail anyway (a value the database refuses), the transaction goes back to that
  savepoint and writes the saves one by one, each behind a savepoint of its own: the one that fails
  is rolled back to its savepoint and answered alone with its error (its position numbers are then
  lost, a gap, as when eventsourcing's own insert fails), the others commit;
* one COMMIT for the group: one WAL flush. The answer is sent after the COMMIT returned, when the
  group's WAL is on disk: ``synchronous_commit`` is the server's (``on`` by default, or stronger
  with a synchronous standby), except that a session or database set to ``off`` is raised to
  ``local`` for this transaction (``SET LOCAL``): an acknowledged save is never only in memory.

The statements go through psycopg's pipeline: lock, ``NOTIFY`` and the check in one round trip, the
insert in a second, the COMMIT in a third, whatever the size of the group. A group whose connection
turns out dead (a database restart) before its COMMIT was sent is retried on another connection;
one that died during its COMMIT is answered with the error (whether it committed is unknown: the
command is retried by its caller and recognised by its command id).

Everything else a save writes stays in the events, so it commits with them: the command id (a
retried command finds it and is answered from its first outcome) and the writer MAC the sealer's
hash chain starts from; the chain itself is built afterwards, in log order, by the sealer. Each
process (every ``serve`` worker, ``project``) groups its own saves; the table lock orders the
groups of all processes.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from eventsourcing import persistence
from eventsourcing.persistence import PersistenceError
from psycopg.sql import SQL, Identifier

from ticketflow.group_commit import GroupCommit, Written, _Batch
from ticketflow.reconnect import ATTEMPTS, is_dead_connection

Key = tuple[UUID | str, int]

#: The group's COMMIT waits for its WAL to reach the disk, whatever the session or database says.
_DURABLE = "SELECT set_config('synchronous_commit', 'local', true) WHERE current_setting('synchronous_commit') = 'off'"


class PostgresGroupCommit(GroupCommit):
    """Mixin for eventsourcing's ``PostgresApplicationRecorder``: saves commit in groups."""

    datastore: Any
    events_table_name: str

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        id_type = self.datastore.originator_id_type  # "uuid" or "text"
        self._taken_statement = SQL(
            "SELECT t.originator_id, t.originator_version FROM {schema}.{table} AS t "
            "JOIN unnest(%s::{id_type}[], %s::bigint[]) AS k (originator_id, originator_version) "
            "USING (originator_id, originator_version)"
        ).format(
            schema=Identifier(self.datastore.schema),
            table=Identifier(self.events_table_name),
            id_type=Identifier(id_type),
        )
        self._notify_statement = SQL("NOTIFY {0}").format(Identifier(self.channel_name))  # type: ignore[attr-defined]
        self._select_written_statement = SQL(
            "SELECT notification_id, originator_id, topic FROM {schema}.{table} "
            "WHERE notification_id >= %s AND notification_id <= %s ORDER BY notification_id LIMIT %s"
        ).format(schema=Identifier(self.datastore.schema), table=Identifier(self.events_table_name))

    def select_written(self, start: int, limit: int, stop: int) -> list[Written]:
        """As the SQLite recorder's (``GroupCommitRecorder.select_written``): position, object and topic of
        positions ``start`` to ``stop``, without the events' state."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._select_written_statement, (start, stop, limit), prepare=True)
            return [Written(row["notification_id"], row["originator_id"], row["topic"]) for row in curs.fetchall()]

    def _commit_group(self, group: list[_Batch]) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            committing = [False]
            try:
                self._write_group(group, committing)
                return
            except (persistence.OperationalError, persistence.InterfaceError) as exc:
                if committing[0] or attempt == ATTEMPTS or not is_dead_connection(exc):
                    raise
                for batch in group:  # nothing of the group was committed: start it again
                    batch.ids = batch.error = None

    def _write_group(self, group: list[_Batch], committing: list[bool]) -> None:
        with self.datastore.get_connection() as conn, conn.pipeline() as pipeline, conn.transaction():
            with conn.cursor() as curs:
                self._lock_table(curs)  # type: ignore[attr-defined]
                self._notify_channel(curs)
                curs.execute(_DURABLE, prepare=True)
                keys = [(e.originator_id, e.originator_version) for b in group for e in b.stored_events]
                curs.execute(self._taken_statement, ([k[0] for k in keys], [k[1] for k in keys]), prepare=True)
                taken = {(row["originator_id"], row["originator_version"]) for row in curs.fetchall()}
            writable = _refuse_taken(group, taken)
            if writable:
                try:
                    with conn.transaction():  # a savepoint: the group's insert, all or nothing
                        self._insert_all(conn, pipeline, writable)
                except psycopg.Error:
                    if conn.broken or conn.closed:
                        raise
                    for batch in writable:  # one by one, each behind its own savepoint
                        self._insert_alone(conn, pipeline, batch)
            committing[0] = True
            # the COMMIT is sent when the pipeline ends

    def _insert_all(self, conn: Any, pipeline: Any, batches: list[_Batch]) -> None:
        events = [e for batch in batches for e in batch.stored_events]
        with conn.cursor() as curs:
            for batch in batches:
                self._insert_events(curs, batch.stored_events, **batch.kwargs)  # type: ignore[attr-defined]
            self._insert_prepared(curs, events)
            pipeline.sync()  # an error surfaces here, inside the savepoint
            ids = list(self._fetch_ids_after_insert_events(curs, events))  # type: ignore[attr-defined]
        for batch in batches:
            size = len(batch.stored_events)
            batch.ids, ids = ids[:size], ids[size:]

    def _notify_channel(self, curs: Any) -> None:
        """eventsourcing's ``NOTIFY``, prepared (see :meth:`_insert_prepared`)."""
        curs.execute(self._notify_statement, prepare=True)

    def _insert_prepared(self, curs: Any, events: list[Any]) -> None:
        """eventsourcing's ``PostgresAggregateRecorder._insert_stored_events``, prepared at its first use
        on a connection rather than after psycopg's five (as the group's lock already is). A process
        holds a pool of connections (up to 16 per API worker) and the leader takes any of them, so
        every one ran the group's statements unprepared five times (parsed and planned), and again
        after each ``DEALLOCATE ALL`` psycopg sends following a ``ROLLBACK`` on it: 220 of 653 groups
        of a 10-second bench (``bench_http --store postgres --clients 32``, every statement logged)."""
        curs.execute(
            self.insert_events_statement,  # type: ignore[attr-defined]
            ([self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)  # type: ignore[attr-defined]
              for e in events],),
            prepare=True,
        )

    def _insert_alone(self, conn: Any, pipeline: Any, batch: _Batch) -> None:
        try:
            with conn.transaction():
                self._insert_all(conn, pipeline, [batch])
        except psycopg.Error as exc:  # this save alone fails (answered with it); the others go on
            if conn.broken or conn.closed:
                raise
            batch.ids, batch.error = None, _as_persistence_error(exc)


def _refuse_taken(group: list[_Batch], taken: set[Key]) -> list[_Batch]:
    """The batches none of whose versions is taken, in the table or by an earlier batch of the group;
    the others are answered with ``IntegrityError``. An empty batch writes nothing and gets no ids."""
    writable: list[_Batch] = []
    claimed = set(taken)
    for batch in group:
        keys = [(e.originator_id, e.originator_version) for e in batch.stored_events]
        if not keys:
            batch.ids = None
            continue
        clash = next((k for k in keys if k in claimed), None)
        if clash is None and len(set(keys)) < len(keys):
            clash = next(k for k in keys if keys.count(k) > 1)
        if clash is not None:
            batch.error = persistence.IntegrityError(
                f"version {clash[1]} of {clash[0]} is taken (the optimistic-concurrency check failed)"
            )
            continue
        claimed.update(keys)
        writable.append(batch)
    return writable


#: eventsourcing's error for each psycopg error, most specific first (callers catch these).
_ERRORS: tuple[tuple[type[psycopg.Error], type[PersistenceError]], ...] = (
    (psycopg.IntegrityError, persistence.IntegrityError),
    (psycopg.InterfaceError, persistence.InterfaceError),
    (psycopg.OperationalError, persistence.OperationalError),
    (psycopg.DataError, persistence.DataError),
    (psycopg.InternalError, persistence.InternalError),
    (psycopg.ProgrammingError, persistence.ProgrammingError),
    (psycopg.NotSupportedError, persistence.NotSupportedError),
    (psycopg.DatabaseError, persistence.DatabaseError),
)


def _as_persistence_error(exc: psycopg.Error) -> PersistenceError:
    """The error eventsourcing's own recorder raises for this psycopg error."""
    for raw, ours in _ERRORS:
        if isinstance(exc, raw):
            wrapped: PersistenceError = ours(str(exc))
            break
    else:
        wrapped = PersistenceError(str(exc))
    wrapped.__cause__ = exc
    return wrapped


__all__ = ["PostgresGroupCommit"]
