"""The erasure watch against a fake log: which looks read the erasures and which only ask the log's end.

A fake log stands for the store: a list of (position, writer, erased customer or None). Positions are
handed to the watch's ``saw`` as a group commit acknowledges them: in any order."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

from ticketflow.privacy.watch import ErasureWatch


class FakeLog:
    def __init__(self) -> None:
        self.entries: list[UUID | None] = []  # index + 1 = position; the erased customer or None
        self.erasure_reads = 0
        self.forgotten: list[UUID] = []

    def write(self, erased: UUID | None = None) -> int:
        self.entries.append(erased)
        return len(self.entries)

    def end(self) -> int:
        return len(self.entries)

    def select_erasures(self, start: int, limit: int, stop: int) -> Sequence[Any]:
        self.erasure_reads += 1
        found = [
            SimpleNamespace(id=p, originator_id=c)
            for p, c in enumerate(self.entries, start=1)
            if start <= p <= stop and c is not None
        ]
        return found[:limit]

    def watch(self) -> ErasureWatch:
        return ErasureWatch(self.select_erasures, self.end, self.forgotten.append)


def test_own_saves_acknowledged_out_of_order_cost_the_next_look_no_erasure_read() -> None:
    log = FakeLog()
    watch = log.watch()
    watch.start()
    first, second, third = log.write(), log.write(), log.write()
    watch.saw([third], [])  # a group commit's threads are told in any order
    watch.saw([first, second], [])
    assert watch.follow() == set()
    assert log.erasure_reads == 0
    assert watch.position == third


def test_a_write_by_another_process_between_own_saves_makes_the_look_read_the_erasures() -> None:
    log = FakeLog()
    watch = log.watch()
    watch.start()
    customer = uuid4()
    own = log.write()
    log.write(erased=customer)  # another process's erasure, never told to this watch
    later = log.write()
    watch.saw([later], [])
    watch.saw([own], [])
    assert watch.follow() == {customer}
    assert log.erasure_reads == 1
    assert log.forgotten == [customer]


def test_an_own_save_not_yet_acknowledged_makes_the_look_read_the_erasures() -> None:
    log = FakeLog()
    watch = log.watch()
    watch.start()
    acknowledged = log.write()
    log.write()  # committed, its thread not told yet
    watch.saw([acknowledged], [])
    assert watch.follow() == set()
    assert log.erasure_reads == 1
    assert log.write() == 3
    watch.saw([3], [])
    assert watch.follow() == set()
    assert log.erasure_reads == 1  # the earlier look moved past position 2: only 3 was new, and own


def test_an_own_erasure_acknowledged_out_of_order_is_forgotten_before_its_position_counts_as_seen() -> None:
    log = FakeLog()
    watch = log.watch()
    watch.start()
    customer = uuid4()
    note = log.write()
    erasure = log.write(erased=customer)
    watch.saw([erasure], [customer])
    assert log.forgotten == [customer]
    watch.saw([note], [])
    assert watch.follow() == set()
    assert log.erasure_reads == 0


def test_an_own_erasure_told_while_a_follow_runs_is_read_from_the_log_by_the_next_look() -> None:
    log = FakeLog()
    watch = log.watch()
    watch.start()
    customer = uuid4()
    erasure = log.write(erased=customer)
    with watch._lock:  # a follow of another thread is running
        watch.saw([erasure], [customer])
    assert log.forgotten == []
    assert watch.follow() == {customer}
    assert log.erasure_reads == 1
    assert log.forgotten == [customer]


class _EntryCountingLock:
    """The watch's lock, counting the callers that reached it (each has read the look counter first)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reached = threading.Semaphore(0)

    def __enter__(self) -> bool:
        self.reached.release()
        return self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def acquire(self, blocking: bool = True) -> bool:
        return self._lock.acquire(blocking)

    def release(self) -> None:
        self._lock.release()


def test_callers_that_waited_while_a_look_ran_share_the_next_look_and_each_erasure_is_forgotten_first() -> None:
    log = FakeLog()
    looks: list[int] = []
    in_look, go_on = threading.Event(), threading.Event()

    def end() -> int:
        looks.append(1)
        top = log.end()
        if len(looks) == 2:  # the first follow's look, answered as of its start: held until the others wait
            in_look.set()
            assert go_on.wait(30)
        return top

    watch = ErasureWatch(log.select_erasures, end, log.forgotten.append)
    watch.start()  # the first look (the log's end, nothing to read)
    lock = _EntryCountingLock()
    watch._lock = lock  # type: ignore[assignment]
    customer = uuid4()
    log.write(erased=customer)  # another process's erasure
    results: dict[str, set[UUID]] = {}

    def follow(name: str) -> None:
        results[name] = watch.follow()

    first = threading.Thread(target=follow, args=("first",))
    first.start()
    assert lock.reached.acquire(timeout=30) and in_look.wait(30)
    later = [threading.Thread(target=follow, args=(f"later{i}",)) for i in range(3)]
    for thread in later:
        thread.start()
    for _ in later:
        assert lock.reached.acquire(timeout=30)  # each read the counter and waits at the lock
    log.write(erased=uuid4())  # erased after the first look started: the later callers must see it
    go_on.set()
    for thread in [first, *later]:
        thread.join(30)

    # The first look began before the later callers arrived: one more look serves all three of them.
    assert len(looks) == 3
    assert results["first"] == {customer}
    assert sorted(len(results[f"later{i}"]) for i in range(3)) == [0, 0, 1]
    assert set(log.forgotten) == {customer, *(c for c in log.entries if c is not None)}
    assert len(log.forgotten) == 2


