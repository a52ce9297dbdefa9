"""``ticketflow whatif``: a TOML candidate on a live desk's store, as a table, JSON and CSV; bad input is one line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import run_cli as run
from tests.whatif.desks import LiveDesk
from tests.whatif.test_identity import FIXED
from ticketflow.config import Settings

CANDIDATE = """
# 发票 to technical support; a stricter first reply on Shanghai office hours with 调休
[routing]
default_team_id = "技术支持"
[[routing.rules]]
name = "发票"
team_id = "技术支持"
keywords = ["发票", "invoice"]

[[calendars]]
name = "上海工作日"
timezone = "Asia/Shanghai"
weekly = { "0" = [["09:00", "18:00"]], "1" = [["09:00", "18:00"]], "2" = [["09:00", "18:00"]], "3" = [["09:00", "18:00"]], "4" = [["09:00", "18:00"]] }
holidays = ["2026-03-04"]
workdays = { "2026-03-07" = 2 }

[[sla_policies]]
name = "标准"
position = 0
calendar = "上海工作日"
targets = { normal = { first_reply_time = { minutes = 5 } }, high = { first_reply_time = { minutes = 5 } } }
"""


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = tmp_path / "desk"
    monkeypatch.setenv("TICKETFLOW_DATA_DIR", str(directory))
    monkeypatch.delenv("TICKETFLOW_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    world = LiveDesk(Settings(data_dir=directory))
    try:
        world.run(FIXED)
    finally:
        world.close()
    candidate = tmp_path / "candidate.toml"
    candidate.write_text(CANDIDATE, encoding="utf-8")
    yield candidate


PERIOD = ["--from", "2026-03-01T00:00+08:00", "--to", "2026-04-01T00:00+08:00"]


def test_a_toml_candidate_is_compared_side_by_side_as_json_and_csv(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(
        ["whatif", *PERIOD, str(store), "--json", "--csv", str(tmp_path / "sla.csv")], capsys
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["tickets"]["replayed"] == len(FIXED.tickets)
    assert report["fidelity"]["differing"] == []
    assert report["candidate"]["routing_rules"] == ["发票"]
    totals = {row["metric"]: row for row in report["sla_totals"]}
    assert totals["resolution_time"]["recorded"]["breached"] > 0
    assert (
        totals["resolution_time"]["candidate"]["runs"] == 0
    )  # the candidate policy sets no resolution target
    assert {e["metric"] for e in report["no_longer_breaching"]} == {"resolution_time", "next_reply_time"}
    moved = [c for c in report["routing"]["changed"] if c["recorded"]["team"] != c["candidate"]["team"]]
    assert {c["candidate"]["team"] for c in moved} == {"技术支持"}
    rows = (tmp_path / "sla.csv").read_text(encoding="utf-8").splitlines()
    assert rows[0].startswith("team,priority,metric,recorded_runs")
    assert any(r.startswith("技术支持,") for r in rows[1:])
    code, again, _ = run(["whatif", *PERIOD, str(store), "--json"], capsys)
    assert again == out  # byte-identical


def test_the_table_names_teams_and_states_the_semantics(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["whatif", *PERIOD, "--team", "技术支持", str(store)], capsys)
    assert code == 0, err
    assert "SLA attainment" in out and "技术支持" in out and "stay as recorded" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[routing]\ndefault_team_id = "无此团队"\nrules = []\n', "no team is called '无此团队'"),
        ('[[sla_policies]]\nname = "x"\nposition = 0\ntargets = {}\n', "sla_policies[0]"),
        ("[surprise]\n", "unknown section(s) surprise"),
        (
            '[[calendars]]\nname = "火星"\ntimezone = "Mars/Base"\nweekly = { "0" = [["09:00", "18:00"]] }\n',
            "calendars[0].timezone: unknown timezone 'Mars/Base'",
        ),
        ("not toml = = 1", "not valid TOML"),
    ],
)
def test_a_bad_candidate_is_one_line_and_a_non_zero_exit(
    store: Path, content: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store.write_text(content, encoding="utf-8")
    code, _, err = run(["whatif", *PERIOD, str(store)], capsys)
    assert code != 0
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_period_ending_before_it_starts_is_refused(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["whatif", "--from", "2026-04-01", "--to", "2026-03-01", str(store)], capsys)
    assert code != 0 and "--to must be after --from" in err


ROTATION = """
# 账务 assigns round-robin; chen.jie of 技术支持 is on leave the whole period
[[assignment]]
team_id = "账务"
strategy = "round_robin"

