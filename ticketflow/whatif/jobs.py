"""What-if jobs: a what-if asked for over HTTP or in the console, kept in the database and run by a worker.

A job is a row: what was asked (period, teams, candidate), who asked, its status (``queued`` ->
``running`` -> ``done`` | ``failed``), its progress and, once done, the report (the JSON
``ticketflow whatif --json`` prints). The worker runs in the process that runs the automation
(``serve`` embedded, ``project`` in scale-out).

Surviving restarts: a worker *claims* a job (compare-and-set on its status) under a lease it renews
while it runs (``heartbeat_us``). A job whose worker died stays ``running`` with a heartbeat that
stops moving; once the lease has run out, any worker claims it again. A job claimed
:data:`MAX_ATTEMPTS` times without finishing (it kills its worker) is marked failed.

Stores: ``<store>-whatif.sqlite`` beside the event store (SQLite), a table ``tf_whatif_jobs`` in the
store's schema (PostgreSQL), an in-memory SQLite database (memory store).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from ticketflow.config import Settings, StorageKind
from ticketflow.errors import TicketflowError
from ticketflow.whatif.report import Period, run_whatif, to_json

log = logging.getLogger("ticketflow.whatif")

STATUSES = ("queued", "running", "done", "failed")
#: Seconds a running job's worker has to renew its claim before another worker may take the job over.
LEASE_SECONDS = 60.0
#: Claims of one job before it is given up as failed (each claim after the first follows a dead worker).
MAX_ATTEMPTS = 3

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS {t} ("
    "id TEXT PRIMARY KEY, seq BIGINT NOT NULL, requested_by TEXT NOT NULL, role TEXT NOT NULL, "
    "team_ids TEXT, request TEXT NOT NULL, status TEXT NOT NULL, done BIGINT NOT NULL, total BIGINT NOT NULL, "
    "owner TEXT, heartbeat_us BIGINT NOT NULL, attempts INTEGER NOT NULL, report TEXT, error TEXT, "
    "created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT)"
)
_COLUMNS = (
    "id, requested_by, role, team_ids, request, status, done, total, attempts, report, error, "
    "created_at, started_at, finished_at"
)


def _now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True)
class Job:
    id: UUID
    requested_by: str
    role: str
    #: The teams the what-if covers (a supervisor's); None: the whole desk (an admin's).
    team_ids: tuple[str, ...] | None
    request: dict[str, Any]  # {"period": {"from", "to"}, "team": name or None, "candidate": {...}}
    status: str
    done: int
    total: int
    attempts: int
    report: str | None  # the report as JSON text (byte-identical to the CLI's --json)
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None

    def visible_to(self, all_teams: bool, team_ids: Collection[UUID | str]) -> bool:
        """An admin sees every job; a supervisor the jobs that cover only teams of theirs."""
        if all_teams:
            return True
        return self.team_ids is not None and set(self.team_ids) <= {str(t) for t in team_ids}

    def describe(self, with_report: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.id),
            "status": self.status,
            "progress": {"done": self.done, "total": self.total},
            "period": self.request["period"],
            "team": self.request.get("team"),
            "team_ids": None if self.team_ids is None else list(self.team_ids),
            "requested_by": self.requested_by,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
        }
        if with_report:
            out["report"] = None if self.report is None else json.loads(self.report)
        return out


def _job(row: tuple[Any, ...]) -> Job:
    (id_, by, role, teams, request, status, done, total, attempts, report, error, created, started, finished) = row
    return Job(UUID(str(id_)), by, role, None if teams is None else tuple(json.loads(teams)), json.loads(request),
               status, int(done), int(total), int(attempts), report, error, created, started, finished)


@dataclass(frozen=True)
class Claim:
    """A job this worker holds: ``owner`` guards every later write (a job taken over is no longer ours)."""

    job: Job
    owner: str


class JobStore(ABC):
    """The jobs table; SQLite and PostgreSQL run the same statements."""

    table = "tf_whatif_jobs"

    def __init__(self, now_us: Callable[[], int] = _now_us) -> None:
        self.now_us = now_us
        self._create()

    def _create(self) -> None:
        self._run(_SCHEMA.format(t=self.table), ())

    @abstractmethod
    def _run(self, sql: str, params: tuple[Any, ...], fetch: bool = False) -> list[tuple[Any, ...]]: ...

    def _sql(self, text: str) -> str:
        return text.replace("{t}", self.table)

    def close(self) -> None:
        pass

    # ------------------------------------------------------------------ asking and reading
    def submit(self, request: dict[str, Any], requested_by: str, role: str,
               team_ids: Collection[str] | None, created_at: datetime) -> Job:
        job_id = uuid4()
        teams = None if team_ids is None else json.dumps(sorted(team_ids))
        self._run(
            self._sql(
                "INSERT INTO {t} (id, seq, requested_by, role, team_ids, request, status, done, total, owner, "
                "heartbeat_us, attempts, created_at) VALUES (?, ?, ?, ?, ?, ?, 'queued', 0, 0, NULL, 0, 0, ?)"
            ),
            (str(job_id), self.now_us(), requested_by, role, teams,
             json.dumps(request, ensure_ascii=False, sort_keys=True), created_at.isoformat()),
        )
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: UUID) -> Job | None:
        rows = self._run(self._sql(f"SELECT {_COLUMNS} FROM {{t}} WHERE id = ?"), (str(job_id),), fetch=True)
        return _job(rows[0]) if rows else None

    def jobs(self) -> list[Job]:
        """Every job, the newest first (without reading their reports)."""
        columns = _COLUMNS.replace("report,", "NULL,")
        rows = self._run(self._sql(f"SELECT {columns} FROM {{t}} ORDER BY seq DESC, id DESC"), (), fetch=True)
        return [_job(r) for r in rows]

    # ------------------------------------------------------------------ working
    def claim(self) -> Claim | None:
        """Take the oldest queued job, or a running one whose worker's lease ran out; None when there is none."""
        now = self.now_us()
        stale = now - int(LEASE_SECONDS * 1_000_000)
        waiting = "(status = 'queued' OR (status = 'running' AND heartbeat_us < ?))"
        rows = self._run(self._sql(f"SELECT id FROM {{t}} WHERE {waiting} ORDER BY seq, id LIMIT 1"),
                         (stale,), fetch=True)
        if not rows:
            return None
        owner = uuid4().hex
        started = datetime.fromtimestamp(now / 1_000_000, UTC).isoformat()
        taken = self._run(
            self._sql(
                "UPDATE {t} SET status = 'running', owner = ?, heartbeat_us = ?, attempts = attempts + 1, "
                f"started_at = ? WHERE id = ? AND {waiting} RETURNING id"
            ),
            (owner, now, started, rows[0][0], stale), fetch=True,
        )
        if not taken:
            return None  # another worker took it first
        job = self.get(UUID(str(rows[0][0])))
        assert job is not None
        return Claim(job, owner)

    def heartbeat(self, claim: Claim, done: int | None = None, total: int | None = None) -> bool:
        """Renew the lease (and record the progress); False when the job is no longer this worker's."""
        params: tuple[Any, ...]
        if done is None or total is None:
            sql, params = "UPDATE {t} SET heartbeat_us = ? WHERE id = ? AND owner = ? RETURNING id", (
                self.now_us(), str(claim.job.id), claim.owner)
        else:
            sql, params = "UPDATE {t} SET heartbeat_us = ?, done = ?, total = ? WHERE id = ? AND owner = ? RETURNING id", (
                self.now_us(), done, total, str(claim.job.id), claim.owner)
        return bool(self._run(self._sql(sql), params, fetch=True))

    def release(self, claim: Claim) -> None:
        """Give the job back to the queue unfinished (its worker is stopping): the next worker starts it again."""
        self._run(
            self._sql(
                "UPDATE {t} SET status = 'queued', owner = NULL, heartbeat_us = 0, attempts = attempts - 1, "
                "done = 0, total = 0, started_at = NULL WHERE id = ? AND owner = ?"
            ),
            (str(claim.job.id), claim.owner),
        )

    def finish(self, claim: Claim, report: str | None, error: str | None) -> None:
        finished = datetime.fromtimestamp(self.now_us() / 1_000_000, UTC).isoformat()
        self._run(
            self._sql(
                "UPDATE {t} SET status = ?, report = ?, error = ?, finished_at = ?, done = total, owner = NULL "
                "WHERE id = ? AND owner = ?"
            ),
            ("done" if error is None else "failed", report, error, finished, str(claim.job.id), claim.owner),
        )


