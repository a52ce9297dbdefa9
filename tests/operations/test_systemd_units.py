"""The systemd units of the scale-out mode (deploy/systemd): valid for ``systemd-analyze verify``, and
their ``ExecStart`` lines, run as written against a test PostgreSQL database, become ready and stop
cleanly on SIGTERM within the unit's ``TimeoutStopSec``. These machines do not boot systemd, so the
test plays its part: it reads the EnvironmentFile, expands ``${VAR}`` and sends SIGTERM to the whole
process group (``KillMode=control-group``)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import IN_CI
from tests.support import Desk
from ticketflow.application import TicketDesk
from ticketflow.config import Settings

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "deploy" / "systemd"
SERVICES = ("ticketflow-api.service", "ticketflow-project.service")
INSTALLED_BINARY = "/opt/ticketflow/venv/bin/ticketflow"


def unit(name: str) -> dict[str, str]:
    """The ``[Service]`` section of a unit file (last value of a key wins, as in systemd)."""
    section, found = "", {}
    for raw in (UNITS / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]":
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def environment_file(path: str) -> dict[str, str]:
    """The repo's copy of the unit's EnvironmentFile (``/etc/ticketflow/ticketflow.env``)."""
    values = {}
    for raw in (UNITS / Path(path).name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", value)
    assert match, f"TimeoutStopSec={value} is not in a form this test reads"
    return float(match.group(1)) * (60 if match.group(2) == "min" else 1)


def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        if IN_CI:
            pytest.fail("CI=true but systemd-analyze is not installed (.ci/run installs Debian's systemd)")
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    return found


def test_each_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """Verified as installed, but for the binary: this machine has no /opt/ticketflow (systemd checks
    that ExecStart's program exists), so the copies name the test environment's ``ticketflow``."""
    analyze = systemd_analyze()
    binary = shutil.which("ticketflow", path=str(Path(sys.executable).parent))
    assert binary, "the ticketflow console script is not installed beside this Python"
    for name in SERVICES:
        text = (UNITS / name).read_text(encoding="utf-8")
        assert INSTALLED_BINARY in text
        (tmp_path / name).write_text(text.replace(INSTALLED_BINARY, binary), encoding="utf-8")
    done = subprocess.run([analyze, "verify", "--man=no", *(str(tmp_path / n) for n in SERVICES)],
                          capture_output=True, text=True, check=False)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr  # an unknown key is only a warning: none


def test_each_unit_hardens_its_service_and_restarts_on_failure() -> None:
    for name in SERVICES:
        service = unit(name)
        assert service["EnvironmentFile"] == "/etc/ticketflow/ticketflow.env"
        assert service["Restart"] == "on-failure" and service["NoNewPrivileges"] == "yes"
        assert service["ProtectSystem"] == "strict" and service["ReadWritePaths"] == "/var/lib/ticketflow"
        assert environment_file(service["EnvironmentFile"])["TICKETFLOW_DATA_DIR"] == service["ReadWritePaths"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command_line(service: dict[str, str], env: dict[str, str]) -> list[str]:
    """ExecStart as systemd runs it: ``${VAR}`` from the environment, then split into words; the
    installed binary replaced by this checkout's command line."""
    expanded = re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], service["ExecStart"])
    argv = shlex.split(expanded)
    assert argv[0] == INSTALLED_BINARY
    return [sys.executable, "-m", "ticketflow_cli", *argv[1:]]


class Running:
    def __init__(self, name: str, env: dict[str, str], log: Path) -> None:
        self.service = unit(name)
        self.timeout = seconds(self.service["TimeoutStopSec"])
        self.log = log.open("w")
        self.process = subprocess.Popen(  # the unit's own command line
            command_line(self.service, env), env=env, cwd=env["TICKETFLOW_DATA_DIR"], stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> tuple[int, float]:
        """SIGTERM to the whole group, as systemd does; (exit status, seconds to exit)."""
        started = time.monotonic()
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:  # the whole group had already exited: report how
            pass
        try:
            code = self.process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            code = -signal.SIGKILL
        self.log.close()
        return code, time.monotonic() - started


@pytest.fixture
def unit_env(postgres_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    values = environment_file(unit(SERVICES[0])["EnvironmentFile"])
    data = tmp_path / "var-lib-ticketflow"
    data.mkdir()
    # The test database is a schema on a server other tests share: smaller pools, so that the four
    # processes (two API workers, their parent's start-up check, project) stay well within its
    # max_connections while other tests run.
    values.update(TICKETFLOW_DATABASE_URL=postgres_url, TICKETFLOW_DATA_DIR=str(data), API_PORT=str(free_port()),
                  TICKETFLOW_POOL_SIZE="2")
    yield {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(ROOT), "LANG": "C.UTF-8", **values}


@pytest.mark.postgres
def test_the_units_command_lines_serve_then_stop_cleanly_on_sigterm(unit_env: dict[str, str], tmp_path: Path) -> None:
    settings = Settings(database_url=unit_env["TICKETFLOW_DATABASE_URL"], data_dir=Path(unit_env["TICKETFLOW_DATA_DIR"]))
    desk = TicketDesk(settings)
    Desk(desk).open("打印机无法连接")
    written = desk.log_position()
    desk.close()
    project = Running("ticketflow-project.service", unit_env, tmp_path / "project.log")
    api = Running("ticketflow-api.service", unit_env, tmp_path / "api.log")
    try:
        base = f"http://{unit_env['API_HOST']}:{unit_env['API_PORT']}"
        ready = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and api.process.poll() is None and project.process.poll() is None:
            try:
                response = httpx.get(f"{base}/readyz", timeout=2)
                body = response.json()
                if response.status_code == 200 and all(v["position"] >= written for v in body["views"]):
                    ready = body
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        assert ready is not None, (tmp_path / "api.log").read_text() + (tmp_path / "project.log").read_text()
        assert ready["views"] and all(v["position"] >= written for v in ready["views"])
    finally:
        results = {"api": api.stop(), "project": project.stop()}
    logs = {name: (tmp_path / f"{name}.log").read_text() for name in ("api", "project")}
    for name, (code, took) in results.items():
        print(f"{name}: exit {code} {took:.2f} s after SIGTERM")  # shown with pytest -s
        assert code == 0, f"{name} exited {code}: {logs[name]}"
    assert f"{unit_env['API_WORKERS']} worker(s)" in logs["api"]
    assert "projecting" in logs["project"] and json.loads(logs["project"].splitlines()[-1])["message"] == "stopped"
    assert "Traceback" not in logs["api"] + logs["project"]
