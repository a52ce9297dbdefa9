"""Queues, read-your-writes, customer 360 figures and reports."""

from __future__ import annotations

from datetime import timedelta

import pytest

from projections import reports
from projections.customers import customer_overview
from projections.readside import ReadSide
from projections.sql import ts
from projections.tickets import TicketFilter, TicketQueries
from ticketflow.clock import FakeClock
from ticketflow.commands import (
    AssignTicket, ChangePriority, OpenTicket, PendTicket, PostReply, RateSatisfaction, SolveTicket,
)
from ticketflow.domain.values import Priority, TicketType
from tests.support import AGENT, Desk


def test_a_reader_can_wait_for_its_own_write(any_setup: Desk) -> None:
    read_side = ReadSide(any_setup.app)
    read_side.start()
    try:
        ticket_id = any_setup.open("刚刚创建")
        result = any_setup.app.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
        assert result.position is not None
        assert read_side.wait(result.position, timeout=5)
        row = read_side.read("tickets", lambda db: TicketQueries.get(db, str(ticket_id)))
        assert row is not None and (row["assignee_id"], row["status"], row["version"]) == ("li.wei", "open", result.version)
        assert all(s.lag == 0 for s in read_side.status())
    finally:
        read_side.close()


def test_waiting_for_a_position_not_yet_written_times_out(setup: Desk) -> None:
    read_side = ReadSide(setup.app, ["tickets"])
    read_side.catch_up()
    assert read_side.wait(setup.app.log_position() + 1, timeout=0.1) is False
    read_side.close()


def test_queues_filter_sort_and_page_without_gaps_or_repeats(setup: Desk, clock: FakeClock) -> None:
    ids = []
    for i in range(23):
        clock.advance(timedelta(minutes=1))
        ids.append(setup.open(f"ticket {i}"))
    for ticket_id in ids[:5]:
        setup.app.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
    clock.advance(timedelta(minutes=5))
    setup.app.change_priority(ChangePriority(ticket_id=ids[7], priority=Priority.URGENT), AGENT)
    read_side = ReadSide(setup.app, ["tickets"])
    read_side.catch_up()

    def queue(where: TicketFilter, sort: str = "created_at", limit: int = 10, cursor: str | None = None):  # type: ignore[no-untyped-def]
        return read_side.read("tickets", lambda db: TicketQueries.queue(db, where, sort, limit, cursor))

    seen, cursor = [], None
    while True:
        page = queue(TicketFilter(team_id=str(setup.team_id)), cursor=cursor)
        seen += [row["ticket_id"] for row in page.rows]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [str(t) for t in ids]  # oldest first, every ticket once

    assert [r["ticket_id"] for r in queue(TicketFilter(assignee_id="li.wei")).rows] == [str(t) for t in ids[:5]]
    unassigned = queue(TicketFilter(unassigned=True, status=("new",)), limit=100).rows
    assert len(unassigned) == 18
    assert queue(TicketFilter(), sort="priority").rows[0]["ticket_id"] == str(ids[7])
    newest = queue(TicketFilter(), sort="-updated_at", limit=1).rows[0]
    assert newest["ticket_id"] == str(ids[7])
    with pytest.raises(ValueError, match="issued for sort"):
        queue(TicketFilter(), sort="priority", cursor=cursor)
    with pytest.raises(ValueError, match="not one this service issued"):
        queue(TicketFilter(), cursor="garbage!")
    read_side.close()


def test_customer_360_figures(setup: Desk, clock: FakeClock) -> None:
    complaint = setup.app.open_ticket(
        OpenTicket(subject="投诉：服务太慢", ticket_type=TicketType.COMPLAINT, requester_id=setup.customer_id),
        setup.customer_caller,
    ).object_id
    clock.advance(timedelta(hours=2))
    setup.app.post_reply(PostReply(ticket_id=complaint, body="非常抱歉"), AGENT)
    clock.advance(timedelta(hours=4))
    setup.app.solve_ticket(SolveTicket(ticket_id=complaint), AGENT)
    setup.app.rate_satisfaction(RateSatisfaction(ticket_id=complaint, score=2), setup.customer_caller)
    question = setup.open("怎么开发票")
    setup.app.pend_ticket(PendTicket(ticket_id=question), AGENT)
    read_side = ReadSide(setup.app, ["customers"])
    read_side.catch_up()
    overview = read_side.read("customers", lambda db: customer_overview(db, str(setup.customer_id)))
    assert overview is not None
    assert overview["profile"]["name"] == "王小明"
    figures = overview["figures"]
    assert figures["ticket_count"] == 2 and figures["tickets_by_type"]["complaint"] == 1
    assert figures["complaint_rate"] == 0.5 and figures["open_tickets"] == 1
    assert figures["average_satisfaction"] == 2.0
    assert figures["average_first_reply_hours"] == 2.0 and figures["average_resolution_hours"] == 6.0
    assert figures["interaction_count"] == 1
    assert [i["body"] for i in overview["interactions"]] == ["非常抱歉"]
    read_side.close()


