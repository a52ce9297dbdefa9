"""The HTTP protocols ``ticketflow serve`` runs: uvicorn's, with Nagle's algorithm off.

With several workers, uvicorn (0.54, upstream issue Kludex/uvicorn#3149) hands asyncio a
listening socket without the TCP protocol flag, so accepted connections keep Nagle's
algorithm and each keep-alive response waits ~40 ms for the client's delayed ACK.
Turning TCP_NODELAY on per connection removes that wait whatever the worker count.

``serve --workers N`` runs :class:`ReusePortWorkers`, uvicorn's multiprocess supervisor with one
listening socket per worker (``SO_REUSEPORT``) instead of one shared by all: with a shared socket
every idle worker is woken for a new connection and the first to run takes it, so when many clients
connect at once one worker took almost all of them (78–87 % of serve's CPU in one of two workers, 32
keep-alive clients). With a socket each, Linux hashes every new connection (its addresses and ports)
to one of the listening sockets, so connections spread over the workers whatever their timing.

``httptools`` (the C parser of uvicorn's "standard" extra, a runtime dependency) by default;
``TICKETFLOW_HTTP_PARSER=h11`` runs the pure-Python parser instead (e.g. to compare the two).
"""

from __future__ import annotations

import logging
import pickle
import socket
import sys
import time
from asyncio import AbstractEventLoop, BaseTransport
from typing import Any

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess
from uvicorn.supervisors.multiprocess import Process

from api.middleware import ARRIVED

logger = logging.getLogger("uvicorn.error")


def _no_delay(transport: BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: BaseTransport) -> None:
        _no_delay(transport)
        super().connection_made(transport)  # type: ignore[arg-type]


#: The most bytes a connection keeps back until the end of the loop's turn (a streamed body goes on once past it).
KEEP_AT_MOST = 65_536


class OneSendTransport:
    """A connection's transport whose writes made in one turn of the event loop go out as one send.

    uvicorn writes a response's status line and headers, then its body: two ``send`` calls, each a trip
    through the kernel's TCP stack (on loopback it also delivers to the client and wakes it), the
    biggest single item of ``serve``'s own CPU in py-spy (``RequestResponseCycle.send``, 9 %). Here the
    first write of a turn is kept and the loop is asked to send what the turn wrote once it is over
    (``call_soon``: after the callbacks already due, so before the loop next waits for I/O). Closing
    sends what is kept first. Everything else is the transport's own."""

    __slots__ = ("_kept", "_loop", "_size", "_transport")

    def __init__(self, transport: Any, loop: AbstractEventLoop) -> None:
        self._transport, self._loop = transport, loop
        self._kept: list[bytes] | None = None
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        kept = self._kept
        if kept is None:
            self._kept, self._size = [bytes(data)], len(data)
            self._loop.call_soon(self._send)
        else:
            kept.append(bytes(data))
            self._size += len(data)
            if self._size > KEEP_AT_MOST:  # a body streamed without a pause: on to the socket's own buffer
                self._send()

    def _send(self) -> None:
        kept, self._kept = self._kept, None  # (the turn's call_soon finds nothing left after an early send)
        if kept and not self._transport.is_closing():
            self._transport.write(kept[0] if len(kept) == 1 else b"".join(kept))

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def close(self) -> None:
        self._send()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: BaseTransport) -> None:
        _no_delay(transport)
        super().connection_made(OneSendTransport(transport, self.loop))  # type: ignore[arg-type]

    def on_message_begin(self) -> None:
        """A request begins: note when it came in (``api.middleware.ARRIVED``), as its bytes are read,
        before the loop runs the requests ahead of it."""
        super().on_message_begin()
        self.scope["state"][ARRIVED] = time.monotonic()


_PROTOCOLS = {
    "auto": "api.server:NoDelayHttpToolsProtocol",
    "httptools": "api.server:NoDelayHttpToolsProtocol",
    "h11": "api.server:NoDelayH11Protocol",
}


def protocol(parser: str) -> str:
    """The dotted path of the protocol class uvicorn should run (``parser``: the setting)."""
    return _PROTOCOLS[parser]


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET  # as uvicorn's Config.bind_socket decides


