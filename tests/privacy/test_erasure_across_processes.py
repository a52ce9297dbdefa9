"""A customer erased by one process leaves every other process's caches before their next use: the
aggregate cache (decrypted tickets and profile) and the cached copy of the customer's key. Two desks on
one store stand for two processes; each test says when the second one looks at the log."""

from __future__ import annotations

import pickle
import threading
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import LRUCache

from tests.support import ADMIN, AGENT
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import AddCustomerNote, OpenTicket, PostReply, RegisterCustomer
from ticketflow.commands.privacy import EraseCustomer
from ticketflow.config import Settings
from ticketflow.domain import Ticket
from ticketflow.domain.customer import ERASED
from ticketflow.domain.values import Channel, Direction, Role
from ticketflow.metadata import Caller

NAME = "王金丝雀Kq3"
EMAIL = "kq3.canary@example.cn"
SUBJECT = "无法登录 Kq3 工单"
COMPLIANCE = Caller("comp.lee", Role.COMPLIANCE, Channel.API)


@pytest.fixture
def two_processes(
    shared_store_settings: Settings, clock: FakeClock
) -> Iterator[tuple[TicketDesk, TicketDesk]]:
    """The desk that erases (another worker, ``ticketflow erase``) and the one that serves."""
    eraser = TicketDesk(shared_store_settings, clock=clock)
    server = TicketDesk(shared_store_settings, clock=clock)
    yield eraser, server
    server.close()
    eraser.close()


def seed(desk: TicketDesk) -> tuple[UUID, UUID, UUID]:
    """A customer to erase with a ticket, and another customer with a ticket, all written by ``desk``."""
    customer = desk.register_customer(RegisterCustomer(name=NAME, email=EMAIL), ADMIN).object_id
    caller = Caller(str(customer), Role.CUSTOMER, Channel.EMAIL)
    ticket = desk.open_ticket(OpenTicket(subject=SUBJECT, requester_id=customer), caller).object_id
    desk.post_reply(PostReply(ticket_id=ticket, body=f"还是不行 {NAME}", direction=Direction.INBOUND), caller)
    desk.add_customer_note(AddCustomerNote(customer_id=customer, note=f"VIP {NAME}"), AGENT)
    other = desk.register_customer(RegisterCustomer(name="李四", email="lisi@example.cn"), ADMIN).object_id
    other_caller = Caller(str(other), Role.CUSTOMER, Channel.EMAIL)
    other_ticket = desk.open_ticket(
        OpenTicket(subject="李四的问题", requester_id=other), other_caller
    ).object_id
    return customer, ticket, other_ticket


def cached(desk: TicketDesk) -> dict[UUID, Any]:
    """The aggregates the desk holds in memory, by id."""
    cache: Any = desk.repository.cache
    assert isinstance(cache, LRUCache)
    with cache.lock:
        return {key: link[LRUCache.RESULT] for key, link in cache.cache.items()}


def personal_in(aggregates: dict[UUID, Any]) -> list[str]:
    """Which of the customer's texts any held aggregate still carries (pickled: every attribute, nested)."""
    held = pickle.dumps(list(aggregates.values()))
    return [text for text in (NAME, EMAIL, SUBJECT) if text.encode() in held]


def erase(desk: TicketDesk, customer: UUID) -> None:
    desk.erase_customer(EraseCustomer(customer_id=customer, reference="DSR-X1"), COMPLIANCE)


def test_after_the_poll_the_erased_customers_data_is_nowhere_in_the_other_process_cache(
    two_processes: tuple[TicketDesk, TicketDesk],
) -> None:
    eraser, server = two_processes
    customer, ticket, other_ticket = seed(server)  # saved by the server: kept in its cache
    assert server.get_ticket(ticket).subject == SUBJECT
    assert server.get_customer(customer).email == EMAIL
    assert personal_in(cached(server)) == [NAME, EMAIL, SUBJECT]  # what the poll has to remove

    erase(eraser, customer)
    assert server.erasure_watch.follow() == {customer}

    kept = cached(server)
    assert personal_in(kept) == []
    assert customer not in kept and ticket not in kept
    assert other_ticket in kept  # another customer's ticket stays cached
    assert server.get_ticket(ticket).subject == ERASED
    assert server.get_customer(customer).name == ERASED
    assert personal_in({customer: server.get_customer(customer)}) == []
    assert server.erasure_watch.follow() == set()  # each erasure is read once


def test_a_read_answered_from_the_cache_looks_at_the_log_first(
    two_processes: tuple[TicketDesk, TicketDesk],
) -> None:
    eraser, server = two_processes
    customer, ticket, _ = seed(server)
    assert server.get_ticket(ticket).subject == SUBJECT  # cached

    erase(eraser, customer)  # the server is not told; its next read finds the erasure in the log

    assert server.get_ticket(ticket).subject == ERASED
    assert server.get_customer(customer).name == ERASED
    assert personal_in(cached(server)) == []


