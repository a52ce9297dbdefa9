"""The doorbell between ``ticketflow serve`` and the view process it runs beside itself on SQLite.

On SQLite ``serve`` keeps the views (and the automation and the sealer, which follow them) in a
child process, ``ticketflow project``, so they run on another core than the API (see
``ticketflow_cli/view_process.py``). SQLite has no ``NOTIFY``: alone, that process would find new
events only at its next poll (``POLL_SECONDS``), and a read waiting for its own write
(``min_position``) could not ask it to apply what is waiting at once. The doorbell is a pipe from
the API process to the view process, one byte a message:

* :data:`SAVED` after every save: the view worker wakes at once, as an in-process worker does;
* :data:`HURRY` when a reader waits for a position: the worker applies what is waiting without
  gathering more (``ViewWorker.hurry``).

The view process reads the pipe in a thread (:func:`answer`); the end of the pipe (the API
process is gone, killed or not) stops it: a view process never outlives its ``serve``.

``serve --workers N`` on SQLite runs N API processes (uvicorn starts each from a fresh interpreter,
which inherits no descriptor), so there the pipe is a named one (a FIFO in a private directory):
the API processes open its path, handed to them in :data:`PATH_VARIABLE`, and ring it the same way
(:meth:`Doorbell.at`); its end comes once ``serve`` and every worker closed it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

SAVED = b"s"
HURRY = b"h"
#: The environment variable that hands the view process the pipe's reading end (a file descriptor
#: number); set by ``serve`` for its child only.
FD_VARIABLE = "_TICKETFLOW_DOORBELL_FD"  # (not a setting: no TICKETFLOW_ prefix, no unknown-variable warning)
#: The environment variable that hands each ``serve --workers N`` worker the named pipe's path (set by
#: ``serve`` for its workers only): a worker's app then rings it and keeps no views of its own.
PATH_VARIABLE = "_TICKETFLOW_DOORBELL_PATH"


class Doorbell:
    """The API process's end: rings without ever blocking. A full pipe (the view process is busy and
    has not read yet) already holds a ring it will read, so a byte that does not fit is dropped."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self._ringing = False  # a SAVED ring is due at the end of this turn of the event loop

    @classmethod
    def at(cls, path: str) -> Doorbell:
        """Ring the named pipe at ``path`` (a ``serve --workers N`` worker). Raises OSError when it cannot
        be opened (no view process holds it open: ``serve`` is gone)."""
        return cls(os.open(path, os.O_WRONLY | os.O_NONBLOCK))

    def saved(self, *_: object) -> None:
        """Ring for a save. On the event loop (commands run there on SQLite) one ring goes at the end of
        the loop's turn for every save of the turn: the commands a group commit answered resume one
        after the other in one turn, and the view worker reads everything committed anyway (a ring
        each was a pipe write for ``serve`` and a wake-up for the view process per command)."""
        loop = asyncio._get_running_loop()
        if loop is None:
            self._send(SAVED)
        elif not self._ringing:
            self._ringing = True
            loop.call_soon(self._ring_saved)

    def _ring_saved(self) -> None:
        self._ringing = False
        self._send(SAVED)

    def hurry(self) -> None:
        self._send(HURRY)

    def close(self) -> None:
        """Close the API process's end: the view process reads the pipe's end and stops. Later rings do
        nothing (the descriptor's number, free again, may name another file by then)."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def _send(self, message: bytes) -> None:
        try:
            os.write(self.fd, message)
        except OSError:  # full of unread rings (it wakes anyway), or closed: serve is stopping
            pass


def answer(fd: int, ring: Callable[[], None], hurry: Callable[[], None], gone: Callable[[], None]) -> threading.Thread:
    """The view process's end: a thread that calls ``ring`` for saves and ``hurry`` for waiting
    readers (one call per read of the pipe, however many bytes it held), and ``gone`` once the pipe
    ends (the API process exited)."""

    def run() -> None:
        while True:
            try:
                data = os.read(fd, 4096)  # (a signal's EINTR is retried by Python itself)
            except OSError:
                log.warning("views: the doorbell from serve failed; stopping", exc_info=True)
                data = b""
            if not data:
                gone()
                return
            if HURRY in data:
                hurry()
            else:
                ring()

    thread = threading.Thread(target=run, name="views-doorbell", daemon=True)
    thread.start()
    return thread


def ignore_stopping_signals() -> None:
    """In the view process: only the end of the pipe stops it (``serve`` stopped, however: Ctrl-C, SIGTERM,
    killed), so what serve's API commits while it drains is sealed. A signal that stops serve (a
    terminal's Ctrl-C, systemd's SIGTERM to the whole unit, a hang-up) reaches this process too and
    does nothing; SIGKILL to the group kills both, as it killed the views' threads. A handler that does
    nothing, not SIG_IGN, which a process this one starts would inherit."""
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, lambda *_: None)


def doorbell_path() -> str | None:
    """The named pipe this ``serve --workers N`` worker rings (None: not such a worker)."""
    return os.environ.get(PATH_VARIABLE) or None


def doorbell_fd() -> int | None:
    """The pipe's reading end this process was given by ``serve`` (None: started by hand)."""
    value = os.environ.get(FD_VARIABLE)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        return None
