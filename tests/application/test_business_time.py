"""Business time comes from the injected clock; only imports may write history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ticketflow.clock import FakeClock
from ticketflow.commands import AddNote, OpenTicket
from ticketflow.domain.values import Channel, Role
from ticketflow.errors import PermissionDenied, RuleViolation
from ticketflow.metadata import Caller
from tests.support import AGENT, Desk

IMPORTER = Caller("migration", Role.ADMIN, Channel.IMPORT)


def test_events_take_their_time_from_the_injected_clock(setup: Desk, clock: FakeClock) -> None:
    ticket_id = setup.open()
    clock.advance(timedelta(days=2, hours=1))
    setup.app.add_note(AddNote(ticket_id=ticket_id, body="两天后"), AGENT)
    opened, note = setup.app.history(ticket_id)
    assert note.occurred_at - opened.occurred_at == timedelta(days=2, hours=1)


def test_an_import_records_the_historical_time_and_is_marked_imported(setup: Desk) -> None:
    then = datetime(2012, 5, 3, 14, 30, tzinfo=UTC)
    result = setup.app.open_ticket(
        OpenTicket(subject="VINST incident", requester_id=setup.customer_id, occurred_at=then), IMPORTER
    )
    (opened,) = setup.app.history(result.object_id)
    assert (opened.occurred_at, opened.imported, opened.via, opened.actor_id) == (then, True, "import", "migration")
    assert setup.app.get_ticket(result.object_id).created_at == then


def test_only_admins_and_the_system_may_record_a_historical_time(setup: Desk) -> None:
    ticket_id = setup.open()
    before = setup.app.log_position()
    with pytest.raises(PermissionDenied, match="historical time"):
        setup.app.add_note(AddNote(ticket_id=ticket_id, body="x", occurred_at=datetime(2020, 1, 1, tzinfo=UTC)), AGENT)
    assert setup.app.log_position() == before


def test_a_historical_time_in_the_future_is_refused(setup: Desk, clock: FakeClock) -> None:
    ticket_id = setup.open()
    with pytest.raises(RuleViolation, match="in the future"):
        setup.app.add_note(AddNote(ticket_id=ticket_id, body="x", occurred_at=clock.now() + timedelta(hours=1)), IMPORTER)


def test_events_outside_a_command_are_refused() -> None:
    from ticketflow.domain import Team
    from ticketflow.metadata import NoRecordingContext

    with pytest.raises(NoRecordingContext):
        Team(name="rogue", description="")


def test_an_import_keeps_the_original_actor_and_role(setup: Desk) -> None:
    then = datetime(2011, 2, 3, 4, 5, tzinfo=UTC)
    ticket_id = setup.open()
    original_agent = Caller("Frederic", Role.AGENT, Channel.IMPORT)
    setup.app.add_note(AddNote(ticket_id=ticket_id, body="imported note", occurred_at=then), original_agent)
    note = setup.app.history(ticket_id)[-1]
    assert (note.actor_id, note.actor_role, note.imported, note.occurred_at) == ("Frederic", "agent", True, then)
