"""A writer that holds views can feed them the events of a batch before the batch is saved (the demo does):
its reads see them at once, the views commit only with the block, and a failed block leaves them as they were."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import IntegrityError

from projections.readside import ReadSide
from projections.tickets import TicketQueries
from tests.projections.support import dump
from tests.support import AGENT, Desk
from ticketflow.commands import AddNote


def feed_batch(read_side: ReadSide, setup: Desk, start: int, fed: int) -> int:
    events = setup.app.batched_events()
    read_side.apply(["tickets"], [(event, start + fed + i) for i, event in enumerate(events[fed:], 1)])
    return len(events)


def test_views_fed_a_batch_see_it_before_it_is_saved_and_commit_with_it_equal_to_a_rebuild(
    setup: Desk,
) -> None:
    read_side = ReadSide(setup.app, ["tickets"])
    try:
        read_side.catch_up()
        start = read_side.position("tickets")
        with read_side.holding(["tickets"]), setup.app.batch():
            ticket_id = setup.open("批量里的工单")
            fed = feed_batch(read_side, setup, start, 0)
            row = read_side.read("tickets", lambda db: TicketQueries.get(db, str(ticket_id)))
            assert row is not None and row["subject"] == "批量里的工单"  # seen in the block, not saved yet
            assert setup.app.log_position() == start
            setup.app.add_note(AddNote(ticket_id=ticket_id, body="已联系客户"), AGENT)
            fed = feed_batch(read_side, setup, start, fed)
            read_side.advance(["tickets"], start + fed, previous=start)
        assert setup.app.log_position() == start + fed == read_side.position("tickets")
        fed_rows = dump(read_side, "tickets")
        read_side.rebuild("tickets")
        assert dump(read_side, "tickets") == fed_rows
    finally:
        read_side.close()


def test_a_block_that_fails_leaves_the_held_views_as_they_were(setup: Desk) -> None:
    read_side = ReadSide(setup.app, ["tickets"])
    try:
        read_side.catch_up()
        start = read_side.position("tickets")
        before = dump(read_side, "tickets")
        with pytest.raises(RuntimeError, match="refused"), read_side.holding(["tickets"]), setup.app.batch():
            setup.open("不会保存")
            read_side.advance(["tickets"], start + feed_batch(read_side, setup, start, 0), previous=start)
            raise RuntimeError("refused")
        assert read_side.position("tickets") == start == setup.app.log_position()
        assert dump(read_side, "tickets") == before
    finally:
        read_side.close()


def test_views_advance_only_from_where_the_feeder_left_them(setup: Desk) -> None:
    read_side = ReadSide(setup.app, ["tickets"])
    try:
        read_side.catch_up()
        start = read_side.position("tickets")
        with pytest.raises(IntegrityError), read_side.holding(["tickets"]):
            read_side.advance(["tickets"], start + 2, previous=start + 1)  # another writer moved it, say
        assert read_side.position("tickets") == start
    finally:
        read_side.close()
