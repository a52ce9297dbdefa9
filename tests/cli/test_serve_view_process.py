"""``serve`` on SQLite runs its views, automation and sealer in a child process (``ticketflow project``)
on another core: it starts it, rings it after each save, restarts it when it dies, stops it after the
API, and a ``serve`` killed outright leaves no view process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from projections.doorbell import FD_VARIABLE
from projections.integrity.sealer import Sealer, load_checkpoints
from tests.api.test_e2e_serve import REPO, cli, free_port, stop, wait_until_up
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow_cli import view_process
from ticketflow_cli.view_process import ViewProcess

#: A stand-in view process: writes every doorbell byte it reads to a file, exits when the pipe ends
#: (or, told by FAIL_FIRST, exits at once with status 3 the first time it runs).
FAKE = textwrap.dedent("""
    import os, sys
    out, marker = sys.argv[1], sys.argv[2]
    if os.environ.get("FAIL_FIRST") and not os.path.exists(marker):
        open(marker, "w").close()
        sys.exit(3)
    fd = int(os.environ["{variable}"])
    with open(out, "ab", buffering=0) as f:
        f.write(b"started;")
        while data := os.read(fd, 4096):
            f.write(data)
        f.write(b";ended")
""").format(variable=FD_VARIABLE)


def eventually(check, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail("not reached in time")
        time.sleep(0.02)


def fake(tmp_path: Path) -> tuple[list[str], Path]:
    out = tmp_path / "rings"
    return [sys.executable, "-c", FAKE, str(out), str(tmp_path / "failed-once")], out


def test_the_view_process_hears_every_kind_of_ring_and_is_stopped_with_serve(tmp_path: Path) -> None:
    command, out = fake(tmp_path)
    process = ViewProcess(command)
    process.start()
    try:
        eventually(lambda: out.exists() and out.read_bytes().startswith(b"started;"))
        process.doorbell.saved(1)
        process.doorbell.hurry()
        eventually(lambda: out.read_bytes() == b"started;sh")
    finally:
        process.stop()
    assert process.starts == 1


def test_a_view_process_that_dies_is_started_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(view_process, "RESTART_SECONDS", 0.01)
    monkeypatch.setenv("FAIL_FIRST", "1")
    command, out = fake(tmp_path)
    process = ViewProcess(command)
    process.start()
    try:
        eventually(lambda: process.starts == 2 and out.exists())
        process.doorbell.saved()
        eventually(lambda: out.read_bytes() == b"started;s")  # the new one has the same doorbell
    finally:
        process.stop()


def test_a_restart_that_fails_to_start_is_tried_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed start of the replacement (fork refused, ...) must not end the supervision: the views
    would then never move again while the API answers."""
    monkeypatch.setattr(view_process, "RESTART_SECONDS", 0.01)
    monkeypatch.setenv("FAIL_FIRST", "1")
    command, out = fake(tmp_path)
    popen = subprocess.Popen
    calls: list[int] = []

    def refused_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:  # the first replacement
            raise BlockingIOError(11, "Resource temporarily unavailable")  # fork's EAGAIN
        return popen(*args, **kwargs)

    monkeypatch.setattr(view_process.subprocess, "Popen", refused_once)
    process = ViewProcess(command)
    process.start()
    try:
        eventually(lambda: process.starts == 2 and out.exists())
        process.doorbell.saved()
        eventually(lambda: out.read_bytes() == b"started;s")
        assert len(calls) == 3
    finally:
        process.stop()


def test_turned_off_or_on_another_store_serve_keeps_the_views_as_before(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).runs_view_process
    assert not Settings(data_dir=tmp_path, views_process=False).runs_view_process
    assert not Settings(data_dir=tmp_path, embedded_projections=False).runs_view_process  # `project` runs apart
    assert not Settings(database_url="memory://").runs_view_process  # a memory store is private to its process
    assert not Settings(database_url="postgresql://u@127.0.0.1/db").runs_view_process  # `project` beside the workers


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def assert_sealed_to_the_end(data: Path) -> None:
    """A signed checkpoint covers the last event of the store in ``data``."""
    desk = TicketDesk(Settings(data_dir=data))
    sealer = Sealer(desk)
    try:
        assert json.loads(sealer.read(load_checkpoints)[-1].body)["log_position"] == desk.log_position()
    finally:
        sealer.close()
        desk.close()


