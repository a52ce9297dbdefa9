"""The CI subset of the crash trials (bench/faults.py): one SIGKILL trial per store, under load, and
one restart of a PostgreSQL server (a private cluster: the shared one is never restarted)."""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_faults", REPO / "bench" / "faults.py")
assert spec is not None and spec.loader is not None
faults = importlib.util.module_from_spec(spec)
sys.modules["bench_faults"] = faults  # dataclasses look their module up
spec.loader.exec_module(faults)


def _check(trial: object) -> None:
    assert trial.acknowledged > 0, trial  # type: ignore[attr-defined]
    assert (trial.lost, trial.missing_from_api, trial.duplicated, trial.stuck_keys, trial.errors_5xx_after_recovery) == (0, 0, 0, 0, 0), trial  # type: ignore[attr-defined]
    assert trial.views_equal_rebuild and trial.audit_ok, trial  # type: ignore[attr-defined]


def test_serve_killed_mid_load_on_sqlite_loses_nothing_and_recovers(tmp_path: Path) -> None:
    """32 clients, so saves commit in groups (ticketflow/group_commit.py): a SIGKILL mid-group loses
    no acknowledged write, and the retried unanswered ones land once."""
    _check(faults.run_trial(tmp_path, None, clients=32, seed=1))


def test_two_serve_workers_killed_mid_load_on_one_sqlite_file_lose_nothing_and_recover(tmp_path: Path) -> None:
    """`serve --workers 2` on SQLite under 32 clients: two processes commit groups into one file, and a
    SIGKILL of serve, its workers and its view process loses no acknowledged write."""
    _check(faults.run_trial(tmp_path, None, clients=32, seed=3, workers=2))


@pytest.mark.postgres
def test_the_postgres_serve_group_killed_mid_load_loses_nothing_and_recovers(tmp_path: Path, postgres_url: str) -> None:
    """`serve --workers 2` under 32 clients, so each worker commits its saves in groups
    (ticketflow/pg_group_commit.py): a SIGKILL of the group mid-load loses no acknowledged write, and
    the retried unanswered ones land once."""
    _check(faults.run_trial(tmp_path, postgres_url, clients=32, seed=2))


@pytest.mark.serial
def test_restarting_postgresql_under_load_loses_nothing_and_the_first_requests_after_it_succeed(tmp_path: Path) -> None:
    """`pg_ctl restart -m immediate` of a cluster made for this test (initdb on a free port), while six
    clients write and read through `serve --workers 2` and `project` follows: once /readyz answers
    again, no request may fail, no key stay stuck, and every write retried with its key lands once."""
    if faults.postgres_bin() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but initdb is not installed: the PostgreSQL restart trial cannot run")
        pytest.skip("initdb is not installed (PostgreSQL's server package): cannot make a cluster to restart")
    cluster = faults.PrivateCluster()
    try:
        schema = faults._schema(cluster.url)
        trial = faults.run_trial(tmp_path, f"{cluster.url}?schema={schema}", seed=3, kind="pg-restart", cluster=cluster)
    finally:
        cluster.close()
    _check(trial)


def test_a_restart_whose_port_was_taken_meanwhile_serves_on_another_port(tmp_path: Path) -> None:
    """A campaign trial once waited 60 s for a serve that had exited at once: between the kill and
    the restart, another socket had taken its port (serve: "address already in use")."""
    import socket

    desk = faults.Desk(tmp_path, None)
    desk.start()
    desk.kill()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", desk.port))
        squatter.listen()
        taken = desk.port
        desk.start()
    try:
        assert desk.port != taken
        assert faults.httpx.get(f"{desk.base}/readyz", timeout=5).status_code == 200
    finally:
        desk.stop()


def test_a_failed_check_keeps_each_process_log_with_its_stacks_and_the_view_positions(tmp_path: Path) -> None:
    """A campaign trial once failed with nothing left to explain it: the harness kept a process's log
    only when its start failed. Now a failed check writes the diagnosis (each view's stored position
    against the log's newest id), has every process write its threads' stacks into its log, and keeps
    the logs; a process that died is reported as such."""
    desk = faults.Desk(tmp_path / "trial", None)
    desk.start()
    try:
        assert desk.exited() == []
        assert desk.caught_up(time.monotonic()) is not None  # the views (serve's view process) have positions
        desk.diagnose("a check failed")
    finally:
        desk.kill()
    assert desk.exited() == [f"`serve` (pid {desk.processes[0].pid}) exited with code -9"]
    kept = desk.keep("probe", root=tmp_path / "kept")

    diagnosis = (kept / "diagnosis.txt").read_text(encoding="utf-8").splitlines()
    assert diagnosis[0].endswith("a check failed")
    assert any(line.startswith("log: newest notification id ") for line in diagnosis)
    assert any(line.startswith("view tickets: [('TicketDesk', ") for line in diagnosis)
    assert "most recent call first" in (kept / "serve-1.log").read_text(errors="replace")
