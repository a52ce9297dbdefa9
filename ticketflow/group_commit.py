"""Group commit: concurrent saves share one transaction and one fsync.

Every ``Application.save`` ends in ``recorder.insert_events(stored_events)``. Here a
caller puts its batch (the stored events of one save) in a queue and waits. One
caller at a time is the leader: it takes every batch waiting (up to
:data:`MAX_BATCHES`), writes them in ONE transaction with a savepoint per batch,
commits once (one fsync of the write-ahead log), then hands each waiter its
notification ids. Callers that arrive while a leader commits queue up, and the
next leader takes them all: under load the number of commits per save falls with
the number of concurrent saves, and with one caller nothing waits.

A batch whose insert fails (the optimistic-concurrency check: another save took
``(originator_id, version)`` first, possibly an earlier batch of the same group)
is rolled back to its savepoint and answered alone with that error; the other
batches commit. An error of the transaction itself (``BEGIN`` or ``COMMIT``: the
file is locked by another process, the disk is full) is answered to every batch of
the group, none of which is then written: the same answer each would have had
alone.

Everything above the recorder stays as it was: the mapper (writer MAC, personal-data
encryption) runs in the caller's thread before the batch is queued, and the
application's ``_notify``, snapshots and cache updates run in the caller's thread
after its ids come back, in the order the ids were assigned (rowids grow in commit
order, and the batches of a group get theirs in queue order).

Durability is unchanged: the event store keeps ``synchronous=FULL`` (set on the
leader's connection; eventsourcing sets no ``synchronous`` of its own, so it was
SQLite's default, FULL, already): a save is acknowledged only after the commit
that holds it reached the disk.

The queue and the leader (:class:`GroupCommit`) know nothing of the database: a
recorder mixes them in and writes a group in ``_commit_group``. SQLite's is
:class:`GroupCommitRecorder` here; PostgreSQL's is in ``ticketflow/pg_group_commit.py``.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple
from uuid import UUID

from eventsourcing import persistence
from eventsourcing.persistence import PersistenceError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteConnection

from ticketflow.loop_commands import on_loop, wait_for

log = logging.getLogger(__name__)

#: The most batches (saves) one transaction takes; the rest wait for the next leader.
MAX_BATCHES = 128
#: The longest a leader waits for commands still being prepared before it commits without them.
MAX_WAIT_SECONDS = 0.025
#: The fewest commands in flight (not yet queued) a leader waits for. Only commands run through
#: ``TicketDesk.handle`` (the API, the importers, the demo) count; the automation calls the desk's
#: methods directly and is never waited for.
MIN_SIBLINGS = 1
#: Under load, the least time from one commit of the commands on the event loop to the next (see
#: ``GroupCommit._write_for_loop``); never longer than ``max_wait`` (``TICKETFLOW_GROUP_COMMIT_WAIT_MS``).
LOOP_COMMIT_DELAY = 0.010
#: The most events a group writes with one statement (4 parameters each, under SQLite's 32,766); a larger
#: group is written batch by batch.
MAX_ROWS_AT_ONCE = 4096


def _resolve(futures: list[Any]) -> None:
    """On a command's loop: wake the commands whose batches a group answered (a command whose caller was
    cancelled waits on the same future: the loop carries it on, see ``run_on_loop``)."""
    for future in futures:
        if not future.done():
            future.set_result(None)


def _held_lock() -> Any:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False)
class _Batch:
    stored_events: Sequence[StoredEvent]
    kwargs: dict[str, Any]
    done: bool = False
    ids: Sequence[int] | None = None
    error: BaseException | None = None
    #: Held while the batch's caller sleeps; released exactly once: when the batch is done, or to hand
    #: its caller the lead. Each caller sleeps on its own lock, so a commit wakes only its own callers
    #: (and the next leader), never every thread queued behind it.
    wake: Any = field(default_factory=_held_lock)


#: A save queued by a command on an event loop: its batch, the future its command waits on, that loop.
_LoopItem = tuple[_Batch, "asyncio.Future[None]", asyncio.AbstractEventLoop]


@dataclass
class GroupStats:
    """What the group commit did in this process (for the bench and the tests)."""

    saves: int = 0
    commits: int = 0
    largest_group: int = 0
    waits_cut_short: int = 0  # leaders that committed after max_wait without every command in flight
    groups: list[int] = field(default_factory=list)  # sizes of the last groups, most recent last

    def record(self, size: int) -> None:
        self.saves += size
        self.commits += 1
        self.largest_group = max(self.largest_group, size)
        self.groups.append(size)
        del self.groups[:-64]


class Written(NamedTuple):
    """What a look at others' writes needs of a notification: its position, its object and its topic
    (not its state: :meth:`GroupCommitRecorder.select_written`)."""

    id: int
    originator_id: Any
    topic: str


class GroupCommit:
    """Mixin for an eventsourcing application recorder: concurrent ``insert_events`` calls queue, and
    one leader at a time hands every waiting batch to ``_commit_group`` (one transaction)."""

    #: How long a leader waits at most for the commands still being prepared (see :meth:`preparing`).
    max_wait: float = MAX_WAIT_SECONDS
    #: A leader waits only when at least this many other commands are being prepared.
    min_siblings: int = MIN_SIBLINGS
    #: Told by the leader, for each batch a group wrote, its log positions and its events' topics, once
    #: the group committed and before any of its callers is woken (the desk's erasure watch: positions
    #: this process wrote, known as its own from the moment they are in the log).
    on_committed: Callable[[Sequence[int], Sequence[str]], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Guards the queue and the counts below. Only a leader waiting for siblings and a test's
        # ``wait_for_queued`` ever wait on it (and are notified only when one of them waits):
        # callers waiting for their commit sleep on their batch's own lock.
        self._turn = threading.Condition(threading.Lock())
        self._waiting: deque[_Batch] = deque()
        self._leading = False
        self._held = 0
        self._preparing = 0  # commands inside preparing() that have not queued their save yet
        self._watchers = 0  # threads waiting on _turn: a leader in _wait_for_siblings, wait_for_queued
        self._queue_watchers = 0  # of which in wait_for_queued (woken by every save queued)
        self._local = threading.local()
        #: Held by a leader from before its commit until ``on_committed`` was told of it (see :meth:`settle`).
        self._telling = threading.Lock()
        self.group_stats = GroupStats()
        # Commands on the event loop (ticketflow/loop_commands.py) queue their batches for one writer thread.
        self._loop_queue: queue.SimpleQueue[_LoopItem | None] = queue.SimpleQueue()
        self._loop_writer: threading.Thread | None = None
        self._loop_lock = threading.Lock()
        self._loop_closed = False

    def _commit_group(self, group: list[_Batch]) -> None:
        """Write every batch of ``group`` in one transaction: set each batch's ``ids``, or its ``error``
        when it alone failed (its writes undone, the others' kept). An error of the transaction itself
        is raised: every batch of the group is then answered with it, none written."""
        raise NotImplementedError

    def _group_failed(self, exc: BaseException) -> BaseException:
        """Called when ``_commit_group`` raised: clean up, and return the error to answer with."""
        return exc

    # ------------------------------------------------------------------ the write path
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        batch = _Batch(stored_events, kwargs)
        if on_loop():
            return self._insert_from_loop(batch)
        with self._turn:
            self._waiting.append(batch)
            if getattr(self._local, "counted", False):
                self._local.counted = False
                self._preparing -= 1
            self._wake_watchers()  # a leader waiting for siblings, or a test, counts the queue
            leading = not self._leading and not self._held
            if leading:
                self._leading = True
        while not batch.done:
            if not leading:
                batch.wake.acquire()  # released when the batch is done, or to hand this caller the lead
                if batch.done:
                    break
            leading = self._lead_next_group(batch)
        if batch.error is not None:
            raise batch.error
        return batch.ids

    # ------------------------------------------------------------------ commands on the event loop
    def _insert_from_loop(self, batch: _Batch) -> Sequence[int] | None:
        """``insert_events`` for a command on the event loop (ticketflow/loop_commands.py): the batch goes
        to this recorder's writer thread and the loop serves other requests until it is committed. The
        writer takes every batch queued meanwhile: a group is what the loop decided during the last
        commit (and, under load, during the writer's short wait: :meth:`_write_for_loop`)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._loop_lock:
            if self._loop_closed:
                raise persistence.InterfaceError("the event store is closed")
            if self._loop_writer is None:
                self._loop_writer = threading.Thread(
                    target=self._write_for_loop, name="ticketflow-group-commit", daemon=True)
                self._loop_writer.start()
            self._loop_queue.put((batch, future, loop))
        wait_for(future)
        if batch.error is not None:
            raise batch.error
        return batch.ids

    def _write_for_loop(self) -> None:
        """The writer thread: commit what is queued, one group at a time, and wake each batch's command
        on its loop (one hand-over per group and loop). Ends at the queue's ``None``.

        Under load (the last group had company, or more than one batch is waiting) the writer first
        sleeps until :data:`LOOP_COMMIT_DELAY` (at most ``max_wait``) after the last commit began, so
        that the commands the loop decides meanwhile share the commit. Committing whatever was queued
        at once gave groups of two or three at 32 clients (0.36 fsyncs per command, bench_http
        --fsyncs); a 5 ms wait after each commit: 0.12-0.17, and 0.25-0.27 with two `serve` workers
        (each has its own writer, with half the load); 10 ms: 0.085-0.11, two workers 0.15; paced
        from the last commit's start, 10 ms: 0.07-0.08 (5 ms: 0.13-0.14); commands/s and p99 within
        the noise of interleaved runs. A command alone is never delayed: its group has no company."""
        company = False  # whether the last group had more than one batch: the loop has other commands in flight
        ending = False
        started = float("-inf")  # when the last commit began (time.monotonic; none yet)
        while not ending:
            items, ending = self._next_loop_group(company, started)
            if not items:
                continue
            group = [batch for batch, _, _ in items]
            company = len(group) > 1
            started = time.monotonic()
            try:
                self._lead(group)
            except BaseException as exc:  # _lead answers its errors; anything else still answers every batch
                log.exception("group commit: the writer failed")
                for batch in group:
                    if not batch.done:
                        batch.error, batch.done = _as_persistence_error(exc), True
            for loop in {id(loop): loop for _, _, loop in items}.values():
                futures = [future for _, future, at in items if at is loop]
                try:
                    loop.call_soon_threadsafe(_resolve, futures)
                except RuntimeError:  # that loop closed: nobody waits there any more
                    pass

    def _next_loop_group(self, company: bool, last_started: float) -> tuple[list[_LoopItem], bool]:
        """The writer's next group (waiting for its first batch, then under load for the loop's next
        commands until :data:`LOOP_COMMIT_DELAY` after the last commit began), and whether the queue's
        end came with it."""
        queue_ = self._loop_queue
        first = queue_.get()
        if first is None:
            return [], True
        if company or not queue_.empty():
            # Commits are paced, not each delayed: the commands decided while the last one was being
            # written count towards this one's wait (a command alone never waits).
            delay = last_started + min(self.max_wait, LOOP_COMMIT_DELAY) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        items = [first]
        while len(items) < MAX_BATCHES:
            try:
                item = queue_.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return items, True
            items.append(item)
        return items, False

    def stop_loop_writer(self, timeout: float = 30.0) -> None:
        """Commit what the loop's commands queued, then stop the writer thread; a later save from the
        loop is refused (the desk closes)."""
        with self._loop_lock:
            self._loop_closed = True
            writer = self._loop_writer
            if writer is not None:
                self._loop_queue.put(None)
        if writer is not None and writer is not threading.current_thread():
            writer.join(timeout)

    def _lead_next_group(self, own: _Batch) -> bool:
        """As the leader: commit the next group, wake its callers, then hand the lead on to the caller
        of the first batch still waiting (or give it up when none is). Whether the lead stays with
        this caller: its own batch is still queued (more than MAX_BATCHES were waiting) and next."""
        with self._turn:
            if self._held:  # saves held (a test) since the lead was handed here: the hold's end hands it on
                self._leading = False
                return False
            self._wait_for_siblings()
            group = [self._waiting.popleft() for _ in range(min(MAX_BATCHES, len(self._waiting)))]
        try:
            self._lead(group)
        finally:
            for batch in group:
                if batch is not own:
                    batch.wake.release()
            with self._turn:
                keeps = self._hand_on(own)
        return keeps

    def _hand_on(self, own: _Batch) -> bool:
        """Called holding ``_turn`` by a leader done with its group: hand the lead to the caller of the
        first batch waiting (True when that is the leader's own), or, with none waiting or saves held,
        give it up (a hold's end hands it on then)."""
        if not self._waiting or self._held:
            self._leading = False
            return False
        first = self._waiting[0]
        if first is own:
            return True
        first.wake.release()
        return False

    def settle(self) -> None:
        """Return once no group of this process is committed without ``on_committed`` told of it yet.

        Another thread may find a group's rows in the log between its COMMIT and ``on_committed``: the
        desk's erasure watch, told of its own positions by ``on_committed``, took them for another
        writer's, read them back and evicted their aggregates from the cache (every one of the watch's
        slow looks at 32 clients happened while a leader was in that window: 28 in 8 s of bench_http,
        each evicting the aggregates commands were about to borrow, which were then rebuilt from the
        store). The watch calls this before it takes positions it was not told of for another's."""
        with self._telling:
            pass

    def _lead(self, group: list[_Batch]) -> None:
        with self._telling:
            self._lead_telling(group)

    def _lead_telling(self, group: list[_Batch]) -> None:
        """:meth:`_lead`, holding ``_telling``."""
        try:
            self._commit_group(group)
        except BaseException as exc:  # noqa: BLE001 - the transaction failed: nothing of it was written, every waiter gets the error
            try:
                error = self._group_failed(exc)
            except BaseException:  # noqa: BLE001 - cleaning up failed too: the commit's own error is the answer
                error = exc
            for batch in group:
                batch.error = batch.error or error
                batch.ids = None
        else:
            self._tell_committed(group)
        finally:
            for batch in group:
                batch.done = True
        self.group_stats.record(len(group))

    def _tell_committed(self, group: list[_Batch]) -> None:
        """``on_committed`` for each batch the group wrote. The saves are in the log whatever it does:
        an error of the observer is logged, never answered to them."""
        observer = self.on_committed
        if observer is None:
            return
        for batch in group:
            if batch.error is None and batch.ids:
                try:
                    observer(batch.ids, [stored.topic for stored in batch.stored_events])
                except Exception:  # the saves are written: see above
                    log.exception("group commit: the observer of committed saves failed")

    def _wake_watchers(self) -> None:
        """Called holding ``_turn`` once a save queued or a command in preparation ended: wake the threads
        waiting on ``_turn`` when what they wait for may now hold. A leader waiting for its siblings waits
        until none is in preparation (or a group is full): woken by every save queued, it woke, took
        ``_turn`` and slept again, for nothing, up to a group's size times per commit (16 threads posting
        2,400 replies through ``handle``: ~1,900 ``notify_all`` and ~970 leader waits, now ~180 and ~145;
        ``notify_all`` and the wake-ups were 3-4% of the command threads' CPU in py-spy --gil of
        bench_http --clients 32). ``wait_for_queued`` (tests) counts the queue: woken by every save."""
        if self._watchers and (self._queue_watchers or self._preparing <= 0 or len(self._waiting) >= MAX_BATCHES):
            self._turn.notify_all()

    def _wait_for_siblings(self) -> None:
        """Called holding ``_turn``: when ``min_siblings`` commands or more are being prepared, give
        them until ``max_wait`` to queue (they run meanwhile: the leader only waits), so they share this
        commit. Under load (many commands in flight, the CPU busy with them) the wait costs no
        throughput and saves a commit and an fsync per command that joins; with one client it never
        happens."""
        if self._preparing < self.min_siblings:
            return
        deadline: float | None = None
        self._watchers += 1
        try:
            while self._preparing > 0 and len(self._waiting) < MAX_BATCHES:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + self.max_wait
                if now >= deadline:
                    self.group_stats.waits_cut_short += 1
                    return
                self._turn.wait(deadline - now)
        finally:
            self._watchers -= 1

    # ------------------------------------------------------------------ commands being prepared
    @contextmanager
    def preparing(self) -> Iterator[None]:
        """Run one command: until it queues its save (or ends without one), a leader about to commit
        waits for it (at most ``max_wait``). Under load the commands in flight thus commit together;
        a command alone never waits. Nested calls count once."""
        local = self._local
        if getattr(local, "inside", False):
            yield
            return
        with self._turn:
            self._preparing += 1
        local.inside = local.counted = True
        try:
            yield
        finally:
            local.inside = False
            if local.counted:
                local.counted = False
                with self._turn:
                    self._preparing -= 1
                    self._wake_watchers()

    # ------------------------------------------------------------------ for tests and the bench
    @contextmanager
    def held(self) -> Iterator[None]:
        """Let saves queue without committing until the block ends (as if a leader were busy)."""
        with self._turn:
            self._held += 1
        try:
            yield
        finally:
            with self._turn:
                self._held -= 1
                if not self._held and not self._leading and self._waiting:
                    self._leading = True
                    self._waiting[0].wake.release()  # its caller leads the saves that queued meanwhile
                if self._watchers:
                    self._turn.notify_all()

    def wait_for_queued(self, count: int, timeout: float = 30.0) -> bool:
        """Wait until ``count`` saves are queued (use inside :meth:`held`)."""
        with self._turn:
            self._watchers += 1
            self._queue_watchers += 1
            try:
                return self._turn.wait_for(lambda: len(self._waiting) >= count, timeout)
            finally:
                self._watchers -= 1
                self._queue_watchers -= 1


class GroupCommitRecorder(GroupCommit, SQLiteApplicationRecorder):
    """The desk's SQLite event recorder (``APPLICATION_RECORDER_TOPIC``): saves commit in groups."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._writer: SQLiteConnection | None = None
        # The library's own writers in this process (snapshots) take this lock: take turns with them
        # here rather than in SQLite's busy handler, which sleeps.
        self._writer_lock: Any = getattr(self.datastore.pool, "_writer_lock", None) or threading.Lock()
        self._reader: SQLiteConnection | None = None  # kept open for the log's end (max_notification_id)
        self._reader_cursor: sqlite3.Cursor | None = None  # the reader's one cursor
        self._reader_lock = threading.Lock()
        self._select_written_statement = (
            f"SELECT rowid, originator_id, topic FROM {self.events_table_name} "  # noqa: S608 - the recorder's own table
            "WHERE rowid >= ? AND rowid <= ? ORDER BY rowid LIMIT ?"
        )

    def max_notification_id(self) -> int:
        """The log's end, asked before every command (``ErasureWatch.follow``): one statement on one
        connection kept open for it, threads taking turns (the pool's check-out, transaction and
        check-in cost ten times the query; one connection per thread would pile up as the server's
        worker threads come and go). A file store only: an in-memory one takes the pool's turns."""
        if self.datastore.pool.is_sqlite_memory_mode:
            return super().max_notification_id()
        return self._read_kept(self.select_max_notification_id_statement, ())[0][0]  # type: ignore[no-any-return]

    def select_written(self, start: int, limit: int, stop: int) -> list[Written]:
        """Positions ``start`` to ``stop`` (at most ``limit``): position, object, topic, without the
        events' state. The erasure watch reads every other writer's notifications this way before a
        command (``TicketDesk._select_written``): with ``select_notifications`` it fetched and copied each
        event's sealed state for nothing (4 % of the view process's CPU, reading back serve's writes for
        the automation's looks; 2 % of a `serve --workers 2` worker's). On the log-end reader's connection."""
        if self.datastore.pool.is_sqlite_memory_mode:
            return [Written(n.id, n.originator_id, n.topic) for n in self.select_notifications(start, limit, stop=stop)]
        return [Written(*row) for row in self._read_kept(self._select_written_statement, (start, stop, limit))]

    def _read_kept(self, statement: str, params: tuple[Any, ...]) -> list[Any]:
        """Every row of ``statement`` on the reader connection kept open for the log's looks, threads
        taking turns. One cursor kept, not one made per call; the result is read to the end, so SQLite
        resets the statement and no read snapshot stays open between calls. A failed read closes the
        connection (the next opens another)."""
        with self._reader_lock:
            cursor = self._reader_cursor
            if self._reader is None or self._reader.closed or cursor is None:
                self._reader = self.datastore.pool._create_connection()
                cursor = self._reader_cursor = self._reader._sqlite_conn.cursor()
            try:
                return cursor.execute(statement, params).fetchall()
            except sqlite3.Error as exc:
                self._reader.close()
                self._reader = self._reader_cursor = None
                raise _as_persistence_error(exc) from exc

    def _connection(self) -> SQLiteConnection:
        """The leader's own connection, kept open: no pooled connection is opened for a commit (the
        first fsync on a new connection also syncs the directory) and its statements stay prepared."""
        if self._writer is None or self._writer.closed:
            writer = self.datastore.pool._create_connection()  # the pool's settings (WAL, row factory)
            writer._sqlite_conn.execute("PRAGMA synchronous = FULL")  # see the module doc
            self._writer = writer
        return self._writer

    def close_writer(self) -> None:
        """Close the leader's connection and the log-end reader (the desk calls this when it closes)."""
        with self._writer_lock:
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.close()  # an open transaction on it is rolled back
        with self._reader_lock:
            reader, self._reader, self._reader_cursor = self._reader, None, None
        if reader is not None:
            reader.close()

    def _commit_group(self, group: list[_Batch]) -> None:
        with self._writer_lock, self._connection().transaction(commit=True) as cursor:
            if self._insert_group_at_once(cursor, group):
                return
            for number, batch in enumerate(group):
                self._insert_batch(cursor, batch, f"b{number}")

    def _insert_group_at_once(self, cursor: Any, group: list[_Batch]) -> bool:
        """Insert every event of ``group`` with ONE multi-row ``INSERT`` and give each batch its rowids;
        False, with nothing written, when that statement fails (a batch lost its version race: the
        caller then inserts batch by batch, each under its own savepoint, so only that batch fails) or
        the group is too large for one statement.

        Why one statement: batch by batch, a group of 16 saves stepped 48 statements (savepoint, insert,
        release), each compiled parameters bound and stepped, and sqlite3 releases the GIL around every
        step: with other threads waiting for it, each step was a hand-over. The rows of one statement
        take consecutive rowids in the order listed: this connection holds the write lock
        (``BEGIN IMMEDIATE``) and each row is inserted at the table's end (rowid = max + 1; the event
        table's rowid is implicit and never reaches its maximum)."""
        if any(value is not None for batch in group for value in batch.kwargs.values()):
            return False  # e.g. a tracking record (every save passes ``tracking``, mostly None): eventsourcing's own path
        params: list[Any] = []
        for batch in group:
            for stored in batch.stored_events:
                originator_id = stored.originator_id
                params += (
                    originator_id.hex if isinstance(originator_id, UUID) else originator_id,
                    stored.originator_version,
                    stored.topic,
                    stored.state,
                )
        rows = len(params) // 4
        if not rows or rows > MAX_ROWS_AT_ONCE:
            return False
        try:
            cursor.execute(_insert_rows_statement(self.events_table_name, rows), params)
        except sqlite3.IntegrityError:
            return False  # the statement wrote nothing (SQLite undoes a failed statement whole)
        position = cursor.lastrowid - rows + 1
        for batch in group:
            count = len(batch.stored_events)
            batch.ids = list(range(position, position + count))
            position += count
        return True

    def _group_failed(self, exc: BaseException) -> BaseException:
        self.close_writer()  # whatever state it was left in, the next leader starts on a fresh connection
        return _as_persistence_error(exc)

    def _insert_batch(self, cursor: Any, batch: _Batch, savepoint: str) -> None:
        cursor.execute(f"SAVEPOINT {savepoint}")
        try:
            batch.ids = self._insert_events(cursor, batch.stored_events, **batch.kwargs)
        except Exception as exc:  # noqa: BLE001 - this save alone fails (answered with it); the others go on
            cursor.execute(f"ROLLBACK TO {savepoint}")
            batch.error = _as_persistence_error(exc)
        cursor.execute(f"RELEASE {savepoint}")


@lru_cache(maxsize=128)
def _insert_rows_statement(table: str, rows: int) -> str:
    """``INSERT INTO table VALUES (?,?,?,?),...`` for ``rows`` rows (the sizes used most stay made)."""
    return f"INSERT INTO {table} VALUES " + ",".join(["(?,?,?,?)"] * rows)


#: eventsourcing's error for each sqlite3 error, most specific first (callers catch these).
_ERRORS: tuple[tuple[type[sqlite3.Error], type[PersistenceError]], ...] = (
    (sqlite3.IntegrityError, persistence.IntegrityError),
    (sqlite3.OperationalError, persistence.OperationalError),
    (sqlite3.DataError, persistence.DataError),
    (sqlite3.InterfaceError, persistence.InterfaceError),
    (sqlite3.InternalError, persistence.InternalError),
    (sqlite3.ProgrammingError, persistence.ProgrammingError),
    (sqlite3.NotSupportedError, persistence.NotSupportedError),
    (sqlite3.DatabaseError, persistence.DatabaseError),
)


def _as_persistence_error(exc: BaseException) -> BaseException:
    """The error eventsourcing's own recorder raises for this sqlite3 error."""
    if not isinstance(exc, sqlite3.Error):
        return exc
    for raw, ours in _ERRORS:
        if isinstance(exc, raw):
            wrapped: BaseException = ours(exc)
            break
    else:
        wrapped = PersistenceError(exc)
    wrapped.__cause__ = exc
    return wrapped


__all__ = [
    "MAX_BATCHES",
    "MAX_WAIT_SECONDS",
    "MIN_SIBLINGS",
    "GroupCommit",
    "GroupCommitRecorder",
    "GroupStats",
    "Written",
]