def serving(tmp_path: Path, *serve_args: str, up_seconds: float = 60) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    """A real ``serve`` on SQLite in ``tmp_path / "served"`` (its defaults, plus ``serve_args``): its
    address, an admin token, the process; stopped at the end."""
    if not Path("/proc/self/task").exists():
        pytest.skip("needs Linux /proc to find serve's child processes")
    env = {**os.environ, "PYTHONPATH": str(REPO), "TICKETFLOW_DATA_DIR": str(tmp_path / "served")}
    for name in ("TICKETFLOW_DATABASE_URL", "TICKETFLOW_VIEWS_PROCESS", "TICKETFLOW_EMBEDDED_PROJECTIONS"):
        env.pop(name, None)
    created = cli(env, "token", "create", "--role", "admin", "--name", "served")
    assert created.returncode == 0, created.stderr
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "ticketflow_cli", "serve", "--port", str(port), *serve_args],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # its own process group, as under systemd
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base, process, seconds=up_seconds)
        yield base, created.stdout.strip(), process
    finally:
        if process.poll() is None:
            stop(process)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, subprocess.Popen[str]]]:
    yield from serving(tmp_path)


def test_serve_keeps_its_views_in_a_child_process_and_a_read_sees_its_own_write(
    served: tuple[str, str, subprocess.Popen[str]], tmp_path: Path,
) -> None:
    base, token, process = served
    data = tmp_path / "served"  # the fixture's data dir
    (child,) = children(process.pid)
    assert "project" in Path(f"/proc/{child}/cmdline").read_text()
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        team = client.post("/api/v1/teams", json={"name": "一线支持"}).json()["id"]
        customer = client.post("/api/v1/customers", json={"name": "王芳", "email": "wang.fang@example.cn"}).json()["id"]
        opened = client.post("/api/v1/tickets", json={"subject": "发票开错了", "requester_id": customer, "team_id": team})
        assert opened.status_code == 201, opened.text
        ticket, position = opened.json()["id"], opened.headers["X-Log-Position"]
        row = client.get(f"/api/v1/tickets/{ticket}", params={"min_position": position})  # kept by the child
        assert row.status_code == 200 and row.json()["subject"] == "发票开错了", row.text
    stop(process)
    eventually(lambda: not alive(child))
    assert_sealed_to_the_end(data)  # stopped after the API, the child sealed its last command


def test_serve_killed_outright_leaves_no_view_process_behind(served: tuple[str, str, subprocess.Popen[str]]) -> None:
    _, _, process = served
    (child,) = children(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    eventually(lambda: not alive(child))  # the doorbell's pipe ended: the view process stopped by itself


def test_a_signal_that_stops_serve_reaching_its_view_process_too_leaves_it_to_the_pipes_end(
    served: tuple[str, str, subprocess.Popen[str]], tmp_path: Path,
) -> None:
    """systemd stops a unit with SIGTERM to every process of it, a terminal's Ctrl-C reaches the whole
    foreground group: the view process stops only once serve's API stopped (the pipe's end), so what the
    API committed while it drained is sealed; and it is in serve's process group, so a SIGKILL to the
    group (the crash trials) or SIGUSR1 (their stack dumps) reaches it as it reached the views' threads."""
    base, token, process = served
    (child,) = children(process.pid)
    assert os.getpgid(child) == os.getpgid(process.pid) == process.pid
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:

        def projected(name: str) -> None:
            opened = client.post("/api/v1/teams", json={"name": name})
            assert opened.status_code == 201, opened.text
            row = client.get(f"/api/v1/teams/{opened.json()['id']}", params={"min_position": opened.headers["X-Log-Position"]})
            assert row.status_code == 200 and row.json()["name"] == name, row.text

        projected("一线支持")  # the view process projects: its signal handlers are in place (set before)
        os.kill(child, signal.SIGTERM)  # as systemd's SIGTERM to the unit reaches it
        projected("二线支持")
    assert alive(child) and children(process.pid) == [child]  # the same view process: it did not stop
    os.killpg(process.pid, signal.SIGTERM)  # serve and its view process at once
    process.wait(60)
    eventually(lambda: not alive(child))
    assert_sealed_to_the_end(tmp_path / "served")