def test_positions_a_group_commit_wrote_are_own_before_their_threads_are_told() -> None:
    """The group commit tells the watch what it wrote as it commits: a look by another thread's command
    before the saving thread's ``saw`` neither reads the log nor takes the positions for another writer's."""
    log = FakeLog()
    watch = log.watch()
    watch.start()
    first, second = log.write(), log.write()
    watch.committed([first, second], ["ticketflow.domain.ticket:Ticket.Replied", "ticketflow.domain.ticket:Ticket.Solved"])
    assert watch.follow() == set()
    assert log.erasure_reads == 0 and watch.position == second
    watch.saw([first, second], [])  # the saving thread, told later: nothing left to do
    assert watch.follow() == set() and log.erasure_reads == 0


def test_a_committed_erasure_counts_as_seen_only_once_its_thread_forgot_the_customer() -> None:
    from ticketflow.domain import Customer
    from ticketflow.privacy.watch import ERASURE_TOPICS

    log = FakeLog()
    watch = log.watch()
    watch.start()
    customer = uuid4()
    erasure = log.write(erased=customer)
    watch.committed([erasure], [ERASURE_TOPICS[1]])
    assert ERASURE_TOPICS[1].endswith(Customer.Erased.__qualname__)
    assert watch.follow() == {customer}  # a look before the thread's saw reads it from the log
    assert log.erasure_reads == 1 and log.forgotten == [customer]


def test_a_look_that_finds_positions_it_was_not_told_of_lets_own_commits_settle_before_reading_the_log() -> None:
    """A group commit's rows are in the log a moment before the watch is told of them (``committed``):
    a look in between waits for the commit to settle, and then needs no read of the log."""
    log = FakeLog()
    in_flight: list[int] = []

    def settle() -> None:  # the leader between its COMMIT and on_committed, finishing
        watch.committed(list(in_flight), ["ticketflow.domain.ticket:Ticket.Replied"])
        in_flight.clear()

    watch = ErasureWatch(log.select_erasures, log.end, log.forgotten.append, settle=settle)
    watch.start()
    in_flight.extend([log.write(), log.write()])  # committed, not told yet
    assert watch.follow() == set()
    assert log.erasure_reads == 0 and watch.position == 2


def test_positions_still_not_told_once_own_commits_settled_are_read_from_the_log() -> None:
    log = FakeLog()
    settled: list[int] = []
    watch = ErasureWatch(log.select_erasures, log.end, log.forgotten.append, settle=lambda: settled.append(1))
    watch.start()
    customer = uuid4()
    own = log.write()
    watch.committed([own], ["ticketflow.domain.ticket:Ticket.Replied"])
    log.write(erased=customer)  # another process's erasure
    assert watch.follow() == {customer}
    assert settled == [1] and log.erasure_reads == 1 and log.forgotten == [customer]
    assert watch.follow() == set() and settled == [1]  # nothing new: no settling either


class _Ends:
    """The fake log's end, counting the looks that asked it."""

    def __init__(self, log: FakeLog) -> None:
        self.log, self.asked = log, 0

    def __call__(self) -> int:
        self.asked += 1
        return self.log.end()


def test_requests_that_arrived_before_a_look_began_share_it_and_a_later_one_looks_again() -> None:
    from ticketflow.privacy.watch import request_arrived

    log = FakeLog()
    now = [10.0]
    ends = _Ends(log)
    watch = ErasureWatch(log.select_erasures, ends, log.forgotten.append, clock=lambda: now[0])
    watch.start()
    first_customer, second_customer = uuid4(), uuid4()
    log.write(erased=first_customer)  # erased elsewhere before both requests came in

    token = request_arrived.set(9.0)  # two requests came in at 9.0; the first one's command looks at 10.0
    try:
        assert watch.follow() == {first_customer}
        asked = ends.asked
        assert watch.follow() == set()  # the second request came in before that look began: it saw the erasure
        assert ends.asked == asked
    finally:
        request_arrived.reset(token)

    log.write(erased=second_customer)  # erased elsewhere after that look began
    token = request_arrived.set(10.0)  # a request that came in as that look began (not after it): looks
    try:
        now[0] = 11.0
        assert watch.follow() == {second_customer}
        assert ends.asked == asked + 1
    finally:
        request_arrived.reset(token)
    assert log.forgotten == [first_customer, second_customer]


def test_a_look_that_failed_stands_for_no_request() -> None:
    from ticketflow.privacy.watch import request_arrived

    log = FakeLog()
    now = [10.0]
    failing = [True]

    def end() -> int:
        if failing[0]:
            failing[0] = False
            raise OSError("disk I/O error")
        return log.end()

    watch = ErasureWatch(log.select_erasures, end, log.forgotten.append, clock=lambda: now[0])
    customer = uuid4()
    watch._position = 0  # started at the log's beginning
    log.write(erased=customer)
    token = request_arrived.set(9.0)
    try:
        try:
            watch.follow()
        except OSError:
            pass
        assert watch.follow() == {customer}  # the failed look began after the request came, but did not count
    finally:
        request_arrived.reset(token)
    assert log.forgotten == [customer]


def test_without_a_request_every_follow_looks() -> None:
    log = FakeLog()
    ends = _Ends(log)
    watch = ErasureWatch(log.select_erasures, ends, log.forgotten.append, clock=lambda: 10.0)
    watch.start()
    watch.follow()
    watch.follow()
    assert ends.asked == 3  # start, then each follow
