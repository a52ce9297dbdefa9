"""bench/load_client.py, the benches' HTTP client, against a real server on a loopback socket: what it
sends, the answers it reads (Content-Length, chunked, to the connection's end), keep-alive, servers that
close, and failures it reports instead of hiding."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from typing import Self

import load_client
from load_client import ClientError, Connection

Answerer = Callable[[bytes, bytes], Awaitable[bytes | None]]  # (head, body) -> raw answer, None: close


class Server:
    """A loopback HTTP/1.1 server whose answers a test writes byte for byte (it closes the connection
    after an answer saying ``Connection: close``); it records each request and how many connections
    it was opened."""

    def __init__(self, answer: Answerer) -> None:
        self.answer = answer
        self.requests: list[tuple[bytes, bytes]] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Self:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                body = await reader.readexactly(length)
                self.requests.append((head, body))
                raw = await self.answer(head, body)
                if raw is None:
                    break
                writer.write(raw)
                await writer.drain()
                if b"\r\nConnection: close\r\n" in raw.partition(b"\r\n\r\n")[0] + b"\r\n":
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()


def run(test: Callable[[], Awaitable[None]]) -> None:
    load_client.run(test)


def json_answer(status: int, value: object, extra: bytes = b"") -> bytes:
    body = json.dumps(value, ensure_ascii=False).encode()
    return (
        b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n"
        % (status, len(body), extra)
        + body
    )


def test_a_post_sends_json_with_the_fixed_headers_and_reads_the_answer_on_one_kept_alive_connection() -> None:
    async def echo(head: bytes, body: bytes) -> bytes:
        return json_answer(201, {"got": json.loads(body)})

    async def test() -> None:
        async with Server(echo) as server:
            conn = Connection(server.url + "/api", {"Authorization": "Bearer t"})
            first = await conn.request("POST", "/v1/tickets", {"subject": "压测"})
            second = await conn.request("POST", "/v1/tickets/1/solve", {})
            await conn.close()
        assert (first.status, first.json(), first.is_success) == (201, {"got": {"subject": "压测"}}, True)
        assert second.json() == {"got": {}}
        assert server.connections == 1
        head, body = server.requests[0]
        assert head.startswith(b"POST /api/v1/tickets HTTP/1.1\r\n")
        assert (
            b"\r\nAuthorization: Bearer t\r\n" in head and b"\r\nContent-Type: application/json\r\n" in head
        )
        assert json.loads(body) == {"subject": "压测"}

    run(test)


def test_chunked_answers_and_answers_ended_by_the_connection_are_read_whole() -> None:
    answers = iter(
        [
            b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"a"\r\n3;x=y\r\n: 1\r\n1\r\n}\r\n0\r\nT: v\r\n\r\n',
            b'HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n{"missing": true}',
        ]
    )

    async def scripted(head: bytes, body: bytes) -> bytes:
        return next(answers)

    async def test() -> None:
        async with Server(scripted) as server:
            conn = Connection(server.url)
            chunked = await conn.request("GET", "/a")
            until_closed = await conn.request("GET", "/b")
        assert chunked.json() == {"a": 1}
        assert (until_closed.status, until_closed.is_success, until_closed.json()) == (
            404,
            False,
            {"missing": True},
        )

    run(test)


def test_connection_close_makes_the_next_request_open_a_new_connection() -> None:
    async def closing(head: bytes, body: bytes) -> bytes:
        return json_answer(200, {}, b"Connection: close\r\n")

    async def test() -> None:
        async with Server(closing) as server:
            conn = Connection(server.url)
            for _ in range(3):
                assert (await conn.request("POST", "/x", {})).status == 200
        assert server.connections == 3

    run(test)


def test_a_kept_alive_connection_the_server_dropped_unanswered_is_retried_once_on_a_new_one() -> None:
    seen = 0

    async def drop_the_second(head: bytes, body: bytes) -> bytes | None:
        nonlocal seen
        seen += 1
        return None if seen == 2 else json_answer(200, {"n": seen})

    async def test() -> None:
        async with Server(drop_the_second) as server:
            conn = Connection(server.url)
            assert (await conn.request("POST", "/x", {})).json() == {"n": 1}
            assert (await conn.request("POST", "/x", {})).json() == {"n": 3}  # sent again, answered once
        assert server.connections == 2

    run(test)


def test_a_new_connection_closed_unanswered_is_an_error_not_a_retry() -> None:
    async def never(head: bytes, body: bytes) -> None:
        return None

    async def test() -> None:
        async with Server(never) as server:
            with pytest.raises(ClientError, match="closed the connection before answering"):
                await Connection(server.url).request("POST", "/x", {})
        assert len(server.requests) == 1

    run(test)


def test_a_garbled_answer_and_a_refused_connection_are_errors() -> None:
    async def garbled(head: bytes, body: bytes) -> bytes:
        return b"SMTP ready\r\n\r\n"

    async def test() -> None:
        async with Server(garbled) as server:
            with pytest.raises(ClientError, match="not an HTTP/1.x answer"):
                await Connection(server.url).request("GET", "/")
            port = server.url.rsplit(":", 1)[1]
        with pytest.raises(ClientError):
            await Connection(f"http://127.0.0.1:{port}").request("GET", "/")

    run(test)


def test_only_plain_http_urls_are_taken() -> None:
    with pytest.raises(ValueError, match="only http://"):
        Connection("https://example.org")


def test_a_server_that_never_answers_is_an_error_after_the_timeout() -> None:
    async def silent(head: bytes, body: bytes) -> bytes:
        await asyncio.sleep(60)
        return b""

    async def test() -> None:
        async with Server(silent) as server:
            with pytest.raises(ClientError, match=r"no answer in 0.2 s"):
                await Connection(server.url, timeout=0.2).request("POST", "/x", {})

    run(test)
