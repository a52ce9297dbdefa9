"""The #15 newcomer items through the installed ``ticketflow`` console script (the venv's ``bin/``), as a
user runs them: one data dir made once; the commands that only read run side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path

import pytest

from tests.support import ADMIN
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import FormTeam, OpenTicket, RegisterCustomer
from ticketflow.config import Settings

SCRIPT = Path(sys.executable).parent / "ticketflow"
REPO = Path(__file__).resolve().parents[2]
SUBJECT = "[URGENT] 打印机坏了 [/b] :warning: [bold]"


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str


@dataclass(frozen=True)
class Desk:
    data_dir: Path
    ticket: str
    team: str


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_")}
    return {**env, "PYTHONPATH": str(REPO), "TICKETFLOW_DATA_DIR": str(data_dir), "COLUMNS": "200", **extra}


def _run_all(cwd: Path, runs: dict[str, tuple[list[str], dict[str, str]]]) -> dict[str, Done]:
    """Start every run, then wait for each: the script's start-up (~1 s) is paid side by side."""
    assert SCRIPT.exists(), "install the project (pip install -e .) to get the console script"
    started = {
        name: subprocess.Popen([str(SCRIPT), *argv], cwd=cwd, env=env, text=True, encoding="utf-8",
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name, (argv, env) in runs.items()
    }
    done = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=120)
        done[name] = Done(process.returncode, out, err)
    return done


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Desk:
    data_dir = tmp_path_factory.mktemp("console-script") / "desk"
    # Written by a process whose clock reads 16:59:42+02:00: 14:59:42 UTC, 22:59:42 in Shanghai.
    clock = FakeClock(datetime(2026, 11, 2, 16, 59, 42, tzinfo=timezone(timedelta(hours=2))))
    writer = TicketDesk(Settings(data_dir=data_dir), clock=clock)
    team = writer.form_team(FormTeam(name="技术支持 Technical Support"), ADMIN).object_id
    customer = writer.register_customer(RegisterCustomer(name="[王秀英]"), ADMIN).object_id
    ticket = writer.open_ticket(OpenTicket(subject=SUBJECT, requester_id=customer, team_id=team), ADMIN).object_id
    writer.close()
    return Desk(data_dir, str(ticket), str(team))


def test_the_newcomer_commands_work_through_the_installed_script(desk: Desk, tmp_path: Path) -> None:
    env = _env(desk.data_dir)
    done = _run_all(tmp_path, {
        "version": (["--version"], env),
        "history": (["history", desk.ticket, "--purpose", "DSR-7 [check]"],
                    _env(desk.data_dir, TICKETFLOW_TIME_ZONE="Asia/Shanghai")),
        "teams": (["team", "list"], _env(desk.data_dir, TICKETFLOW_TIMEZONE="Asia/Shanghai")),
        "token": (["token", "create", "--role", "integration", "--name", "im-bridge", "--team", "技术支持"], env),
    })
    assert done["version"] == Done(0, f"ticketflow {metadata.version('ticketflow')}\n", "")

    history = done["history"]
    assert history.code == 0 and "Traceback" not in history.err, history.err
    assert SUBJECT in history.out  # bracketed text printed as typed, never taken for Rich markup
    assert "occurred (Asia/Shanghai)" in history.out and "2026-11-02 22:59:42" in history.out
    assert "14:59:42" not in history.out and "16:59:42" not in history.out

    teams = done["teams"]
    assert teams.code == 0 and desk.team in teams.out and "技术支持 Technical Support" in teams.out, teams.err
    assert teams.err == ("warning: TICKETFLOW_TIMEZONE is not a ticketflow setting (did you mean "
                         "TICKETFLOW_TIME_ZONE?); it is ignored\n")

    token = done["token"]
    assert token.code == 0, token.err
    assert json.loads(token.err.strip().splitlines()[-1])["teams"] == [desk.team]  # the team given by its name
    assert token.out.strip()  # the token, printed once


def test_what_cannot_be_used_is_one_line_on_stderr_and_a_non_zero_exit(desk: Desk, tmp_path: Path) -> None:
    env = _env(desk.data_dir)
    done = _run_all(tmp_path, {
        "cannot write /nonexistent/x.csv: No such file or directory":
            (["report", "data-access", "--csv", "/nonexistent/x.csv"], env),
        "cannot open the event store (SQLite file /proc/nope/ticketflow.sqlite): cannot create the directory /proc/nope":
            (["views"], _env(Path("/proc/nope"))),
        "anchor file missing.json does not exist": (["audit", "verify", "--anchor", "missing.json"], env),
        "TICKETFLOW_SNAPSHOT_INTERVAL='often': Input should be a valid integer":
            (["views"], _env(desk.data_dir, TICKETFLOW_SNAPSHOT_INTERVAL="often")),
        "cannot write /dev/full: it is not a regular file": (["export", "xes", "/dev/full"], env),
    })
    for message, result in done.items():
        assert result.code != 0, message
        assert result.err.startswith("error: " + message) and result.err.count("\n") == 1, result.err
    assert Path("/dev/full").is_char_device()  # never renamed over