class SQLiteJobStore(JobStore):
    """One connection shared under a lock (a job is written a few times a second at most)."""

    def __init__(self, path: str, now_us: Callable[[], int] = _now_us) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        if path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        super().__init__(now_us)

    def _run(self, sql: str, params: tuple[Any, ...], fetch: bool = False) -> list[tuple[Any, ...]]:
        with self._lock:
            cursor = self._db.execute(sql, params)
            return cursor.fetchall() if fetch else []

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresJobStore(JobStore):
    def __init__(self, datastore: Any, now_us: Callable[[], int] = _now_us) -> None:
        self.datastore = datastore
        if datastore.schema:
            self.table = '"' + datastore.schema.replace('"', '""') + '".tf_whatif_jobs'
        super().__init__(now_us)

    def _create(self) -> None:
        # Processes starting together would race on the catalogue: one at a time, under a lock of the transaction.
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('tf_whatif_jobs'))")
            cursor.execute(_SCHEMA.format(t=self.table))

    def _sql(self, text: str) -> str:
        return super()._sql(text).replace("?", "%s")

    def _run(self, sql: str, params: tuple[Any, ...], fetch: bool = False) -> list[tuple[Any, ...]]:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(sql, params)
            return [tuple(row.values()) for row in cursor.fetchall()] if fetch else []


def open_job_store(settings: Settings, recorder: Any, now_us: Callable[[], int] = _now_us) -> JobStore:
    if settings.storage is StorageKind.MEMORY:
        return SQLiteJobStore(":memory:", now_us)
    if settings.storage is StorageKind.SQLITE:
        path = settings.sqlite_path
        path.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteJobStore(str(path.with_name(f"{path.stem}-whatif.sqlite")), now_us)
    return PostgresJobStore(recorder.datastore, now_us)


