"""The read side: open each view's store, keep views caught up, answer reads at a position.

* **Embedded** (the default): :meth:`ReadSide.start` runs one worker thread per
  view in the process that writes, woken by the desk after each save and, on
  PostgreSQL, by ``LISTEN/NOTIFY``; SQLite has no subscription, so workers also
  poll.
* **Standalone**: ``ticketflow project`` runs the same workers in their own
  process (several API processes and one projection process share PostgreSQL).

Each batch of events and the view's tracking position commit together, so a
worker killed at any point resumes exactly where the view's last commit left it.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar
from uuid import uuid4

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

from eventsourcing.persistence import InfrastructureFactory, IntegrityError, Tracking
from eventsourcing.utils import Environment, resolve_topic

from projections.access_log import AccessLogView
from projections.audit import AuditView
from projections.customers import CustomersView
from projections.directory import DirectoryView
from projections.outbox import OutboxView
from projections.problems import ProblemsView
from projections.reminders import RemindersView
from projections.reply_templates import ReplyTemplatesView
from projections.search import SearchView
from projections.sql import WORKFLOW_ALIAS, Db, Dialect
from projections.tickets import TicketsView
from projections.timeline import TimelineView
from projections.view import View, ViewProjection, ViewStore, store_class
from projections.workflow import WorkflowView
from ticketflow.application import TicketDesk
from ticketflow.config import SQLITE_FACTORY_TOPIC, Settings, StorageKind
from ticketflow.errors import ValidationFailed

log = logging.getLogger("ticketflow.projections")
R = TypeVar("R")

VIEWS: dict[str, type[View]] = {
    view.name: view
    for view in (
        TicketsView, TimelineView, CustomersView, AuditView, SearchView, DirectoryView, AccessLogView, WorkflowView,
    )
}
VIEWS[OutboxView.name] = OutboxView  # the webhook outbox (projections/outbox.py)
VIEWS[RemindersView.name] = RemindersView  # reminders and follow-ups (projections/reminders.py)
VIEWS[ProblemsView.name] = ProblemsView  # the problem library (projections/problems.py)
VIEWS[ReplyTemplatesView.name] = ReplyTemplatesView  # saved reply templates (projections/reply_templates.py)

#: Events per transaction while following the log, and while rebuilding (a rebuild's bigger
#: transactions write each hot page of a view once per 5,000 events: the audit view's rebuild
#: costs 15% less CPU than with 2,000; see bench/bench_views.py).
LIVE_BATCH = 500
REBUILD_BATCH = 5000
#: How often a worker looks for events written by other processes (SQLite has no NOTIFY).
POLL_SECONDS = 0.2
#: After a save wakes a worker, how long at most it lets further saves gather before one commit per
#: view: under load every view commits a few times a second, each time with every event waiting
#: (a batch costs a tenth per event of a single event's commit). A reader waiting for a position
#: (read-your-writes, automation) cuts the wait short.
COALESCE_SECONDS = 0.05
#: Under load (the batch just applied held at least BUSY_EVENTS events) the worker gathers longer: each
#: view's transaction (connection, position check, prepare queries, commit) costs about as much as
#: applying a dozen events, and a ticket changed several times in the window has its rows written once.
#: An idle desk never waits more than COALESCE_SECONDS; a reader waiting for a position still cuts
#: either wait short (read-your-writes answers no later than before).
BUSY_EVENTS = 8
BUSY_COALESCE_SECONDS = 0.25
#: At most this many events saved by this process are kept for the live worker (see ReadSide._keep_recorded).
RECENT_EVENTS = 20_000
#: A reader waiting for a position the worker of this process will reach looks again after each of the
#: worker's batches, and at the latest after this (another process, a rebuild, may move a view too).
WAIT_POLL_SECONDS = 0.25


@lru_cache(maxsize=1024)
def _event_class(topic: str) -> type | None:
    """The event class a stored topic names (None when it names none: decoding then says why)."""
    try:
        found = resolve_topic(topic)
    except Exception:  # noqa: BLE001 - the mapper raises the real error when it decodes the event
        return None
    return found if isinstance(found, type) else None


#: The garbage collector's first threshold while a pass over the log holds big batches (see below).
BULK_GC_THRESHOLD = 20_000


@contextmanager
def _bulk_collection() -> Iterator[None]:
    """Collect garbage less often while catching up: each batch keeps thousands of decoded events
    and rows alive, which the collector would traverse (and promote, then traverse again in full
    collections) every 700 allocations: a fifth of a rebuild's CPU. Garbage cycles wait a little
    longer (a collection every 20,000 allocations). Restored after: the live worker's small
    batches keep the default."""
    first, *rest = gc.get_threshold()
    gc.set_threshold(max(first, BULK_GC_THRESHOLD), *rest)
    try:
        yield
    finally:
        if gc.get_threshold()[0] == max(first, BULK_GC_THRESHOLD):  # unless someone changed it meanwhile
            gc.set_threshold(first, *rest)


@contextmanager
def _collection_paused() -> Iterator[None]:
    """No garbage collection during one batch of a pass over the log: the batch's thousands of decoded
    events and rows are freed by their reference counts when it ends, so a collection in between only
    traverses them (and promotes them, to be traversed again): 4 % of an audit rebuild's CPU at a
    collection every 20,000 allocations. Cyclic garbage waits until the batch ends (the next allocation
    then collects, the count being past the threshold). Left as it was found if already paused."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def views_dir(settings: Settings) -> Path:
    """Where SQLite keeps the views: one file per view beside the event store."""
    return settings.views_dir


