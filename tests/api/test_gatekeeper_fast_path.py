"""The request path's cheaper spellings answer and log exactly what the general ones did."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.telemetry._asgi import NativeTelemetry
from starlette.datastructures import MutableHeaders

from api import logs
from api.app import SteadyTelemetry
from api.middleware import Gatekeeper, TokenBuckets, new_request_id


def test_a_new_request_id_is_a_version_4_uuid_in_its_canonical_text() -> None:
    for _ in range(2000):
        text = new_request_id()
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_log_lines_timestamp_is_what_datetime_writes() -> None:
    rng = random.Random(14)
    second = 1_764_796_451.0
    stamps = [second, second + 0.5e-6, second + 1.5e-6, second + 0.9999995, second + 0.9999996, second - 1e-7]
    stamps += [rng.uniform(1.7e9, 1.8e9) for _ in range(20_000)]
    stamps += [math.floor(s) + rng.randrange(2_000_001) / 2e6 for s in stamps[6:]]  # on half microseconds
    for stamp in stamps:
        assert logs._timestamp(stamp) == datetime.fromtimestamp(stamp, tz=UTC).isoformat()


class _Metrics:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int]] = []

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.seen.append((method, route, status))


def _serve(headers: list[tuple[bytes, bytes]], answer: list[tuple[bytes, bytes]]) -> tuple[list[tuple[bytes, bytes]], bool]:
    """The headers the Gatekeeper sends for an app answering ``answer``, and whether it logged a replay."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": answer})
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    gate = Gatekeeper(app, idempotency=None, buckets=TokenBuckets(100, 100), metrics=_Metrics(),  # type: ignore[arg-type]
                      max_body_bytes=1000, authenticated=lambda _: True)
    scope = {"type": "http", "method": "GET", "path": "/x", "headers": headers, "client": ("127.0.0.1", 1)}
    replayed: list[bool] = []

    class Listen(logging.Handler):
        def emit(self, record: Any) -> None:
            replayed.append(record.replayed)

    listen, access = Listen(), logging.getLogger("ticketflow.access")
    level = access.level
    access.addHandler(listen)
    access.setLevel(logging.INFO)
    try:
        asyncio.run(gate(scope, receive, send))
    finally:
        access.removeHandler(listen)
        access.setLevel(level)
    assert answer == list(answer)  # the app's own list is left as it was
    return sent[0]["headers"], replayed[-1]


def _expected(answer: list[tuple[bytes, bytes]], request_id: str) -> tuple[list[tuple[bytes, bytes]], bool]:
    message = {"headers": list(answer)}
    headers = MutableHeaders(scope=message)
    headers["X-Request-ID"] = request_id
    return message["headers"], headers.get("Idempotent-Replayed") == "true"


def test_the_request_id_header_is_added_or_replaced_as_mutable_headers_did() -> None:
    asked = [(b"x-request-id", b"req-7"), (b"authorization", b"Bearer abc")]
    for answer in (
        [(b"content-type", b"application/json")],
        [(b"x-request-id", b"inner"), (b"etag", b'"1"'), (b"x-request-id", b"again")],
        [(b"idempotent-replayed", b"true"), (b"idempotent-replayed", b"false")],
        [(b"idempotent-replayed", b"false"), (b"idempotent-replayed", b"true")],
    ):
        before = list(answer)
        assert _serve(asked, answer) == _expected(before, "req-7")


def test_telemetry_is_asked_once_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter([True, False])
    monkeypatch.setattr(NativeTelemetry, "enabled", lambda self: next(answers))
    telemetry = SteadyTelemetry({"tracing": True, "metrics": True, "logs": True})
    assert [telemetry.enabled() for _ in range(100)] == [True] * 100  # asked once
    telemetry._asked_at -= SteadyTelemetry.RECHECK_SECONDS
    assert telemetry.enabled() is False  # a second later: asked again


@pytest.mark.parametrize("request_id", ["r-1", None, uuid.UUID(int=7), ["nested", {"x": 1}]])
def test_a_log_line_is_what_python_json_logger_writes_whatever_the_request_id(request_id: Any) -> None:
    formatter = logs.formatter()
    record = logging.LogRecord("ticketflow.access", logging.INFO, __file__, 1, "request", None, None)
    record.request_id, record.status = request_id, 200
    fast = formatter.format(record)
    general = super(type(formatter), formatter).format(record)
    assert fast == general