# ------------------------------------------------------------------ running
class Stopping(Exception):
    """The worker is stopping: the job goes back to the queue."""


def run_job(desk: Any, store: JobStore, claim: Claim, stopping: threading.Event | None = None) -> Job:
    """Run one claimed job to its end (done or failed) and record the outcome; the job as it ended.

    When ``stopping`` is set meanwhile, the job is given back to the queue instead (at the next progress report)."""
    job = claim.job
    stopping = stopping or threading.Event()
    if job.attempts > MAX_ATTEMPTS:
        store.finish(claim, None, f"gave up: the worker stopped {job.attempts - 1} times while running it")
    else:
        lost = threading.Event()

        def progress(done: int, total: int) -> None:
            if stopping.is_set():
                raise Stopping
            if not store.heartbeat(claim, done, total):
                lost.set()

        stop_beat = threading.Event()

        def beat() -> None:  # the lease, while the replay runs between progress reports
            while not stop_beat.wait(LEASE_SECONDS / 4):
                if not store.heartbeat(claim):
                    lost.set()

        beater = threading.Thread(target=beat, name=f"whatif-lease-{job.id}", daemon=True)
        beater.start()
        request = job.request
        try:
            period = Period(datetime.fromisoformat(request["period"]["from"]),
                            datetime.fromisoformat(request["period"]["to"]))
            report = run_whatif(desk, period, request["candidate"], progress=progress,
                                teams=None if job.team_ids is None else list(job.team_ids))
        except TicketflowError as exc:
            store.finish(claim, None, str(exc))
        except Exception as exc:  # a job fails alone, the worker goes on
            if stopping.is_set():
                store.release(claim)
                raise Stopping from None
            log.exception("what-if job %s failed", job.id)
            store.finish(claim, None, f"unexpected error ({type(exc).__name__}); it has been logged")
        else:
            if not lost.is_set():
                store.finish(claim, to_json(report), None)
        finally:
            stop_beat.set()
            beater.join()
    ended = store.get(job.id)
    assert ended is not None
    return ended


@dataclass
class Worker:
    """Runs queued jobs one at a time in a background thread; :meth:`wake` after a submit starts it at once.

    ``on_finished`` is called with each job it ended (tests wait on it instead of sleeping)."""

    desk: Any
    #: The store, or None while there is none yet (no job was ever asked for: nothing to open or create)
    stores: Callable[[], JobStore | None]
    poll_seconds: float = 2.0
    on_finished: Callable[[Job], None] | None = None
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def run_pending(self) -> list[Job]:
        """Run every job waiting now, in this thread; the jobs ended."""
        ended: list[Job] = []
        store = self.stores()
        if store is None:
            return ended
        while not self._stop.is_set() and (claim := store.claim()) is not None:
            try:
                job = run_job(self.desk, store, claim, self._stop)
            except Stopping:
                break
            ended.append(job)
            if self.on_finished is not None:
                self.on_finished(job)
        return ended

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="whatif-worker", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_pending()
            except Exception:  # the store was unreachable: try again at the next poll
                log.exception("what-if worker: cannot reach the job store")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def stop(self) -> None:
        """Stop after the job running now reaches its next progress report (it goes back to the queue)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class WhatifJobs:
    """The jobs of one process: the store (opened at first use) and, where automation runs, the worker."""

    def __init__(self, desk: Any, now_us: Callable[[], int] = _now_us) -> None:
        self.desk, self.now_us = desk, now_us
        self._store: JobStore | None = None
        self._lock = threading.Lock()
        self.worker: Worker | None = None

    @property
    def store(self) -> JobStore:
        with self._lock:
            if self._store is None:
                self._store = open_job_store(self.desk.settings, self.desk.recorder, self.now_us)
            return self._store

    def existing_store(self) -> JobStore | None:
        """The store if it exists, else None: a desk gets its jobs' file or table at the first job asked for."""
        settings = self.desk.settings
        if self._store is None and settings.storage is StorageKind.SQLITE:
            path = settings.sqlite_path
            if not path.with_name(f"{path.stem}-whatif.sqlite").exists():
                return None
        if self._store is None and settings.storage is StorageKind.POSTGRES:
            datastore = self.desk.recorder.datastore
            schema = datastore.schema or "public"
            with datastore.transaction(commit=False) as cursor:
                cursor.execute("SELECT to_regclass(%s) AS found", (f'"{schema.replace(chr(34), chr(34) * 2)}".tf_whatif_jobs',))
                if next(iter(cursor.fetchone().values())) is None:
                    return None
        return self.store

    def start_worker(self, poll_seconds: float = 2.0) -> Worker:
        self.worker = Worker(self.desk, self.existing_store, poll_seconds)
        self.worker.start()
        return self.worker

    def submitted(self) -> None:
        """A job was queued: a worker in this process starts it now (others find it at their next poll)."""
        if self.worker is not None:
            self.worker.wake()

    def close(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
