"""The erasure watch against a fake log: which looks read the erasures and which only ask the log's end.

A fake log stands for the store: a list of (position, writer, erased customer or None). Positions are
handed to the watch's ``saw`` as a group commit acknowledges them: in any order."""

from __future__ import annotations

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
