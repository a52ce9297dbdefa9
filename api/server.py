"""The HTTP protocols ``ticketflow serve`` runs: uvicorn's, with Nagle's algorithm off.

With several workers, uvicorn (0.54, upstream issue Kludex/uvicorn#3149) hands asyncio a
listening socket without the TCP protocol flag, so accepted connections keep Nagle's
algorithm and each keep-alive response waits ~40 ms for the client's delayed ACK.
Turning TCP_NODELAY on per connection removes that wait whatever the worker count.

``httptools`` (the C parser of uvicorn's "standard" extra, a runtime dependency) by default;
``TICKETFLOW_HTTP_PARSER=h11`` runs the pure-Python parser instead (e.g. to compare the two).
"""

from __future__ import annotations

import socket
from asyncio import BaseTransport

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def _no_delay(transport: BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: BaseTransport) -> None:
        _no_delay(transport)
        super().connection_made(transport)  # type: ignore[arg-type]


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(self, transport: BaseTransport) -> None:
        _no_delay(transport)
        super().connection_made(transport)  # type: ignore[arg-type]


_PROTOCOLS = {
    "auto": "api.server:NoDelayHttpToolsProtocol",
    "httptools": "api.server:NoDelayHttpToolsProtocol",
    "h11": "api.server:NoDelayH11Protocol",
}


def protocol(parser: str) -> str:
    """The dotted path of the protocol class uvicorn should run (``parser``: the setting)."""
    return _PROTOCOLS[parser]
