"""The SLA clock's ticket feed: the tickets it looks at are built from the events the views' batches
decoded (and the log past them), not reloaded; a look sees what a reload would; an erased customer's
tickets, text and all, leave it before the next look. It holds the events the clocks have not taken yet
only, a bounded number of them, and follows the views only while the automation runs."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from projections.automation import _TicketFeed
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


def open_for_other(world: World, desk: TicketDesk) -> UUID:
    other = desk.register_customer(RegisterCustomer(name="李四", email="lisi@example.cn"), ADMIN).object_id
    ticket_id: UUID = desk.open_ticket(
        OpenTicket(subject="李四的问题", requester_id=other, team_id=world.setup.team_id),
        Caller(str(other), Role.CUSTOMER, Channel.WEB_FORM),
    ).object_id
    return ticket_id


def test_a_look_sees_the_ticket_as_a_reload_does_with_what_the_views_have_not_taken_yet(world: World) -> None:
    define_sla(world)
    world.settle()  # the automation's first pass: its feed follows the views from now on
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
    world.settle()
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
        world.settle()
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


def test_tickets_without_sla_terms_are_held_built_without_their_events_after_a_pass(world: World) -> None:
    world.settle()  # no SLA policy: the clock looks at each changed ticket and finds nothing to measure
    tickets = [world.open("我的电脑坏了", team=True) for _ in range(3)]
    for round_ in range(3):
        for ticket in tickets:
            world.desk.post_reply(PostReply(ticket_id=ticket, body=f"{round_} 请提供您的手机号码"), AGENT)

    world.settle()

    held = world.automation.feed.entries()
    assert set(tickets) <= set(held)
    assert all(held[t].ticket is not None and held[t].events == [] for t in tickets)
    assert world.automation.feed.held() == 0
    assert not [s for s in strings_in([e.events for e in held.values()]) if "手机号码" in s]
    world.desk.post_reply(PostReply(ticket_id=tickets[0], body="还是不行"), AGENT)  # built on from the kept ticket
    look = world.automation.feed.look(tickets[0])
    assert look is not None
    assert vars(look.ticket) == vars(world.desk.get_ticket(tickets[0]))


def test_the_feed_holds_at_most_its_bound_of_events_the_least_recently_changed_tickets_out_first(world: World) -> None:
    feed = world.automation.feed = _TicketFeed(world.desk, 2_000, events=10, read_side=world.read_side)
    world.settle()
    tickets = []
    for _ in range(6):  # opened and answered one after the other: the last one changed most recently
        tickets.append(ticket := world.open("我的电脑坏了", team=True))
        for round_ in range(2):
            world.desk.post_reply(PostReply(ticket_id=ticket, body=f"{round_} 您好"), AGENT)

    world.read_side.catch_up()  # the views' batches fed to it, no pass of the clock yet

    held = feed.entries()
    assert 0 < feed.held() <= 10
    assert feed.held() == sum(len(e.events) for e in held.values())
    assert tickets[0] not in held and tickets[-1] in held
    look = feed.look(tickets[-1])
    assert look is not None
    assert vars(look.ticket) == vars(world.desk.get_ticket(tickets[-1]))


def test_the_automation_follows_the_views_from_its_first_pass_until_it_stops(world: World) -> None:
    world.open("我的电脑坏了", team=True)
    world.read_side.catch_up()
    assert world.read_side.batch_followers() == []  # built, never run: nothing followed, nothing held
    assert len(world.automation.feed) == 0

    world.settle()
    assert world.read_side.batch_followers() == [world.automation.feed.take]

    world.automation.stop()
    assert world.read_side.batch_followers() == []
    assert len(world.automation.feed) == 0


@pytest.mark.parametrize("automation", [False, True])
def test_a_server_follows_the_views_batches_only_while_its_automation_runs(tmp_path: Path, automation: bool) -> None:
    app = create_app(Settings(data_dir=tmp_path / "data", automation=automation))
    read_side = app.state.services.read_side
    with TestClient(app):
        followers = read_side.batch_followers()
    assert len(followers) == (1 if automation else 0)
    assert read_side.batch_followers() == []