def address_is_free(host: str, port: int) -> None:
    """Raise OSError when something already listens on ``host:port``. A socket bound without
    ``SO_REUSEPORT`` cannot share the address, so this also refuses a second ``serve --workers N`` on a
    port the first one holds (its reuse-port sockets would otherwise join the first one's silently)."""
    with socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP) as probe:
        # as the workers' own: a connection of a previous run in TIME_WAIT is no obstacle
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` with ``SO_REUSEPORT``, to be handed to one worker (which listens)."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


PING_SLICE = 0.25  # seconds between looks at whether a pinged worker still lives


def answers(process: Process, timeout: float) -> bool:
    """Whether a worker lives and answers the supervisor's ping within ``timeout`` seconds.

    uvicorn's own ping waits the whole timeout for an answer, and a worker killed while a ping is out
    never closes the pipe (the supervisor holds both of its ends), so the dead worker was replaced
    only when the timeout ran out: with the 120 s ``serve`` gives a starting worker, two minutes
    with one worker serving. Here the wait is cut into slices and ends as soon as the worker is gone.
    """
    if not process.process.is_alive():
        return False
    try:
        process.parent_conn.send(b"ping")
        deadline = time.monotonic() + timeout
        while not process.parent_conn.poll(max(0.0, min(PING_SLICE, deadline - time.monotonic()))):
            if time.monotonic() >= deadline or not process.process.is_alive():
                return False
        process.parent_conn.recv()
        return True
    except (OSError, EOFError, pickle.UnpicklingError):
        return False


class ReusePortWorkers(Multiprocess):
    """uvicorn's supervisor (restart of a dead or hung worker, graceful stop on SIGTERM/SIGINT, SIGHUP
    restart, SIGTTIN/SIGTTOU), where every worker it starts gets a socket of its own.

    uvicorn builds each worker as ``Process(self.config, self.sockets)`` and starts it at once, so
    ``sockets`` here binds a fresh socket each time it is read. The child gets its own copy of the socket
    when it starts; after each supervisor step the parent closes its copies, so a worker's socket
    closes with the worker: a listening socket nobody accepts on would still be given its share of
    the new connections by the kernel, and they would hang.
    """

    def __init__(self, config: Config) -> None:
        self._handed: list[socket.socket] = []
        super().__init__(config, sockets=[])

    @property
    def sockets(self) -> list[socket.socket]:
        sock = reuse_port_socket(self.config.host, self.config.port)
        self._handed.append(sock)
        return [sock]

    @sockets.setter
    def sockets(self, _unused: list[socket.socket]) -> None:
        pass  # uvicorn's __init__ stores the shared socket list; there is none

    def _close_handed(self) -> None:
        while self._handed:
            self._handed.pop().close()

    def run(self) -> None:
        try:
            address_is_free(self.config.host, self.config.port)
        except OSError as exc:
            logger.error(exc)
            sys.exit(STARTUP_FAILURE)
        try:
            super().run()
        finally:
            self._close_handed()

    def init_processes(self) -> None:
        try:
            super().init_processes()
        finally:
            self._close_handed()

    def keep_subprocess_alive(self) -> None:
        """uvicorn's step (replace each worker that is dead or does not answer a ping within the
        healthcheck timeout), with :func:`answers` as the ping."""
        try:
            if self.should_exit.is_set():
                return
            for idx, process in enumerate(self.processes):
                if answers(process, self.config.timeout_worker_healthcheck):
                    continue
                process.kill()  # hung or dead
                process.join()
                if process.exitcode == STARTUP_FAILURE:  # the app or socket is broken: a restart fails alike
                    logger.error(f"Child process [{process.pid}] failed to start, stopping the parent process.")
                    self.should_exit.set()
                    return
                if self.should_exit.is_set():
                    return
                logger.info(f"Child process [{process.pid}] died")
                process = Process(self.config, self.sockets)
                process.start()
                self.processes[idx] = process
        finally:
            self._close_handed()

    def restart_all(self) -> None:
        try:
            super().restart_all()
        finally:
            self._close_handed()

    def handle_ttin(self) -> None:
        try:
            super().handle_ttin()
        finally:
            self._close_handed()
