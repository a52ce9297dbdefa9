"""The command line: demo, history, and one-line errors with non-zero exits."""

from __future__ import annotations

import re
from pathlib import Path
from uuid import UUID

import pytest

from tests.support import run_cli as run
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow.domain.values import Status
from ticketflow.tokens import REVOCATION_POLL_SECONDS


def test_demo_builds_a_desk_and_prints_a_summary(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["demo", "--tickets", "120", "--customers", "30", "--seed", "7"], capsys)
    assert code == 0, err
    assert "120 tickets in the store by team and status (from the tickets view)" in out
    assert "customers 30" in out and "(0 refused)" in out
    log_position = int(out.split("events in the store ")[1].split()[0])
    assert f"views caught up: tickets {log_position}, timeline {log_position}" in out
    assert f"SQLite file {data_dir.resolve() / 'ticketflow.sqlite'}" in out
    desk = TicketDesk(Settings(data_dir=data_dir))
    sample = UUID(out.split("ticketflow history ")[1].split()[0])
    assert desk.get_ticket(sample).subject
    statuses = set()
    for event in desk.recorder.select_notifications(1, 100_000, topics=["ticketflow.domain.ticket:Ticket.Opened"]):
        statuses.add(desk.get_ticket(event.originator_id).status)
    assert {Status.OPEN, Status.SOLVED, Status.CLOSED} <= statuses  # the router opened every new ticket
    assert "service standards (SLA met / measured) and satisfaction, per team" in out
    assert "routed 120" in out
    desk.close()


def test_rerunning_the_demo_adds_tickets_without_duplicating_the_setup(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["demo", "--tickets", "20", "--customers", "10"], capsys)[0] == 0
    code, _out, err = run(["demo", "--tickets", "20", "--customers", "10"], capsys)
    assert code == 0, err
    desk = TicketDesk(Settings(data_dir=data_dir))
    topics = {
        "customers": "ticketflow.domain.customer:Customer.Registered",
        "teams": "ticketflow.domain.team:Team.Formed",
        "tickets": "ticketflow.domain.ticket:Ticket.Opened",
    }
    counts = {k: len(desk.recorder.select_notifications(1, 100_000, topics=[t])) for k, t in topics.items()}
    assert counts == {"customers": 10, "teams": 4, "tickets": 40}
    desk.close()


