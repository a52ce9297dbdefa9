"""Many commands, one transaction: ``TicketDesk.batch()`` (the migration import and the demo write through it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid5

import pytest

from tests.support import AGENT, Desk
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import AssignTicket, ChangePriority, ImportedFact, OpenTicket, RecordImportedFacts
from ticketflow.config import Settings
from ticketflow.domain import Ticket
from ticketflow.domain.values import Channel, Priority, Role, Status
from ticketflow.errors import RuleViolation
from ticketflow.metadata import Caller
from ticketflow.simulation import STEPS_PER_SLICE, DeskSimulation


def test_commands_in_a_batch_read_each_other_and_are_saved_together_when_it_ends(setup: Desk) -> None:
    app = setup.app
    before = app.log_position()
    saves: list[int] = []
    app.on_saved(saves.append)
    with app.batch():
        ticket_id = app.open_ticket(
            OpenTicket(subject="无法登录账户", requester_id=setup.customer_id, team_id=setup.team_id), setup.customer_caller
        ).object_id
        result = app.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)  # reads the opening
        assert result.position is None and app.log_position() == before  # nothing stored yet
        assert app.get_ticket(ticket_id).assignee_id == "li.wei"
        assert [type(e) for e in app.history(ticket_id)] == [Ticket.Opened, Ticket.Assigned, Ticket.MarkedOpen]
    assert len(saves) == 1  # one save, one transaction
    assert app.log_position() == before + 3
    assert [type(e) for e in app.history(ticket_id)] == [Ticket.Opened, Ticket.Assigned, Ticket.MarkedOpen]
    assert app.get_ticket(ticket_id).status is Status.OPEN


def test_a_refused_command_in_a_batch_leaves_what_the_others_did(setup: Desk) -> None:
    app = setup.app
    with app.batch():
        ticket_id = setup.open()
        with pytest.raises(RuleViolation):  # not a member of the ticket's team
            app.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="wang.fang"), AGENT)
        app.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="emma.clark"), AGENT)
    assert [type(e) for e in app.history(ticket_id)] == [Ticket.Opened, Ticket.Assigned, Ticket.MarkedOpen]
    assert app.get_ticket(ticket_id).version == 3


def test_a_command_refused_after_changing_a_ticket_of_the_batch_leaves_that_ticket_as_it_was(any_setup: Desk) -> None:
    app, setup = any_setup.app, any_setup
    importer = Caller("import:test", Role.SYSTEM, Channel.IMPORT)
    start = datetime(2016, 3, 1, 9, 0, tzinfo=UTC)

    def fact(n: int, **fields: object) -> ImportedFact:
        return ImportedFact(fact_id=uuid5(setup.team_id, str(n)), occurred_at=start + timedelta(hours=n), **fields)

    stored_id = app.open_ticket(  # stored before the batch: rebuilt from the store, then the batch's events
        OpenTicket(subject="打印机无法连接", requester_id=setup.customer_id, team_id=setup.team_id, occurred_at=start),
        importer,
    ).object_id
    with app.batch():
        batched_id = app.open_ticket(  # created in the batch: rebuilt from the batch's events alone
            OpenTicket(subject="无法登录账户", requester_id=setup.customer_id, team_id=setup.team_id, occurred_at=start),
            importer,
        ).object_id
        for ticket_id in (stored_id, batched_id):
            app.handle(RecordImportedFacts(ticket_id=ticket_id, facts=[fact(1, kind="priority", priority="high")]), importer)
            # the first fact changes the ticket, the second is refused: the command is refused whole
            refused = RecordImportedFacts(
                ticket_id=ticket_id, facts=[fact(2, kind="status", status=Status.PENDING), fact(3, kind="status", status=Status.NEW)]
            )
            with pytest.raises(RuleViolation, match="never returns to new"):
                app.handle(refused, importer)
            ticket = app.get_ticket(ticket_id)
            assert (ticket.status, ticket.priority, ticket.version) == (Status.NEW, Priority.HIGH, 2)  # not pending
            app.change_priority(ChangePriority(ticket_id=ticket_id, priority=Priority.URGENT), AGENT)
            assert app.get_ticket(ticket_id).version == 3
    for ticket_id in (stored_id, batched_id):
        assert [type(e) for e in app.history(ticket_id)] == [Ticket.Opened, Ticket.PriorityChanged, Ticket.PriorityChanged]
        ticket = app.get_ticket(ticket_id)
        assert (ticket.status, ticket.priority) == (Status.NEW, Priority.URGENT)


def test_a_batch_that_raises_writes_nothing(setup: Desk) -> None:
    app = setup.app
    before = app.log_position()
    with pytest.raises(KeyError), app.batch():
        setup.open()
        raise KeyError("the import was killed here")
    assert app.log_position() == before


def test_the_simulated_desk_saves_a_slice_of_steps_at_once_and_the_automation_looks_after_each_step(
    clock: FakeClock,
) -> None:
    desk = TicketDesk(Settings(database_url="memory://"), clock=clock)
    try:
        saves: list[int] = []
        desk.on_saved(saves.append)
        simulation = DeskSimulation(desk, clock, tickets=40, customers=5, days=2, seed=7)
        simulation.setup()
        assert len(saves) == 1  # the directory and policies in one transaction
        happened: list[str] = []
        summary = simulation.run(progress=lambda n: happened.append("step"), tick=lambda: happened.append("look"))
        assert len(summary.tickets) == 40 and summary.refused == {}
        steps = happened.count("step")
        assert steps > 40  # openings, replies, solving ...
        # a live automation looks after every step, before the next step is made
        assert all(after == "look" for before, after in zip(happened, happened[1:], strict=False) if before == "step")
        # ... while the steps are written a slice at a time (the looks see the slice so far)
        assert 1 <= len(saves) - 1 <= -(-steps // STEPS_PER_SLICE) + 2
    finally:
        desk.close()


def test_the_simulated_desk_without_automation_saves_many_steps_per_transaction(clock: FakeClock) -> None:
    desk = TicketDesk(Settings(database_url="memory://"), clock=clock)
    try:
        saves: list[int] = []
        simulation = DeskSimulation(desk, clock, tickets=40, customers=5, days=2, seed=7)
        simulation.setup()
        desk.on_saved(saves.append)
        summary = simulation.run()
        assert len(summary.tickets) == 40 and summary.refused == {}
        assert 1 <= len(saves) <= 2 and desk.log_position() > 40 * 2
    finally:
        desk.close()
