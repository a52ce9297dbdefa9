"""Crash trials: real `ticketflow serve` processes under concurrent keyed writes and reads while a fault
is injected, then every acknowledged write is looked for in the log and through the API, every write
that got no answer is retried with its key, every view is compared column by column with a rebuild,
and the log is verified. Three kinds of fault:

* ``serve``: SIGKILL of the API (SQLite: `serve`; PostgreSQL: the `serve --workers 2` group and
  `project`), then a restart;
* ``project``: SIGKILL of `ticketflow project` alone (PostgreSQL scale-out), the API still answering,
  then a restart of `project`;
* ``pg-restart``: `pg_ctl restart -m immediate` of the PostgreSQL server itself under load, on a
  private cluster made with `initdb` on a free port (never the shared one).

The CI subset (tests/faults/test_crash_trials.py) runs one ``serve`` trial per store and one
``pg-restart`` trial; the campaign runs many and prints the table for the README:

    python bench/faults.py --store sqlite --trials 100
    python bench/faults.py --store postgres --trials 20 [--clients 32] [--postgres URL | --private-cluster]
    python bench/faults.py --kind project --trials 20 [--postgres URL]
    python bench/faults.py --kind pg-restart --trials 20
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
KINDS = ("serve", "project", "pg-restart")
#: On PYTHONPATH of every process a trial starts: SIGUSR1 writes the process's stacks into its log.
TRACE_HOOK = Path(__file__).resolve().parent / "trace_hook"
#: Where a failed trial's logs and diagnosis are kept (the trial's own directory is temporary).
KEPT = Path(tempfile.gettempdir()) / "tf-crash-kept"


@dataclass
class Trial:
    store: str
    kind: str = "serve"
    acknowledged: int = 0
    lost: int = 0
    missing_from_api: int = 0
    in_flight: int = 0
    retried_once: int = 0
    failed_during_fault: int = 0  # requests answered 5xx or dropped while the fault lasted (retried if writes)
    stuck_keys: int = 0
    duplicated: int = 0
    errors_5xx_after_recovery: int = 0
    views_equal_rebuild: bool = False
    audit_ok: bool = False
    recovery_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    kept: str | None = None  # a failed trial: the directory holding every process's log and the diagnosis

    @property
    def ok(self) -> bool:
        return (not self.problems and self.lost == 0 and self.missing_from_api == 0 and self.stuck_keys == 0
                and self.duplicated == 0 and self.errors_5xx_after_recovery == 0 and self.views_equal_rebuild
                and self.audit_ok)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def postgres_bin() -> Path | None:
    """The directory of PostgreSQL's server programs (initdb, pg_ctl), or None when not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]) if
                   p.split("/")[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


class PrivateCluster:
    """A PostgreSQL cluster of its own (`initdb`, trust auth, a free port) that a trial may restart
    without disturbing anyone else's server. As root, its programs run as the `postgres` user."""

    def __init__(self) -> None:
        bin_dir = postgres_bin()
        if bin_dir is None:
            raise RuntimeError("initdb not found (install PostgreSQL's server package)")
        self.bin = bin_dir
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="tf-pg-"))
        self.data = self.root / "data"
        self.owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.owner:
            shutil.chown(self.root, "postgres", "postgres")
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                           f"unix_socket_directories = '{self.root}'\nmax_connections = 200\n")
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-t", "60", "start")
        except BaseException:
            self.close()
            raise
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run([*self.owner, str(self.bin / program), *args], check=False, capture_output=True,
                              text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)}: {(done.stderr or done.stdout).strip()[-500:]}")

    def restart(self) -> None:
        """Stop the server without a clean shutdown (every backend killed, crash recovery on start) and start it."""
        before = self._postmaster()
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-m", "immediate", "-w", "-t", "60",
                  "restart")
        if self._postmaster() == before:
            raise RuntimeError("pg_ctl restart returned but the same postmaster still runs")

    def _postmaster(self) -> str:
        return (self.data / "postmaster.pid").read_text().split("\n", 1)[0]

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run([*self.owner, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"],
                           check=False, capture_output=True, timeout=120)
        shutil.rmtree(self.root, ignore_errors=True)


class PortTaken(RuntimeError):
    """serve could not listen: its port was taken."""


class Desk:
    """The served desk: its environment, processes, and an admin client."""

    def __init__(self, workdir: Path, database_url: str | None, workers: int | None = None) -> None:
        self.env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{TRACE_HOOK}", "TICKETFLOW_DATA_DIR": str(workdir / "data"),
                    "TICKETFLOW_RATE_LIMIT_BURST": "100000", "TICKETFLOW_RATE_LIMIT_PER_SECOND": "100000",
                    "TICKETFLOW_IDEMPOTENCY_STALE_SECONDS": "2", "TICKETFLOW_AUTOMATION": "false"}
        self.env.pop("TICKETFLOW_DATABASE_URL", None)
        if database_url:
            self.env["TICKETFLOW_DATABASE_URL"] = database_url
        self.postgres = database_url is not None
        #: `serve --workers N` (default: 2 on PostgreSQL, with `project` beside; 1 on SQLite, the embedded default)
        self.workers = workers if workers is not None else (2 if self.postgres else 1)
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []
        self.workdir, self.spawned = workdir, 0
        self.token = self._admin_token()

    def _admin_token(self) -> str:
        """What `ticketflow token create --role admin` does, in this process (one interpreter start less)."""
        sys.path.insert(0, str(REPO))
        from ticketflow.application import TicketDesk
        from ticketflow.commands.access import IssueToken
        from ticketflow.config import Settings
        from ticketflow.domain.values import Channel, Role
        from ticketflow.metadata import Caller

        desk = TicketDesk(Settings(data_dir=Path(self.env["TICKETFLOW_DATA_DIR"]),
                                   database_url=self.env.get("TICKETFLOW_DATABASE_URL")))
        try:
            _, token = desk.issue_token(IssueToken(name="crash-trial", role=Role.ADMIN),
                                        Caller("cli-admin", Role.ADMIN, Channel.CLI))
        finally:
            desk.close()
        assert token is not None
        return token

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        self.spawned += 1
        log = self.workdir / f"{args[0]}-{self.spawned}.log"  # kept when a start or a check fails
        with log.open("wb") as out:
            return subprocess.Popen([sys.executable, "-m", "ticketflow_cli", *args], env=self.env, stdout=out, stderr=out,
                                    start_new_session=True)

    def start(self) -> float:
        started = time.monotonic()
        for _ in range(3):
            self.processes = [self._spawn("serve", "--port", str(self.port), "--workers", str(self.workers))]
            if self.postgres:
                self.processes.append(self._spawn("project", "--status-every", "0"))
            try:
                return self.ready(started)
            except PortTaken:
                # Between the kill and the restart another socket (a client's outgoing connection,
                # another test) took the port: the harness's problem, not the desk's; serve on another.
                self.kill()
                self.port = _free_port()
                self.base = f"http://127.0.0.1:{self.port}"
        raise RuntimeError("serve found its port taken three times")

    def ready(self, started: float) -> float:
        """Seconds from ``started`` until /readyz answers 200."""
        deadline = started + 60
        serve = self.processes[0]
        while time.monotonic() < deadline and serve.poll() is None:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        output = max(self.workdir.glob("serve-*.log"), key=lambda p: int(p.stem.split("-")[1])).read_text(errors="replace")
        if serve.poll() is not None and "address already in use" in output.lower():
            raise PortTaken(output[-500:])
        raise RuntimeError(f"serve was not ready within 60 s (exit code {serve.poll()}): {output[-2000:]}")

    def caught_up(self, started: float, timeout: float = 60) -> float | None:
        """Seconds from ``started`` until every view has no lag (None if not within ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"{self.base}/readyz", timeout=2)
                views = response.json()["views"] if response.status_code == 200 else []
                if views and all(v["lag"] == 0 for v in views):
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        return None

    def exited(self) -> list[str]:
        """The processes of this start that are no longer running (none should be before a fault:
        a `project` that died at start leaves every view behind while the API answers)."""
        return [f"`{p.args[3]}` (pid {p.pid}) exited with code {p.returncode}"  # type: ignore[index]
                for p in self.processes if p.poll() is not None]

    def kill_project(self) -> None:
        _kill(self.processes[1], signal.SIGKILL)

    def restart_project(self) -> None:
        self.processes[1] = self._spawn("project", "--status-every", "0")

    def kill(self) -> None:
        for process in self.processes:
            _kill(process, signal.SIGKILL)  # serve and its workers

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is not None:
                continue
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _kill(process, signal.SIGKILL)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)

    def diagnose(self, reason: str) -> None:
        """Write what a failed check needs explained to ``diagnosis.txt`` beside the process logs: the
        processes, /readyz, every view's stored position against the log's newest notification id,
        and (PostgreSQL) the sessions on this desk's schema with what they wait for; then SIGUSR1 to
        every live process, which writes all its threads' stacks into its log (bench/trace_hook)."""
        lines = [f"{time.strftime('%Y-%m-%d %H:%M:%S')} {reason}"]
        for process in self.processes:
            lines.append(f"process {process.pid} {' '.join(str(a) for a in process.args[3:])}: "  # type: ignore[index]
                         f"{'running' if process.poll() is None else f'exited {process.returncode}'}")
        try:
            lines.append(f"/readyz: {httpx.get(f'{self.base}/readyz', timeout=5).text}")
        except httpx.TransportError as exc:
            lines.append(f"/readyz: {exc!r}")
        try:
            lines += _store_positions(self.env)
        except Exception as exc:  # noqa: BLE001 - the diagnosis reports what it could not read
            lines.append(f"store positions: {exc!r}")
        (self.workdir / "diagnosis.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        signalled = False
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGUSR1)
                    signalled = True
                except ProcessLookupError:
                    pass
        if signalled:
            time.sleep(1)  # the stacks reach the logs

    def keep(self, label: str, root: Path = KEPT) -> Path:
        """Copy every process's log and the diagnosis out of the trial's (temporary) directory."""
        kept = root / f"{label}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
        kept.mkdir(parents=True)
        for path in [*self.workdir.glob("*.log"), self.workdir / "diagnosis.txt"]:
            if path.exists():
                shutil.copy(path, kept / path.name)
        return kept


