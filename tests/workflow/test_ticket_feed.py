"""The SLA clock's ticket feed: the tickets it looks at are built from the events the views' batches
decoded (and the log past them), not reloaded; a look sees what a reload would; an erased customer's
tickets, text and all, leave it before the next look."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from tests.support import ADMIN, AGENT
from tests.workflow.test_automation import MONDAY_9_SHANGHAI, World, define_sla
from tests.workflow.test_clock_cache import strings_in
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import OpenTicket, PostReply, RegisterCustomer
from ticketflow.commands.privacy import EraseCustomer
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller


@pytest.fixture
def world(store_settings: Settings) -> Iterator[World]:
    clock = FakeClock(MONDAY_9_SHANGHAI)
    desk = TicketDesk(store_settings, clock=clock)
    w = World(desk, clock)
    yield w
    w.read_side.close()
    desk.close()


def open_for_other(world: World, desk: TicketDesk) -> UUID:
    other = desk.register_customer(RegisterCustomer(name="李四", email="lisi@example.cn"), ADMIN).object_id
    ticket_id: UUID = desk.open_ticket(
        OpenTicket(subject="李四的问题", requester_id=other, team_id=world.setup.team_id),
        Caller(str(other), Role.CUSTOMER, Channel.WEB_FORM),
    ).object_id
    return ticket_id


def test_a_look_sees_the_ticket_as_a_reload_does_with_what_the_views_have_not_taken_yet(world: World) -> None:
    define_sla(world)
    ticket = world.open("我的电脑坏了", team=True)
    world.settle()
    assert ticket in world.automation.feed
    world.desk.post_reply(PostReply(ticket_id=ticket, body="您好，请重启试试"), AGENT)  # past the views' position

    look = world.automation.feed.look(ticket)

    assert look is not None
    reloaded = world.desk.get_ticket(ticket)
    assert look.ticket.version == reloaded.version
    assert vars(look.ticket) == vars(reloaded)


def test_an_erased_customers_tickets_and_their_text_leave_the_feed(world: World) -> None:
    define_sla(world)
    mine = [world.open("我的电脑坏了", team=True) for _ in range(2)]
    theirs = open_for_other(world, world.desk)
    world.settle()
    assert set(mine) | {theirs} <= set(world.automation.feed.entries())

    world.desk.erase_customer(EraseCustomer(customer_id=world.setup.customer_id, reference="DSR-1"), ADMIN)
    world.read_side.catch_up()
    world.automation.run_once()

    kept = world.automation.feed.entries()
    assert not set(mine) & set(kept)
    assert theirs in kept  # another customer's tickets stay
    assert not [s for s in strings_in(kept) if "我的电脑坏了" in s]


def test_a_customer_erased_by_another_process_leaves_the_feed_at_the_next_pass(shared_store_settings: Settings) -> None:
    clock = FakeClock(MONDAY_9_SHANGHAI)
    desk = TicketDesk(shared_store_settings, clock=clock)
    eraser = TicketDesk(shared_store_settings, clock=clock)  # `ticketflow customer erase`, an API worker
    world = World(desk, clock)
    try:
        define_sla(world)
        mine = world.open("我的电脑坏了", team=True)
        theirs = open_for_other(world, desk)
        world.settle()
        assert {mine, theirs} <= set(world.automation.feed.entries())

        eraser.erase_customer(EraseCustomer(customer_id=world.setup.customer_id, reference="DSR-2"), ADMIN)
        world.automation.run_once()  # the views have not taken the erasure: the pass finds it past them

        kept = world.automation.feed.entries()
        assert mine not in kept
        assert theirs in kept
    finally:
        world.read_side.close()
        eraser.close()
        desk.close()
