"""``ticketflow policy``: publish and list policies from JSON files; bad input is one line and a non-zero exit."""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import pytest

from api.schemas import CALENDAR_EXAMPLE, SLA_POLICY_EXAMPLE
from ticketflow.application import TicketDesk
from ticketflow.commands import FormTeam
from ticketflow.config import Settings
from tests.support import ADMIN
from tests.support import run_cli as run


@pytest.fixture
def teams(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[UUID, UUID]:
    directory = tmp_path / "desk"
    monkeypatch.setenv("TICKETFLOW_DATA_DIR", str(directory))
    monkeypatch.delenv("TICKETFLOW_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    desk = TicketDesk(Settings(data_dir=directory))
    support = desk.form_team(FormTeam(name="技术支持"), ADMIN).object_id
    billing = desk.form_team(FormTeam(name="Billing"), ADMIN).object_id
    desk.close()
    return support, billing


def write(tmp_path: Path, name: str, data: object) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_routing_rules_are_published_from_a_file_and_shown_by_version(
    teams: tuple[UUID, UUID], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    support, billing = teams
    rules = {"rules": [{"name": "发票到财务", "team_id": str(billing), "keywords": ["发票"]}],
             "default_team_id": str(support), "note": "第一版"}
    code, _, err = run(["policy", "routing", "publish", write(tmp_path, "rules.json", rules)], capsys)
    assert code == 0, err
    assert "routing rules: version 1 (RoutingPolicy.Adopted)" in err
    rules["rules"] = []
    assert run(["policy", "routing", "publish", write(tmp_path, "rules2.json", rules)], capsys)[0] == 0
    code, out, err = run(["policy", "routing", "show", "--version", "1"], capsys)
    assert code == 0, err
    assert "routing rules v1: default team 技术支持 (第一版)" in out
    assert "发票到财务" in out and "Billing" in out and "keywords=发票" in out
    code, out, _ = run(["policy", "routing", "show"], capsys)
    assert "routing rules v2" in out and "发票到财务" not in out
    code, _, err = run(["policy", "routing", "show", "--version", "9"], capsys)
    assert code == 1 and err.strip() == "error: the routing rules have no version 9 (latest: 2)"


def test_calendars_and_sla_policies_are_defined_listed_and_retired(
    teams: tuple[UUID, UUID], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["policy", "calendar", "define", write(tmp_path, "cal.json", CALENDAR_EXAMPLE)], capsys)
    assert code == 0, err
    assert "calendar 上海工作日" in err and "version 1" in err
    code, out, err = run(["policy", "calendar", "list"], capsys)
    assert code == 0, err
    assert "上海工作日" in out and "Asia/Shanghai" in out and "Mon-Fri 09:00-12:00, 13:00-18:00" in out
    assert "2026-10-10 (as Fri)" in out

    assert run(["policy", "sla", "define", write(tmp_path, "sla.json", SLA_POLICY_EXAMPLE)], capsys)[0] == 0
    code, out, err = run(["policy", "sla", "list"], capsys)
    assert code == 0, err
    assert "VIP" in out and "active" in out and "first_reply 60b" in out and "上海工作日" in out
    code, _, err = run(["policy", "sla", "retire", "vip", "--reason", "合并"], capsys)
    assert code == 0, err
    assert "version 2 (SlaPolicy.Retired)" in err
    assert "retired" in run(["policy", "sla", "list"], capsys)[1]
    code, _, err = run(["policy", "sla", "retire", "没有这个", "--reason", "x"], capsys)
    assert code == 1 and err.strip() == "error: SLA policy 没有这个 not found"


def test_the_strategy_is_set_by_team_name_or_id(teams: tuple[UUID, UUID], capsys: pytest.CaptureFixture[str]) -> None:
    support, _ = teams
    code, _, err = run(["policy", "strategy", "技术支持", "least_loaded"], capsys)
    assert code == 0, err
    assert "team 技术支持 assigns by least_loaded" in err
    code, _, err = run(["policy", "strategy", str(support), "fastest"], capsys)
    assert code == 1 and "not one of round_robin, least_loaded, skills" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object, found list"),
        ('{"rules": [], "default_team_id": "not-a-uuid"}', "invalid input: default_team_id"),
        ('{"rules": [], "default_team_id": "00000000-0000-4000-8000-000000000001"}',
         "team 00000000-0000-4000-8000-000000000001 not found"),
    ],
)
def test_a_bad_rules_file_is_one_line_and_a_non_zero_exit(
    teams: tuple[UUID, UUID], tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, message: str
) -> None:
    path = tmp_path / "rules.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, out, err = run(["policy", "routing", "publish", str(path)], capsys)
    assert code == 1
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert out == ""


def test_a_bad_calendar_is_one_line_and_a_non_zero_exit(
    teams: tuple[UUID, UUID], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for bad, message in [
        ({**CALENDAR_EXAMPLE, "weekly": {"0": [["9:00", "18:00"]]}}, "'9:00' is not a time HH:MM"),
        ({**CALENDAR_EXAMPLE, "timezone": "Asia"}, "unknown timezone 'Asia'"),
    ]:
        code, _, err = run(["policy", "calendar", "define", write(tmp_path, "cal.json", bad)], capsys)
        assert code == 1 and message in err and err.count("\n") == 1, err
