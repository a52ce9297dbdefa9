"""End to end: a real `ticketflow serve` process on loopback (and, on PostgreSQL, two API
workers beside a `ticketflow project` process)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ticketflow.config import Settings

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ticketflow_cli", *args], env=env, capture_output=True, text=True, timeout=120)


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until_up(base: str, process: subprocess.Popen[str], seconds: float = 60) -> None:
    """Until ``serve`` at ``base`` answers /healthz; else stop it and fail with what it wrote."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    stop(process)  # first: its stderr ends only when it (and any view process of its) exited
    pytest.fail("ticketflow serve did not come up: " + (process.stderr.read() if process.stderr else ""))


@pytest.fixture
def served(shared_store_settings: Settings, tmp_path: Path) -> Iterator[tuple[str, str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TICKETFLOW_DATA_DIR": str(tmp_path / "served")}
    env.pop("TICKETFLOW_DATABASE_URL", None)
    postgres = shared_store_settings.database_url is not None
    if postgres:
        env["TICKETFLOW_DATABASE_URL"] = shared_store_settings.database_url  # type: ignore[assignment]
    token = cli(env, "token", "create", "--role", "admin", "--name", "e2e")
    assert token.returncode == 0, token.stderr
    port = free_port()
    processes = [subprocess.Popen(
        [sys.executable, "-m", "ticketflow_cli", "serve", "--port", str(port), *(["--workers", "2"] if postgres else [])],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )]
    if postgres:
        processes.append(subprocess.Popen([sys.executable, "-m", "ticketflow_cli", "project", "--status-every", "0"], env=env,
                                          stderr=subprocess.PIPE, text=True))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base, processes[0])  # serve --workers 2 creates the tables, then starts both workers
        yield base, token.stdout.strip()
    finally:
        for process in processes:
            stop(process)
    assert processes[0].returncode in (0, -signal.SIGTERM)


def test_a_desk_works_through_a_served_api(served: tuple[str, str]) -> None:
    base, token = served
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        team = client.post("/api/v1/teams", json={"name": "一线支持"}).json()["id"]
        assert client.post(f"/api/v1/teams/{team}/members", json={"agent_id": "li.wei"}).status_code == 200
        customer = client.post("/api/v1/customers", json={"name": "王小明", "email": "w@example.cn"}).json()["id"]
        opened = client.post("/api/v1/tickets", json={"subject": "发票金额不对", "requester_id": customer, "team_id": team},
                             headers={"Idempotency-Key": "e2e-open"})
        assert opened.status_code == 201
        ticket = opened.json()["id"]
        retried = client.post("/api/v1/tickets", json={"subject": "发票金额不对", "requester_id": customer, "team_id": team},
                              headers={"Idempotency-Key": "e2e-open"})
        assert retried.headers["Idempotent-Replayed"] == "true" and retried.json()["id"] == ticket
        assigned = client.post(f"/api/v1/tickets/{ticket}/assign", json={"assignee_id": "li.wei"}, headers={"If-Match": '"1"'})
        assert assigned.status_code == 200
        position = assigned.headers["X-Log-Position"]
        row = client.get(f"/api/v1/tickets/{ticket}", params={"min_position": position})
        assert row.status_code == 200 and row.json()["assignee_id"] == "li.wei" and row.json()["status"] == "open"
        hits = client.get("/api/v1/search", params={"q": "发票", "min_position": position}).json()
        assert [h["ticket_id"] for h in hits] == [ticket]
        stale = client.post(f"/api/v1/tickets/{ticket}/solve", json={}, headers={"If-Match": '"1"'})
        assert stale.status_code == 412 and stale.headers["content-type"].startswith("application/problem+json")
        ready = client.get("/readyz").json()
        assert ready["ready"]
        assert "ticketflow_http_requests_total" in client.get("/metrics").text
