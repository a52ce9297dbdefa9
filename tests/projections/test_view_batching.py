"""The embedded view worker gathers saves into few commits, and a reader waiting for a position does not
wait for the gathering to end."""

from __future__ import annotations

import pytest

from projections import readside
from projections.readside import ReadSide
from projections.tickets import TicketQueries
from tests.support import AGENT, Desk
from ticketflow.commands import AssignTicket


def test_a_reader_waiting_for_its_write_cuts_the_gathering_of_saves_short(
    setup: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker would gather saves for an hour after each wake-up: only a waiting reader ends that.
    monkeypatch.setattr(readside, "COALESCE_SECONDS", 3600.0)
    read_side = ReadSide(setup.app, ["tickets"])
    read_side.start()
    try:
        ticket_id = setup.open("刚刚创建")
        result = setup.app.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
        assert result.position is not None
        assert read_side.wait(result.position, timeout=60)
        row = read_side.read("tickets", lambda db: TicketQueries.get(db, str(ticket_id)))
        assert row is not None and row["assignee_id"] == "li.wei"
    finally:
        read_side.close()


def test_events_saved_while_the_worker_gathers_are_applied_in_one_batch(
    setup: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readside, "COALESCE_SECONDS", 3600.0)
    read_side = ReadSide(setup.app, ["tickets"])
    batches: list[int] = []
    step_all = read_side.step_all

    def counting(positions: dict[str, int], limit: int, recent: bool = False) -> int:
        done = step_all(positions, limit, recent)
        if done:
            batches.append(done)
        return done

    read_side.step_all = counting  # type: ignore[method-assign]
    read_side.start()
    try:
        ids = [setup.open(f"工单 {i}") for i in range(5)]  # each save rings; the worker keeps gathering
        position = setup.app.log_position()
        assert read_side.wait(position, timeout=60)
        assert sum(batches) == position
        assert len(batches) <= 2  # at most the events before its first wake-up, then all the rest together
        rows = read_side.read("tickets", lambda db: [TicketQueries.get(db, str(i)) for i in ids])
        assert all(row is not None for row in rows)
    finally:
        read_side.close()


def test_a_wait_that_does_not_hurry_leaves_the_worker_gathering_its_batch(setup: Desk) -> None:
    # The automation waits for the workflow view without cutting the batch short: only a reader does.
    class Worker:
        hurried = 0

        def hurry(self) -> None:
            self.hurried += 1

    read_side = ReadSide(setup.app, ["tickets"])
    worker = read_side.workers["views"] = Worker()  # type: ignore[assignment]  # a worker that never applies
    try:
        position = setup.app.log_position()
        assert not read_side.wait(position, timeout=0.05, hurry=False)
        assert worker.hurried == 0
        assert not read_side.wait(position, timeout=0.05)
        assert worker.hurried > 0
    finally:
        read_side.workers.clear()
        read_side.close()


def test_after_a_busy_batch_the_worker_gathers_longer_and_an_idle_one_does_not(
    setup: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readside, "COALESCE_SECONDS", 0.0)
    monkeypatch.setattr(readside, "BUSY_COALESCE_SECONDS", 3600.0)
    setup.open("第一张")
    monkeypatch.setattr(readside, "BUSY_EVENTS", setup.app.log_position())  # the backlog is a busy batch
    read_side = ReadSide(setup.app, ["tickets"])
    read_side.start()
    try:
        assert read_side.wait(setup.app.log_position(), timeout=60, hurry=False)  # the backlog: at once
        setup.open("第二张")
        position = setup.app.log_position()
        assert not read_side.wait(position, timeout=0.2, hurry=False)  # gathering after the busy batch
        assert read_side.wait(position, timeout=60)  # a reader cuts it short
        monkeypatch.setattr(readside, "BUSY_EVENTS", 10**9)  # from now on every batch is small: no gathering
        setup.open("第三张")
        assert read_side.wait(setup.app.log_position(), timeout=60, hurry=False)
    finally:
        read_side.close()
