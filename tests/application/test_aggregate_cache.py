"""The aggregate cache after a save: the next command starts from what the last one saved, without
reading its events back, and still sees what other processes wrote; an erasure keeps what was
decrypted before it out of the cache."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from tests.support import ADMIN, AGENT, Desk
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import AddNote, AssignTicket, SolveTicket
from ticketflow.commands.privacy import EraseCustomer
from ticketflow.config import Settings
from ticketflow.domain import Ticket
from ticketflow.domain.values import Role, Status
from ticketflow.errors import ConcurrencyConflict, RuleViolation
from ticketflow.metadata import Caller

COMPLIANCE = Caller("comp.lee", Role.COMPLIANCE, ADMIN.via)


class DecodeCounter:
    """Counts the stored events the desk's mapper turns back into domain events."""

    def __init__(self, desk: TicketDesk, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        decode = desk.mapper.to_domain_event

        def counted(stored: Any) -> Any:
            self.count += 1
            return decode(stored)

        monkeypatch.setattr(desk.mapper, "to_domain_event", counted)


def test_the_next_command_starts_from_the_saved_ticket_without_reading_its_events_back(
    any_setup: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = any_setup.app
    ticket_id = any_setup.open()
    desk.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
    cached: Ticket = desk.repository.cache.get(ticket_id)  # type: ignore[union-attr,assignment]
    assert cached.version == 3 and cached.assignee_id == "li.wei"  # Opened, Assigned, MarkedOpen
    decoded = DecodeCounter(desk, monkeypatch)
    desk.add_note(AddNote(ticket_id=ticket_id, body="客户已回电"), AGENT)
    assert decoded.count == 0  # nothing read back: the cache held version 3 already
    assert desk.get_ticket(ticket_id).version == 4
    assert [type(e).__name__ for e in desk.history(ticket_id)][-1] == "NoteAdded"


@pytest.fixture
def two_desks(shared_store_settings: Settings, clock: FakeClock) -> Iterator[tuple[TicketDesk, TicketDesk]]:
    first, second = (
        TicketDesk(shared_store_settings, clock=clock),
        TicketDesk(shared_store_settings, clock=clock),
    )
    yield first, second
    second.close()
    first.close()


def test_a_cached_ticket_still_takes_in_what_another_process_wrote(
    two_desks: tuple[TicketDesk, TicketDesk],
) -> None:
    here, elsewhere = two_desks
    setup = Desk(here)
    ticket_id = setup.open()
    here.assign_ticket(
        AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT
    )  # cached here at version 3
    elsewhere.add_note(
        AddNote(ticket_id=ticket_id, body="另一进程的备注"), AGENT
    )  # version 4, written elsewhere
    result = here.solve_ticket(SolveTicket(ticket_id=ticket_id, resolution="已重置密码"), AGENT)
    assert result.version == 5  # built on the other process's version 4, not a stale 3
    ticket = here.get_ticket(ticket_id)
    assert (
        ticket.status is Status.SOLVED
        and [type(e).__name__ for e in here.history(ticket_id)][3] == "NoteAdded"
    )


def test_a_ticket_loaded_before_an_erasure_is_not_put_back_in_the_cache(setup: Desk) -> None:
    desk = setup.app
    ticket_id = setup.open(subject="王小明的账户无法登录")
    erasures = desk._erasures  # what a command notes when it loads, before the erasure runs
    loaded: Ticket = desk.get_ticket(ticket_id)  # holds the decrypted subject
    desk.erase_customer(EraseCustomer(customer_id=setup.customer_id, reference="DSR-1"), COMPLIANCE)
    desk._keep_cached([loaded], erasures)  # that command's save completing after the erasure
    try:
        cached = desk.repository.cache.get(ticket_id)  # type: ignore[union-attr]
    except KeyError:
        cached = None
    assert cached is not loaded
    assert "王小明" not in str(desk.get_ticket(ticket_id).subject)


def test_the_next_command_after_a_batch_starts_from_what_the_batch_saved_without_reading_it_back(
    any_setup: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = any_setup.app
    ticket_id = any_setup.open()
    with desk.batch():
        desk.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
        desk.add_note(AddNote(ticket_id=ticket_id, body="批量写入"), AGENT)
    saved = len(desk.history(ticket_id))
    decoded = DecodeCounter(desk, monkeypatch)
    result = desk.solve_ticket(SolveTicket(ticket_id=ticket_id, resolution="已重置密码"), AGENT)
    assert decoded.count == 0  # the cache held the batch's version already: nothing read back
    assert result.version == saved + 1  # Solved on top of the batch's last event
    assert [type(e).__name__ for e in desk.history(ticket_id)][-2:] == ["NoteAdded", "Solved"]


def test_a_batch_during_which_an_erasure_began_leaves_nothing_it_loaded_in_the_cache(setup: Desk) -> None:
    desk = setup.app
    ticket_id = setup.open(subject="王小明的账户无法登录")
    with desk.batch():
        desk.add_note(AddNote(ticket_id=ticket_id, body="批量写入"), AGENT)  # loads the decrypted ticket
        desk._bump_erasures()  # an erasure began meanwhile (as _forget_customer marks it)
    saved = len(desk.history(ticket_id))
    try:
        cached = desk.repository.cache.get(ticket_id)  # type: ignore[union-attr]
    except KeyError:
        cached = None
    assert cached is None or cached.version < saved  # the batch's ticket was not put back


# ---------------------------------------------------------------- the cached aggregate lent to a command


def _cached(desk: TicketDesk, object_id: Any) -> Any:
    try:
        return desk.repository.cache.get(object_id)  # type: ignore[union-attr]
    except KeyError:
        return None


def _lifecycle(setup: Desk) -> tuple[list[tuple[str, int]], tuple[Any, ...]]:
    """One ticket through assign, note, solve, and a note refused for its stale version: its events and its final state."""
    desk = setup.app
    ticket_id = setup.open()
    desk.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
    desk.add_note(AddNote(ticket_id=ticket_id, body="已联系客户"), AGENT)
    desk.solve_ticket(SolveTicket(ticket_id=ticket_id, resolution="已重置密码"), AGENT)
    with pytest.raises(ConcurrencyConflict):
        desk.add_note(AddNote(ticket_id=ticket_id, body="过时", expected_version=2), AGENT)
    events = [(type(e).__name__, e.originator_version) for e in desk.history(ticket_id)]
    ticket = desk.get_ticket(ticket_id)
    return events, (ticket.status, ticket.assignee_id, ticket.version, ticket.note_count, ticket.subject)


def test_commands_on_the_cached_ticket_write_what_commands_without_a_cache_write(
    store_settings: Settings, clock: FakeClock
) -> None:
    cached_desk = TicketDesk(store_settings, clock=clock)
    try:
        with_cache = _lifecycle(Desk(cached_desk))
    finally:
        cached_desk.close()
    uncached = TicketDesk(store_settings.model_copy(update={"aggregate_cache_size": 0}), clock=clock)
    try:
        without_cache = _lifecycle(Desk(uncached))
    finally:
        uncached.close()
    assert with_cache == without_cache
    assert with_cache[0][-1] == ("Solved", 5)


def test_a_command_changes_the_cached_ticket_itself_and_puts_it_back_saved(any_setup: Desk) -> None:
    desk = any_setup.app
    ticket_id = any_setup.open()
    desk.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
    before = _cached(desk, ticket_id)
    desk.add_note(AddNote(ticket_id=ticket_id, body="客户已回电"), AGENT)
    after = _cached(desk, ticket_id)
    assert after is before  # borrowed, changed and put back: not read from the store, not copied
    assert after.version == 4 and not after._pending_events


def test_a_refused_command_leaves_no_changed_ticket_in_the_cache(any_setup: Desk) -> None:
    desk = any_setup.app
    ticket_id = any_setup.open()
    desk.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)

    def note_then_refuse(ticket: Ticket) -> None:
        ticket.solve("半途")  # changes the borrowed ticket, then the command is refused
        raise RuleViolation("refused after changing the ticket")

    with pytest.raises(RuleViolation):
        desk._change(Ticket, ticket_id, SolveTicket(ticket_id=ticket_id), AGENT, note_then_refuse)
    cached = _cached(desk, ticket_id)
    assert cached is None or (cached.version == 3 and cached.status is not Status.SOLVED)
    ticket = desk.get_ticket(ticket_id)
    assert ticket.version == 3 and ticket.status is not Status.SOLVED
    result = desk.add_note(AddNote(ticket_id=ticket_id, body="继续处理"), AGENT)
    assert result.version == 4
    assert [type(e).__name__ for e in desk.history(ticket_id)][-1] == "NoteAdded"


def test_another_process_writing_a_cached_ticket_evicts_it_at_the_next_look(
    two_desks: tuple[TicketDesk, TicketDesk],
) -> None:
    here, elsewhere = two_desks
    ticket_id = Desk(here).open()
    here.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
    assert _cached(here, ticket_id) is not None
    elsewhere.add_note(AddNote(ticket_id=ticket_id, body="另一进程的备注"), AGENT)
    here.erasure_watch.follow()  # what every command does first
    assert _cached(here, ticket_id) is None


def test_evicting_what_another_process_wrote_keeps_only_those_objects_out_of_the_cache(
    two_desks: tuple[TicketDesk, TicketDesk],
) -> None:
    here, elsewhere = two_desks
    setup = Desk(here)
    mine, theirs = setup.open(), setup.open("打印机卡纸")
    here.assign_ticket(AssignTicket(ticket_id=theirs, assignee_id="li.wei"), AGENT)
    erasures = here._erasures  # a command here loads both tickets (one each, say) before the look below
    loaded_mine, loaded_theirs = here.get_ticket(mine), here.get_ticket(theirs)
    here._evict(mine)  # out of the cache while the command has it (as a borrow takes it)
    elsewhere.add_note(AddNote(ticket_id=theirs, body="另一进程的备注"), AGENT)
    here.erasure_watch.follow()  # another thread's command looks: evicts what the other process wrote
    assert _cached(here, theirs) is None
    here._keep_cached([loaded_mine, loaded_theirs], erasures)  # the commands' saves completing after it
    assert _cached(here, mine) is loaded_mine  # untouched by the eviction: cached (each bump used to keep it out)
    assert _cached(here, theirs) is None  # moved past by the other process: never put back
    # and an erasure since the load still keeps every object out
    erasures = here._erasures
    loaded_mine = here.get_ticket(mine)
    here._bump_erasures()
    here._evict(mine)
    here._keep_cached([loaded_mine], erasures)
    assert _cached(here, mine) is None


def test_a_load_that_saw_too_many_evictions_since_puts_nothing_back(
    setup: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ticketflow import application

    desk = setup.app
    ticket_id = setup.open()
    erasures = desk._erasures
    loaded = desk.get_ticket(ticket_id)
    desk._evict(ticket_id)
    for _ in range(application._BUMPS_KEPT + 1):  # evictions of other objects, more than are remembered
        desk._bump_erasures(frozenset())
    desk._keep_cached([loaded], erasures)
    assert _cached(desk, ticket_id) is None  # cannot tell whether one concerned it: not put back


@pytest.mark.parametrize("expected_version", [None, 4])
def test_a_stale_cached_ticket_costs_a_second_attempt_never_a_wrong_answer(
    two_desks: tuple[TicketDesk, TicketDesk], expected_version: int | None
) -> None:
    here, elsewhere = two_desks
    ticket_id = Desk(here).open()
    here.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
    stale = _cached(here, ticket_id)  # version 3
    elsewhere.add_note(AddNote(ticket_id=ticket_id, body="另一进程的备注"), AGENT)  # version 4
    here.erasure_watch.follow()
    # a save of version 3 landing after that look (the race the watch cannot close) puts it back
    here.repository.cache.put(ticket_id, stale)  # type: ignore[union-attr]
    result = here.solve_ticket(
        SolveTicket(ticket_id=ticket_id, resolution="已重置密码", expected_version=expected_version), AGENT
    )
    assert result.version == 5  # the borrowed version 3 lost its save (or its version check): decided again on 4
    assert [type(e).__name__ for e in here.history(ticket_id)][3:] == ["NoteAdded", "Solved"]
    assert here.get_ticket(ticket_id).status is Status.SOLVED


def test_a_ticket_another_process_erased_the_requester_of_leaves_the_cache(
    two_desks: tuple[TicketDesk, TicketDesk],
) -> None:
    here, elsewhere = two_desks
    setup = Desk(here)
    ticket_id = setup.open(subject="王小明的账户无法登录")
    here.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
    assert "王小明" in str(_cached(here, ticket_id).subject)
    elsewhere.erase_customer(EraseCustomer(customer_id=setup.customer_id, reference="DSR-2"), COMPLIANCE)
    here.erasure_watch.follow()
    assert _cached(here, ticket_id) is None and _cached(here, setup.customer_id) is None
    assert "王小明" not in str(here.get_ticket(ticket_id).subject)


class StoredEventReads:
    """Counts the desk's reads of stored events per aggregate (a fast-forward, a rebuild: each a query)."""

    def __init__(self, desk: TicketDesk, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ids: list[str] = []
        select = desk.recorder.select_events

        def counted(originator_id: Any, *args: Any, **kwargs: Any) -> Any:
            self.ids.append(str(originator_id))
            return select(originator_id, *args, **kwargs)

        monkeypatch.setattr(desk.recorder, "select_events", counted)

    def of(self, object_id: Any) -> int:
        return self.ids.count(str(object_id))


def test_a_cached_team_is_checked_without_reading_its_events_again(
    any_setup: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = any_setup.app
    first, second = any_setup.open(), any_setup.open("打印机卡纸")
    desk.assign_ticket(AssignTicket(ticket_id=first, assignee_id="li.wei"), AGENT)  # the team checked: cached
    reads = StoredEventReads(desk, monkeypatch)
    desk.assign_ticket(AssignTicket(ticket_id=second, assignee_id="emma.clark"), AGENT)
    with pytest.raises(RuleViolation, match="not an active member"):
        desk.assign_ticket(AssignTicket(ticket_id=second, assignee_id="wang.fang"), AGENT)  # the other team's
    assert reads.of(any_setup.team_id) == 0  # no fast-forward query: the watch's look stands for it
    assert desk.get_ticket(second).assignee_id == "emma.clark"


def test_a_cached_team_another_process_changed_is_checked_as_changed(
    two_desks: tuple[TicketDesk, TicketDesk],
) -> None:
    from ticketflow.commands.team import AddTeamMember, DeactivateTeamMember

    here, elsewhere = two_desks
    setup = Desk(here)
    first, second, third = setup.open(), setup.open("打印机卡纸"), setup.open("发票")
    here.assign_ticket(AssignTicket(ticket_id=first, assignee_id="li.wei"), AGENT)  # the team cached here
    elsewhere.add_team_member(AddTeamMember(team_id=setup.team_id, agent_id="zhao.lei"), ADMIN)
    elsewhere.deactivate_team_member(DeactivateTeamMember(team_id=setup.team_id, agent_id="emma.clark"), ADMIN)
    here.assign_ticket(AssignTicket(ticket_id=second, assignee_id="zhao.lei"), AGENT)  # added elsewhere: accepted
    assert here.get_ticket(second).assignee_id == "zhao.lei"
    with pytest.raises(RuleViolation, match="not an active member"):
        here.assign_ticket(AssignTicket(ticket_id=third, assignee_id="emma.clark"), AGENT)
    # and a read outside a command looks at the log first as well
    elsewhere.add_team_member(AddTeamMember(team_id=setup.team_id, agent_id="chen.jing"), ADMIN)
    assert here.get_team(setup.team_id).is_active_member("chen.jing")


def test_the_watch_reads_what_another_process_wrote_by_position_object_and_topic_without_its_state(
    two_desks: tuple[TicketDesk, TicketDesk], monkeypatch: pytest.MonkeyPatch
) -> None:
    here, elsewhere = two_desks
    ticket_id = Desk(here).open(subject="王小明的账户无法登录")
    here.erasure_watch.follow()
    start = here.log_position() + 1
    elsewhere.add_note(AddNote(ticket_id=ticket_id, body="另一进程的备注"), AGENT)
    elsewhere.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
    stop = elsewhere.log_position()
    full = here.recorder.select_notifications(start, 100, stop=stop)
    assert [(n.id, UUID(str(n.originator_id)), n.topic) for n in here._select_written(start, 100, stop)] == [
        (n.id, UUID(str(n.originator_id)), n.topic) for n in full
    ] and len(full) >= 3
    assert [n.id for n in here._select_written(start, 2, stop)] == [n.id for n in full[:2]]  # paged
    assert all(not hasattr(n, "state") for n in here._select_written(start, 100, stop))
    monkeypatch.setattr(here.recorder, "select_notifications", None)  # never read for the watch's look
    stale = _cached(here, ticket_id)
    assert stale is not None
    here.erasure_watch.follow()
    assert _cached(here, ticket_id) is None  # evicted all the same
