"""Commands on the event loop (ticketflow/loop_commands.py): a command runs in a greenlet on the loop,
its save goes to the group commit's writer thread, and the loop serves other work until it is committed.

The writer is held at a gate before each commit (a commit on the loop's own thread fails the test at
once): what is asserted is what queued while the writer was held, never time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import pytest
from eventsourcing.persistence import InterfaceError

from tests.storage.test_group_commit import _recorder, commits, sqlite_desk  # noqa: F401 - fixtures used by name
from tests.support import AGENT, Desk
from ticketflow.application import CommandResult, TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import PostReply
from ticketflow.config import Settings
from ticketflow.errors import ConcurrencyConflict
from ticketflow.group_commit import GroupCommitRecorder
from ticketflow.loop_commands import on_loop, pause, run_on_loop

T = TypeVar("T")


@pytest.fixture
def desk(sqlite_desk: TicketDesk) -> TicketDesk:  # noqa: F811 - the group commit tests' fixture
    return sqlite_desk


def _reply(desk: TicketDesk, ticket_id: UUID, body: str, version: int | None = None) -> Callable[[], CommandResult]:
    return lambda: desk.handle(PostReply(ticket_id=ticket_id, body=body, expected_version=version), AGENT)


def _bodies(events: Any) -> list[str]:
    return [e.body for e in events if getattr(e, "body", None) is not None]


async def _outcome(work: Awaitable[T]) -> T | BaseException:
    try:
        return await work
    except Exception as exc:  # noqa: BLE001 - the outcome under test
        return exc


class _Gate:
    """Holds the writer before each commit until opened (called on the event loop's thread)."""

    def __init__(self, recorder: GroupCommitRecorder) -> None:
        self.recorder, self.opened, self.loop_thread = recorder, threading.Event(), threading.current_thread()
        original = recorder._commit_group

        def held(group: list[Any]) -> None:
            if threading.current_thread() is self.loop_thread:
                raise AssertionError("a group was committed on the event loop's own thread")
            assert self.opened.wait(30), "the writer was held for 30 s"
            original(group)

        recorder._commit_group = held  # type: ignore[method-assign]

    def acquire(self) -> None:
        self.opened.clear()

    def release(self) -> None:
        self.opened.set()


def _gate(desk: TicketDesk) -> _Gate:
    return _Gate(_recorder(desk))


def _while_the_writer_is_held(desk: TicketDesk, calls: list[Callable[[], Any]],
                              meanwhile: Callable[[], Awaitable[None]] | None = None) -> list[Any]:
    """Start every call as a command on a fresh event loop while the writer cannot commit; once each has
    queued its save (one loop turn: a command runs to its save without giving the loop back), run
    ``meanwhile`` on the loop, let the writer go, and return each call's outcome."""

    async def main() -> list[Any]:
        lock = _gate(desk)
        lock.acquire()
        try:
            tasks = [asyncio.ensure_future(_outcome(run_on_loop(call))) for call in calls]
            await asyncio.sleep(0)  # every command ran up to its save
            assert not any(task.done() for task in tasks)  # ... and waits for the writer
            if meanwhile is not None:
                await meanwhile()
        finally:
            lock.release()
        return list(await asyncio.gather(*tasks))

    return asyncio.run(main())


def test_commands_that_queue_while_the_writer_commits_share_its_next_commit(
    desk: TicketDesk, commits: list[str],  # noqa: F811 - the group commit tests' fixture
) -> None:
    setup = Desk(desk)
    tickets = [setup.open(f"工单 {n}") for n in range(8)]
    before = desk.log_position()
    del commits[:]

    results = _while_the_writer_is_held(desk, [_reply(desk, t, f"已收到 {t}") for t in tickets])

    assert all(isinstance(r, CommandResult) for r in results), results
    # The writer took what was queued when it started (one save or more), then everything queued
    # meanwhile as one group: never a commit per command.
    assert 1 <= len(commits) <= 2 and set(commits) == {"ticketflow-group-commit"}
    written = sum(len(r.events) for r in results)
    assert desk.log_position() == before + written
    assert sorted(r.position for r in results) == sorted({r.position for r in results})
    for ticket_id, result in zip(tickets, results, strict=True):
        history = desk.history(ticket_id)
        assert _bodies(history) == [f"已收到 {ticket_id}"]
        assert result.version == len(history)


def test_the_loop_serves_other_work_while_a_command_waits_for_its_commit(desk: TicketDesk) -> None:
    ticket = Desk(desk).open()
    served: list[int] = []

    async def other_work() -> None:
        for turn in range(50):  # fifty turns of the loop while the command's save waits
            await asyncio.sleep(0)
            served.append(turn)

    (result,) = _while_the_writer_is_held(desk, [_reply(desk, ticket, "稍等")], meanwhile=other_work)

    assert served == list(range(50))
    assert isinstance(result, CommandResult) and _bodies(desk.history(ticket)) == ["稍等"]


def test_a_command_on_the_loop_that_loses_its_version_race_fails_alone(desk: TicketDesk) -> None:
    setup = Desk(desk)
    contested, other = setup.open("争用"), setup.open("旁观")
    version = desk.get_ticket(contested).version
    before = desk.log_position()

    first, second, bystander = _while_the_writer_is_held(desk, [
        _reply(desk, contested, "甲", version), _reply(desk, contested, "乙", version), _reply(desk, other, "丙")])

    outcomes = [first, second]
    assert sum(isinstance(o, ConcurrencyConflict) for o in outcomes) == 1, outcomes
    (landed,) = [o for o in outcomes if isinstance(o, CommandResult)]
    assert isinstance(bystander, CommandResult)
    bodies = _bodies(desk.history(contested)[version:])
    assert len(bodies) == 1 and bodies[0] in ("甲", "乙")
    assert desk.log_position() == before + len(landed.events) + len(bystander.events)  # no gap


def test_a_command_whose_caller_is_cancelled_still_saves_and_ends(desk: TicketDesk) -> None:
    ticket = Desk(desk).open()
    seen: list[int] = []
    desk.on_saved(seen.append)
    ended: list[bool] = []

    async def main() -> None:
        lock = _gate(desk)
        lock.acquire()
        try:
            caller = asyncio.ensure_future(run_on_loop(_reply(desk, ticket, "客户已挂断"), ended=lambda: ended.append(True)))
            await asyncio.sleep(0)  # the command waits for the writer
            caller.cancel()
            with pytest.raises(asyncio.CancelledError):
                await caller  # the caller is told at once ...
            assert not ended
        finally:
            lock.release()
        for _ in range(10_000):  # ... and the command goes on to its end on the loop
            if ended:
                break
            await asyncio.sleep(0.001)

    asyncio.run(main())

    assert ended == [True]
    assert _bodies(desk.history(ticket)) == ["客户已挂断"]
    assert seen and seen[-1] == desk.log_position()  # the save's callbacks ran


def test_closing_the_desk_commits_what_the_loop_queued_then_refuses_its_saves(tmp_path: Path, clock: FakeClock) -> None:
    desk = TicketDesk(Settings(data_dir=tmp_path / "data"), clock=clock)
    ticket = Desk(desk).open()
    recorder = _recorder(desk)

    async def main() -> tuple[Any, Any]:
        gate = _gate(desk)
        gate.acquire()
        try:
            queued = asyncio.ensure_future(_outcome(run_on_loop(_reply(desk, ticket, "关门前"))))
            await asyncio.sleep(0)
            stopping = asyncio.ensure_future(asyncio.to_thread(recorder.stop_loop_writer))
            await asyncio.sleep(0.01)  # (only gives stop_loop_writer a chance to queue its end first)
        finally:
            gate.release()
        await stopping
        late = await _outcome(run_on_loop(_reply(desk, ticket, "关门后")))
        return await queued, late

    try:
        before, after = asyncio.run(main())
        assert isinstance(before, CommandResult)
        assert isinstance(after, InterfaceError) and "closed" in str(after)
        assert _bodies(desk.history(ticket)) == ["关门前"]
    finally:
        desk.close()
    assert not [t for t in threading.enumerate() if t.name == "ticketflow-group-commit"]


def test_a_pause_on_the_loop_gives_the_loop_back_and_elsewhere_sleeps() -> None:
    turns: list[int] = []

    def command() -> bool:
        pause(0.01)
        return on_loop()

    async def main() -> tuple[bool, list[int]]:
        async def count() -> None:
            while len(turns) < 3:
                turns.append(len(turns))
                await asyncio.sleep(0)

        counter = asyncio.ensure_future(count())
        result = await run_on_loop(command)
        await counter
        return result, list(turns)

    assert asyncio.run(main()) == (True, [0, 1, 2])
    assert not on_loop()
    pause(0)  # off the loop: a plain sleep


def test_the_writer_waits_for_company_only_under_load_and_never_for_a_command_alone(
    desk: TicketDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    from ticketflow import group_commit

    slept: list[float] = []
    frozen = 1000.0  # the writer's clock stands still: each wait is the whole delay
    monkeypatch.setattr(group_commit, "time", types.SimpleNamespace(sleep=slept.append, monotonic=lambda: frozen))
    setup = Desk(desk)
    tickets = [setup.open(f"工单 {n}") for n in range(4)]

    async def one_at_a_time() -> None:
        for ticket in tickets:
            await run_on_loop(_reply(desk, ticket, "一个一个来"))

    asyncio.run(one_at_a_time())
    assert slept == []  # each commit had one save: nobody waited

    _while_the_writer_is_held(desk, [_reply(desk, t, "一起来") for t in tickets])  # a group with company
    asyncio.run(one_at_a_time())
    delay = min(_recorder(desk).max_wait, group_commit.LOOP_COMMIT_DELAY)
    assert slept and slept == [pytest.approx(delay)] * len(slept), slept  # under load the writer gave the loop's next commands time to join
    assert all(_bodies(desk.history(t)) == ["一个一个来", "一起来", "一个一个来"] for t in tickets)


def test_under_load_the_writer_paces_its_commits_from_the_last_ones_start(
    desk: TicketDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wait counts from when the last commit began: what the loop decided while it was written
    already waited that long (commits are paced, not each delayed by a whole wait)."""
    import types

    from ticketflow import group_commit

    slept: list[float] = []
    ticks = iter(range(1000, 10_000))  # a second passes between any two looks at the writer's clock
    monkeypatch.setattr(
        group_commit, "time", types.SimpleNamespace(sleep=slept.append, monotonic=lambda: float(next(ticks)))
    )
    setup = Desk(desk)
    tickets = [setup.open(f"工单 {n}") for n in range(4)]
    _while_the_writer_is_held(desk, [_reply(desk, t, "一起来") for t in tickets])  # a group with company

    async def one_at_a_time() -> None:
        for ticket in tickets:
            await run_on_loop(_reply(desk, ticket, "一个一个来"))

    asyncio.run(one_at_a_time())
    assert slept == []  # the last commit began long enough ago: no wait at all
    assert all(_bodies(desk.history(t)) == ["一起来", "一个一个来"] for t in tickets)


def test_a_command_on_the_loop_sees_the_context_of_the_request_it_serves() -> None:
    """The request's context variables (its id in log lines, when it came in) reach the command: a new
    greenlet's own context would be empty."""
    import contextvars

    request = contextvars.ContextVar[str | None]("request", default=None)

    async def main() -> tuple[str | None, str | None]:
        request.set("请求 1")
        seen = await run_on_loop(request.get)
        return seen, request.get()

    assert asyncio.run(main()) == ("请求 1", "请求 1")
