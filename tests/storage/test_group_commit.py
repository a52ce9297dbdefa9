"""Group commit on SQLite (ticketflow/group_commit.py): saves that wait together commit together.

The saves are held in the recorder's queue (``recorder.held()``) until every thread has queued its
batch, then released: what is counted is the event store's COMMITs, never time.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent
from eventsourcing.sqlite import SQLiteConnection

from tests.support import AGENT, Desk
from ticketflow.application import CommandResult, TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import OpenTicket, PostReply
from ticketflow.config import Settings
from ticketflow.errors import ConcurrencyConflict
from ticketflow.group_commit import GroupCommit, GroupCommitRecorder


@pytest.fixture
def sqlite_desk(tmp_path: Path, clock: FakeClock) -> Iterator[TicketDesk]:
    app = TicketDesk(Settings(data_dir=tmp_path / "data"), clock=clock)
    yield app
    app.close()


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """One entry per COMMIT of an eventsourcing SQLite connection (the event store's transactions): the
    name of the thread that committed."""
    counted: list[str] = []
    original = SQLiteConnection.commit

    def counting(self: SQLiteConnection) -> None:
        counted.append(threading.current_thread().name)
        original(self)

    monkeypatch.setattr(SQLiteConnection, "commit", counting)
    return counted


def _recorder(app: TicketDesk) -> GroupCommitRecorder:
    assert isinstance(app.recorder, GroupCommitRecorder)
    return app.recorder


def _fail_the_next_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The next COMMIT of an eventsourcing SQLite connection fails (a disk error); later ones work."""
    original, failures = SQLiteConnection.commit, [sqlite3.OperationalError("disk I/O error")]

    def failing_once(self: SQLiteConnection) -> None:
        if failures:
            raise failures.pop()
        original(self)

    monkeypatch.setattr(SQLiteConnection, "commit", failing_once)


def _bodies(events: Any) -> list[str]:
    return [e.body for e in events if getattr(e, "body", None) is not None]


def _together(app: TicketDesk, calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call in its own thread, their saves held until all are queued (in the order of
    ``calls``); each call's result (or the exception it raised). Any store's group-commit recorder
    (SQLite's, PostgreSQL's)."""
    recorder = app.recorder
    assert isinstance(recorder, GroupCommit)
    outcomes: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            outcomes[index] = calls[index]()
        except Exception as exc:  # noqa: BLE001 - the outcome under test
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    with recorder.held():
        for queued, thread in enumerate(threads, start=1):
            thread.start()
            assert recorder.wait_for_queued(queued)  # one at a time: the queue holds the calls in order
    for thread in threads:
        thread.join(30)
    return outcomes


def test_saves_waiting_together_are_committed_in_one_transaction(sqlite_desk: TicketDesk, commits: list[str]) -> None:
    setup = Desk(sqlite_desk)
    tickets = [setup.open(f"工单 {n}") for n in range(8)]
    before = sqlite_desk.log_position()
    del commits[:]

    def reply(ticket_id: UUID) -> Callable[[], CommandResult]:
        return lambda: sqlite_desk.post_reply(PostReply(ticket_id=ticket_id, body=f"已收到 {ticket_id}"), AGENT)

    results = _together(sqlite_desk, [reply(t) for t in tickets])

    assert len(commits) == 1
    assert all(isinstance(r, CommandResult) for r in results), results
    written = sum(len(r.events) for r in results)
    assert sorted(r.position for r in results) == sorted({r.position for r in results})
    assert sqlite_desk.log_position() == before + written  # every event of the group, no gap
    for ticket_id, result in zip(tickets, results, strict=True):
        history = sqlite_desk.history(ticket_id)
        assert f"已收到 {ticket_id}" in _bodies(history)
        assert result.version == len(history)
    stats = _recorder(sqlite_desk).group_stats
    assert stats.groups[-1] == 8


def test_a_group_writes_every_event_of_its_saves_with_one_insert_statement(sqlite_desk: TicketDesk) -> None:
    setup = Desk(sqlite_desk)
    tickets = [setup.open(f"工单 {n}") for n in range(8)]
    statements: list[str] = []
    _recorder(sqlite_desk)._connection()._sqlite_conn.set_trace_callback(statements.append)

    results = _together(sqlite_desk, [
        lambda t=t: sqlite_desk.post_reply(PostReply(ticket_id=t, body=f"已收到 {t}"), AGENT) for t in tickets])

    inserts = [s for s in statements if s.startswith("INSERT")]
    events = sum(len(r.events) for r in results)
    assert len(inserts) == 1 and inserts[0].count("),(") == events - 1, inserts
    assert not [s for s in statements if s.startswith("SAVEPOINT")]  # no conflict: no batch by batch
    # Each save's positions are the rowids its events took, in the order they were listed.
    for result, ticket_id in zip(results, tickets, strict=True):
        assert result.position is not None
        (notification,) = [n for n in sqlite_desk.recorder.select_notifications(result.position, 1)]
        assert notification.originator_id == ticket_id


def test_a_save_that_loses_its_version_race_fails_alone_while_the_rest_of_its_group_commits(
    sqlite_desk: TicketDesk, commits: list[str]
) -> None:
    setup = Desk(sqlite_desk)
    contested, other = setup.open("争用"), setup.open("旁观")
    version = sqlite_desk.get_ticket(contested).version
    before = sqlite_desk.log_position()
    del commits[:]

    first, second, bystander = _together(sqlite_desk, [
        lambda: sqlite_desk.post_reply(PostReply(ticket_id=contested, body="甲", expected_version=version), AGENT),
        lambda: sqlite_desk.post_reply(PostReply(ticket_id=contested, body="乙", expected_version=version), AGENT),
        lambda: sqlite_desk.post_reply(PostReply(ticket_id=other, body="丙"), AGENT),
    ])

    assert len(commits) == 1
    outcomes = [first, second]
    conflicts = [o for o in outcomes if isinstance(o, ConcurrencyConflict)]
    landed = [o for o in outcomes if isinstance(o, CommandResult)]
    assert (len(conflicts), len(landed)) == (1, 1), outcomes
    assert isinstance(bystander, CommandResult)
    bodies = _bodies(sqlite_desk.history(contested)[version:])
    assert len(bodies) == 1 and bodies[0] in ("甲", "乙")
    assert _bodies(sqlite_desk.history(other)) == ["丙"]
    # The rolled-back batch took no position: the log has no gap.
    assert sqlite_desk.log_position() == before + len(landed[0].events) + len(bystander.events)


def test_the_recorder_answers_a_duplicate_version_alone_with_an_integrity_error(sqlite_desk: TicketDesk) -> None:
    recorder = _recorder(sqlite_desk)
    a, b = Desk(sqlite_desk).open(), Desk(sqlite_desk).open()
    version = sqlite_desk.get_ticket(a).version
    topic = sqlite_desk.recorder.select_events(a, limit=1)[0].topic
    start = recorder.max_notification_id()

    def event(originator: Any, v: int) -> list[StoredEvent]:
        return [StoredEvent(originator_id=originator, originator_version=v, topic=topic, state=b"{}")]

    taken, duplicate, separate = _together(sqlite_desk, [
        lambda: recorder.insert_events(event(a, version + 1)),
        lambda: recorder.insert_events(event(a, version + 1) + event(a, version + 2)),
        lambda: recorder.insert_events(event(b, 99)),
    ])

    assert isinstance(duplicate, IntegrityError) != isinstance(taken, IntegrityError)
    good = taken if not isinstance(taken, IntegrityError) else duplicate
    # The saves joined the group in whatever order their threads ran: together they took the next
    # positions, with no gap where the refused one would have been.
    positions = sorted([*good, *separate])
    assert positions == list(range(start + 1, start + 1 + len(positions))) and len(list(separate)) == 1
    kept = [version + 1] if good is taken else [version + 1, version + 2]
    assert [e.originator_version for e in recorder.select_events(a, gt=version)] == kept


def test_a_failed_commit_answers_every_save_of_its_group_and_the_next_commit_works(
    sqlite_desk: TicketDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = _recorder(sqlite_desk)
    tickets = [Desk(sqlite_desk).open() for _ in range(3)]
    topic = recorder.select_events(tickets[0], limit=1)[0].topic
    start = recorder.max_notification_id()
    _fail_the_next_commit(monkeypatch)

    def insert(ticket_id: UUID) -> Callable[[], Any]:
        return lambda: recorder.insert_events(
            [StoredEvent(originator_id=ticket_id, originator_version=50, topic=topic, state=b"{}")])

    outcomes = _together(sqlite_desk, [insert(t) for t in tickets])

    assert all(isinstance(o, OperationalError) for o in outcomes), outcomes
    assert recorder.max_notification_id() == start  # nothing of the group was written
    assert list(insert(tickets[0])() or []) == [start + 1]  # the next leader starts on a fresh connection


def test_a_retried_create_in_the_same_group_is_answered_from_its_first_outcome(sqlite_desk: TicketDesk) -> None:
    setup = Desk(sqlite_desk)
    command = OpenTicket(subject="重复提交", requester_id=setup.customer_id, team_id=setup.team_id)

    one, two = _together(sqlite_desk, [
        lambda: sqlite_desk.open_ticket(command, setup.customer_caller),
        lambda: sqlite_desk.open_ticket(command, setup.customer_caller),
    ])

    assert isinstance(one, CommandResult) and isinstance(two, CommandResult), (one, two)
    assert one.object_id == two.object_id
    assert sorted([one.replayed, two.replayed]) == [False, True]
    assert len(sqlite_desk.history(one.object_id)) == max(one.version, two.version)


def test_a_retried_change_in_the_same_group_writes_once(sqlite_desk: TicketDesk) -> None:
    setup = Desk(sqlite_desk)
    ticket_id = setup.open()
    command = PostReply(ticket_id=ticket_id, body="只发一次")

    results = _together(sqlite_desk, [lambda: sqlite_desk.post_reply(command, AGENT)] * 2)

    assert all(isinstance(r, CommandResult) for r in results), results
    assert sorted(r.replayed for r in results) == [False, True]
    assert _bodies(sqlite_desk.history(ticket_id)) == ["只发一次"]


def test_a_leader_waits_for_the_commands_in_flight_and_commits_them_with_its_own(
    sqlite_desk: TicketDesk, commits: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = Desk(sqlite_desk)
    slow_tickets, quick_ticket = [setup.open("慢一"), setup.open("慢二")], setup.open("快")
    recorder = _recorder(sqlite_desk)
    monkeypatch.setattr(recorder, "max_wait", 60.0)  # only the commands in flight end the wait here
    in_flight, go = threading.Barrier(3), threading.Event()

    def slow(ticket_id: UUID) -> None:
        with recorder.preparing():
            in_flight.wait(30)
            go.wait(30)
            sqlite_desk.post_reply(PostReply(ticket_id=ticket_id, body="慢"), AGENT)

    def quick() -> None:
        with recorder.preparing():
            sqlite_desk.post_reply(PostReply(ticket_id=quick_ticket, body="快"), AGENT)

    del commits[:]
    slow_threads = [threading.Thread(target=slow, args=(t,)) for t in slow_tickets]
    for thread in slow_threads:
        thread.start()
    in_flight.wait(30)
    quick_thread = threading.Thread(target=quick)
    quick_thread.start()
    assert recorder.wait_for_queued(1)  # the quick save waits, as leader, for the slow commands
    assert commits == []
    go.set()
    for thread in [*slow_threads, quick_thread]:
        thread.join(30)

    assert len(commits) == 1 and recorder.group_stats.groups[-1] == 3
    assert recorder.group_stats.waits_cut_short == 0
    assert [_bodies(sqlite_desk.history(t)) for t in slow_tickets] == [["慢"], ["慢"]]
    assert _bodies(sqlite_desk.history(quick_ticket)) == ["快"]


def test_a_leader_waiting_for_its_siblings_is_woken_only_once_none_is_in_flight(
    sqlite_desk: TicketDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each sibling that queues its save, or ends without one, while others are still in flight leaves
    the waiting leader asleep: it is woken when the last one is done (or by a test counting the queue)."""
    setup = Desk(sqlite_desk)
    slow_tickets, quick_ticket = [setup.open("慢一"), setup.open("慢二"), setup.open("慢三")], setup.open("快")
    recorder = _recorder(sqlite_desk)
    monkeypatch.setattr(recorder, "max_wait", 60.0)
    woken_for_nothing: list[tuple[int, int]] = []
    notify_all = recorder._turn.notify_all

    def counting_notify_all() -> None:
        if not recorder._queue_watchers and recorder._preparing > 0:
            woken_for_nothing.append((recorder._preparing, len(recorder._waiting)))
        notify_all()

    monkeypatch.setattr(recorder._turn, "notify_all", counting_notify_all)
    in_flight = threading.Barrier(4)
    turns = [threading.Event() for _ in slow_tickets]

    def slow(index: int) -> None:
        with recorder.preparing():
            in_flight.wait(30)
            turns[index].wait(30)
            if index > 0:
                sqlite_desk.post_reply(PostReply(ticket_id=slow_tickets[index], body="慢"), AGENT)
            # the first ends without a save, as a refused command does

    slow_threads = [threading.Thread(target=slow, args=(i,)) for i in range(len(slow_tickets))]
    for thread in slow_threads:
        thread.start()
    in_flight.wait(30)
    quick = threading.Thread(target=lambda: sqlite_desk.post_reply(PostReply(ticket_id=quick_ticket, body="快"), AGENT))
    quick.start()
    assert recorder.wait_for_queued(1)
    turns[0].set()
    slow_threads[0].join(30)  # ended, two still in flight
    turns[1].set()
    assert recorder.wait_for_queued(2)  # (a test counting the queue is woken by each save)
    turns[2].set()
    for thread in [*slow_threads, quick]:
        thread.join(30)

    assert woken_for_nothing == []
    assert recorder.group_stats.groups[-1] == 3 and recorder.group_stats.waits_cut_short == 0
    assert [_bodies(sqlite_desk.history(t)) for t in slow_tickets] == [[], ["慢"], ["慢"]]


def test_commands_that_end_without_saving_stop_the_leader_waiting_for_them(
    sqlite_desk: TicketDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    ticket_id = Desk(sqlite_desk).open()
    recorder = _recorder(sqlite_desk)
    monkeypatch.setattr(recorder, "max_wait", 60.0)
    in_flight, refuse = threading.Barrier(3), threading.Event()

    def refused() -> None:
        with recorder.preparing():
            in_flight.wait(30)
            refuse.wait(30)  # then ends without a save, as a refused command does

    refused_threads = [threading.Thread(target=refused) for _ in range(2)]
    for thread in refused_threads:
        thread.start()
    in_flight.wait(30)
    saved: list[CommandResult] = []
    saver = threading.Thread(target=lambda: saved.append(
        sqlite_desk.post_reply(PostReply(ticket_id=ticket_id, body="照常"), AGENT)))
    saver.start()
    assert recorder.wait_for_queued(1)
    refuse.set()
    for thread in [*refused_threads, saver]:
        thread.join(30)

    assert len(saved) == 1 and _bodies(sqlite_desk.history(ticket_id)) == ["照常"]
    assert recorder.group_stats.waits_cut_short == 0  # the wait ended with the commands, not at max_wait


def test_a_command_alone_never_waits(sqlite_desk: TicketDesk, monkeypatch: pytest.MonkeyPatch) -> None:
    ticket_id = Desk(sqlite_desk).open()
    recorder = _recorder(sqlite_desk)
    monkeypatch.setattr(recorder, "max_wait", 60.0)
    for body in ("一", "二", "三"):
        sqlite_desk.handle(PostReply(ticket_id=ticket_id, body=body), AGENT)
    assert recorder.group_stats.waits_cut_short == 0
    assert _bodies(sqlite_desk.history(ticket_id)) == ["一", "二", "三"]


def test_a_command_through_handle_counts_as_in_flight_until_it_saves(sqlite_desk: TicketDesk) -> None:
    setup = Desk(sqlite_desk)
    ticket_id = setup.open()
    recorder = _recorder(sqlite_desk)
    seen: list[int] = []
    original = recorder.insert_events

    def spy(stored_events: Any, **kwargs: Any) -> Any:
        seen.append(recorder._preparing)
        return original(stored_events, **kwargs)

    recorder.insert_events = spy  # type: ignore[method-assign]
    sqlite_desk.handle(PostReply(ticket_id=ticket_id, body="经由 handle"), AGENT)
    assert seen == [1] and recorder._preparing == 0


def test_the_event_store_commits_with_synchronous_full(sqlite_desk: TicketDesk) -> None:
    Desk(sqlite_desk).open()
    recorder = _recorder(sqlite_desk)
    level = recorder._connection()._sqlite_conn.execute("PRAGMA synchronous").fetchone()[0]  # the leader's
    assert level == 2  # FULL


# A SIGKILL of serve under 32 clients (saves committed in groups): tests/faults/test_crash_trials.py.


def test_threads_asking_for_the_log_end_share_one_kept_connection_so_none_piles_up(sqlite_desk: TicketDesk) -> None:
    """The server's worker threads come and go (AnyIO retires idle ones): asking for the log's end from
    many short-lived threads opens one connection, not one per thread kept until the desk closes."""
    recorder = _recorder(sqlite_desk)
    recorder.max_notification_id()
    fds = len(os.listdir("/proc/self/fd"))
    ends: list[int] = []
    for _ in range(40):
        thread = threading.Thread(target=lambda: ends.append(recorder.max_notification_id()))
        thread.start()
        thread.join()
    assert ends == [ends[0]] * 40
    assert len(os.listdir("/proc/self/fd")) < fds + 10  # one connection per thread kept would be 80 more


def test_more_saves_than_one_group_takes_commit_in_turn_each_answered_with_its_own_events(
    sqlite_desk: TicketDesk, commits: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ticketflow.group_commit.MAX_BATCHES", 3)
    setup = Desk(sqlite_desk)
    tickets = [setup.open(f"工单 {n}") for n in range(8)]
    del commits[:]

    def reply(ticket_id: UUID) -> Callable[[], CommandResult]:
        return lambda: sqlite_desk.post_reply(PostReply(ticket_id=ticket_id, body=f"回复 {ticket_id}"), AGENT)

    results = _together(sqlite_desk, [reply(t) for t in tickets])

    assert all(isinstance(r, CommandResult) for r in results), results
    assert len(commits) == 3  # 3 + 3 + 2: each leader took at most MAX_BATCHES, then handed the lead on
    assert _recorder(sqlite_desk).group_stats.groups[-3:] == [3, 3, 2]
    for ticket_id, result in zip(tickets, results, strict=True):
        history = sqlite_desk.history(ticket_id)
        assert f"回复 {ticket_id}" in _bodies(history) and result.version == len(history)


def test_callers_waiting_for_their_commit_sleep_on_their_own_batch_not_on_the_shared_condition(
    sqlite_desk: TicketDesk,
) -> None:
    """A commit wakes its own group's callers and the next leader, not every queued thread: queued
    callers never wait on the recorder's condition (which only a leader counting its siblings and a
    test's ``wait_for_queued`` wait on)."""
    setup = Desk(sqlite_desk)
    tickets = [setup.open(f"工单 {n}") for n in range(6)]
    recorder = _recorder(sqlite_desk)
    before = {t: len(sqlite_desk.history(t)) for t in tickets}
    threads = [
        threading.Thread(target=lambda t=t: sqlite_desk.post_reply(PostReply(ticket_id=t, body="好"), AGENT))
        for t in tickets
    ]
    with recorder.held():
        for thread in threads:
            thread.start()
        assert recorder.wait_for_queued(len(threads))
        with recorder._turn:
            assert len(recorder._turn._waiters) == 0  # type: ignore[attr-defined]  # CPython's Condition
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert all(len(sqlite_desk.history(t)) > before[t] for t in tickets)  # every reply written


def test_the_erasure_watch_learns_each_committed_save_before_its_caller_wakes_and_never_a_refused_one(
    sqlite_desk: TicketDesk,
) -> None:
    setup = Desk(sqlite_desk)
    contested, other = setup.open("争用"), setup.open("旁观")
    version = sqlite_desk.get_ticket(contested).version
    recorder = _recorder(sqlite_desk)
    told: list[tuple[list[int], list[str], bool]] = []
    watch_committed = recorder.on_committed
    assert watch_committed is not None  # the desk wires its erasure watch in
    waking: list[int] = []

    def committed(positions: Any, topics: Any) -> None:
        told.append((list(positions), list(topics), bool(waking)))
        watch_committed(positions, topics)

    recorder.on_committed = committed
    original_notify = sqlite_desk._notify

    def notify(recordings: Any) -> None:
        waking.append(1)  # a caller runs again (its save's notification)
        original_notify(recordings)

    sqlite_desk._notify = notify  # type: ignore[method-assign]
    results = _together(sqlite_desk, [
        lambda: sqlite_desk.post_reply(PostReply(ticket_id=contested, body="甲", expected_version=version), AGENT),
        lambda: sqlite_desk.post_reply(PostReply(ticket_id=contested, body="乙", expected_version=version), AGENT),
        lambda: sqlite_desk.post_reply(PostReply(ticket_id=other, body="丙"), AGENT),
    ])

    landed = [r for r in results if isinstance(r, CommandResult)]
    assert len(landed) == 2  # one of the contested replies was refused
    assert len(told) == 2 and not any(woken for _, _, woken in told)  # told before any caller ran on
    assert sorted(p for positions, _, _ in told for p in positions) == sorted(
        p for r in landed for p in range(r.position - len(r.events) + 1, r.position + 1)
    )
    assert all(topic.endswith(name) for positions, topics, _ in told for topic, name in zip(
        topics, ("Ticket.Replied", "Ticket.MarkedOpen"), strict=False))


def test_a_failing_cleanup_after_a_failed_commit_still_answers_every_save_with_the_error(
    sqlite_desk: TicketDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = _recorder(sqlite_desk)
    tickets = [Desk(sqlite_desk).open() for _ in range(3)]
    topic = recorder.select_events(tickets[0], limit=1)[0].topic
    start = recorder.max_notification_id()
    def cleanup_fails(exc: BaseException) -> BaseException:
        raise OSError("cannot close the writer")

    _fail_the_next_commit(monkeypatch)
    monkeypatch.setattr(recorder, "_group_failed", cleanup_fails)

    outcomes = _together(sqlite_desk, [
        (lambda t=t: recorder.insert_events(
            [StoredEvent(originator_id=t, originator_version=50, topic=topic, state=b"{}")])) for t in tickets
    ])

    assert all(isinstance(o, OperationalError) for o in outcomes), outcomes  # none told it was saved
    assert recorder.max_notification_id() == start


def test_an_observer_of_committed_saves_that_fails_never_turns_written_saves_into_errors(
    sqlite_desk: TicketDesk, caplog: pytest.LogCaptureFixture
) -> None:
    setup = Desk(sqlite_desk)
    tickets = [setup.open(f"工单 {n}") for n in range(3)]
    recorder = _recorder(sqlite_desk)

    def failing(positions: Any, topics: Any) -> None:
        raise RuntimeError("observer broke")

    recorder.on_committed = failing
    results = _together(sqlite_desk, [
        (lambda t=t: sqlite_desk.post_reply(PostReply(ticket_id=t, body="已处理"), AGENT)) for t in tickets
    ])

    assert all(isinstance(r, CommandResult) for r in results), results
    assert all("已处理" in _bodies(sqlite_desk.history(t)) for t in tickets)
    assert "the observer of committed saves failed" in caplog.text


def test_a_leader_holds_its_commit_unsettled_until_the_observer_was_told(sqlite_desk: TicketDesk) -> None:
    """``settle`` returns only once no committed group waits for ``on_committed``: the leader holds the
    lock ``settle`` takes from before its commit until the observer was told."""
    recorder = _recorder(sqlite_desk)
    told: list[tuple[bool, Sequence[int]]] = []
    observer = recorder.on_committed
    assert observer is not None

    def telling(positions: Sequence[int], topics: Sequence[str]) -> None:
        told.append((recorder._telling.locked(), positions))
        observer(positions, topics)

    recorder.on_committed = telling
    try:
        Desk(sqlite_desk).open()
    finally:
        recorder.on_committed = observer
    assert told and all(locked for locked, _ in told)
    assert not recorder._telling.locked()
    recorder.settle()  # (returns at once: nothing committing)