def open_store(settings: Settings, view_class: type[View], memory_tag: str = "", shared: Any = None) -> ViewStore:
    """Open (creating if needed) the store of one view on the configured database.

    On PostgreSQL, pass ``shared`` (from :func:`views_datastore`): the views of one process
    share one connection pool, so a process's connections do not grow with the number of views.
    """
    lock_dir: Path | None = None  # SQLite files: opened under the views' lock (see _opening)
    if settings.storage is StorageKind.POSTGRES:
        if shared is not None:
            store_cls = store_class(view_class, Dialect.POSTGRES)
            recorder = store_cls(datastore=shared, tracking_table_name=f"view_{view_class.name}_tracking")  # type: ignore[call-arg]
            recorder.create_table()
            return recorder
        env = {**settings.eventsourcing_env(), "POSTGRES_POOL_SIZE": "2"}
        dialect = Dialect.POSTGRES
    else:
        if settings.storage is StorageKind.MEMORY:
            db_name = f"file:tf_{view_class.name}_{memory_tag}?mode=memory&cache=shared"
        else:
            directory = views_dir(settings)
            directory.mkdir(parents=True, exist_ok=True)
            db_name = str(directory / f"{view_class.name}.sqlite")
            lock_dir = directory
        # The tickets view's "SLA due soon" queue joins the workflow view's SLA clocks ({workflow}).
        workflow_db = (f"file:tf_workflow_{memory_tag}?mode=memory&cache=shared" if settings.storage is StorageKind.MEMORY
                       else str(views_dir(settings) / "workflow.sqlite"))
        env = {
            "PERSISTENCE_MODULE": SQLITE_FACTORY_TOPIC,  # connections keeping compiled statements
            "SQLITE_DBNAME": db_name,
            "SQLITE_LOCK_TIMEOUT": str(settings.lock_timeout),
        }
        dialect = Dialect.SQLITE
    factory = InfrastructureFactory.construct(Environment(f"view_{view_class.name}", env))
    with _opening(lock_dir):
        store = factory.tracking_recorder(store_class(view_class, dialect))
    assert isinstance(store, ViewStore)
    if dialect is Dialect.SQLITE and view_class.name == "tickets":
        store.attached[WORKFLOW_ALIAS] = workflow_db  # type: ignore[attr-defined]
    return store


#: The lock file SQLite view stores are opened under, in the views' directory.
OPENING_LOCK = ".opening.lock"


