"""SLA clocks from a ticket's events: fulfilled, breached, paused, resumed, business hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ticketflow.clock import FakeClock
from ticketflow.commands import (
    ChangePriority, CloseTicket, PendTicket, PostReply, ReopenTicket, SolveTicket,
)
from ticketflow.domain.values import Direction, Priority
from ticketflow.sla.calendar import BusinessCalendar, weekly_hours
from ticketflow.sla.measure import Metric, State, Target, measure
from tests.support import AGENT, Desk

HOURS = timedelta(hours=1)
OFFICE = BusinessCalendar("UTC", weekly_hours("mon-fri", "09:00", "17:00"))


def targets(priority: str) -> dict[Metric, Target]:
    first = {"urgent": 1, "high": 2, "normal": 4, "low": 8}[priority]
    return {
        Metric.FIRST_REPLY: Target(first * HOURS, business_hours=False),
        Metric.NEXT_REPLY: Target(4 * HOURS, business_hours=False),
        Metric.RESOLUTION: Target(24 * HOURS, business_hours=True),
    }


def by_metric(setup: Desk, ticket_id: object, now: datetime) -> dict[Metric, object]:
    found = measure(setup.app.history(ticket_id), targets, OFFICE, now)  # type: ignore[arg-type]
    return {m.metric: m for m in found if m.metric is not Metric.NEXT_REPLY}


@pytest.fixture
def monday(clock: FakeClock) -> datetime:
    clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))  # a Monday, 09:00
    return clock.now()


def test_a_reply_within_target_fulfils_the_first_reply_clock(setup: Desk, clock: FakeClock, monday: datetime) -> None:
    ticket = setup.open()
    clock.advance(3 * HOURS)
    setup.app.post_reply(PostReply(ticket_id=ticket, body="hello"), AGENT)
    first = by_metric(setup, ticket, clock.now())[Metric.FIRST_REPLY]
    assert (first.state, first.elapsed, first.fulfilled_at, first.breached_at) == (State.FULFILLED, 3 * HOURS, monday + 3 * HOURS, None)


def test_a_late_reply_is_breached_at_the_deadline(setup: Desk, clock: FakeClock, monday: datetime) -> None:
    ticket = setup.open()
    clock.advance(5 * HOURS)
    assert by_metric(setup, ticket, clock.now())[Metric.FIRST_REPLY].state is State.BREACHED
    setup.app.post_reply(PostReply(ticket_id=ticket, body="sorry"), AGENT)
    first = by_metric(setup, ticket, clock.now())[Metric.FIRST_REPLY]
    assert first.state is State.BREACHED and first.breached_at == monday + 4 * HOURS


def test_an_active_clock_says_when_it_is_due(setup: Desk, clock: FakeClock, monday: datetime) -> None:
    ticket = setup.open()
    clock.advance(HOURS)
    first = by_metric(setup, ticket, clock.now())[Metric.FIRST_REPLY]
    assert first.state is State.ACTIVE and first.due_at == monday + 4 * HOURS


def test_pending_pauses_the_clocks_and_a_customer_answer_resumes_them(setup: Desk, clock: FakeClock, monday: datetime) -> None:
    ticket = setup.open()
    clock.advance(HOURS)
    setup.app.pend_ticket(PendTicket(ticket_id=ticket), AGENT)
    clock.advance(10 * HOURS)  # waiting on the customer: not counted
    paused = by_metric(setup, ticket, clock.now())[Metric.FIRST_REPLY]
    assert paused.state is State.PAUSED and paused.elapsed == HOURS and paused.due_at is None
    setup.app.post_reply(PostReply(ticket_id=ticket, body="here", direction=Direction.INBOUND), setup.customer_caller)
    clock.advance(2 * HOURS)
    resumed = by_metric(setup, ticket, clock.now())[Metric.FIRST_REPLY]
    assert resumed.state is State.ACTIVE and resumed.elapsed == 3 * HOURS


def test_resolution_counts_business_hours_and_a_reopen_resumes_it(setup: Desk, clock: FakeClock, monday: datetime) -> None:
    ticket = setup.open()
    clock.set(monday + timedelta(days=4, hours=7))  # Friday 16:00: 4 days x 8 h + 7 h of office time
    setup.app.solve_ticket(SolveTicket(ticket_id=ticket), AGENT)
    resolution = by_metric(setup, ticket, clock.now())[Metric.RESOLUTION]
    assert resolution.elapsed == 39 * HOURS and resolution.state is State.BREACHED
    assert resolution.breached_at == monday + timedelta(days=2, hours=8)  # 24 office hours: Wednesday 17:00


def test_a_reopened_ticket_continues_its_resolution_clock(setup: Desk, clock: FakeClock, monday: datetime) -> None:
    ticket = setup.open()
    clock.advance(2 * HOURS)
    setup.app.solve_ticket(SolveTicket(ticket_id=ticket), AGENT)
    clock.advance(HOURS)
    setup.app.reopen_ticket(ReopenTicket(ticket_id=ticket, reason="not fixed"), AGENT)
    clock.advance(HOURS)
    resolution = by_metric(setup, ticket, clock.now())[Metric.RESOLUTION]
    assert resolution.state is State.ACTIVE and resolution.elapsed == 3 * HOURS and resolution.fulfilled_at is None


def test_a_priority_change_applies_the_new_target(setup: Desk, clock: FakeClock, monday: datetime) -> None:
    ticket = setup.open()
    clock.advance(90 * timedelta(minutes=1))
    setup.app.change_priority(ChangePriority(ticket_id=ticket, priority=Priority.URGENT), AGENT)
    first = by_metric(setup, ticket, clock.now())[Metric.FIRST_REPLY]
    assert first.state is State.BREACHED and first.breached_at == monday + HOURS


def test_next_reply_clocks_start_at_each_customer_message(setup: Desk, clock: FakeClock, monday: datetime) -> None:
    ticket = setup.open()
    setup.app.post_reply(PostReply(ticket_id=ticket, body="hi"), AGENT)
    clock.advance(HOURS)
    setup.app.post_reply(PostReply(ticket_id=ticket, body="still broken", direction=Direction.INBOUND), setup.customer_caller)
    clock.advance(5 * HOURS)
    setup.app.post_reply(PostReply(ticket_id=ticket, body="fixed"), AGENT)
    clock.advance(HOURS)
    setup.app.post_reply(PostReply(ticket_id=ticket, body="thanks", direction=Direction.INBOUND), setup.customer_caller)
    found = [m for m in measure(setup.app.history(ticket), targets, OFFICE, clock.now()) if m.metric is Metric.NEXT_REPLY]
    assert [m.state for m in found] == [State.BREACHED, State.ACTIVE]
    assert found[0].breached_at == monday + 5 * HOURS


def test_closing_stops_every_clock_and_as_of_ignores_later_events(setup: Desk, clock: FakeClock, monday: datetime) -> None:
    ticket = setup.open()
    clock.advance(HOURS)
    setup.app.solve_ticket(SolveTicket(ticket_id=ticket), AGENT)
    setup.app.close_ticket(CloseTicket(ticket_id=ticket), AGENT)
    clock.advance(100 * HOURS)
    now = by_metric(setup, ticket, clock.now())
    assert now[Metric.FIRST_REPLY].state is State.PAUSED and now[Metric.FIRST_REPLY].due_at is None
    assert now[Metric.RESOLUTION].state is State.FULFILLED
    then = by_metric(setup, ticket, monday + 30 * timedelta(minutes=1))
    assert then[Metric.RESOLUTION].state is State.ACTIVE and then[Metric.RESOLUTION].elapsed == timedelta(minutes=30)


def test_a_copied_clock_run_goes_on_alone_and_measures_as_a_fresh_one_fed_the_same(
    setup: Desk, clock: FakeClock, monday: datetime
) -> None:
    from ticketflow.sla.measure import ClockRun

    ticket = setup.open()
    clock.advance(HOURS)
    setup.app.post_reply(PostReply(ticket_id=ticket, body="hello"), AGENT)
    clock.advance(HOURS)
    setup.app.pend_ticket(PendTicket(ticket_id=ticket), AGENT)
    clock.advance(HOURS)
    setup.app.solve_ticket(SolveTicket(ticket_id=ticket), AGENT)
    clock.advance(HOURS)
    setup.app.reopen_ticket(ReopenTicket(ticket_id=ticket, reason="not fixed"), AGENT)
    history = setup.app.history(ticket)
    half = len(history) // 2

    def fed(events: list[object]) -> ClockRun:
        run = ClockRun()
        for event in events:
            run.feed(event)  # type: ignore[arg-type]
        return run

    original = fed(history[:half])
    copied = original.copy()
    for event in history[half:]:
        copied.feed(event)
    assert original.state() == fed(history[:half]).state()  # the copy's events left the original as it was
    assert (original.replied, original.paused) == (fed(history[:half]).replied, fed(history[:half]).paused)
    whole = fed(history)
    assert (copied.state(), copied.replied, copied.paused) == (whole.state(), whole.replied, whole.paused)
    assert all(copied.current[m] in copied.clocks for m in copied.current)  # the copy's clocks, not the original's
    assert not {id(c) for c in copied.clocks} & {id(c) for c in original.clocks}
