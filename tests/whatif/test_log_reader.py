"""The what-if's log reader: every event of the kinds it is asked for, in log order, decoded as the desk
decodes it, except that of the personal fields only those the what-if reads are opened."""

from __future__ import annotations

import dataclasses
import gc
from typing import Any

from tests.whatif.test_identity import FIXED, live_desk
from ticketflow.config import Settings
from ticketflow.domain import Customer, Team, Ticket
from ticketflow.privacy.mapper import SEALED
from ticketflow.whatif.reading import OPENED, LogReader

KINDS = ((Team.Event,), (Ticket.Opened, Ticket.Replied), (Ticket.Event,))


def the_desks_reading(world: Any) -> list[tuple[int, int, Any]]:
    """(kind, position, event) of the events of KINDS, as the desk's own mapper reads the log."""
    desk = world.desk
    found = []
    for notification in desk.recorder.select_notifications(1, 10**9, stop=desk.log_position()):
        event = desk.mapper.to_domain_event(notification)
        kind = next((n for n, group in enumerate(KINDS) if isinstance(event, group)), -1)
        if kind >= 0:
            found.append((kind, notification.id, event))
    return found


def sealed_left_out(event: Any) -> Any:
    """The event without the personal fields the what-if does not read (each shown as ``-``)."""
    if type(event) in OPENED:
        return event
    return dataclasses.replace(event, **{n: "-" for n in type(event).personal_fields if getattr(event, n)})


def assert_reads_as_the_desk_but_unread_personal_fields(world: Any) -> None:
    end = world.desk.log_position()
    reader = LogReader(world.desk, KINDS, page=7)  # pages smaller than the log
    read = [(kind, position, event) for kind, position, _, event in reader.events(end)]
    expected = the_desks_reading(world)
    assert [(k, p, sealed_left_out(e)) for k, p, e in read] == [(k, p, sealed_left_out(e)) for k, p, e in expected]
    assert reader.read == end  # every stored event counted, those of other kinds (customers) not decoded
    assert not any(isinstance(e, Customer.Event) for _, _, e in read)
    opened = [e for _, _, e in read if isinstance(e, Ticket.Opened)]
    assert opened and all(isinstance(e.subject, str) and isinstance(e.description, str) for e in opened)
    replies = [e for _, _, e in read if isinstance(e, Ticket.Replied)]
    assert replies and all(SEALED in e.body for e in replies)  # read by nothing: left sealed, as stored
    assert {k for k, _, e in read if isinstance(e, Ticket.Replied)} == {1}  # the first group it belongs to


def test_the_reader_reads_the_log_as_the_desk_does_but_the_personal_fields_the_what_if_does_not_read(
    shared_store_settings: Settings,
) -> None:
    with live_desk(FIXED, shared_store_settings) as world:
        assert_reads_as_the_desk_but_unread_personal_fields(world)


def test_the_reader_reads_an_in_memory_store_alike() -> None:
    with live_desk(FIXED) as world:
        assert_reads_as_the_desk_but_unread_personal_fields(world)


def test_the_reader_leaves_the_garbage_collector_as_it_found_it() -> None:
    with live_desk(FIXED) as world:
        reader = LogReader(world.desk, KINDS)
        assert gc.get_freeze_count() == 0
        kept = list(reader.events(world.desk.log_position()))
        assert kept and gc.get_freeze_count() == 0  # what it set aside while reading is back in the collector's reach
        gc.freeze()  # something else (a server before it forks) keeps objects out of the collector's reach
        try:
            frozen = gc.get_freeze_count()
            assert list(LogReader(world.desk, KINDS).events(world.desk.log_position()))
            assert gc.get_freeze_count() == frozen  # left as they were: neither unfrozen nor more frozen
        finally:
            gc.unfreeze()


def test_the_report_is_the_same_byte_for_byte_when_every_personal_field_is_opened(
    monkeypatch: Any,
) -> None:
    """The what-if opens only the personal fields of :data:`OPENED`: if its replay or report ever read
    another (a rule matching a reply's text, say), it would see a sealed envelope and decide otherwise
    than with the field opened. The same candidates, with every event class opened, give the same bytes."""
    from tests.whatif.desks import routing_rules, sla_policy
    from tests.whatif.test_identity import PERIOD
    from ticketflow.whatif import reading, run_whatif, to_json

    with live_desk(FIXED) as world:
        candidates = [
            {"routing": routing_rules(world.teams)},
            {"sla_policies": [sla_policy(FIXED.sla, world.calendar_id, world.teams["账务"])]},
        ]
        as_read = [to_json(run_whatif(world.desk, PERIOD, c, processes=1)) for c in candidates]
        every_class = frozenset(_event_classes(Ticket.Event) | _event_classes(Customer.Event))
        monkeypatch.setattr(reading, "OPENED", every_class)
        opened = [to_json(run_whatif(world.desk, PERIOD, c, processes=1)) for c in candidates]
    assert opened == as_read


def _event_classes(base: type) -> set[type]:
    found = set()
    for cls in base.__subclasses__():
        found |= {cls, *_event_classes(cls)}
    return found