def test_reports_give_volume_backlog_times_and_satisfaction(setup: Desk, clock: FakeClock) -> None:
    hours_to_reply = [1, 2, 3, 10]
    for i, hours in enumerate(hours_to_reply):
        ticket_id = setup.open(f"report {i}")
        clock.advance(timedelta(hours=hours))
        setup.app.post_reply(PostReply(ticket_id=ticket_id, body="ok"), AGENT)
        if i < 2:
            setup.app.solve_ticket(SolveTicket(ticket_id=ticket_id), AGENT)
            setup.app.rate_satisfaction(RateSatisfaction(ticket_id=ticket_id, score=4 + i), setup.customer_caller)
    read_side = ReadSide(setup.app, ["tickets"])
    read_side.catch_up()
    volume = read_side.read("tickets", lambda db: reports.volume(db, "channel"))
    assert sum(row["tickets"] for row in volume) == 4 and {row["value"] for row in volume} == {"web_form"}
    backlog = {row["status"]: row["tickets"] for row in read_side.read("tickets", reports.backlog)}
    assert backlog == {"open": 2, "solved": 2}
    (times,) = read_side.read("tickets", reports.response_times)
    assert times["first_reply_hours"] == {"count": 4, "mean": 4.0, "median": 2.5, "p90": 10.0}
    assert times["resolution_hours"]["count"] == 2
    (team,) = read_side.read("tickets", reports.satisfaction)
    assert (team["ratings"], team["average"], team["scores"]["5"]) == (2, 4.5, 1)
    with pytest.raises(ValueError, match="volume by one of"):
        read_side.read("tickets", lambda db: reports.volume(db, "colour"))
    read_side.close()


def test_the_breached_queue_holds_the_worked_tickets_with_a_breached_target_and_their_latest_breach(
    any_setup: Desk, clock: FakeClock,
) -> None:
    from tests.workflow.test_workflow_commands import SYSTEM, define_policy
    from ticketflow.commands.workflow import ApplySla, RecordSlaEvent

    desk = any_setup.app
    define_policy(desk)
    late, solved, on_time = any_setup.open("迟了两次"), any_setup.open("迟了，已解决"), any_setup.open("按时")
    for ticket_id in (late, solved, on_time):
        desk.apply_sla(ApplySla(ticket_id=ticket_id), SYSTEM)
    first = clock.now() + timedelta(hours=1)
    breaches = [(late, "first_reply_time", first), (solved, "first_reply_time", first),
                (late, "resolution_time", first + timedelta(days=1))]
    for ticket_id, metric, moment in breaches:
        desk.record_sla_event(
            RecordSlaEvent(ticket_id=ticket_id, kind="breached", metric=metric, cycle="c1", moment=moment), SYSTEM)
    desk.solve_ticket(SolveTicket(ticket_id=solved, resolution="已处理"), AGENT)
    read_side = ReadSide(desk, ["tickets"])
    read_side.catch_up()
    try:
        def queue(status: tuple[str, ...]) -> list[str]:
            where = TicketFilter(sla_breached=True, status=status)
            return [r["ticket_id"] for r in read_side.read("tickets", lambda db: TicketQueries.queue(db, where)).rows]

        assert queue(("new", "open", "on_hold")) == [str(late)]
        assert queue(("solved",)) == [str(solved)]
        rows = {t: read_side.read("tickets", lambda db, t=t: TicketQueries.get(db, str(t))) for t in (late, on_time)}
        assert (rows[late]["sla_breached"], rows[late]["sla_breached_at"]) == (1, ts(first + timedelta(days=1)))
        assert (rows[on_time]["sla_breached"], rows[on_time]["sla_breached_at"]) == (0, None)
        every = "SELECT * FROM {p}tf_tickets ORDER BY ticket_id"
        live = read_side.read("tickets", lambda db: db.all(every))
        read_side.rebuild("tickets")
        assert read_side.read("tickets", lambda db: db.all(every)) == live
    finally:
        read_side.close()
