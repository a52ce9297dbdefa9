"""As-of reads on the write side: by version and by recorded time, on every store; snapshots used."""

from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any

import pytest
from eventsourcing.application import project_aggregate

from projections.asof import audit_fields, ticket_row
from tests.support import AGENT, SUPERVISOR, Desk
from tests.timetravel.support import grow
from ticketflow.application import TicketDesk
from ticketflow.commands import AssignTicket, ChangePriority, PostReply, TransferTicket
from ticketflow.domain.values import Direction, Priority
from ticketflow.errors import NotFound
from ticketflow.timetravel import DidNotExistYet, TimeBasis, event_at, position_at, version_at


def _recorded(desk: TicketDesk, ticket_id: Any, version: int) -> Any:
    event = event_at(desk, ticket_id, version)
    assert event is not None
    return event.timestamp


def _worked_ticket(setup: Desk) -> Any:
    desk = setup.app
    ticket_id = setup.open()
    desk.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), SUPERVISOR)
    desk.post_reply(PostReply(ticket_id=ticket_id, body="请重置密码", direction=Direction.OUTBOUND), AGENT)
    desk.change_priority(ChangePriority(ticket_id=ticket_id, priority=Priority.HIGH), AGENT)
    desk.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="emma.clark"), SUPERVISOR)
    desk.transfer_ticket(TransferTicket(ticket_id=ticket_id, team_id=setup.other_team_id, reason="billing"), SUPERVISOR)
    return ticket_id


def test_a_ticket_at_each_version_is_the_replay_of_its_events_up_to_it(any_setup: Desk) -> None:
    desk = any_setup.app
    ticket_id = _worked_ticket(any_setup)
    last = desk.get_ticket(ticket_id).version
    for version in range(1, last + 1):
        at = desk.get_ticket(ticket_id, version)
        replayed = project_aggregate(None, desk.events.get(ticket_id, lte=version))
        assert at.version == version and audit_fields(at) == audit_fields(replayed)


def test_as_of_a_recorded_instant_is_the_last_version_recorded_by_then(any_setup: Desk) -> None:
    desk = any_setup.app
    ticket_id = _worked_ticket(any_setup)
    last = desk.get_ticket(ticket_id).version
    for version in range(1, last + 1):
        assert version_at(desk, ticket_id, _recorded(desk, ticket_id, version)) == version
    first = _recorded(desk, ticket_id, 1)
    with pytest.raises(DidNotExistYet, match="did not exist yet"):
        version_at(desk, ticket_id, first.replace(year=first.year - 1))
    assert version_at(desk, ticket_id, first.replace(year=first.year + 1)) == last


def test_as_of_business_time_follows_occurred_at(any_setup: Desk, clock: Any) -> None:
    desk = any_setup.app
    ticket_id = any_setup.open()
    opened_at = clock.now()
    clock.advance(timedelta(hours=2))
    desk.change_priority(ChangePriority(ticket_id=ticket_id, priority=Priority.HIGH), AGENT)
    assert version_at(desk, ticket_id, opened_at, TimeBasis.BUSINESS) == 1
    assert version_at(desk, ticket_id, desk.clock.now(), TimeBasis.BUSINESS) == 2


def test_the_row_at_a_version_matches_the_tickets_view_then(any_setup: Desk) -> None:
    desk = any_setup.app
    ticket_id = _worked_ticket(any_setup)
    row = ticket_row(desk, desk.get_ticket(ticket_id, 5))
    assert (row["status"], row["priority"], row["assignee_id"], row["reply_count"]) == ("open", "high", "li.wei", 1)
    assert row["first_reply_at"] is not None and row["reassignment_count"] == 0
    later = ticket_row(desk, desk.get_ticket(ticket_id))
    assert later["reassignment_count"] == 2 and later["team_id"] == str(any_setup.other_team_id)


def test_an_unknown_object_is_not_found(any_desk: TicketDesk) -> None:
    import uuid

    with pytest.raises(NotFound):
        version_at(any_desk, uuid.uuid4(), any_desk.clock.now())


def test_the_log_position_at_an_instant(any_setup: Desk) -> None:
    desk = any_setup.app
    ticket_id = any_setup.open()
    before = desk.log_position()
    moment = _recorded(desk, ticket_id, 1)
    time.sleep(0.005)  # the next event is recorded strictly later
    desk.change_priority(ChangePriority(ticket_id=ticket_id, priority=Priority.HIGH), AGENT)
    assert position_at(desk, moment) == before
    assert position_at(desk, moment.replace(year=2000)) == 0
    assert position_at(desk, _recorded(desk, ticket_id, 2)) == desk.log_position()


def test_a_10000_event_ticket_at_a_random_version_replays_at_most_one_snapshot_interval(any_setup: Desk) -> None:
    desk = any_setup.app
    ticket_id = any_setup.open()
    grow(desk, ticket_id, 9_999)
    last = desk.get_ticket(ticket_id).version
    assert last >= 10_000
    replayed: list[int] = []
    store = desk.repository.event_store
    original = store.get

    def counting_get(*args: Any, **kwargs: Any) -> Any:
        for event in original(*args, **kwargs):
            replayed.append(event.originator_version)
            yield event

    store.get = counting_get  # type: ignore[method-assign]
    rng = random.Random(7)
    interval = desk.settings.snapshot_interval
    try:
        for version in [rng.randint(1, last) for _ in range(20)] + [last, last - 1, 1]:
            replayed.clear()
            ticket = desk.get_ticket(ticket_id, version)
            assert ticket.version == version
            assert len(replayed) < interval, f"version {version}: replayed {len(replayed)} events"
    finally:
        store.get = original  # type: ignore[method-assign]
    version = rng.randint(1, last)
    full = project_aggregate(None, desk.events.get(ticket_id, lte=version))
    assert audit_fields(desk.get_ticket(ticket_id, version)) == audit_fields(full)
    assert ticket_row(desk, desk.get_ticket(ticket_id, version))["interaction_count"] == full.interaction_count
