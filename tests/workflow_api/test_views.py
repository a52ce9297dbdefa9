"""The reminders and problem-library views, on every store (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from projections.problems import search_problems, suggestions
from projections.readside import ReadSide
from projections.reminders import ReminderFilter, get_reminder, list_reminders
from ticketflow.clock import FakeClock
from ticketflow.commands import OpenTicket, ReopenTicket, SolveTicket
from ticketflow.commands.workflow import (
    CancelReminder, CompleteReminder, FireReminder, RecordResolution, ScheduleReminder,
)
from tests.support import AGENT, Desk
from tests.workflow_api.conftest import SYSTEM


@pytest.fixture
def read_side(any_setup: Desk) -> Iterator[ReadSide]:
    side = ReadSide(any_setup.app, ["reminders", "problems"])
    yield side
    side.close()


def remind(setup: Desk, clock: FakeClock, hours: int, **fields: object) -> str:
    fields.setdefault("agent_id", "li.wei")
    fields.setdefault("team_id", setup.team_id)
    cmd = ScheduleReminder.model_validate({"due_at": clock.now() + timedelta(hours=hours), "note": "回访客户", **fields})
    return str(setup.app.schedule_reminder(cmd, AGENT).object_id)


def queue(read_side: ReadSide, **where: object) -> list[str]:
    read_side.catch_up()
    return [r["reminder_id"] for r in read_side.read("reminders", lambda db: list_reminders(db, ReminderFilter(**where)))]  # type: ignore[arg-type]


def test_a_reminder_row_follows_its_life_scheduled_fired_done(any_setup: Desk, clock: FakeClock, read_side: ReadSide) -> None:
    ticket_id = any_setup.open()
    reminder_id = remind(any_setup, clock, 2, ticket_id=ticket_id, kind="follow_up")
    read_side.catch_up()
    row = read_side.read("reminders", lambda db: get_reminder(db, reminder_id))
    assert row is not None
    assert (row["state"], row["kind"], row["customer_id"], row["created_by"]) == (
        "scheduled", "follow_up", str(any_setup.customer_id), "li.wei")
    clock.advance(timedelta(hours=3))
    any_setup.app.fire_reminder(FireReminder(reminder_id=reminder_id), SYSTEM)
    any_setup.app.complete_reminder(CompleteReminder(reminder_id=reminder_id, outcome="客户满意"), AGENT)
    read_side.catch_up()
    row = read_side.read("reminders", lambda db: get_reminder(db, reminder_id))
    assert row is not None
    assert (row["state"], row["outcome"]) == ("done", "客户满意")
    assert row["fired_at"] is not None and row["done_at"] is not None and row["version"] == 3


def test_a_queue_lists_open_reminders_due_first_and_leaves_out_finished_ones(
    any_setup: Desk, clock: FakeClock, read_side: ReadSide,
) -> None:
    ticket_id = any_setup.open()
    later = remind(any_setup, clock, 48, ticket_id=ticket_id)
    soon = remind(any_setup, clock, 1, customer_id=any_setup.customer_id)
    cancelled = remind(any_setup, clock, 2, ticket_id=ticket_id)
    any_setup.app.cancel_reminder(CancelReminder(reminder_id=cancelled, reason="no longer needed"), AGENT)
    clock.advance(timedelta(hours=2))
    assert queue(read_side, agent_id="li.wei") == [soon, later]
    assert queue(read_side, agent_id="li.wei", due_before=clock.now()) == [soon]
    assert queue(read_side, ticket_id=str(ticket_id), states=("cancelled",)) == [cancelled]
    assert queue(read_side, customer_id=str(any_setup.customer_id)) == [soon, later]


def test_an_agents_own_queue_holds_theirs_and_their_teams_reminders_for_no_one(
    any_setup: Desk, clock: FakeClock, read_side: ReadSide,
) -> None:
    ticket_id = any_setup.open()
    mine = remind(any_setup, clock, 1, ticket_id=ticket_id)
    team_wide = remind(any_setup, clock, 2, ticket_id=ticket_id, agent_id=None)
    remind(any_setup, clock, 3, ticket_id=ticket_id, agent_id="emma.clark")
    remind(any_setup, clock, 4, customer_id=any_setup.customer_id, agent_id=None, team_id=any_setup.other_team_id)
    teams = (str(any_setup.team_id),)
    assert queue(read_side, own_queue_of="li.wei", teams=teams, me="li.wei") == [mine, team_wide]
    assert len(queue(read_side, team_id=str(any_setup.team_id))) == 3


def solved(setup: Desk, subject: str, category: str, resolution: str = "") -> str:
    ticket_id = setup.app.open_ticket(
        OpenTicket(subject=subject, category=category, requester_id=setup.customer_id, team_id=setup.team_id),
        setup.customer_caller,
    ).object_id
    setup.app.solve_ticket(SolveTicket(ticket_id=ticket_id, resolution=resolution), AGENT)
    return str(ticket_id)


def found(read_side: ReadSide, text: str | None, **kwargs: str) -> list[str]:
    read_side.catch_up()
    return [r["ticket_id"] for r in read_side.read("problems", lambda db: search_problems(db, text, **kwargs))]


def test_a_two_character_chinese_query_finds_a_solved_problem_by_its_summary(any_setup: Desk, read_side: ReadSide) -> None:
    login = solved(any_setup, "无法登录账户", "login", "清除浏览器缓存后可以登录")
    printer = solved(any_setup, "Printer jams", "hardware", "Replaced the roller")
    assert found(read_side, "缓存") == [login]
    assert found(read_side, "roller") == [printer]
    assert found(read_side, "缓存", category="hardware") == []
    assert set(found(read_side, None)) == {login, printer}


def test_a_recorded_summary_replaces_the_resolution_and_a_reopened_ticket_leaves_the_library(
    any_setup: Desk, read_side: ReadSide,
) -> None:
    ticket_id = solved(any_setup, "网络连接经常中断", "network", "重启了路由器")
    any_setup.app.record_resolution(RecordResolution(ticket_id=ticket_id, summary="更换了交换机端口"), AGENT)
    assert found(read_side, "路由") == [] and found(read_side, "交换") == [ticket_id]
    any_setup.app.reopen_ticket(ReopenTicket(ticket_id=ticket_id, reason="又断了"), AGENT)
    assert found(read_side, "交换") == []
    any_setup.app.solve_ticket(SolveTicket(ticket_id=ticket_id), AGENT)
    assert found(read_side, "交换") == [ticket_id]  # the agent's summary outlives the reopen


def test_a_ticket_solved_without_a_resolution_enters_the_library_when_a_summary_is_recorded(
    any_setup: Desk, read_side: ReadSide,
) -> None:
    ticket_id = solved(any_setup, "发票抬头错误", "billing")
    assert found(read_side, None) == []
    any_setup.app.record_resolution(RecordResolution(ticket_id=ticket_id, summary="重新开具了发票"), AGENT)
    read_side.catch_up()
    rows = read_side.read("problems", lambda db: search_problems(db, "发票", category="billing"))
    assert [(r["ticket_id"], r["customer_id"], r["source"]) for r in rows] == [(ticket_id, str(any_setup.customer_id), "summary")]


def test_suggestions_are_problems_of_the_same_category_sharing_words_with_the_subject(
    any_setup: Desk, read_side: ReadSide,
) -> None:
    cache = solved(any_setup, "登录失败", "login", "登录页面报错：清除缓存后恢复")
    password = solved(any_setup, "忘记密码", "login", "通过短信重置了密码")
    solved(any_setup, "登录发票系统", "billing", "登录发票系统需要开通权限")
    new = any_setup.app.open_ticket(OpenTicket(subject="无法登录，页面报错", category="login",
                                               requester_id=any_setup.customer_id), any_setup.customer_caller).object_id
    read_side.catch_up()
    hits = read_side.read("problems", lambda db: suggestions(db, str(new), "无法登录，页面报错", "login"))
    assert [h["ticket_id"] for h in hits] == [cache]  # same category, best match; billing never suggested
    assert password not in [h["ticket_id"] for h in hits]
    itself = read_side.read("problems", lambda db: suggestions(db, cache, "登录失败", "login"))
    assert cache not in [h["ticket_id"] for h in itself]


def test_a_rebuilt_library_and_queue_equal_the_live_ones(any_setup: Desk, clock: FakeClock, read_side: ReadSide) -> None:
    ticket_id = solved(any_setup, "网络连接经常中断", "network", "重启了路由器")
    any_setup.app.record_resolution(RecordResolution(ticket_id=ticket_id, summary="更换了交换机端口"), AGENT)
    remind(any_setup, clock, 1, ticket_id=ticket_id)
    before = (found(read_side, "交换"), queue(read_side, agent_id="li.wei"))
    read_side.rebuild("problems")
    read_side.rebuild("reminders")
    assert (found(read_side, "交换"), queue(read_side, agent_id="li.wei")) == before
