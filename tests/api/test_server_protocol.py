"""``serve`` runs uvicorn's C parser when it is installed (a dependency), h11 on request."""

from __future__ import annotations

import pytest

from api.server import protocol


def test_serve_uses_the_httptools_parser_by_default_and_h11_when_asked() -> None:
    assert protocol("auto") == "api.server:NoDelayHttpToolsProtocol"
    assert protocol("httptools") == "api.server:NoDelayHttpToolsProtocol"
    assert protocol("h11") == "api.server:NoDelayH11Protocol"


def test_an_unknown_parser_setting_is_refused() -> None:
    from pydantic import ValidationError

    from ticketflow.config import Settings

    with pytest.raises(ValidationError, match="http_parser"):
        Settings(http_parser="picohttp")  # type: ignore[arg-type]


class RecordingTransport:
    """A transport that keeps what it is asked to send (a fake of the socket's)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "written after close"
        self.sent.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: object = None) -> object:
        return {"peername": ("127.0.0.1", 50000)}.get(name, default)


def test_a_responses_head_and_body_written_in_one_turn_go_out_as_one_send() -> None:
    import asyncio

    from api.server import OneSendTransport

    async def turns() -> tuple[list[bytes], list[bytes], RecordingTransport]:
        socket_side = RecordingTransport()
        transport = OneSendTransport(socket_side, asyncio.get_running_loop())
        transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n")
        transport.write(memoryview(b'{"ok":"\xe5\xa5\xbd"}'))
        during = list(socket_side.sent)
        await asyncio.sleep(0)  # the turn is over
        after_one = list(socket_side.sent)
        transport.write(b"HTTP/1.1 204 No Content\r\n\r\n")  # the next response, then the connection closes
        transport.close()
        assert transport.get_extra_info("peername") == ("127.0.0.1", 50000)  # the rest is the socket's own
        return during, after_one, socket_side

    during, after_one, socket_side = asyncio.run(turns())
    assert during == []
    assert after_one == [b'HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\n{"ok":"\xe5\xa5\xbd"}']
    assert socket_side.sent[1:] == [b"HTTP/1.1 204 No Content\r\n\r\n"] and socket_side.closed  # sent before closing


def test_a_body_streamed_within_one_turn_is_sent_once_it_passes_what_a_connection_keeps() -> None:
    import asyncio

    from api.server import KEEP_AT_MOST, OneSendTransport

    async def stream() -> tuple[list[int], list[int]]:
        socket_side = RecordingTransport()
        transport = OneSendTransport(socket_side, asyncio.get_running_loop())
        chunk = b"x" * 16_384
        for _ in range(KEEP_AT_MOST // len(chunk) + 1):  # one chunk past the limit, in one turn
            transport.write(chunk)
        during = [len(sent) for sent in socket_side.sent]
        transport.write(b"end")
        await asyncio.sleep(0)
        return during, [len(sent) for sent in socket_side.sent]

    during, after = asyncio.run(stream())
    assert during == [KEEP_AT_MOST + 16_384]  # sent as soon as it passed the limit
    assert after == [KEEP_AT_MOST + 16_384, 3]  # the rest at the turn's end
