"""Imports driven by a mapping: the servicenow preset's snapshot rows, mapping files, rejects, dry runs."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from uuid import UUID

import pytest

from tests.support import run_cli
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow.domain import Ticket
from ticketflow.domain.values import Channel, Priority, Status
from ticketflow.errors import ValidationFailed
from ticketflow.importing import dry_run, import_file, import_source, load_mapping, load_source
from ticketflow.importing.mapping import DAY_FIRST_FORMATS

SN_COLUMNS = [
    "number", "incident_state", "reassignment_count", "reopen_count", "sys_mod_count", "caller_id",
    "sys_updated_by", "sys_updated_at", "contact_type", "category", "priority", "assignment_group", "assigned_to",
]


def sn_row(
    seq: int, when: str, state: str, group: str = "?", assignee: str = "?", *, number: str = "INC0000001",
    priority: str = "3 - Moderate", category: str = "Category 26", contact: str = "Phone",
) -> dict[str, str]:
    return {
        "number": number, "incident_state": state, "reassignment_count": "0", "reopen_count": "0",
        "sys_mod_count": str(seq), "caller_id": "Caller 2403", "sys_updated_by": "Updater 21",
        "sys_updated_at": f"{when}", "contact_type": contact, "category": category, "priority": priority,
        "assignment_group": group, "assigned_to": assignee,
    }


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


def servicenow(tmp_path: Path, *rows: dict[str, str]) -> Path:
    return write_csv(tmp_path / "incidents.csv", SN_COLUMNS, rows)


def only_ticket(tickets: dict[str, UUID]) -> UUID:
    (ticket_id,) = tickets.values()
    return ticket_id


def team_name(desk: TicketDesk, ticket: Ticket) -> str | None:
    return None if ticket.team_id is None else desk.get_team(ticket.team_id).name


# ------------------------------------------------------------------ servicenow snapshots
def test_new_with_an_assignee_and_no_group_stays_new_with_that_assignee(desk: TicketDesk, tmp_path: Path) -> None:
    path = servicenow(tmp_path, {**sn_row(0, "13/03/2016 09:00", "New", assignee="Resolver 89"), "caller_id": "?"})
    ticket = desk.get_ticket(only_ticket(import_file(desk, "servicenow", path).tickets))
    assert (ticket.status, ticket.team_id, ticket.assignee_id) == (Status.NEW, None, "Resolver_89")
    assert desk.get_customer(ticket.requester_id).name == "Unknown caller (imported)"  # "?" is empty
    assert (ticket.priority, ticket.category, ticket.channel) == (Priority.NORMAL, "Category_26", Channel.PHONE)


def test_snapshots_are_diffed_in_sys_mod_count_order_with_day_first_times(desk: TicketDesk, tmp_path: Path) -> None:
    path = servicenow(
        tmp_path,
        sn_row(7, "04/03/2016 10:00", "Closed", "?", "Resolver 89", priority="2 - High"),
        sn_row(0, "03/03/2016 09:00", "New", contact="Self service"),
        sn_row(3, "03/03/2016 09:30", "Active", "Group 56", "Resolver 89"),
        sn_row(4, "03/03/2016 09:30", "Awaiting Vendor", "Group 56", "?"),
        sn_row(5, "04/03/2016 09:00", "Resolved", "?", "Resolver 89", priority="2 - High"),
    )
    summary = import_file(desk, "servicenow", path)
    ticket_id = only_ticket(summary.tickets)
    ticket = desk.get_ticket(ticket_id)
    assert (ticket.status, team_name(desk, ticket), ticket.assignee_id) == (Status.CLOSED, None, "Resolver_89")
    assert (ticket.priority, ticket.channel) == (Priority.HIGH, Channel.WEB_FORM)
    trail = [(type(e).__name__, e.occurred_at.strftime("%d %H:%M")) for e in desk.history(ticket_id)]
    assert trail == [
        ("Opened", "03 09:00"), ("Transferred", "03 09:30"), ("MarkedOpen", "03 09:30"), ("Unassigned", "03 09:30"),
        ("PutOnHold", "03 09:30"), ("Assigned", "04 09:00"), ("RemovedFromTeam", "04 09:00"), ("Solved", "04 09:00"),
        ("PriorityChanged", "04 09:00"), ("Closed", "04 10:00"),
    ]
    solved = next(e for e in desk.history(ticket_id) if isinstance(e, Ticket.Solved))
    assert solved.resolution == "Resolved in the source system"
    assert solved.source_counters == {"sys_mod_count": 5, "reassignment_count": 0, "reopen_count": 0}


def test_a_closed_incident_made_active_again_is_reopened_and_a_row_that_changes_nothing_is_counted(
    desk: TicketDesk, tmp_path: Path
) -> None:
    path = servicenow(
        tmp_path,
        sn_row(0, "13/03/2016 09:00", "Active", "Group 56", "Resolver 89"),
        sn_row(1, "13/03/2016 10:00", "Closed", "Group 56", "Resolver 89"),
        sn_row(2, "13/03/2016 10:30", "Closed", "Group 56", "Resolver 89"),
        sn_row(4, "14/03/2016 08:00", "Awaiting User Info", "Group 56", "Resolver 89"),
    )
    summary = import_file(desk, "servicenow", path)
    ticket_id = only_ticket(summary.tickets)
    statuses = [type(e).__name__ for e in desk.history(ticket_id)]
    assert statuses[-2:] == ["Reopened", "Pended"] and desk.get_ticket(ticket_id).reopen_count == 1
    assert summary.skipped == {"update that changed none of the imported fields": 1}


# -------------------------------------------------------------------------- rejects
def test_structural_garbage_goes_to_the_rejects_and_its_case_is_not_half_written(
    desk: TicketDesk, tmp_path: Path
) -> None:
    path = servicenow(
        tmp_path,
        sn_row(0, "13/03/2016 09:00", "New", number="INC1"),
        sn_row(1, "13/03/2016 09:10", "Active", number="INC1"),
        sn_row(2, "13/03/2016 09:20", "Escalated", number="INC1"),  # unknown status
        sn_row(0, "2016-03-13 09:00", "New", number="INC2"),  # not day-first
        sn_row(0, "13/03/2016 09:00", "New", number=""),  # no id
        sn_row(0, "13/03/2016 09:00", "New", number="INC3"),
    )
    source = load_source("servicenow", path)
    assert [(r.line, r.case_id, r.reason) for r in source.rejects] == [
        (4, "INC1", "unknown incident_state 'Escalated' (no mapping)"),
        (5, "INC2", f"sys_updated_at '2016-03-13 09:00' is not a time like {' or '.join(DAY_FIRST_FORMATS)}"),
        (6, "", "the row has no number"),
    ]
    summary = import_file(desk, "servicenow", path)
    assert list(summary.tickets) == ["INC3"] and (summary.rejected_rows, summary.left_out) == (3, 2)


def test_an_update_whose_time_goes_back_against_its_sequence_number_rejects_its_case(
    desk: TicketDesk, tmp_path: Path
) -> None:
    path = servicenow(
        tmp_path,
        sn_row(1, "13/03/2016 10:00", "New", number="INC1"),
        sn_row(2, "13/03/2016 09:00", "Active", number="INC1"),
        sn_row(1, "13/03/2016 10:00", "New", number="INC2"),
    )
    source = load_source("servicenow", path)
    assert [(r.line, r.case_id, r.reason) for r in source.rejects] == [
        (3, "INC1", "sys_updated_at goes back in time (sys_mod_count after row 2)")
    ]
    assert [case.case_id for case in source.log.cases] == ["INC2"]


def test_the_command_writes_the_rejects_file_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETFLOW_DATA_DIR", str(tmp_path / "desk"))
    monkeypatch.setenv("COLUMNS", "300")
    path = servicenow(
        tmp_path, sn_row(0, "13/03/2016 09:00", "New", number="INC1"), sn_row(0, "13/03/2016 09:00", "Gone", number="INC2")
    )
    code, out, err = run_cli(["import", "servicenow", str(path), "--rejects", str(tmp_path / "rejects.csv")], capsys)
    assert code == 0, err
    assert f"1 rows rejected (1 cases left out whole): {tmp_path / 'rejects.csv'}" in out
    with (tmp_path / "rejects.csv").open(encoding="utf-8") as handle:
        assert list(csv.reader(handle)) == [["row", "case", "reason"], ["3", "INC2", "unknown incident_state 'Gone' (no mapping)"]]


def test_a_rejects_file_that_cannot_be_written_stops_the_import_in_one_line_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETFLOW_DATA_DIR", str(tmp_path / "desk"))
    path = servicenow(tmp_path, sn_row(0, "13/03/2016 09:00", "Gone"), sn_row(0, "13/03/2016 09:00", "New", number="INC2"))
    target = tmp_path / "no-such-folder" / "rejects.csv"
    code, out, err = run_cli(["import", "servicenow", str(path), "--rejects", str(target)], capsys)
    assert (code, out) == (1, "")
    assert err == f"error: cannot write the rejects file {target}: No such file or directory\n"
    assert not (tmp_path / "desk").exists()


# -------------------------------------------------------------------------- format checks
def test_a_file_of_another_shape_is_refused_naming_the_missing_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETFLOW_DATA_DIR", str(tmp_path / "desk"))
    monkeypatch.setenv("COLUMNS", "300")
    bpic = write_csv(tmp_path / "bpic.csv", ["case:concept:name", "concept:name", "org:resource", "time:timestamp"], [])
    code, out, err = run_cli(["import", "servicenow", str(bpic)], capsys)
    assert code == 1 and out == ""
    assert err.startswith("error: bpic.csv is not a servicenow log: missing columns number, sys_updated_by, sys_updated_at,")
    assert err.count("\n") == 1
    code, out, err = run_cli(["import", "--mapping", str(tmp_path / "none.toml"), "/dev/zero"], capsys)
    assert (code, err) == (1, f"error: no such mapping file: {tmp_path / 'none.toml'}\n")
    assert not (tmp_path / "desk").exists()


def test_dev_zero_fails_fast_in_one_line_through_any_preset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["import", "servicenow", "/dev/zero"], capsys)
    assert (code, out) == (1, "")
    assert err == "error: /dev/zero is not a regular file (a device, pipe or socket): expected a servicenow CSV log\n"


def test_mapping_file_mistakes_are_one_line_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\nshape = "snapshots"\n[columns]\ncase = "id"\ntime = "at"\nstatus = "s"\n'
                   '[values.status]\nOpen = "opened"\n', encoding="utf-8")
    with pytest.raises(ValidationFailed, match=r"bad.toml: values.status.'Open' = 'opened' is not a status \(new, open"):
        load_mapping(bad)
    bad.write_text('name = "x"\n[columns]\ncase = "id"\n', encoding="utf-8")
    with pytest.raises(ValidationFailed, match=r"bad.toml: columns.time is required$"):
        load_mapping(bad)
    bad.write_text("name = [", encoding="utf-8")
    with pytest.raises(ValidationFailed, match=r"bad.toml is not valid TOML"):
        load_mapping(bad)


# ----------------------------------------------------------- a mapping file of one's own
JIRA_MAPPING = """
name = "desk-cn"
title = "一个中文工单系统的导出"
shape = "snapshots"
empty = ["无", "-"]
subject = "{标题}"

