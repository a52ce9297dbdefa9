"""``serve --workers N`` on SQLite: N API processes on one database file and one view process, which
every worker rings through a named pipe; a memory store, or views kept in each worker, are refused."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from projections import doorbell
from projections.doorbell import PATH_VARIABLE, Doorbell
from tests.api.test_e2e_serve import free_port, stop
from tests.cli.test_serve_view_process import (
    alive,
    assert_sealed_to_the_end,
    children,
    eventually,
    fake,
    serving,
)
from tests.support import ADMIN
from tests.support import run_cli as run
from ticketflow_cli.view_process import ViewProcess


def test_a_named_doorbell_hears_every_process_that_opens_it_and_ends_after_the_last(tmp_path: Path) -> None:
    command, out = fake(tmp_path)
    process = ViewProcess(command, named=True)
    assert process.path is not None and Path(process.path).exists()
    process.start()
    worker = Doorbell.at(process.path)  # as a worker process opens it, by its path
    try:
        eventually(lambda: out.exists() and out.read_bytes().startswith(b"started;"))
        worker.saved(1)
        process.doorbell.hurry()
        worker.hurry()
        eventually(lambda: out.read_bytes() == b"started;shh")
        stopping = threading.Thread(target=process.stop)
        stopping.start()  # serve's own end closes; a worker still holds its end open
        eventually(lambda: process._stopping.is_set())
        worker.saved()
        eventually(lambda: out.read_bytes() == b"started;shhs")  # still heard: the pipe has not ended
        assert not out.read_bytes().endswith(b";ended")
        worker.close()  # the last end: the view process reads the pipe's end and stops
        stopping.join(30)
        assert not stopping.is_alive()
        assert out.read_bytes() == b"started;shhs;ended"
    finally:
        worker.close()
        process.stop()
    assert not Path(process.path).parent.exists()  # the pipe's private directory is removed


def test_a_worker_handed_the_doorbell_rings_it_after_each_save_and_keeps_no_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from api.app import create_served_app
    from ticketflow.commands import FormTeam
    from ticketflow.config import Settings

    path = tmp_path / "doorbell"
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        monkeypatch.setenv(PATH_VARIABLE, str(path))
        assert doorbell.doorbell_path() == str(path)
        app = create_served_app(Settings(data_dir=tmp_path / "data"))
        services = app.state.services
        assert not services.settings.runs_embedded_projections  # the view process keeps the views
        with TestClient(app):
            assert not services.read_side.workers  # no view worker in this process
            services.desk.form_team(FormTeam(name="一线支持"), ADMIN)
            assert os.read(reader, 16) == doorbell.SAVED  # rung by the save
    finally:
        os.close(reader)


@pytest.mark.parametrize(
    ("environment", "refusal"),
    [
        ({"TICKETFLOW_DATABASE_URL": "memory://"}, "a memory store is private to its process"),
        ({"TICKETFLOW_VIEWS_PROCESS": "0"}, "keeps the views in serve's view process"),
    ],
)
def test_serve_refuses_workers_where_they_cannot_share_the_desk(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str], refusal: str,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    code, _out, err = run(["serve", "--port", str(free_port()), "--workers", "2"], capsys)
    assert code != 0 and refusal in err and len(err.strip().splitlines()) == 1, err


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    yield from serving(tmp_path, "--workers", "2", up_seconds=120)


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except FileNotFoundError:
        return ""


def test_two_workers_on_one_sqlite_file_share_the_desk_and_its_one_view_process(
    served: tuple[str, str, subprocess.Popen[str]], tmp_path: Path,
) -> None:
    base, token, process = served
    kids = children(process.pid)
    workers = [pid for pid in kids if "spawn_main" in _command_line(pid)]
    views = [pid for pid in kids if "project" in _command_line(pid)]
    assert len(workers) == 2 and len(views) == 1, [_command_line(pid) for pid in kids]
    headers = {"Authorization": f"Bearer {token}"}
    # New connections are spread over the workers by the kernel: each client below is its own connection.
    with httpx.Client(base_url=base, headers=headers, timeout=30) as admin:
        team = admin.post("/api/v1/teams", json={"name": "一线支持"}).json()["id"]
        assert admin.post(f"/api/v1/teams/{team}/members", json={"agent_id": "li.wei"}).status_code == 200
        customer = admin.post("/api/v1/customers", json={"name": "王芳", "email": "wang.fang@example.cn"}).json()["id"]
    opened: list[str] = []
    last = "0"
    for n in range(12):
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            answer = client.post("/api/v1/tickets", headers={"Idempotency-Key": f"open-{n}"},
                                 json={"subject": f"发票开错了 {n}", "requester_id": customer, "team_id": team})
            assert answer.status_code == 201, answer.text
            opened.append(answer.json()["id"])
    for n, ticket in enumerate(opened):  # each on yet another connection: written on one worker, changed on any
        with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
            again = client.post("/api/v1/tickets", headers={"Idempotency-Key": f"open-{n}"},
                                json={"subject": f"发票开错了 {n}", "requester_id": customer, "team_id": team})
            assert again.headers.get("Idempotent-Replayed") == "true" and again.json()["id"] == ticket
            assigned = client.post(f"/api/v1/tickets/{ticket}/assign", json={"assignee_id": "li.wei"},
                                   headers={"If-Match": '"1"'})
            assert assigned.status_code == 200, assigned.text
            row = client.get(f"/api/v1/tickets/{ticket}", params={"min_position": assigned.headers["X-Log-Position"]})
            assert row.status_code == 200 and row.json()["assignee_id"] == "li.wei", row.text
            last = assigned.headers["X-Log-Position"]
            stale = client.post(f"/api/v1/tickets/{ticket}/solve", json={}, headers={"If-Match": '"1"'})
            assert stale.status_code == 412
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        queue = client.get("/api/v1/tickets", params={"team_id": team, "limit": 100, "min_position": last}).json()
        assert sorted(r["ticket_id"] for r in queue["items"]) == sorted(opened)
    (pipe,) = {os.readlink(fd) for fd in Path(f"/proc/{views[0]}/fd").iterdir()
               if "ticketflow-doorbell-" in os.readlink(fd)}  # the named doorbell the view process reads
    stop(process)
    assert process.returncode in (0, -15)
    for pid in (*workers, *views):
        eventually(lambda pid=pid: not alive(pid))
    assert not Path(pipe).parent.exists()  # its private directory went with serve
    assert_sealed_to_the_end(tmp_path / "served")  # the view process stopped after both workers: all sealed
