"""The SLA clock's per-ticket cache: each look feeds a ticket's clocks only the events written since the
last one, and the automation decides exactly as when it replays every ticket's whole history."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from uuid import UUID

from hypothesis import HealthCheck, given, settings

from projections.automation import Automation
from tests.support import ADMIN, AGENT
from tests.whatif.desks import LiveDesk, Program, programs
from tests.whatif.test_identity import FIXED
from tests.workflow.test_automation import MONDAY_9_SHANGHAI, World, define_sla
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import OpenTicket, PendTicket, PostReply, RegisterCustomer
from ticketflow.commands.privacy import EraseCustomer
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Direction, Role
from ticketflow.metadata import Caller
from ticketflow.sla.measure import clocks_of

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def automation_events(world: LiveDesk) -> list[tuple[Any, ...]]:
    """What the automation wrote: every system event of every ticket, with its instant and payload.
    Ids (random per desk: teams, policies, tickets, commands) are named by order of first appearance."""
    names: dict[str, str] = {}

    def rename(match: re.Match[str]) -> str:
        return names.setdefault(match.group(0), f"id{len(names)}")

    found = []
    for n, ticket_id in enumerate(world.tickets):
        if ticket_id is None:
            continue
        for event in world.desk.history(ticket_id):
            if getattr(event, "actor_id", None) == "automation":
                payload = {
                    k: v for k, v in vars(event).items() if k not in ("id", "originator_id", "timestamp")
                }  # timestamp: wall clock
                text = UUID_TEXT.sub(rename, repr(sorted(payload.items(), key=str)))
                found.append((n, type(event).__qualname__, event.occurred_at, text))
    return found


def run_program(program: Program, settings: Settings, cache: int) -> tuple[list[tuple[Any, ...]], int]:
    world = LiveDesk(settings)
    world.automation = Automation(world.desk, world.read_side, clock_cache_tickets=cache)
    try:
        world.run(program)
        return automation_events(world), len(world.automation.clock_cache)
    finally:
        world.close()


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(max_tickets=4, max_steps=16))
def test_the_automation_decides_the_same_with_and_without_its_clock_cache(program: Program) -> None:
    cached, _ = run_program(program, Settings(database_url="memory://"), cache=1000)
    replayed, none_kept = run_program(program, Settings(database_url="memory://"), cache=0)
    assert cached == replayed
    assert none_kept == 0


def test_the_cache_decides_the_same_on_each_store(store_settings: Settings, tmp_path: Any) -> None:
    cached, kept = run_program(FIXED, store_settings, cache=1000)
    replayed, _ = run_program(FIXED, Settings(database_url="memory://"), cache=0)
    assert cached == replayed
    assert {kind for _, kind, *_ in cached} >= {"Ticket.Routed", "Ticket.SlaApplied", "Ticket.SlaBreached"}
    assert kept > 0  # the tickets were measured from the cache


def test_the_cached_clocks_equal_a_replay_of_the_history_at_every_instant(world: World) -> None:
    """Looks forward, back (before events already fed), and at instants before the newest events."""
    define_sla(world)
    ticket_id = world.open(team=True)
    world.clock.advance(timedelta(minutes=30))
    world.desk.post_reply(PostReply(ticket_id=ticket_id, body="您好"), AGENT)
    world.clock.advance(timedelta(minutes=40))
    world.desk.post_reply(
        PostReply(ticket_id=ticket_id, body="还是不行", direction=Direction.INBOUND),
        world.setup.customer_caller,
    )
    world.clock.advance(timedelta(minutes=10))
    world.desk.pend_ticket(PendTicket(ticket_id=ticket_id, reason="等截图"), AGENT)
    history = world.desk.history(ticket_id)
    ticket = world.desk.peek_ticket(ticket_id)
    for minutes in (5, 35, 2, 75, 200, 45, 90):
        now = MONDAY_9_SHANGHAI + timedelta(minutes=minutes)
        run = world.automation.clock_run(ticket, now)
        clocks, priority = clocks_of(history, now)
        assert (repr(run.clocks), run.priority) == (repr(clocks), priority), f"at +{minutes} min"
    assert ticket_id in world.automation.clock_cache


def test_the_cache_keeps_at_most_its_bound_least_recently_measured_out_first(world: World) -> None:
    define_sla(world)
    world.automation = Automation(world.desk, world.read_side, clock_cache_tickets=2)
    tickets = [world.open(team=True) for _ in range(3)]
    world.settle()
    assert len(world.automation.clock_cache) == 2
    assert tickets[0] not in world.automation.clock_cache


def test_an_erased_customers_tickets_leave_the_cache_and_nothing_personal_was_in_it(world: World) -> None:
    define_sla(world)
    other = world.desk.register_customer(
        RegisterCustomer(name="李四", email="lisi@example.cn"), ADMIN
    ).object_id
    mine = [world.open("我的电脑坏了", team=True) for _ in range(2)]
    theirs = world.desk.open_ticket(
        OpenTicket(subject="李四的问题", requester_id=other, team_id=world.setup.team_id),
        Caller(str(other), Role.CUSTOMER, Channel.WEB_FORM),
    ).object_id
    world.settle()
    assert set(mine) | {theirs} <= set(world.automation.clock_cache.entries())
    personal = ("王小明", "xiaoming@example.cn", "13800000000", "我的电脑坏了")
    assert not [
        s for s in strings_in(world.automation.clock_cache.entries()) if any(p in s for p in personal)
    ]

    world.desk.erase_customer(EraseCustomer(customer_id=world.setup.customer_id, reference="DSR-1"), ADMIN)
    world.read_side.catch_up()
    world.automation.run_once()
    kept = world.automation.clock_cache.entries()
    assert not set(mine) & set(kept)
    assert theirs in kept  # another customer's tickets stay


def test_a_customer_erased_by_another_process_leaves_the_cache_at_the_next_pass(
    shared_store_settings: Settings,
) -> None:
    clock = FakeClock(MONDAY_9_SHANGHAI)
    desk = TicketDesk(shared_store_settings, clock=clock)
    eraser = TicketDesk(shared_store_settings, clock=clock)  # `ticketflow customer erase`, an API worker
    world = World(desk, clock)
    try:
        define_sla(world)
        mine = world.open("我的电脑坏了", team=True)
        other = desk.register_customer(
            RegisterCustomer(name="李四", email="lisi@example.cn"), ADMIN
        ).object_id
        theirs = desk.open_ticket(
            OpenTicket(subject="李四的问题", requester_id=other, team_id=world.setup.team_id),
            Caller(str(other), Role.CUSTOMER, Channel.WEB_FORM),
        ).object_id
        world.settle()
        assert {mine, theirs} <= set(world.automation.clock_cache.entries())

        eraser.erase_customer(EraseCustomer(customer_id=world.setup.customer_id, reference="DSR-2"), ADMIN)
        world.read_side.catch_up()
        world.automation.run_once()
        kept = world.automation.clock_cache.entries()
        assert mine not in kept
        assert theirs in kept
    finally:
        world.read_side.close()
        eraser.close()
        desk.close()


def strings_in(value: Any, seen: set[int] | None = None) -> Iterator[str]:
    """Every text reachable from ``value`` (the cache's entries, walked through their attributes)."""
    seen = seen if seen is not None else set()
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from strings_in(k, seen)
            yield from strings_in(v, seen)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            yield from strings_in(v, seen)
    elif hasattr(value, "__dict__") and not isinstance(value, type | UUID):
        yield from strings_in(vars(value), seen)


def test_clocks_given_a_batchs_saved_events_equal_a_replay_and_read_nothing_back(
    world: World, monkeypatch: Any
) -> None:
    """The demo hands each saved slice's events to the automation (``Automation.saved``): a ticket opened in
    the batch is kept from its first event, a kept one takes the events after its version, and the next
    look reads nothing back from the store, measuring as a replay of the history does."""
    define_sla(world)
    kept = world.open(team=True)
    world.automation.clock_run(world.desk.peek_ticket(kept), world.clock.now())  # kept at version 1
    assert world.automation.clock_cache.peek(kept) is not None
    with world.desk.batch():
        world.clock.advance(timedelta(minutes=30))
        opened = world.open(team=True)
        world.desk.post_reply(PostReply(ticket_id=kept, body="您好"), AGENT)
        world.clock.advance(timedelta(minutes=40))
        world.desk.post_reply(PostReply(ticket_id=opened, body="您好"), AGENT)
        world.desk.pend_ticket(PendTicket(ticket_id=kept, reason="等截图"), AGENT)
        events = list(world.desk.batched_events())
    world.automation.saved(events)

    def no_read_back(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("read back from the store")

    for ticket_id in (kept, opened):
        ticket = world.desk.peek_ticket(ticket_id)
        assert world.automation.clock_cache.peek(ticket_id).version == ticket.version  # type: ignore[union-attr]
        now = world.clock.now() + timedelta(minutes=90)
        with monkeypatch.context() as patch:
            patch.setattr(world.desk.events, "get", no_read_back)
            run = world.automation.clock_run(ticket, now)
        clocks, priority = clocks_of(world.desk.history(ticket_id), now)
        assert (repr(run.clocks), run.priority) == (repr(clocks), priority)