[[rotation]]
team_id = "技术支持"
agent_id = "chen.jie"
active = false
reason = "休假"
"""


def test_assignment_and_rotation_sections_reach_the_replay_and_the_table_shows_agents_whose_share_changes(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store.write_text(ROTATION, encoding="utf-8")
    code, out, err = run(["whatif", *PERIOD, str(store), "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    assert report["candidate"]["assignment"] == [{"team": "账务", "strategy": "round_robin"}]
    assert report["candidate"]["rotation"] == [{"team": "技术支持", "agent": "chen.jie", "active": False}]
    share = {row["agent"]: row for row in report["routing"]["per_agent"]}
    assert share["chen.jie"]["recorded"] > 0 and share["chen.jie"]["candidate"] == 0
    assert share["chen.jie"]["difference"] == -share["chen.jie"]["recorded"]
    code, table, err = run(["whatif", *PERIOD, str(store)], capsys)
    assert code == 0, err
    assert "tickets per agent" in table and "chen.jie" in table


def test_a_member_put_out_of_rotation_must_be_one_of_the_teams(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store.write_text(ROTATION.replace("chen.jie", "wang.fang"), encoding="utf-8")
    code, _, err = run(["whatif", *PERIOD, str(store)], capsys)
    assert code != 0
    assert "rotation[0].agent_id: wang.fang is not a member of team '技术支持'" in err
    assert len(err.strip().splitlines()) == 1


def test_the_table_lists_the_runs_whose_outcome_changes_the_tickets_placed_differently_and_the_open_load(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["whatif", *PERIOD, str(store), "--json"], capsys)
    assert code == 0, err
    report = json.loads(out)
    code, table, err = run(["whatif", *PERIOD, str(store)], capsys)
    assert code == 0, err
    assert "SLA clock runs whose outcome changes" in table
    changed_runs = report["newly_breaching"] + report["no_longer_breaching"]
    assert changed_runs and all(e["ticket"] in table for e in changed_runs)
    moved = [c for c in report["routing"]["changed"] if c["recorded"]["team"] != c["candidate"]["team"]]
    assert moved and all(c["ticket"] in table for c in moved)
    assert "rule 发票" in table  # the rule that would have matched
    assert "open tickets over time" in table
    assert "auto-closes, follow-ups and reminders" in table and "reminders fired" in table
    assert set(report["automation"]) == {"auto_closes", "follow_ups", "reminders_fired"}
    for row in report["routing"]["open_load"]["teams"]:
        assert row["team"] in table


def test_a_bad_candidate_or_team_is_refused_before_the_log_is_read(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def read_history(*args: object, **kwargs: object) -> None:
        raise AssertionError("the log was read before the input was checked")

    monkeypatch.setattr("ticketflow.whatif.report.read_history", read_history)
    for content, team, message in [
        ('[[assignment]]\nteam_id = "无此团队"\nstrategy = "least_loaded"\n', None, "no team is called '无此团队'"),
        (ROTATION.replace("chen.jie", "wang.fang"), None, "wang.fang is not a member of team '技术支持'"),
        (
            (
                '[[sla_policies]]\nname = "标准"\nposition = 0\ncalendar = "无此日历"\n'
                "targets = { normal = { first_reply_time = { minutes = 5 } } }\n"
            ),
            None,
            "sla_policies[0].calendar: no calendar '无此日历' in the file or on the desk",
        ),
        ("", "无此团队", "--team: no team is called '无此团队'"),
    ]:
        store.write_text(content, encoding="utf-8")
        code, _, err = run(["whatif", *PERIOD, *(["--team", team] if team else []), str(store)], capsys)
        assert code != 0
        assert message in err and len(err.strip().splitlines()) == 1, err


def test_the_whatif_team_filter_answers_to_either_half_of_a_bilingual_name_as_the_team_command_does() -> None:
    from uuid import uuid4

    from ticketflow.team_names import teams_named
    from ticketflow.whatif.report import team_filter

    support, billing = uuid4(), uuid4()
    names = {support: "技术支持 Technical Support", billing: "账务 Billing"}
    for given in ("Technical Support", "technical support", "技术支持", "技术支持 Technical Support", str(support)):
        assert team_filter(given, names) == support, given
    assert teams_named(names, "Technical Support") == [support]  # the resolver `ticketflow team …` uses
    with pytest.raises(Exception, match="no team is called 'Technical'"):
        team_filter("Technical", names)
