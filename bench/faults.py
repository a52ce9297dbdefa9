"""Crash trials: real `ticketflow serve` processes under concurrent keyed writes, killed with SIGKILL
mid-load and restarted; then every acknowledged write is looked for, every write that was in flight
is retried with its key, every view is compared column by column with a rebuild, and the log is
verified. The CI subset (tests/faults/test_crash_trials.py) runs one trial per store; the campaign
runs many and prints the table for the README:

    python bench/faults.py --store sqlite --trials 100
    python bench/faults.py --store postgres --trials 20 [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Trial:
    store: str
    acknowledged: int = 0
    lost: int = 0
    in_flight: int = 0
    retried_once: int = 0
    stuck_keys: int = 0
    duplicated: int = 0
    errors_5xx_after_recovery: int = 0
    views_equal_rebuild: bool = False
    audit_ok: bool = False
    recovery_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (not self.problems and self.lost == 0 and self.stuck_keys == 0 and self.duplicated == 0
                and self.errors_5xx_after_recovery == 0 and self.views_equal_rebuild and self.audit_ok)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Desk:
    """The served desk: its environment, processes, and an admin client."""

    def __init__(self, workdir: Path, database_url: str | None) -> None:
        self.env = {**os.environ, "PYTHONPATH": str(REPO), "TICKETFLOW_DATA_DIR": str(workdir / "data"),
                    "TICKETFLOW_RATE_LIMIT_BURST": "100000", "TICKETFLOW_RATE_LIMIT_PER_SECOND": "100000",
                    "TICKETFLOW_IDEMPOTENCY_STALE_SECONDS": "2", "TICKETFLOW_AUTOMATION": "false"}
        self.env.pop("TICKETFLOW_DATABASE_URL", None)
        if database_url:
            self.env["TICKETFLOW_DATABASE_URL"] = database_url
        self.postgres = database_url is not None
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.processes: list[subprocess.Popen[bytes]] = []
        created = self.cli("token", "create", "--role", "admin", "--name", "crash-trial")
        self.token = created.stdout.strip()

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "ticketflow_cli", *args], env=self.env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"ticketflow {' '.join(args)}: {done.stderr.strip()[-500:]}")
        return done

    def start(self) -> float:
        started = time.monotonic()
        serve = [sys.executable, "-m", "ticketflow_cli", "serve", "--port", str(self.port)] + (["--workers", "2"] if self.postgres else [])
        self.processes = [subprocess.Popen(serve, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                           start_new_session=True)]
        if self.postgres:
            self.processes.append(subprocess.Popen([sys.executable, "-m", "ticketflow_cli", "project", "--status-every", "0"],
                                                   env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                                   start_new_session=True))
        deadline = started + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("serve did not become ready within 60 s")

    def kill(self) -> None:
        for process in self.processes:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # serve and its workers
            except ProcessLookupError:
                pass
            process.wait()

    def stop(self) -> None:
        for process in self.processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)


def run_trial(workdir: Path, database_url: str | None = None, load_seconds: float = 1.5, clients: int = 6,
              seed: int | None = None) -> Trial:
    rng = random.Random(seed)
    trial = Trial("postgres" if database_url else "sqlite")
    desk = Desk(workdir, database_url)
    desk.start()
    with desk.client() as c:
        team = c.post("/api/v1/teams", json={"name": "一线支持"}).json()["id"]
        c.post(f"/api/v1/teams/{team}/members", json={"agent_id": "li.wei"})
        customer = c.post("/api/v1/customers", json={"name": "王小明"}).json()["id"]
    acked: dict[str, dict[str, Any]] = {}
    pending: dict[str, tuple[str, dict[str, Any]]] = {}  # key -> (path, body) of requests without an answer
    lock = threading.Lock()
    stop = threading.Event()

    def work(n: int) -> None:
        with desk.client() as c:
            ticket = None
            for i in range(100_000):
                if stop.is_set():
                    return
                key = f"c{n}-{i}-{uuid.uuid4().hex[:6]}"
                if ticket is None or rng.random() < 0.15:
                    path, body = "/api/v1/tickets", {"subject": f"工单 {key}", "requester_id": customer, "team_id": team}
                else:
                    path, body = f"/api/v1/tickets/{ticket}/notes", {"body": f"备注 {key}"}
                with lock:
                    pending[key] = (path, body)
                try:
                    response = c.post(path, json=body, headers={"Idempotency-Key": key})
                except httpx.TransportError:
                    return  # the server died: this request stays pending
                if response.status_code in (200, 201):
                    with lock:
                        pending.pop(key, None)
                        acked[key] = {"path": path, "body": body, "id": response.json()["id"]}
                    if path == "/api/v1/tickets":
                        ticket = response.json()["id"]
                elif response.status_code < 500:
                    with lock:
                        pending.pop(key, None)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    time.sleep(load_seconds * (0.5 + rng.random()))
    desk.kill()
    stop.set()
    for t in threads:
        t.join()
    trial.acknowledged, trial.in_flight = len(acked), len(pending)
    trial.recovery_seconds = round(desk.start(), 2)
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
    desk.stop()
    _check_log(desk, acked, trial)
    return trial


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
        for key, write in acked.items():
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


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--postgres", default=os.environ.get("TICKETFLOW_TEST_POSTGRES_URL",
                                                             "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    import tempfile

    import psycopg

    results = []
    for number in range(args.trials):
        with tempfile.TemporaryDirectory(prefix="tf-crash-") as workdir:
            url = None
            if args.store == "postgres":
                schema = f"tf_crash_{uuid.uuid4().hex[:10]}"
                with psycopg.connect(args.postgres, autocommit=True) as conn:
                    conn.execute(f'CREATE SCHEMA "{schema}"')
                url = f"{args.postgres}?schema={schema}"
            try:
                trial = run_trial(Path(workdir), url, seed=number)
            finally:
                if url:
                    with psycopg.connect(args.postgres, autocommit=True) as conn:
                        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        results.append(trial)
        print(json.dumps(asdict(trial), ensure_ascii=False), flush=True)
    recovery = sorted(t.recovery_seconds for t in results)
    print(f"{args.store}: {len(results)} trials, {sum(t.acknowledged + t.retried_once for t in results)} acknowledged writes,"
          f" {sum(t.lost for t in results)} lost, {sum(t.duplicated for t in results)} duplicated,"
          f" {sum(t.stuck_keys for t in results)} stuck keys, {sum(t.errors_5xx_after_recovery for t in results)} 5xx after"
          f" recovery, views == rebuild in {sum(t.views_equal_rebuild for t in results)}/{len(results)},"
          f" audit OK in {sum(t.audit_ok for t in results)}/{len(results)}, recovery {recovery[0]}/"
          f"{recovery[len(recovery) // 2]}/{recovery[-1]} s (min/median/max)")


if __name__ == "__main__":
    main()