@contextmanager
def _opening(directory: Path | None) -> Iterator[None]:
    """Held while this process opens a view's SQLite store in ``directory`` (and creates it if new):
    eventsourcing creates the tracking table, then records its migration row, so two processes opening
    a new store at once (two CLI commands closing on a fresh data directory both seal, and so open the
    seal store) both found no table, and the second's migration row was refused ("Failed to record
    tracking for __migration__ 1"). An exclusive ``flock`` on a file beside the views makes them take
    turns (the kernel wakes the next one at once). Without ``fcntl`` (not POSIX) nothing is locked."""
    if directory is None or fcntl is None:
        yield
        return
    with open(directory / OPENING_LOCK, "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def views_datastore(settings: Settings) -> Any:
    """One PostgreSQL connection pool for all the views of a process."""
    size = str(settings.pool_size)
    env = {**settings.eventsourcing_env(), "POSTGRES_POOL_SIZE": size, "POSTGRES_MAX_OVERFLOW": size}
    return InfrastructureFactory.construct(Environment("views", env)).datastore  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ViewStatus:
    name: str
    position: int
    log_position: int

    @property
    def lag(self) -> int:
        return max(0, self.log_position - self.position)


class Wakeup:
    """A doorbell: rung on every save; a waiting worker wakes at once instead of at its next poll."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def ring(self, *_: Any) -> None:
        self._event.set()

    def wait(self, timeout: float) -> bool:
        rung = self._event.wait(timeout)
        self._event.clear()
        return rung


class ViewWorker:
    """Keeps every view of a read side caught up: one thread reads each batch of the log once,
    then gives each view the events past its own position, one transaction per view."""

    def __init__(self, read_side: ReadSide) -> None:
        self.read_side = read_side
        self.wakeup = Wakeup()
        self.error: BaseException | None = None
        self._stopping = threading.Event()
        self._hurry = threading.Event()  # a reader waits for a position: commit what is waiting now
        self._thread = threading.Thread(target=self._run, name="views", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._hurry.set()
        self.wakeup.ring()

    def hurry(self) -> None:
        """Someone waits for the views to reach a position: apply what is waiting without gathering more."""
        self._hurry.set()
        self.wakeup.ring()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        backoff = 0.05
        positions: dict[str, int] | None = None
        while not self._stopping.is_set():
            try:
                if positions is None:
                    positions = {name: self.read_side.position(name) for name in self.read_side.stores}
                done = self.read_side.step_all(positions, LIVE_BATCH, recent=True)
            except Exception as exc:
                self.error = exc
                positions = None  # re-read every view's position from its store
                log.exception("views: batch failed; retrying")
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.05
            self.error = None
            if done >= LIVE_BATCH:
                continue  # catching up: the next batch at once
            if done == 0 and not self.wakeup.wait(self.read_side.poll_seconds):
                continue  # nothing rang: poll again (another process may have written)
            # Woken by a save, or under a steady load: let more land so one commit per view carries
            # them all, instead of a commit per view for every event; unless a reader is waiting.
            self._hurry.wait(BUSY_COALESCE_SECONDS if done >= BUSY_EVENTS else COALESCE_SECONDS)
            self._hurry.clear()


class ReadSide:
    """All the views of one desk: their stores, workers, positions and rebuilds."""

    def __init__(
        self,
        desk: TicketDesk,
        views: Iterable[str] | None = None,
        poll_seconds: float = POLL_SECONDS,
        store_settings: Settings | None = None,
    ) -> None:
        """``store_settings`` puts the views somewhere other than beside the desk's events
        (a scratch copy, a benchmark); by default they live with the desk's store."""
        self.desk = desk
        self.settings = store_settings or desk.settings
        self.poll_seconds = poll_seconds
        names = list(views) if views is not None else list(VIEWS)
        unknown = set(names) - set(VIEWS)
        if unknown:
            raise ValueError(f"unknown view {', '.join(sorted(unknown))}; views are {', '.join(VIEWS)}")
        tag = uuid4().hex[:12]
        self._shared = views_datastore(self.settings) if self.settings.storage is StorageKind.POSTGRES else None
        self.stores: dict[str, ViewStore] = {n: open_store(self.settings, VIEWS[n], tag, self._shared) for n in names}
        self.projections = {n: ViewProjection(view=store) for n, store in self.stores.items()}
        self.workers: dict[str, ViewWorker] = {}
        self._progress = threading.Condition()
        self._steps = 0  # batches stepped in this process (under ``_progress``): a waiter sleeps until the next
        self._listener: threading.Thread | None = None
        self._listening = threading.Event()
        #: Told each batch of the log the views were given (see :meth:`on_batch`).
        self._batch_callbacks: list[Callable[[Sequence[Any], Mapping[int, Any]], None]] = []
        #: The events this process saved, by log position, until the live worker takes them (see
        #: :meth:`_keep_recorded`); filled from :meth:`start` to :meth:`stop`.
        self._recent: dict[int, Any] = {}
        #: Asks the views' own process to apply what is waiting now, when they are kept by another process
        #: that listens for it (``serve``'s view process on SQLite: :mod:`projections.doorbell`).
        self.hurry_elsewhere: Callable[[], None] | None = None

    # ------------------------------------------------------------------ following
    def on_batch(self, callback: Callable[[Sequence[Any], Mapping[int, Any]], None]) -> None:
        """Call ``callback(notifications, decoded)`` with each batch of the log :meth:`step_all` read (a run
        of consecutive positions), in log order, after the views took it: ``decoded`` maps a position to
        its event, for those some view decoded. The automation keeps its tickets with it instead of
        reading and decoding their events again. A failing callback is logged, never the views' failure."""
        self._batch_callbacks.append(callback)

    def remove_on_batch(self, callback: Callable[[Sequence[Any], Mapping[int, Any]], None]) -> None:
        if callback in self._batch_callbacks:
            self._batch_callbacks.remove(callback)

    def batch_followers(self) -> list[Callable[[Sequence[Any], Mapping[int, Any]], None]]:
        """The callbacks :meth:`step_all` tells each batch (:meth:`on_batch`)."""
        return list(self._batch_callbacks)

    def step(self, name: str, limit: int) -> int:
        """Process the next batch of at most ``limit`` events into one view; 0 when caught up."""
        store = self.stores[name]
        start = (store.max_tracking_id(self.desk.name) or 0) + 1
        notifications = self.desk.recorder.select_notifications(start, limit)
        if not notifications:
            return 0
        events = [(self.desk.mapper.to_domain_event(n), n.id) for n in notifications]
        try:
            self.projections[name].process_batch(events, Tracking(self.desk.name, notifications[-1].id), previous=start - 1)  # type: ignore[arg-type]
        except IntegrityError:
            if self.position(name) == start - 1:
                raise  # nobody else moved the view: a real constraint failure, not a lost race
            return len(notifications)  # another worker committed this range first: nothing counted twice
        with self._progress:
            self._steps += 1
            self._progress.notify_all()
        return len(notifications)

    def _keep_recorded(self, recordings: Sequence[Any]) -> None:
        """Keep the events this process just saved, by position, for the live worker: it takes them
        instead of decoding their stored form again (a tenth of the views' CPU per event). They are the
        objects the mapper encoded, equal to what it decodes (tests/projections/test_view_recorded_events.py).
        Past RECENT_EVENTS waiting (the views far behind), the rest are decoded as before."""
        recent = self._recent
        if len(recent) >= RECENT_EVENTS:
            return
        for recording in recordings:
            recent[recording.notification.id] = recording.domain_event

    def _recorded_or_decoded(self, notifications: Sequence[Any], start: int) -> Callable[[Any], Any]:
        """How the live worker gets each event of a batch: the saved event this process kept
        (:meth:`_keep_recorded`) when it is that notification's, else decoded from the log."""
        recent = self._recent
        decode = self.desk.mapper.to_domain_event
        if not recent:
            return decode
        if len(recent) > 2 * LIVE_BATCH:
            # Some may be left behind, read before their save had kept them (or a rebuild took their
            # range): drop those before the batch, so none is held long.
            for position in [p for p in list(recent) if p < start]:
                recent.pop(position, None)
        kept = {n.id: event for n in notifications if (event := recent.pop(n.id, None)) is not None}
        if not kept:
            return decode

        def recorded_or_decoded(notification: Any) -> Any:
            event = kept.get(notification.id)
            if (
                event is None
                or event.originator_version != notification.originator_version
                or event.originator_id != notification.originator_id
            ):
                return decode(notification)
            return event

        return recorded_or_decoded

    def step_all(self, positions: dict[str, int], limit: int, recent: bool = False) -> int:
        """Read the next batch once and give each view in ``positions`` the events past its position.

        ``positions`` is updated in place as views commit; a view whose position moved under it
        (a rebuild elsewhere, another worker) refuses the batch and has its position re-read.
        ``recent``: take the events this process saved from what it kept of them (the live worker).
        """
        start = min(positions.values()) + 1
        notifications = self.desk.recorder.select_notifications(start, limit)
        if not notifications:
            return 0
        # Decode only what some view here reacts to (see View.event_types): every view of the
        # live read side takes every event, but a rebuild of one view decodes only its events.
        views = {name: self.stores[name].view for name in positions}
        takers: dict[str, frozenset[str]] = {}
        for topic in {n.topic for n in notifications}:
            event_class = _event_class(topic)
            takers[topic] = frozenset(
                name for name, view in views.items() if event_class is None or view.wants(event_class)
            )
        decode = self._recorded_or_decoded(notifications, start) if recent else self.desk.mapper.to_domain_event
        events = [
            (decode(n), n.id, takers[n.topic]) for n in notifications if takers[n.topic]
        ]
        last = notifications[-1].id
        tracking = Tracking(self.desk.name, last)
        failure: Exception | None = None
        for name, position in list(positions.items()):
            if position >= last:
                continue
            # Possibly none: the view's position still moves to the end of the batch.
            mine = [(e, p) for e, p, names in events if p > position and name in names]
            try:
                self.projections[name].process_batch(mine, tracking, previous=position)  # type: ignore[arg-type]
                positions[name] = last
            except IntegrityError as exc:
                positions[name] = self.position(name)
                if positions[name] == position:  # nobody else moved it: a real constraint failure
                    log.error("view %s: batch refused by the database: %s", name, exc)
                    failure = exc
            except Exception as exc:
                log.exception("view %s: batch failed", name)
                positions[name] = self.position(name)
                failure = exc
        if self._batch_callbacks:
            decoded = {p: e for e, p, _ in events}
            for callback in list(self._batch_callbacks):
                try:
                    callback(notifications, decoded)
                except Exception:  # a follower's failure must not stop the views
                    log.exception("views: a batch follower failed")
        with self._progress:
            self._steps += 1
            self._progress.notify_all()
        if failure is not None:
            raise failure
        return len(notifications)

    def _bulk_step(self, positions: dict[str, int], limit: int) -> int:
        """:meth:`step_all` in a pass over the log (catch-up, rebuild): the collector paused for the batch."""
        with _collection_paused():
            return self.step_all(positions, limit)

    @contextmanager
    def holding(self, names: Iterable[str]) -> Iterator[None]:
        """Each of the views ``names`` in one transaction of this thread until the block ends, committed
        then (see :meth:`ViewStore.holding`): for a writer that feeds them with :meth:`apply`."""
        with ExitStack() as stack:
            for name in names:
                stack.enter_context(self.stores[name].holding())
            yield

    def apply(self, names: Iterable[str], events: Sequence[tuple[Any, int]]) -> None:
        """Give views held by this thread (:meth:`holding`) events, with the log positions they have or
        will have, without reading the log: a writer feeds them what its batch is about to save, so a
        read in its thread sees the views as they will be once the batch and the views commit. The
        views' positions do not move: :meth:`advance` records where the fed events end."""
        if not events:
            return
        for name in names:
            self.stores[name].apply_held(events)

    def advance(self, names: Iterable[str], position: int, previous: int) -> None:
        """Record that views (held or not) now stand at ``position``, if each still stands at ``previous``
        (else ``IntegrityError``): after :meth:`apply`, before the holding block commits."""
        for name in names:
            self.projections[name].process_batch([], Tracking(self.desk.name, position), previous=previous)

    def catch_up(
        self, names: Iterable[str] | None = None, batch: int = REBUILD_BATCH, progress: Callable[[int], None] | None = None
    ) -> None:
        """Bring views up to the end of the log, in this thread (rebuilds, tests, the demo). Each batch
        of the log is read and decoded once for all the views (as the live worker does), not once a view."""
        positions = {name: self.position(name) for name in names or list(self.stores)}
        with _bulk_collection():
            while (done := self._bulk_step(positions, batch)) > 0:
                if progress:
                    progress(done)

    def start(self) -> None:
        """Embedded mode: a worker thread per view, woken by this process's saves."""
        if self.workers:
            return
        worker = self.workers["views"] = ViewWorker(self)
        self.desk.on_recorded(self._keep_recorded)
        self.desk.on_saved(worker.wakeup.ring)
        worker.start()
        if self.settings.storage is StorageKind.POSTGRES:
            self._listener = threading.Thread(target=self._listen, name="view-listen", daemon=True)
            self._listening.set()
            self._listener.start()

    def stop(self) -> None:
        self._listening.clear()
        self.desk.remove_on_recorded(self._keep_recorded)
        self._recent.clear()
        for worker in self.workers.values():
            self.desk.remove_on_saved(worker.wakeup.ring)
            worker.stop()
        for worker in self.workers.values():
            worker.join(timeout=10)
        if self._listener is not None:
            self._listener.join(timeout=5)
        self.workers.clear()

    def close(self) -> None:
        self.stop()
        closed: set[int] = set()
        for store in self.stores.values():
            datastore = store.datastore  # type: ignore[attr-defined]
            if id(datastore) not in closed:
                closed.add(id(datastore))
                datastore.close()

    def _listen(self) -> None:
        """PostgreSQL: ring every worker when another process NOTIFYs a save."""
        import psycopg

        env = self.settings.eventsourcing_env()
        channel = getattr(self.desk.recorder, "channel_name", None)
        if channel is None:
            return
        while self._listening.is_set():
            try:
                with psycopg.connect(
                    host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"], dbname=env["POSTGRES_DBNAME"],
                    user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"] or None, autocommit=True,
                ) as conn:
                    conn.execute(f'LISTEN "{channel}"')
                    while self._listening.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            for worker in self.workers.values():
                                worker.wakeup.ring()
            except psycopg.Error:
                log.warning("LISTEN connection lost; reconnecting", exc_info=True)
                time.sleep(1)

    # ------------------------------------------------------------------ positions
    def position(self, name: str) -> int:
        return self.stores[name].max_tracking_id(self.desk.name) or 0

    def outdated(self) -> list[tuple[str, int, int]]:
        """The views whose store an older (or newer) version of their code built: (name, stored, code)."""
        found = []
        for name, store in self.stores.items():
            stored = store.stored_version()
            if stored != store.view.version:
                found.append((name, stored, store.view.version))
        return found

    def refuse_outdated(self) -> None:
        """Refuse to serve views whose code changed since their store was built (after an upgrade)."""
        outdated = self.outdated()
        if outdated:
            built = ", ".join(f"{name} (built by version {stored}, the code is version {code})" for name, stored, code in outdated)
            commands = ", ".join(f"`ticketflow rebuild {name}`" for name, _, _ in outdated)
            raise ValidationFailed(f"views built by another version of ticketflow: {built}; run {commands} first")

    def status(self) -> list[ViewStatus]:
        log_position = self.desk.log_position()
        return [ViewStatus(name, self.position(name), log_position) for name in self.stores]

    def wait(
        self, position: int, timeout: float = 5.0, names: Iterable[str] | None = None, hurry: bool = True
    ) -> bool:
        """Block until the views (all, or ``names``) have reached ``position``; False on timeout.

        ``hurry``: have the worker apply what is waiting at once (a reader answering its caller); False
        lets it finish gathering its batch (the automation, which has nobody waiting on it)."""
        deadline = time.monotonic() + timeout
        pending = set(names or self.stores)
        while True:
            with self._progress:
                steps = self._steps
            pending = {n for n in pending if self.position(n) < position}
            remaining = deadline - time.monotonic()
            if not pending:
                return True
            if remaining <= 0:
                return False
            if hurry:
                for worker in self.workers.values():
                    worker.hurry()
                if not self.workers and self.hurry_elsewhere is not None:
                    self.hurry_elsewhere()
            # This process's worker moves the positions and says so after each batch: sleep until then
            # rather than read every position every 20 ms (views kept by another process: poll).
            with self._progress:
                if self._steps == steps:
                    self._progress.wait(min(remaining, WAIT_POLL_SECONDS if self.workers else 0.02))

    # ------------------------------------------------------------------ reads
    def read(self, name: str, query: Callable[[Db], R]) -> R:
        return self.stores[name].read(query)

    # ------------------------------------------------------------------ rebuild
    def rebuild_all(self, names: Iterable[str] | None = None, progress: Callable[[int], None] | None = None) -> None:
        """Rebuild several views from one shared pass over the log (each event read and decoded once)."""
        names = list(names or self.stores)
        with self._reloading(names), _bulk_collection():
            positions = {name: self.position(name) for name in names}
            while (done := self._bulk_step(positions, REBUILD_BATCH)) > 0:
                if progress:
                    progress(done)

    def rebuild(self, name: str, progress: Callable[[int], None] | None = None) -> None:
        """Empty a view and replay the whole log into it, a large batch per transaction.

        Safe while the desk keeps writing (the view ends caught up) and while a worker
        runs: the tracking position decides which of them commits each range.
        """
        with self._reloading([name]):
            self.catch_up([name], REBUILD_BATCH, progress)

    @contextmanager
    def _reloading(self, names: list[str]) -> Iterator[None]:
        """Empty the views, without their secondary indexes, for the body to reload them; index
        them after (faster than row by row), even when the reload fails."""
        for name in names:
            self.stores[name].reset(self.desk.name, drop_indexes=True)
        try:
            yield
        finally:
            for name in names:
                self.stores[name].create_indexes()
