"""The HTTP protocol ``ticketflow serve`` runs: uvicorn's h11 protocol with Nagle's algorithm off.

With several workers, uvicorn (0.54, upstream issue Kludex/uvicorn#3149) hands asyncio a
listening socket without the TCP protocol flag, so accepted connections keep Nagle's
algorithm and each keep-alive response waits ~40 ms for the client's delayed ACK.
Turning TCP_NODELAY on per connection removes that wait whatever the worker count.
"""

from __future__ import annotations

import socket
from asyncio import BaseTransport

from uvicorn.protocols.http.h11_impl import H11Protocol


class NoDelayH11Protocol(H11Protocol):
    def connection_made(self, transport: BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)  # type: ignore[arg-type]