def test_fresh_starts_over(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(["demo", "--tickets", "10", "--customers", "5"], capsys)
    code, out, _ = run(["demo", "--fresh", "--tickets", "10", "--customers", "5"], capsys)
    assert code == 0 and "deleted the store" in out
    desk = TicketDesk(Settings(data_dir=data_dir))
    assert len(desk.recorder.select_notifications(1, 100_000, topics=["ticketflow.domain.ticket:Ticket.Opened"])) == 10
    desk.close()


def test_history_shows_actor_role_and_channel_on_every_line(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(["demo", "--tickets", "30", "--customers", "10", "--seed", "3"], capsys)
    ticket_id = out.split("ticketflow history ")[1].split()[0]
    code, out, err = run(["history", ticket_id], capsys)
    assert code == 0, err
    desk = TicketDesk(Settings(data_dir=data_dir))
    events = desk.history(UUID(ticket_id))
    rows = [line for line in out.splitlines() if line.startswith("│ ") and line.split("│")[1].strip().isdigit()]
    assert len(rows) == len(events)
    for row, event in zip(rows, events, strict=True):
        assert f"({event.actor_role})" in row and event.via in row
        assert type(event).__qualname__.split(".")[1] in row
    desk.close()


def test_history_masks_personal_data_unless_a_purpose_is_given_and_records_that_read(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support import ADMIN
    from ticketflow.commands import OpenTicket, RegisterCustomer

    desk = TicketDesk(Settings(data_dir=data_dir))
    customer = desk.register_customer(RegisterCustomer(name="王秀英", email="xiuying@example.cn"), ADMIN).object_id
    ticket = desk.open_ticket(OpenTicket(subject="发票抬头写错了", requester_id=customer), ADMIN).object_id
    desk.close()
    for object_id in (customer, ticket):
        code, out, err = run(["history", str(object_id), "--version", "1"], capsys)
        assert code == 0, err
        assert "王秀英" not in out and "xiuying" not in out and "发票抬头" not in out and "***" in out
        assert "give --purpose" in err
    desk = TicketDesk(Settings(data_dir=data_dir))
    accesses = desk.recorder.select_notifications(1, 1000, topics=["ticketflow.domain.access:DataAccess.Recorded"])
    assert accesses == []  # masked reads are not personal-data reads
    desk.close()
    code, out, err = run(["history", str(customer), "--purpose", "DSR-2026-0042 subject access", "--operator", "ops.zhang"],
                         capsys)
    assert code == 0, err
    assert "王秀英" in out
    desk = TicketDesk(Settings(data_dir=data_dir))
    [recorded] = [desk.mapper.to_domain_event(n) for n in desk.recorder.select_notifications(
        1, 1000, topics=["ticketflow.domain.access:DataAccess.Recorded"])]
    assert (recorded.actor_id, recorded.via, recorded.purpose) == ("ops.zhang", "cli", "DSR-2026-0042 subject access")
    assert recorded.customer_id == customer and set(recorded.fields) >= {"name", "email"}
    desk.close()


@pytest.mark.parametrize(
    ("argv", "message", "exit_code"),
    [
        (["history", "not-a-uuid"], "'not-a-uuid' is not a ticket id", 1),
        (["history", "00000000-0000-0000-0000-000000000001"], "not found", 1),
        (["demo", "--tickets", "many"], "Invalid value for '--tickets'", 2),
        (["demo", "--tickets", "0"], "--tickets", 2),
        (["nosuchcommand"], "No such command", 2),
    ],
)
def test_bad_arguments_give_one_readable_line_and_a_non_zero_exit(
    data_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str, exit_code: int
) -> None:
    code, _out, err = run(argv, capsys)
    assert code == exit_code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_an_unreachable_database_is_one_line_and_exit_1(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETFLOW_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    monkeypatch.setenv("TICKETFLOW_CONNECT_TIMEOUT", "1")
    code, _, err = run(["history", "00000000-0000-0000-0000-000000000001"], capsys)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: cannot open the event store (PostgreSQL database none")


def test_a_bad_setting_is_one_line(data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETFLOW_DATABASE_URL", "mysql://x/y")
    code, _, err = run(["history", "x"], capsys)
    assert code == 1 and err.count("\n") == 1 and "unsupported database URL scheme 'mysql'" in err


def test_views_and_rebuild_report_positions(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(["demo", "--tickets", "15", "--customers", "5"], capsys)
    code, out, err = run(["views"], capsys)
    assert code == 0, err
    desk = TicketDesk(Settings(data_dir=data_dir))
    position = desk.log_position()
    desk.close()
    for name in ("tickets", "timeline", "customers", "audit", "search"):
        assert re.search(rf"│ {name}\s+│\s+{position} │\s+{position} │\s+0 │", out), out
    code, out, err = run(["rebuild", "search"], capsys)
    assert code == 0, err
    assert f"search: caught up at position {position}" in out
    code, _, err = run(["rebuild", "nosuch"], capsys)
    assert code == 1 and err.startswith("error: unknown view nosuch")


def test_project_runs_standalone_until_stopped_logging_json_lines(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    from projections.readside import ReadSide
    from tests.support import ADMIN
    from ticketflow.commands import RegisterCustomer

    run(["demo", "--tickets", "5", "--customers", "3"], capsys)
    repo = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, "-m", "ticketflow_cli", "project", "--status-every", "0.2"],
        env={**os.environ, "PYTHONPATH": str(repo)},
        stderr=subprocess.PIPE,
        text=True,
    )
    desk = TicketDesk(Settings(data_dir=data_dir))
    observer = ReadSide(desk)
    try:
        time.sleep(0.5)
        result = desk.register_customer(RegisterCustomer(name="新客户"), ADMIN)
        assert result.position is not None
        assert observer.wait(result.position, timeout=20)  # the other process projected it
        assert process.stderr is not None
        first = [process.stderr.readline()]  # the start line; then lines up to the first status line
        while first[-1] and not isinstance(json.loads(first[-1]).get("views"), dict):
            first.append(process.stderr.readline())
    finally:
        process.send_signal(signal.SIGTERM)
        _, rest = process.communicate(timeout=20)
        observer.close()
        desk.close()
    stderr = "".join(first) + rest
    assert process.returncode == 0, stderr
    lines = [json.loads(line) for line in stderr.splitlines()]  # structured, as `serve` logs: JSON lines
    assert all(line["timestamp"] and line["level"] for line in lines)
    assert lines[0]["message"].startswith("projecting tickets, timeline, customers, audit, search")
    assert lines[0]["level"] == "INFO" and lines[-1]["message"] == "stopped"
    status = json.loads(first[-1])
    assert set(status["views"]["customers"]) == {"position", "lag"} and status["message"].startswith("tickets ")
    assert "新客户" not in stderr  # positions and lags, never what the events say


def test_tokens_are_created_and_revoked_from_the_command_line(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    code, out, err = run(["token", "create", "--role", "auditor", "--name", "audit.kim"], capsys)
    assert code == 0, err
    token = out.strip()
    token_id = json.loads(err.strip().splitlines()[-1])["token_id"]
    desk = TicketDesk(Settings(data_dir=data_dir))
    ticks = [0.0]  # the desk's clock for reading revocations from the log
    desk.tokens.clock = lambda: ticks[0]
    assert desk.authenticate(token) is not None
    code, _, err = run(["token", "revoke", token_id, "--reason", "left the company"], capsys)
    assert code == 0, err
    ticks[0] += REVOCATION_POLL_SECONDS  # revoked by another process: refused from its next read of the log
    assert desk.authenticate(token) is None
    desk.close()
    code, _, err = run(["token", "create", "--role", "overlord"], capsys)
    assert code == 1 and "not one of" in err


def _teams_with_li_wei(data_dir: Path) -> tuple[UUID, UUID]:
    """技术支持 with li.wei as a member, and Billing without."""
    from tests.support import ADMIN
    from ticketflow.commands import AddTeamMember, FormTeam

    desk = TicketDesk(Settings(data_dir=data_dir))
    team = desk.form_team(FormTeam(name="技术支持"), ADMIN).object_id
    other = desk.form_team(FormTeam(name="Billing"), ADMIN).object_id
    desk.add_team_member(AddTeamMember(team_id=team, agent_id="li.wei"), ADMIN)
    desk.close()
    return team, other


def test_an_agents_token_is_created_for_a_team_member_and_an_integrations_with_its_permissions(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    team, _ = _teams_with_li_wei(data_dir)
    code, _out, err = run(["token", "create", "--role", "agent", "--agent", "li.wei"], capsys)
    assert code == 0, err
    shown = json.loads(err.strip().splitlines()[-1])
    assert shown["agent_id"] == "li.wei" and shown["teams"] == [str(team)]
    code, _, err = run(["token", "create", "--role", "agent"], capsys)
    assert code == 1 and "give the agent id" in err and "Traceback" not in err
    code, _, err = run(["token", "create", "--role", "agent", "--agent", "nobody"], capsys)
    assert code == 1 and "not an active member of any team" in err
    code, _out, err = run(["token", "create", "--role", "integration", "--name", "im-bridge", "--team", "技术支持",
                          "--permission", "tickets:open", "--permission", "tickets:message"], capsys)
    assert code == 0, err
    shown = json.loads(err.strip().splitlines()[-1])
    assert shown["permissions"] == ["tickets:message", "tickets:open"] and shown["teams"] == [str(team)]
    code, _, err = run(["token", "create", "--role", "integration", "--permission", "tickets:everything"], capsys)
    assert code == 1 and "unknown permission" in err


def test_an_agents_token_may_still_be_asked_for_by_name_and_team_when_that_is_the_membership(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    team, other = _teams_with_li_wei(data_dir)
    code, _out, err = run(["token", "create", "--role", "agent", "--team", "技术支持", "--name", "li.wei"], capsys)
    assert code == 0, err
    assert json.loads(err.strip().splitlines()[-1])["teams"] == [str(team)]
    code, _, err = run(["token", "create", "--role", "agent", "--team", "Billing", "--agent-id", "li.wei"], capsys)
    assert code == 1 and f"not an active member of team {other}" in err


def test_customer_erase_reads_its_confirmation_from_stdin(data_dir: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from tests.support import ADMIN
    from ticketflow.commands import RegisterCustomer

    desk = TicketDesk(Settings(data_dir=data_dir))
    customer = desk.register_customer(RegisterCustomer(name="王秀英"), ADMIN).object_id
    desk.close()
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = run(["customer", "erase", str(customer), "--reference", "DSR-1"], capsys)
    assert code == 1 and "answer y, or add --yes" in err
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    code, out, err = run(["customer", "erase", str(customer), "--reference", "DSR-1"], capsys)
    assert code == 0 and "erased" in out, err


def test_bracketed_text_prints_as_typed_never_as_rich_markup(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support import ADMIN
    from ticketflow.commands import OpenTicket, RegisterCustomer

    subject = "[URGENT] 打印机坏了 [/b] :warning: [bold]"
    desk = TicketDesk(Settings(data_dir=data_dir))
    customer = desk.register_customer(RegisterCustomer(name="[王秀英]"), ADMIN).object_id
    ticket = desk.open_ticket(OpenTicket(subject=subject, requester_id=customer), ADMIN).object_id
    desk.close()
    code, out, err = run(["history", str(ticket), "--purpose", "DSR-7 [check]"], capsys)
    assert code == 0, err
    assert subject in out and "Traceback" not in err
    code, out, err = run(["history", str(customer), "--version", "1", "--purpose", "DSR-7"], capsys)
    assert code == 0 and "[王秀英]" in out, err
    code, out, err = run(["customer", "erase", str(customer), "--reference", "DSR-[7]", "--yes"], capsys)
    assert code == 0 and "now show personal fields as [erased]" in " ".join(out.split()), err
    assert "reference DSR-[7]" in " ".join(err.split())
    code, out, err = run(["history", str(ticket), "--purpose", "after the erasure"], capsys)
    assert code == 0, err
    assert "opened “[erased]”" in out
    code, out, _ = run(["customer", "erase", "--help"], capsys)
    assert "their personal data reads [erased] everywhere" in " ".join(out.split())


def test_every_console_and_command_group_comes_from_the_markup_free_helpers() -> None:
    import ast

    offenders = []
    for path in (Path(__file__).resolve().parents[2] / "ticketflow_cli").glob("*.py"):
        if path.name == "output.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name == "Console" or (name == "Typer" and not any(
                        k.arg == "rich_markup_mode" for k in node.keywords)):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_history_shows_times_in_the_desks_time_zone_and_says_which(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import datetime, timedelta, timezone

    from tests.support import ADMIN
    from ticketflow.clock import FakeClock
    from ticketflow.commands import OpenTicket, RegisterCustomer

    # Written by a process whose clock reads 16:59:42+02:00, i.e. 14:59:42 UTC, 22:59:42 in Shanghai.
    clock = FakeClock(datetime(2026, 11, 2, 16, 59, 42, tzinfo=timezone(timedelta(hours=2))))
    desk = TicketDesk(Settings(data_dir=data_dir), clock=clock)
    customer = desk.register_customer(RegisterCustomer(name="王秀英"), ADMIN).object_id
    ticket = desk.open_ticket(OpenTicket(subject="打印机坏了", requester_id=customer), ADMIN).object_id
    desk.close()
    code, out, err = run(["history", str(ticket)], capsys)
    assert code == 0, err
    assert "occurred (UTC)" in out and "2026-11-02 14:59:42" in out and "16:59:42" not in out
    monkeypatch.setenv("TICKETFLOW_TIME_ZONE", "Asia/Shanghai")
    code, out, err = run(["history", str(ticket)], capsys)
    assert code == 0, err
    assert "occurred (Asia/Shanghai)" in out and "2026-11-02 22:59:42" in out and "14:59:42" not in out
    # --as-of without an offset is read in the desk's zone: 22:59:41 there is before the ticket was opened.
    code, _, err = run(["history", str(ticket), "--as-of", "2026-11-02T22:59:41", "--business-time"], capsys)
    assert code == 1 and "did not exist yet at 2026-11-02T22:59:41+08:00" in err
    code, out, err = run(["history", str(ticket), "--as-of", "2026-11-02T22:59:42", "--business-time"], capsys)
    assert code == 0 and "state at version 1 (as of 2026-11-02T22:59:42+08:00)" in out, err


def test_reports_by_day_count_in_the_desks_time_zone(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime

    from tests.support import ADMIN
    from ticketflow.clock import FakeClock
    from ticketflow.commands import RegisterCustomer
    from ticketflow.commands.access import RecordDataAccess

    clock = FakeClock(datetime(2026, 11, 1, 17, 0, tzinfo=UTC))  # 2026-11-02 01:00 in Shanghai
    desk = TicketDesk(Settings(data_dir=data_dir), clock=clock)
    customer = desk.register_customer(RegisterCustomer(name="王秀英"), ADMIN).object_id
    desk.record_data_access(RecordDataAccess(customer_id=customer, fields=["name"], purpose="DSR-1",
                                             request_id="r-1", resource="history"), ADMIN)
    desk.close()
    code, out, err = run(["report", "data-access", "--period", "day", "--csv", "-"], capsys)
    assert code == 0, err
    assert out.splitlines()[1].startswith("2026-11-01,")
    monkeypatch.setenv("TICKETFLOW_TIME_ZONE", "Asia/Shanghai")
    code, out, err = run(["report", "data-access", "--period", "day", "--csv", "-"], capsys)
    assert code == 0, err
    assert out.splitlines()[1].startswith("2026-11-02,")
    # --since without an offset is midnight in the desk's zone: the read at 01:00 is inside.
    code, out, err = run(["report", "data-access", "--period", "day", "--since", "2026-11-02", "--csv", "-"], capsys)
    assert code == 0 and len(out.splitlines()) == 2, err
    code, out, err = run(["report", "data-access", "--period", "day"], capsys)
    assert code == 0 and "per day (Asia/Shanghai)" in out, err


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TICKETFLOW_TIME_ZONE", "Asia/Shangai", "TICKETFLOW_TIME_ZONE='Asia/Shangai': unknown time zone"),
        ("TICKETFLOW_SNAPSHOT_INTERVAL", "often", "TICKETFLOW_SNAPSHOT_INTERVAL='often': Input should be a valid integer"),
        ("TICKETFLOW_DATABASE_URL", "mysql://desk:hunter2@db/desk",
         "TICKETFLOW_DATABASE_URL: unsupported database URL scheme 'mysql'"),  # the password is not repeated
    ],
)
def test_a_bad_environment_value_names_its_variable_in_one_line(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    variable: str, value: str, message: str,
) -> None:
    monkeypatch.setenv(variable, value)
    code, out, err = run(["views"], capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"error: {message}") and "hunter2" not in err, err


def test_the_readmes_as_of_example_works_on_the_demos_data(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shlex

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    [example] = [line.split("#")[0].split() for line in readme.splitlines()
                 if line.startswith("ticketflow history") and "--as-of" in line]
    code, out, err = run(["demo", "--tickets", "20", "--customers", "8", "--seed", "5"], capsys)
    assert code == 0, err
    [suggested] = [shlex.split(line) for line in out.splitlines() if "--as-of" in line]
    ticket_id, as_of = suggested[2], suggested[suggested.index("--as-of") + 1]
    assert suggested[:2] == example[:2] and suggested[3:] == [
        {"TICKET_ID": ticket_id, "TIME": as_of}.get(word, word) for word in example[3:]]
    argv = [{"TICKET_ID": ticket_id, "TIME": as_of}.get(word, word) for word in example[1:]]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    shown = int(out.split(" events")[0].rsplit(" ", 1)[1])
    assert f"state at version {shown}" in out
    desk = TicketDesk(Settings(data_dir=data_dir))
    assert 1 < shown < len(desk.history(UUID(ticket_id)))  # halfway through the ticket's life
    desk.close()
    # By recorded time the demo's month had not happened yet: the error says what to add.
    code, _, err = run([*argv[:-1]], capsys)
    assert code == 1 and "add --business-time" in err


def test_version_is_printed_even_when_a_setting_is_bad(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from importlib import metadata

    monkeypatch.setenv("TICKETFLOW_SNAPSHOT_INTERVAL", "often")
    code, out, err = run(["--version"], capsys)
    assert code == 0 and err == ""
    assert out == f"ticketflow {metadata.version('ticketflow')}\n"


def test_team_list_shows_ids_names_and_members(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    team, other = _teams_with_li_wei(data_dir)
    code, out, err = run(["team", "list"], capsys)
    assert code == 0, err
    assert "2 teams" in out
    assert re.search(rf"│ {team}\s+│ 技术支持\s+│\s+1 │ round_robin", out), out
    assert re.search(rf"│ {other}\s+│ Billing\s+│\s+0 │", out), out


def test_a_team_is_given_by_its_id_or_a_name_only_it_answers_to(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from tests.support import ADMIN
    from ticketflow.commands import FormTeam

    desk = TicketDesk(Settings(data_dir=data_dir))
    support = desk.form_team(FormTeam(name="技术支持 Technical Support"), ADMIN).object_id
    billing = desk.form_team(FormTeam(name="账务 Billing"), ADMIN).object_id
    twins = [desk.form_team(FormTeam(name="Sales", description=str(n)), ADMIN).object_id for n in range(2)]
    desk.close()
    for n, (given, expected) in enumerate([("技术支持", support), ("technical support", support),
                                           ("账务 Billing", billing), (str(billing), billing)]):
        code, _, err = run(["token", "create", "--role", "integration", "--name", f"bridge-{n}", "--team", given], capsys)
        assert code == 0, err
        assert json.loads(err.strip().splitlines()[-1])["teams"] == [str(expected)], given
    for given, message in [("Sales", f"2 teams are named 'Sales' (Sales {twins[0]}; Sales {twins[1]})"),
                           ("Marketing", "no team is named 'Marketing'; `ticketflow team list` shows"),
                           ("00000000-0000-0000-0000-000000000001", "team 00000000-0000-0000-0000-000000000001 not found")]:
        code, _, err = run(["token", "create", "--role", "integration", "--name", "x", "--team", given], capsys)
        assert code == 1 and err.count("\n") == 1 and message in err, err


@pytest.mark.parametrize(
    ("argv", "environment", "message"),
    [
        (["report", "data-access", "--csv", "/nonexistent/x.csv"], {},
         "cannot write /nonexistent/x.csv: No such file or directory"),
        (["report", "sla", "--csv", "/dev/full"], {}, "cannot write /dev/full: No space left on device"),
        (["views"], {"TICKETFLOW_DATA_DIR": "/proc/nope"},
         "cannot open the event store (SQLite file /proc/nope/ticketflow.sqlite): cannot create the directory /proc/nope"),
        (["audit", "verify", "--anchor", "missing.json"], {}, "anchor file missing.json does not exist"),
        (["export", "xes", "{fifo}"], {}, "cannot write {fifo}: it is not a regular file"),
        (["export", "xes", "/nonexistent/x.xes"], {}, "cannot write /nonexistent/x.xes: the directory /nonexistent does not"),
    ],
)
def test_files_and_directories_that_cannot_be_used_are_one_line_and_exit_1(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    argv: list[str], environment: dict[str, str], message: str,
) -> None:
    import os

    fifo = tmp_path / "tickets.xes"
    os.mkfifo(fifo)
    run(["demo", "--tickets", "3", "--customers", "2", "--no-workflow"], capsys)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    code, _, err = run([arg.format(fifo=fifo) for arg in argv], capsys)
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: " + message.format(fifo=fifo)), err
    assert fifo.exists() and not fifo.is_file()  # never replaced by the export


def test_an_export_is_never_renamed_over_a_device() -> None:
    from ticketflow.errors import ValidationFailed
    from ticketflow.export.xes import check_target

    for device in ("/dev/full", "/dev/null"):
        with pytest.raises(ValidationFailed, match=f"cannot write {device}: it is not a regular file"):
            check_target(Path(device))


def test_a_misspelled_setting_is_warned_about_on_stderr(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETFLOW_TIMEZONE", "Asia/Shanghai")
    monkeypatch.setenv("TICKETFLOW_NO_SUCH_THING", "1")
    monkeypatch.setenv("TICKETFLOW_TEST_ANYTHING", "1")  # the test suite's own variables are not the desk's
    code, _, err = run(["views"], capsys)
    assert code == 0
    assert err.splitlines() == [
        "warning: TICKETFLOW_NO_SUCH_THING is not a ticketflow setting; it is ignored",
        "warning: TICKETFLOW_TIMEZONE is not a ticketflow setting (did you mean TICKETFLOW_TIME_ZONE?); it is ignored",
    ]


@pytest.mark.postgres
def test_a_missing_postgresql_database_is_named_as_the_cause(
    postgres_available: None, data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from urllib.parse import urlsplit

    from tests.conftest import POSTGRES_URL

    url = urlsplit(POSTGRES_URL)._replace(path="/tf_no_such_database", query="").geturl()
    monkeypatch.setenv("TICKETFLOW_DATABASE_URL", url)
    monkeypatch.setenv("TICKETFLOW_CONNECT_TIMEOUT", "1")
    code, _, err = run(["views"], capsys)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("error: cannot open the event store (PostgreSQL database tf_no_such_database on ")
    assert err.rstrip().endswith('database "tf_no_such_database" does not exist'), err