def _store_positions(env: dict[str, str]) -> list[str]:
    """Each view's stored position and the log's newest notification id, read straight from the store
    (no desk or read side opened: on PostgreSQL those run DDL, which a stuck lock would block too)."""
    url = env.get("TICKETFLOW_DATABASE_URL")
    if url is None:
        import sqlite3

        sys.path.insert(0, str(REPO))
        from projections.readside import views_dir
        from ticketflow.config import Settings

        settings = Settings(data_dir=Path(env["TICKETFLOW_DATA_DIR"]))
        with sqlite3.connect(f"file:{settings.sqlite_path}?mode=ro", uri=True) as events:
            top = events.execute("SELECT MAX(rowid) FROM stored_events").fetchone()[0]  # the notification id
        lines = [f"log: newest notification id {top}"]
        for view in sorted(views_dir(settings).glob("*.sqlite")):
            with sqlite3.connect(f"file:{view}?mode=ro", uri=True) as db:
                rows = db.execute("SELECT application_name, notification_id FROM tracking").fetchall()
            lines.append(f"view {view.stem}: {rows}")
        return lines
    import psycopg
    from psycopg.sql import SQL, Identifier

    server, _, query = url.partition("?")
    schema = query.split("schema=", 1)[1].split("&", 1)[0] if "schema=" in query else "public"
    with psycopg.connect(server, autocommit=True, connect_timeout=5) as conn:
        conn.execute("SET statement_timeout = '5s'")
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.columns WHERE table_schema = %s AND column_name = 'notification_id'"
            " ORDER BY table_name", (schema,))]
        lines = []
        for table in tables:
            name = Identifier(schema, table)
            if table.endswith("_tracking"):
                rows = conn.execute(SQL("SELECT application_name, notification_id FROM {} ORDER BY 1").format(name)).fetchall()
                lines.append(f"view {table}: {rows}")
            else:
                top = conn.execute(SQL("SELECT MAX(notification_id), COUNT(*) FROM {}").format(name)).fetchone()
                lines.append(f"log {table}: newest notification id {top[0]}, {top[1]} rows")  # type: ignore[index]
        sessions = conn.execute(
            "SELECT pid, state, wait_event_type, wait_event, pg_blocking_pids(pid), now() - xact_start,"
            " left(regexp_replace(query, '\\s+', ' ', 'g'), 300) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid() AND position(%s in query) > 0"
            " ORDER BY xact_start NULLS LAST", (schema,)).fetchall()
        lines.append(f"sessions on schema {schema} (pid, state, wait type, wait event, blocked by, in transaction for, last query):")
        lines += [f"  {row}" for row in sessions]
    return lines


