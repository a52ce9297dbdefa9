"""The benches' HTTP load client: keep-alive HTTP/1.1 connections driven from one asyncio loop.

Why not one ``httpx.Client`` per simulated client in a thread each (what the benches used before):
the client runs on the same two cores as the server it measures. At 32 clients against ``serve``
on SQLite (``bench_http``, 2026-12-04, ~750 commands/s) those 32 threads took 0.78 ms of CPU per
request, as much as the server's own 1.06 ms, and their own queue for the client's GIL added
latency that was then reported as the server's. This client spends a tenth of that (``bench_http``
prints its CPU per request beside the server's), so the cores go to the server and the latencies
are the server's.

What it speaks is what the benches need and no more: ``Content-Length`` and ``chunked`` answers,
keep-alive, ``Connection: close`` (gunicorn's sync workers close every connection; the next request
opens a new one), JSON bodies. A request on a kept-alive connection the server closed while it was
idle is sent again on a new connection only when the old one gave back no byte of an answer, as
httpx does; anything else is an error for the caller to count.

    conn = Connection("http://127.0.0.1:8000", {"Authorization": "Bearer ..."})
    answer = await conn.request("POST", "/api/v1/tickets", {"subject": "..."})
    answer.status, answer.json()
    await conn.close()
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")


class ClientError(Exception):
    """The connection failed or the server's answer could not be read."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


class Connection:
    """One keep-alive connection to ``url``'s host; ``headers`` go with every request."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http://host[:port] URLs: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        fixed = {"Host": f"{self.host}:{self.port}", "Accept": "application/json", **(headers or {})}
        self._fixed = "".join(f"{name}: {value}\r\n" for name, value in fixed.items()).encode("latin-1")
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        """Open the connection now (else the first request opens it)."""
        if self._writer is None:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout
            )

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def request(self, method: str, path: str, body: Any = None) -> Answer:
        """Send one request (``body``: JSON-encoded when not None) and read its whole answer."""
        payload = b"" if body is None else json.dumps(body, ensure_ascii=False).encode()
        head = (
            f"{method} {self.prefix}{path} HTTP/1.1\r\n".encode("latin-1")
            + self._fixed
            + (b"Content-Type: application/json\r\n" if body is not None else b"")
            + b"Content-Length: %d\r\n\r\n" % len(payload)
        )
        reused = self._writer is not None
        try:
            return await asyncio.wait_for(self._exchange(head + payload), self.timeout)
        except _ClosedBeforeAnswer:
            await self.close()
            if not reused:
                raise ClientError("the server closed the connection before answering") from None
            return await asyncio.wait_for(self._exchange(head + payload), self.timeout)  # a stale keep-alive
        except TimeoutError:  # (an OSError: caught first)
            await self.close()
            raise ClientError(f"no answer in {self.timeout:g} s") from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
            await self.close()
            raise ClientError(f"{type(exc).__name__}: {exc}") from exc

    async def _exchange(self, request: bytes) -> Answer:
        await self.connect()
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        try:
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
        except (ConnectionResetError, BrokenPipeError):
            raise _ClosedBeforeAnswer from None
        if not status_line:
            raise _ClosedBeforeAnswer
        version, _, rest = status_line.decode("latin-1").partition(" ")
        if not version.startswith("HTTP/1."):
            raise ValueError(f"not an HTTP/1.x answer: {status_line[:80]!r}")
        status = int(rest[:3])
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = await _read_chunked(reader)
        elif "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:  # delimited by the end of the connection
            body = await reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close" or version == "HTTP/1.0":
            await self.close()
        return Answer(status, body, headers)


class _ClosedBeforeAnswer(Exception):
    """The server closed the connection without sending any of an answer."""


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int((await reader.readline()).split(b";")[0].strip(), 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(parts)
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)


def run(main: Callable[[], Awaitable[T]]) -> T:
    """Run ``main()`` on a new event loop: uvloop's when installed (a runtime dependency of ticketflow
    on Linux, as ``serve`` runs on it), else asyncio's own."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - other platforms
        return asyncio.run(main())  # type: ignore[arg-type]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main())  # type: ignore[arg-type]