[columns]
case = "工单号"
sequence = "版本"
time = "更新时间"
actor = "操作人"
status = "状态"
team = "处理组"
assignee = "处理人"
priority = "优先级"
requester = "客户"

[time]
format = "%d.%m.%Y %H:%M"
zone = "Asia/Shanghai"

[requester]
language = "zh"

[values.status]
"新建" = "new"
"处理中" = "open"
"等待客户" = "pending"
"已解决" = "solved"

[values.priority]
"高" = "high"
"中" = "normal"
"""


def chinese_export(tmp_path: Path) -> tuple[Path, Path]:
    mapping = tmp_path / "desk-cn.toml"
    mapping.write_text(JIRA_MAPPING, encoding="utf-8")
    columns = ["工单号", "版本", "更新时间", "操作人", "状态", "处理组", "处理人", "优先级", "客户", "标题"]
    base = {"工单号": "CN-1", "客户": "王小明", "标题": "宽带无法连接", "优先级": "中", "操作人": "李伟"}
    rows = [
        {**base, "版本": "1", "更新时间": "13.03.2016 09:00", "状态": "新建", "处理组": "无", "处理人": "无"},
        {**base, "版本": "2", "更新时间": "13.03.2016 09:05", "状态": "处理中", "处理组": "技术支持", "处理人": "张三"},
        {**base, "版本": "3", "更新时间": "13.03.2016 10:00", "状态": "等待客户", "处理组": "技术支持", "处理人": "张三",
         "优先级": "紧急"},
    ]
    return mapping, write_csv(tmp_path / "导出.csv", columns, rows)


def test_a_mapping_file_of_ones_own_imports_chinese_columns_values_and_local_times(
    desk: TicketDesk, tmp_path: Path
) -> None:
    mapping, path = chinese_export(tmp_path)
    source = load_source(None, path, mapping=mapping)
    summary = import_source(desk, source)
    ticket = desk.get_ticket(only_ticket(summary.tickets))
    assert (ticket.subject, ticket.status, team_name(desk, ticket), ticket.assignee_id) == (
        "宽带无法连接", Status.PENDING, "技术支持", "张三"
    )
    assert ticket.created_at.isoformat() == "2016-03-13T09:00:00+08:00"
    assert desk.get_customer(ticket.requester_id).name == "王小明"
    assert dry_run(load_source(None, path, mapping=mapping)).unmapped == {"优先级 '紧急'": 1}


def test_counters_named_in_chinese_are_kept_on_the_facts_and_the_ticket(any_desk: TicketDesk, tmp_path: Path) -> None:
    desk = any_desk
    mapping = tmp_path / "desk-cn.toml"
    mapping.write_text(JIRA_MAPPING.replace('subject = "{标题}"', 'subject = "{标题}"\ncounters = ["转派次数", "重开次数"]'), encoding="utf-8")
    columns = ["工单号", "版本", "更新时间", "操作人", "状态", "处理组", "处理人", "优先级", "客户", "标题", "转派次数", "重开次数"]
    base = {"工单号": "CN-1", "客户": "王小明", "标题": "宽带无法连接", "优先级": "中", "操作人": "李伟", "转派次数": "0"}
    rows = [
        {**base, "版本": "1", "更新时间": "13.03.2016 09:00", "状态": "新建", "处理组": "技术支持", "处理人": "无", "重开次数": "0"},
        {**base, "版本": "2", "更新时间": "13.03.2016 10:00", "状态": "已解决", "处理组": "技术支持", "处理人": "张三", "重开次数": "0"},
        {**base, "版本": "3", "更新时间": "14.03.2016 09:00", "状态": "处理中", "处理组": "技术支持", "处理人": "张三", "重开次数": "1"},
    ]
    path = write_csv(tmp_path / "导出.csv", columns, rows)
    summary = import_source(desk, load_source(None, path, mapping=mapping))
    assert (summary.rejected_rows, summary.refusals) == (0, [])
    ticket_id = only_ticket(summary.tickets)
    reopened = next(e for e in desk.history(ticket_id) if isinstance(e, Ticket.Reopened))
    assert reopened.source_counters == {"转派次数": 0, "重开次数": 1}
    ticket = desk.get_ticket(ticket_id)
    assert (ticket.status, ticket.assignee_id, ticket.source_counters) == (Status.OPEN, "张三", {"转派次数": 0, "重开次数": 1})


def test_an_unmapped_value_is_counted_once_per_row_the_opening_row_included(tmp_path: Path) -> None:
    mapping, _ = chinese_export(tmp_path)
    columns = ["工单号", "版本", "更新时间", "操作人", "状态", "处理组", "处理人", "优先级", "客户", "标题"]
    base = {"工单号": "CN-2", "客户": "陈静", "标题": "密码重置", "优先级": "紧急", "操作人": "张三", "处理组": "技术支持"}
    rows = [
        {**base, "版本": "1", "更新时间": "13.02.2016 23:50", "状态": "新建", "处理人": "无"},
        {**base, "版本": "2", "更新时间": "14.02.2016 00:10", "状态": "处理中", "处理人": "钱七"},
        {**base, "版本": "3", "更新时间": "14.02.2016 00:20", "状态": "已解决", "处理人": "钱七"},
    ]
    path = write_csv(tmp_path / "紧急.csv", columns, rows)
    assert dry_run(load_source(None, path, mapping=mapping)).unmapped == {"优先级 '紧急'": 3}


def test_a_dry_run_reports_everything_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETFLOW_DATA_DIR", str(tmp_path / "desk"))
    monkeypatch.setenv("COLUMNS", "300")
    mapping, path = chinese_export(tmp_path)
    other = servicenow(tmp_path, sn_row(0, "13/03/2016 09:00", "New"))
    assert run_cli(["import", "servicenow", str(other)], capsys)[0] == 0
    store = TicketDesk(Settings(data_dir=tmp_path / "desk"))
    before = store.log_position()
    store.close()
    code, out, err = run_cli(["import", "--mapping", str(mapping), str(path), "--dry-run"], capsys)
    assert code == 0, err
    assert f"dry run of {path} as desk-cn: nothing written" in out
    lines = {line.strip("│ ").rsplit("│", 1)[0].strip(): line for line in out.splitlines() if "│" in line}
    assert lines["cases"].split()[-2] == "1" and lines["facts (imported events)"].split()[-2] == "3"
    assert "unmapped 优先级 '紧急': 1 rows (default kept)" in out
    sample = next(line for line in out.splitlines() if "CN-1" in line)
    assert [cell.strip() for cell in sample.strip("│").split("│")] == ["CN-1", "pending", "技术支持", "张三", "normal", "general", "3"]
    assert "宽带无法连接" not in out and "王小明" not in out  # no personal data (subject, requester) in the sample
    store = TicketDesk(Settings(data_dir=tmp_path / "desk"))
    try:
        assert store.log_position() == before
    finally:
        store.close()


def test_every_preset_is_a_mapping_file_shipped_as_package_data() -> None:
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[2]
    package_data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    patterns = package_data["ticketflow.importing"]
    presets = sorted((root / "ticketflow" / "importing" / "presets").glob("*.toml"))
    assert [p.stem for p in presets] == ["bpic2013", "helpdesk", "servicenow", "xes"]
    for preset in presets:
        assert any(fnmatch.fnmatch(f"presets/{preset.name}", pattern) for pattern in patterns), preset.name
        assert load_mapping(preset).name == preset.stem
