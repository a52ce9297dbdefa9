"""The same behaviour on every store: in-memory, a SQLite file and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import AddNote, AssignTicket, ChangePriority, MergeTicket, PendTicket, PostReply, SolveTicket
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Priority, Role, Status
from ticketflow.errors import ConcurrencyConflict, InvalidTransition
from ticketflow.metadata import Caller
from tests.support import AGENT, Desk


def test_metadata_survives_storage_and_replay(any_setup: Desk, store_settings: Settings, clock: FakeClock) -> None:
    ticket_id = any_setup.open("中文主题 subject")
    clock.advance(timedelta(minutes=7))
    caller = Caller("emma.clark", Role.AGENT, Channel.EMAIL, correlation_id="req-42")
    command = PostReply(ticket_id=ticket_id, body="已处理 done")
    any_setup.app.post_reply(command, caller)

    reopened = TicketDesk(store_settings, clock=clock)  # a fresh process reading the same store
    if store_settings.storage == "memory":
        reopened = any_setup.app
    events = reopened.history(ticket_id)
    reply = events[1]
    assert (reply.actor_id, reply.actor_role, reply.via) == ("emma.clark", "agent", "email")
    assert (reply.correlation_id, reply.command_id) == ("req-42", str(command.command_id))
    assert reply.occurred_at == datetime(2026, 3, 2, 9, 7, tzinfo=UTC)
    assert reply.imported is False
    assert reply.timestamp >= reply.occurred_at  # the library's recorded time stays separate
    assert events[0].subject == "中文主题 subject"
    assert events[0].correlation_id == str(events[0].command_id)
    assert reopened.get_ticket(ticket_id).status is Status.OPEN


def test_each_command_reports_its_log_position(any_setup: Desk) -> None:
    ticket_id = any_setup.open()
    before = any_setup.app.log_position()
    result = any_setup.app.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
    assert result.position == before + 2 == any_setup.app.log_position()
    assert result.version == 3


def test_a_stale_expected_version_is_refused_and_writes_nothing(any_setup: Desk) -> None:
    ticket_id = any_setup.open()
    any_setup.app.post_reply(PostReply(ticket_id=ticket_id, body="first"), AGENT)
    before = any_setup.app.log_position()
    with pytest.raises(ConcurrencyConflict, match="version 3, not the expected version 1"):
        any_setup.app.pend_ticket(PendTicket(ticket_id=ticket_id, expected_version=1), AGENT)
    assert any_setup.app.log_position() == before
    result = any_setup.app.pend_ticket(PendTicket(ticket_id=ticket_id, expected_version=3), AGENT)
    assert result.version == 4


def test_a_retried_command_is_recognised_and_writes_nothing(any_setup: Desk) -> None:
    ticket_id = any_setup.open()
    note = AddNote(ticket_id=ticket_id, body="check the gateway logs")
    first = any_setup.app.add_note(note, AGENT)
    position = any_setup.app.log_position()
    again = any_setup.app.add_note(note, AGENT)
    assert again.replayed and again.object_id == first.object_id and again.version == first.version
    assert any_setup.app.log_position() == position


def test_a_retried_open_returns_the_same_ticket(any_setup: Desk) -> None:
    from ticketflow.commands import OpenTicket

    command = OpenTicket(subject="网络中断", requester_id=any_setup.customer_id)
    first = any_setup.app.open_ticket(command, any_setup.customer_caller)
    position = any_setup.app.log_position()
    again = any_setup.app.open_ticket(command, any_setup.customer_caller)
    assert again.replayed and again.object_id == first.object_id
    assert any_setup.app.log_position() == position


def test_snapshots_are_taken_and_old_versions_stay_readable(store_settings: Settings, clock: FakeClock) -> None:
    desk = TicketDesk(Settings(**{**store_settings.model_dump(), "snapshot_interval": 5}), clock=clock)
    setup = Desk(desk)
    ticket_id = setup.open()
    for i in range(12):
        clock.advance(timedelta(minutes=1))
        desk.add_note(AddNote(ticket_id=ticket_id, body=f"note {i} 备注"), AGENT)
    assert desk.snapshots is not None
    snapshots = list(desk.snapshots.get(ticket_id))
    assert [s.originator_version for s in snapshots] == [5, 10]
    assert desk.get_ticket(ticket_id).note_count == 12
    assert desk.get_ticket(ticket_id, version=7).note_count == 6
    desk.close()


def test_two_writers_on_one_ticket_one_wins_one_conflicts_nothing_lost(
    shared_store_settings: Settings, clock: FakeClock
) -> None:
    store_settings = shared_store_settings
    first_desk = TicketDesk(store_settings, clock=clock)
    setup = Desk(first_desk)
    ticket_id = setup.open()
    second_desk = TicketDesk(store_settings, clock=clock)
    version = first_desk.get_ticket(ticket_id).version

    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def write(name: str, desk: TicketDesk, priority: Priority) -> None:
        barrier.wait()
        try:
            outcomes[name] = desk.change_priority(
                ChangePriority(ticket_id=ticket_id, priority=priority, expected_version=version), AGENT
            )
        except ConcurrencyConflict as exc:
            outcomes[name] = exc

    threads = [
        threading.Thread(target=write, args=("a", first_desk, Priority.HIGH)),
        threading.Thread(target=write, args=("b", second_desk, Priority.URGENT)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    conflicts = [o for o in outcomes.values() if isinstance(o, ConcurrencyConflict)]
    wins = [o for o in outcomes.values() if not isinstance(o, ConcurrencyConflict)]
    assert len(conflicts) == 1 and len(wins) == 1
    ticket = first_desk.get_ticket(ticket_id)
    assert ticket.version == version + 1
    winner = "a" if wins[0] is outcomes["a"] else "b"
    assert ticket.priority is (Priority.HIGH if winner == "a" else Priority.URGENT)
    second_desk.close()
    first_desk.close()


def test_writers_without_an_expected_version_all_land(shared_store_settings: Settings, clock: FakeClock) -> None:
    store_settings = shared_store_settings
    desks = [TicketDesk(store_settings, clock=clock) for _ in range(3)]
    setup = Desk(desks[0])
    ticket_id = setup.open()
    barrier = threading.Barrier(len(desks))
    errors: list[Exception] = []

    def write(i: int, desk: TicketDesk) -> None:
        barrier.wait()
        try:
            desk.add_note(AddNote(ticket_id=ticket_id, body=f"writer {i}"), AGENT)
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i, d)) for i, d in enumerate(desks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    bodies = sorted(e.body for e in desks[0].history(ticket_id) if hasattr(e, "body"))
    assert bodies == ["writer 0", "writer 1", "writer 2"]
    for desk in desks:
        desk.close()


def test_solved_and_closed_times_are_business_times(any_setup: Desk, clock: FakeClock) -> None:
    ticket_id = any_setup.open()
    clock.advance(timedelta(hours=3))
    any_setup.app.solve_ticket(SolveTicket(ticket_id=ticket_id), AGENT)
    ticket = any_setup.app.get_ticket(ticket_id)
    assert ticket.solved_at == ticket.created_at + timedelta(hours=3) == ticket.updated_at


def test_a_cached_ticket_sees_writes_from_another_process(shared_store_settings: Settings, clock: FakeClock) -> None:
    first = TicketDesk(shared_store_settings, clock=clock)
    setup = Desk(first)
    ticket_id = setup.open()
    assert first.get_ticket(ticket_id).note_count == 0  # now cached in the first desk
    second = TicketDesk(shared_store_settings, clock=clock)
    second.add_note(AddNote(ticket_id=ticket_id, body="from another process"), AGENT)
    assert first.get_ticket(ticket_id).note_count == 1
    result = first.add_note(AddNote(ticket_id=ticket_id, body="and back", expected_version=2), AGENT)
    assert result.version == 3
    second.close()
    first.close()


def test_a_refused_command_leaves_no_trace_in_the_cached_ticket(any_setup: Desk) -> None:
    primary, duplicate = any_setup.open("primary"), any_setup.open("duplicate")
    any_setup.app.merge_ticket(MergeTicket(ticket_id=duplicate, into_ticket_id=primary), AGENT)
    before = any_setup.app.get_ticket(primary)
    with pytest.raises(InvalidTransition):
        any_setup.app.merge_ticket(MergeTicket(ticket_id=duplicate, into_ticket_id=primary), AGENT)
    after = any_setup.app.get_ticket(primary)
    assert vars(after) == vars(before)


def test_a_retried_create_is_recognised_however_many_commands_followed(any_setup: Desk) -> None:
    from ticketflow.commands import FormTeam
    from ticketflow.domain.base import REMEMBERED_COMMANDS
    from tests.support import ADMIN
    from ticketflow.commands import AddTeamMember

    form = FormTeam(name="大团队")
    team_id = any_setup.app.form_team(form, ADMIN).object_id
    for i in range(REMEMBERED_COMMANDS + 5):
        any_setup.app.add_team_member(AddTeamMember(team_id=team_id, agent_id=f"agent{i}"), ADMIN)
    position = any_setup.app.log_position()
    again = any_setup.app.form_team(form, ADMIN)
    assert again.replayed and again.object_id == team_id and any_setup.app.log_position() == position


def test_rules_hold_for_tickets_loaded_from_a_snapshot(store_settings: Settings, clock: FakeClock) -> None:
    """Snapshots store enum values as plain strings: the rules must not care."""
    from ticketflow.commands import CloseTicket, PendTicket, PostReply, SolveTicket
    from ticketflow.domain.values import Direction

    settings = Settings(**{**store_settings.model_dump(), "snapshot_interval": 2, "aggregate_cache_size": 0})
    desk = TicketDesk(settings, clock=clock)
    setup = Desk(desk)
    pending = setup.open("pending one")
    desk.pend_ticket(PendTicket(ticket_id=pending), AGENT)  # version 2: snapshot
    woken = desk.post_reply(PostReply(ticket_id=pending, body="here", direction=Direction.INBOUND), setup.customer_caller)
    assert woken.events == ("Ticket.Replied", "Ticket.MarkedOpen")
    closed = setup.open("closed one")
    desk.solve_ticket(SolveTicket(ticket_id=closed), AGENT)  # version 2: snapshot
    desk.close_ticket(CloseTicket(ticket_id=closed), AGENT)
    with pytest.raises(InvalidTransition):
        desk.add_note(AddNote(ticket_id=closed, body="after close"), AGENT)
    with pytest.raises(InvalidTransition):
        desk.assign_ticket(AssignTicket(ticket_id=closed, assignee_id="li.wei"), AGENT)
    desk.close()