def _kill(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(process.pid, sig)  # the process and its children (serve's workers)
    except ProcessLookupError:
        pass
    process.wait()


def run_trial(workdir: Path, database_url: str | None = None, load_seconds: float = 1.5, clients: int = 6,
              seed: int | None = None, kind: str = "serve", cluster: PrivateCluster | None = None,
              workers: int | None = None) -> Trial:
    """One trial. ``kind`` "project" and "pg-restart" need PostgreSQL; "pg-restart" restarts ``cluster``,
    the server ``database_url`` is on. ``workers``: `serve --workers N` (default 2 on PostgreSQL, 1 on SQLite)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    if kind != "serve" and database_url is None:
        raise ValueError(f"a {kind} trial needs PostgreSQL")
    if kind == "pg-restart" and cluster is None:
        raise ValueError("a pg-restart trial needs the private cluster to restart")
    rng = random.Random(seed)
    trial = Trial("postgres" if database_url else "sqlite", kind)
    desk = Desk(workdir, database_url, workers)
    label = f"{trial.store}-{kind}-seed{seed}"
    try:
        acked = _load_and_fault(desk, trial, rng, kind, load_seconds, clients, cluster)
    except BaseException as exc:
        desk.diagnose(f"the trial raised {exc!r}")
        desk.stop()
        trial.kept = str(desk.keep(label))
        print(f"trial {label} raised; logs and diagnosis kept in {trial.kept}", file=sys.stderr, flush=True)
        raise
    # A check that failed while the desk still runs is diagnosed now (before _check_log catches the views
    # up in this process); one that fails only in _check_log gets the stored positions after the stop.
    failed_live = bool(trial.problems or trial.missing_from_api or trial.stuck_keys or trial.errors_5xx_after_recovery)
    if failed_live:
        desk.diagnose("; ".join(trial.problems) or f"{trial.missing_from_api} acknowledged writes missing from the API")
    desk.stop()
    _check_log(desk, acked, trial)
    if not trial.ok:
        if not failed_live:
            desk.diagnose("; ".join(trial.problems) or "a check on the stopped desk failed")
        trial.kept = str(desk.keep(label))
        print(f"trial {label} failed; logs and diagnosis kept in {trial.kept}", file=sys.stderr, flush=True)
    return trial


def _load_and_fault(desk: Desk, trial: Trial, rng: random.Random, kind: str, load_seconds: float, clients: int,
                    cluster: PrivateCluster | None) -> dict[str, dict[str, Any]]:
    """Start the desk, load it, inject the fault, retry what got no answer, and check the API (live);
    returns the acknowledged writes (key -> path, body and the id answered)."""
    desk.start()
    with desk.client() as c:
        team = c.post("/api/v1/teams", json={"name": "一线支持"}).json()["id"]
        c.post(f"/api/v1/teams/{team}/members", json={"agent_id": "li.wei"})
        customer = c.post("/api/v1/customers", json={"name": "王小明"}).json()["id"]
    acked: dict[str, dict[str, Any]] = {}
    pending: dict[str, tuple[str, dict[str, Any]]] = {}  # key -> (path, body) of requests without an answer
    lock = threading.Lock()
    stop = threading.Event()
    # Set once the fault is over (the API never went down for "project"): a 5xx or a dropped connection
    # on any request sent after this counts against the trial.
    recovered = threading.Event()
    if kind == "project":
        recovered.set()
    seeds = [rng.randrange(2**32) for _ in range(clients)]

    def failed_after_recovery(sent_after_recovery: bool) -> None:
        with lock:
            if sent_after_recovery:
                trial.errors_5xx_after_recovery += 1
            else:
                trial.failed_during_fault += 1

    def work(n: int) -> None:
        own = random.Random(seeds[n])
        with desk.client() as c:
            ticket = None
            for i in range(100_000):
                if stop.is_set():
                    return
                after = recovered.is_set()
                if ticket is not None and own.random() < 0.2:
                    try:
                        read = c.get(f"/api/v1/tickets/{ticket}")
                    except httpx.TransportError:
                        if kind == "serve":
                            return
                        failed_after_recovery(after)
                        continue
                    if read.status_code >= 500:
                        failed_after_recovery(after)
                    continue
                key = f"c{n}-{i}-{uuid.uuid4().hex[:6]}"
                if ticket is None or own.random() < 0.15:
                    path, body = "/api/v1/tickets", {"subject": f"工单 {key}", "requester_id": customer, "team_id": team}
                else:
                    path, body = f"/api/v1/tickets/{ticket}/notes", {"body": f"备注 {key}"}
                with lock:
                    pending[key] = (path, body)
                try:
                    response = c.post(path, json=body, headers={"Idempotency-Key": key})
                except httpx.TransportError:
                    if kind == "serve":
                        return  # the server died: this request stays pending
                    failed_after_recovery(after)
                    continue
                if response.status_code in (200, 201):
                    with lock:
                        pending.pop(key, None)
                        acked[key] = {"path": path, "body": body, "id": response.json()["id"]}
                    if path == "/api/v1/tickets":
                        ticket = response.json()["id"]
                elif response.status_code < 500:
                    with lock:
                        pending.pop(key, None)
                else:
                    failed_after_recovery(after)  # during the fault: stays pending, retried with its key

    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    time.sleep(load_seconds * (0.5 + rng.random()))
    trial.problems += [f"before the fault, {gone}" for gone in desk.exited()]
    if kind == "serve":
        desk.kill()
        stop.set()
        for t in threads:
            t.join()
        trial.recovery_seconds = round(desk.start(), 2)
    elif kind == "project":
        desk.kill_project()
        time.sleep(load_seconds * (0.25 + rng.random() / 2))  # writes go on while no view moves
        restarted = time.monotonic()
        desk.restart_project()
        time.sleep(load_seconds / 2)
        stop.set()
        for t in threads:
            t.join()
        caught_up = desk.caught_up(restarted)
        if caught_up is None:
            trial.problems.append("the views did not catch up within 60 s of restarting project")
        trial.recovery_seconds = round(caught_up or 0.0, 2)
    else:
        assert cluster is not None
        restarted = time.monotonic()
        cluster.restart()
        trial.recovery_seconds = round(desk.ready(restarted), 2)
        recovered.set()
        time.sleep(load_seconds / 2)  # the first requests after recovery, from every worker's pools
        stop.set()
        for t in threads:
            t.join()
    trial.in_flight = len(pending)
    with desk.client() as c:
        for key, (path, body) in sorted(pending.items()):
            deadline = time.monotonic() + 15
            while True:
                response = c.post(path, json=body, headers={"Idempotency-Key": key})
                if response.status_code != 409 or time.monotonic() > deadline:
                    break
                time.sleep(0.25)  # still "running": its attempt died; the key is taken over when stale
            if response.status_code == 409:
                trial.stuck_keys += 1
            elif response.status_code >= 500:
                trial.errors_5xx_after_recovery += 1
            elif response.status_code in (200, 201):
                trial.retried_once += 1
                acked[key] = {"path": path, "body": body, "id": response.json()["id"]}
    trial.acknowledged = len(acked)
    trial.problems += [f"after the trial, {gone}" for gone in desk.exited()]
    if desk.caught_up(time.monotonic()) is None:
        trial.problems.append("the views did not catch up within 60 s after the trial")
    _check_api(desk, acked, trial)
    return acked


def _check_api(desk: Desk, acked: dict[str, dict[str, Any]], trial: Trial) -> None:
    """Every acknowledged ticket through GET /tickets/{id}, every acknowledged note once in its timeline."""
    notes: dict[str, list[str]] = {}
    with desk.client() as c:
        for write in acked.values():
            if write["path"] == "/api/v1/tickets":
                response = c.get(f"/api/v1/tickets/{write['id']}")
                if response.status_code != 200 or response.json()["subject"] != write["body"]["subject"]:
                    trial.missing_from_api += 1
            else:
                notes.setdefault(write["id"], []).append(write["body"]["body"])
        for ticket, bodies in notes.items():
            response = c.get(f"/api/v1/tickets/{ticket}/timeline")
            shown = [entry["body"] for entry in response.json()] if response.status_code == 200 else []
            trial.missing_from_api += sum(1 for body in bodies if shown.count(body) != 1)


def _check_log(desk: Desk, acked: dict[str, dict[str, Any]], trial: Trial) -> None:
    """In this process, on the stopped desk's store: every acknowledged write once, views == rebuild, audit OK."""
    sys.path.insert(0, str(REPO))
    from projections.integrity.sealer import Sealer
    from projections.integrity.verifier import verify_store
    from projections.readside import VIEWS, ReadSide
    from ticketflow.application import TicketDesk
    from ticketflow.config import Settings

    settings = Settings(data_dir=Path(desk.env["TICKETFLOW_DATA_DIR"]), database_url=desk.env.get("TICKETFLOW_DATABASE_URL"))
    app = TicketDesk(settings)
    try:
        texts: dict[str, int] = {}
        start = 1
        while page := app.recorder.select_notifications(start, 1000):
            for n in page:
                event = app.mapper.to_domain_event(n)
                for text in (getattr(event, "subject", None), getattr(event, "body", None)):
                    if isinstance(text, str):
                        texts[text] = texts.get(text, 0) + 1
            start = page[-1].id + 1
        for write in acked.values():
            text = write["body"].get("subject") or write["body"].get("body")
            found = texts.get(text, 0)
            if found == 0:
                trial.lost += 1
            elif found > 1:
                trial.duplicated += 1
        read_side = ReadSide(app)
        try:
            read_side.catch_up()
            live = _dump(read_side, VIEWS)
            for name in list(read_side.stores):
                read_side.rebuild(name)
            trial.views_equal_rebuild = _dump(read_side, VIEWS) == live
            if not trial.views_equal_rebuild:
                trial.problems.append("a view differs from its rebuild")
        finally:
            read_side.close()
        sealer = Sealer(app)
        try:
            sealer.catch_up(checkpoint=True)
            report = verify_store(app, sealer.store, snapshots=True, workers=1)
            trial.audit_ok = report.complete
            if not report.complete:
                trial.problems.append(report.summary())
        finally:
            sealer.close()
    finally:
        app.close()


def _dump(read_side: Any, views: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name in read_side.stores:
        for table in views[name].tables:
            columns, order = ", ".join(table.column_names), ", ".join(table.key)
            out[f"{name}.{table.name}"] = [tuple(r.values()) for r in read_side.read(
                name, lambda db, t=table, c=columns, o=order: db.all(f"SELECT {c} FROM {{p}}{t.name} ORDER BY {o}"))]
    return out


def _schema(server: str) -> str:
    import psycopg

    schema = f"tf_crash_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return schema


def _drop(server: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgres"), help="default: sqlite for --kind serve, else postgres")
    parser.add_argument("--kind", choices=KINDS, default="serve",
                        help="serve: SIGKILL the API; project: SIGKILL `project` alone; pg-restart: restart PostgreSQL")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--workers", type=int, help="serve --workers N (default: 2 on PostgreSQL, 1 on SQLite)")
    parser.add_argument("--clients", type=int, default=6,
                        help="concurrent clients during the load (32: saves commit in groups)")
    parser.add_argument("--postgres", default=os.environ.get("TICKETFLOW_TEST_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"),
                        help="the server for --store postgres (pg-restart makes a private cluster instead)")
    parser.add_argument("--private-cluster", action="store_true",
                        help="run on a private cluster (initdb on a free port, max_connections 200) instead of"
                             " --postgres: a shared server that other work fills refuses the trial's connections")
    args = parser.parse_args()
    store = args.store or ("sqlite" if args.kind == "serve" else "postgres")
    if store == "sqlite" and args.kind != "serve":
        parser.error(f"--kind {args.kind} needs --store postgres")

    cluster = PrivateCluster() if args.kind == "pg-restart" or (args.private_cluster and store == "postgres") else None
    server = cluster.url if cluster else args.postgres
    results = []
    try:
        for number in range(args.trials):
            with tempfile.TemporaryDirectory(prefix="tf-crash-") as workdir:
                schema = _schema(server) if store == "postgres" else None
                try:
                    trial = run_trial(Path(workdir), f"{server}?schema={schema}" if schema else None, seed=number,
                                      clients=args.clients, kind=args.kind, cluster=cluster, workers=args.workers)
                finally:
                    if schema:
                        _drop(server, schema)
            results.append(trial)
            print(json.dumps(asdict(trial), ensure_ascii=False), flush=True)
    finally:
        if cluster:
            cluster.close()
    recovery = sorted(t.recovery_seconds for t in results)
    print(f"{store} {args.kind}: {len(results)} trials, {sum(t.acknowledged for t in results)} acknowledged writes,"
          f" {sum(t.lost for t in results)} lost, {sum(t.missing_from_api for t in results)} missing from the API,"
          f" {sum(t.duplicated for t in results)} duplicated, {sum(t.stuck_keys for t in results)} stuck keys,"
          f" {sum(t.errors_5xx_after_recovery for t in results)} 5xx after recovery,"
          f" views == rebuild in {sum(t.views_equal_rebuild for t in results)}/{len(results)},"
          f" audit OK in {sum(t.audit_ok for t in results)}/{len(results)}, recovery {recovery[0]}/"
          f"{recovery[len(recovery) // 2]}/{recovery[-1]} s (min/median/max), {sum(t.ok for t in results)} trials OK")


if __name__ == "__main__":
    main()
