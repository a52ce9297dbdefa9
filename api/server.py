"""The HTTP protocols ``ticketflow serve`` runs: uvicorn's, with Nagle's algorithm off.

With several workers, uvicorn (0.54, upstream issue Kludex/uvicorn#3149) hands asyncio a
listening socket without the TCP protocol flag, so accepted connections keep Nagle's
algorithm and each keep-alive response waits ~40 ms for the client's delayed ACK.
Turning TCP_NODELAY on per connection removes that wait whatever the worker count.

``httptools`` (the C parser of uvicorn's "standard" extra) is used when installed — it is a
runtime dependency — and the pure-Python ``h11`` otherwise (``TICKETFLOW_HTTP_PARSER=h11``
forces it, e.g. to compare the two).
"""

from __future__ import annotations

import importlib.util
import socket
from asyncio import BaseTransport
from typing import Literal

from uvicorn.protocols.http.h11_impl import H11Protocol

HttpParser = Literal["auto", "h11", "httptools"]


def _no_delay(transport: BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: BaseTransport) -> None:
        _no_delay(transport)
        super().connection_made(transport)  # type: ignore[arg-type]


if importlib.util.find_spec("httptools") is not None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class NoDelayHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport: BaseTransport) -> None:
            _no_delay(transport)
            super().connection_made(transport)  # type: ignore[arg-type]


def protocol(parser: HttpParser) -> str:
    """The dotted path of the protocol class uvicorn should run."""
    if parser == "httptools" or (parser == "auto" and "NoDelayHttpToolsProtocol" in globals()):
        if "NoDelayHttpToolsProtocol" not in globals():
            raise RuntimeError("TICKETFLOW_HTTP_PARSER=httptools, but httptools is not installed")
        return "api.server:NoDelayHttpToolsProtocol"
    return "api.server:NoDelayH11Protocol"
