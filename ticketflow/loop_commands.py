"""Commands on the event loop: a command runs in a greenlet on the API's event-loop thread, and its save
waits for its group commit without a thread of its own.

Why. On a worker thread each command handed the GIL back and forth with the event loop and with the
other command threads: every blocking call (a SQLite statement, ``os.urandom``, an HMAC, a pipe write)
released it, and with 16 command threads waiting for it each release was a hand-over (28 futex calls
per command, a sixth of ``serve``'s CPU in the kernel, a tenth more in the thread pool's futures).

How. :func:`run_on_loop` runs the command's function in a :class:`CommandGreenlet` on the loop's
thread. The command decides as before (its reads are SQLite's: microseconds on the page cache); when
its save reaches the group commit (``GroupCommit.insert_events``), :func:`on_loop` is true and the
batch goes to the recorder's writer thread; :func:`wait_for` switches back to the event loop, which
serves other requests meanwhile, until the writer resolved the batch's future; the loop then switches
back into the greenlet, which goes on from the save (the log's callbacks, the cache, the answer).
Everything the loop decides while the writer commits forms the writer's next group.

What code running inside may not do: wait for something another command greenlet does (they all run
on one thread: a ``threading`` lock held across a save would deadlock it), or rely on a thread-local
(every greenlet of the loop shares the thread's). A pause is :func:`pause`, not ``time.sleep``.
PostgreSQL's reads are network round trips: there commands stay on threads (``api.command_routes``).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable
from typing import Any

import greenlet

log = logging.getLogger(__name__)


class CommandGreenlet(greenlet.greenlet):  # type: ignore[misc]
    """A command running on the event loop (see the module doc)."""


class _Wait:
    """What a command greenlet hands the loop when it waits: the future to wait for."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future


def on_loop() -> bool:
    """Whether the caller is a command running on the event loop (:func:`run_on_loop`)."""
    return isinstance(greenlet.getcurrent(), CommandGreenlet)


def wait_for(future: asyncio.Future[Any]) -> Any:
    """From a command on the loop: give the loop back until ``future`` is done; its result (or its
    exception, raised here)."""
    return greenlet.getcurrent().parent.switch(_Wait(future))


def pause(seconds: float) -> None:
    """Sleep ``seconds``: on the loop, without holding it up (other requests go on); elsewhere ``time.sleep``."""
    if on_loop():
        wait_for(asyncio.ensure_future(asyncio.sleep(seconds)))
    else:
        time.sleep(seconds)


async def run_on_loop(fn: Callable[..., Any], *args: Any, ended: Callable[[], None] | None = None) -> Any:
    """Run ``fn(*args)`` as a command on this event loop; its result, or its exception raised here.
    ``ended`` is called once the command has ended, whichever way.

    Cancelled while the command waits (the client went away, a forced shutdown), the caller gets the
    cancellation at once, as it would for a thread, and the command still runs to its end (its save
    may be committing): a task of the loop carries it on."""
    command = CommandGreenlet(fn)
    command.gr_context = contextvars.copy_context()  # a new greenlet's own is empty: the request's (its id in logs)
    carried_on = False
    try:
        outcome = command.switch(*args)
        while isinstance(outcome, _Wait):
            try:
                await asyncio.shield(outcome.future)
            except asyncio.CancelledError:
                if not outcome.future.done():  # the caller was cancelled, not the wait
                    asyncio.get_running_loop().create_task(_carry_on(command, outcome, ended))
                    carried_on = True
                    raise
            except BaseException:  # noqa: BLE001, S110 - the wait's own error: _resumed hands it to the command
                pass
            outcome = _resumed(command, outcome.future)
        return outcome
    finally:
        if ended is not None and not carried_on:
            ended()


def _resumed(command: CommandGreenlet, future: asyncio.Future[Any]) -> Any:
    """Switch back into ``command`` with what the future it waited for gave (its result, or its error
    raised there); what the command hands the loop next."""
    if future.cancelled():
        return command.throw(asyncio.CancelledError())
    error = future.exception()
    return command.throw(error) if error is not None else command.switch(future.result())


async def _carry_on(command: CommandGreenlet, outcome: Any, ended: Callable[[], None] | None) -> None:
    """The rest of a command whose caller was cancelled: its answer goes nowhere; an error is logged."""
    try:
        while isinstance(outcome, _Wait):
            await asyncio.wait([outcome.future])
            outcome = _resumed(command, outcome.future)
    except Exception:
        log.exception("a command whose caller was cancelled failed after its save")
    finally:
        if ended is not None:
            ended()


__all__ = ["CommandGreenlet", "on_loop", "pause", "run_on_loop", "wait_for"]