def test_a_command_after_another_process_erased_the_customer_keeps_no_plaintext(
    two_processes: tuple[TicketDesk, TicketDesk],
) -> None:
    eraser, server = two_processes
    customer, ticket, _ = seed(server)
    assert server.get_ticket(ticket).subject == SUBJECT  # the ticket and the customer's key are cached
    assert server.keys.key_for(customer, create=False) is not None

    erase(eraser, customer)
    server.post_reply(PostReply(ticket_id=ticket, body=f"late {NAME}"), AGENT)  # no poll before it

    for desk in (server, eraser):
        reply = [e for e in desk.history(ticket) if isinstance(e, Ticket.Replied)][-1]
        assert reply.body == ERASED  # not sealed with the key the server had cached: no new plaintext
    assert personal_in(cached(server)) == []
    assert server.get_ticket(ticket).subject == ERASED


def test_a_load_that_overlaps_an_erasure_is_not_kept_in_the_cache(
    two_processes: tuple[TicketDesk, TicketDesk],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server decrypts a ticket from the store, then learns of the erasure before the load puts the
    ticket in its cache (the poll runs on another thread in a real server: here, at that exact point)."""
    eraser, server = two_processes
    customer, ticket, _ = seed(eraser)  # nothing of the customer in the server's cache yet
    assert ticket not in cached(server)
    server.erasure_watch.start()
    cache: Any = server.repository.cache
    put = cache.put

    def learn_of_the_erasure_then_put(object_id: UUID, aggregate: Any) -> Any:
        if object_id == ticket:
            erase(eraser, customer)
            assert server.erasure_watch.follow() == {customer}
        return put(object_id, aggregate)

    monkeypatch.setattr(cache, "put", learn_of_the_erasure_then_put)
    # Every object on one read-lock stripe: the look evicts what the eraser wrote (the customer) while
    # this load holds the ticket's stripe; with 64 stripes that collided one run in dozens and hung.
    monkeypatch.setattr(server, "_read_locks", server._read_locks[:1])
    answers: list[str] = []
    loading = threading.Thread(target=lambda: answers.append(server.get_ticket(ticket).subject), daemon=True)
    loading.start()
    loading.join(30)
    assert not loading.is_alive(), "the load deadlocked on its own read lock"
    assert answers == [SUBJECT]  # answered as it was decrypted, before the erasure
    monkeypatch.undo()

    assert ticket not in cached(server)
    assert personal_in(cached(server)) == []
    assert server.get_ticket(ticket).subject == ERASED


def test_an_erasure_saved_before_the_process_started_is_not_read_again(
    two_processes: tuple[TicketDesk, TicketDesk],
    shared_store_settings: Settings,
    clock: FakeClock,
) -> None:
    eraser, _ = two_processes
    customer, _, _ = seed(eraser)
    erase(eraser, customer)
    late = TicketDesk(shared_store_settings, clock=clock)
    try:
        late.erasure_watch.start()
        assert late.erasure_watch.position == eraser.log_position()
        assert late.erasure_watch.follow() == set()
    finally:
        late.close()


def test_a_process_own_writes_cost_its_next_command_no_erasure_query(
    two_processes: tuple[TicketDesk, TicketDesk],
) -> None:
    eraser, server = two_processes
    customer, _, other_ticket = seed(server)
    reads: list[tuple[int, int, int]] = []
    select = server.erasure_watch._select_written  # the desk reads every write of others (erasures among them)
    assert select is not None

    def counted(start: int, limit: int, stop: int) -> Any:
        reads.append((start, limit, stop))
        return select(start, limit, stop)

    server.erasure_watch._select_written = counted
    for note in ("一", "二", "三"):
        server.add_customer_note(AddCustomerNote(customer_id=customer, note=note), AGENT)
    assert reads == []  # only the log's end was asked: it was where this process's own saves left it

    erase(eraser, customer)
    server.add_customer_note(AddCustomerNote(customer_id=customer, note="四"), AGENT)
    assert len(reads) == 1  # another process wrote: what it wrote in between is read, once
    assert personal_in(cached(server)) == []
    assert other_ticket in cached(server)


def test_a_group_commit_tells_the_watch_of_each_own_save_once(
    two_processes: tuple[TicketDesk, TicketDesk],
) -> None:
    """The group commit tells the watch of a save's positions as it commits (``ErasureWatch.committed``); the
    desk's notification after the save tells it again only of an erasure (which ``committed`` leaves to it, to
    forget the customer first). Either way the process's own positions cost its next command no read."""
    _, server = two_processes
    customer, ticket, _ = seed(server)
    told: list[tuple[list[int], list[UUID]]] = []
    saw = server.erasure_watch.saw

    def counted_saw(positions: Any, erased: Any) -> None:
        told.append((list(positions), list(erased)))
        saw(positions, erased)

    reads: list[int] = []
    select = server.erasure_watch._select_written
    assert select is not None

    def counted_select(start: int, limit: int, stop: int) -> Any:
        reads.append(start)
        return select(start, limit, stop)

    server.erasure_watch.saw = counted_saw  # type: ignore[method-assign]
    server.erasure_watch._select_written = counted_select
    server.add_customer_note(AddCustomerNote(customer_id=customer, note="一"), AGENT)
    assert told == []  # told once, as it committed
    erase(server, customer)
    assert told and all(erased == [customer] for _, erased in told)  # an erasure: told after the save
    assert max(p for positions, _ in told for p in positions) == server.log_position()
    server.add_customer_note(AddCustomerNote(customer_id=customer, note="二"), AGENT)  # its command looks at the log first
    assert reads == []  # every position since the last look was the process's own
    assert ticket not in cached(server)  # the erased customer's ticket left the cache
