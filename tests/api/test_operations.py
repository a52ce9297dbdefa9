"""Health, readiness, metrics, limits, and the JSON access log."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from collections.abc import Iterator
from typing import Any

import pytest

from api import logs
from ticketflow.config import Settings
from tests.api.conftest import Api, build_api


def test_health_readiness_and_metrics(api: Api) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    api.open_ticket()
    api.caught_up()
    ready = api.client.get("/readyz").json()
    assert ready["ready"] and {v["view"] for v in ready["views"]} >= {"tickets", "search", "audit"}
    assert all(v["lag"] == 0 for v in ready["views"])
    assert api.client.get("/metrics").status_code == 401  # a token with metrics:read, unless metrics_public
    assert api.get("agent_a", "/metrics").status_code == 403
    metrics = api.get("admin", "/metrics").text
    assert 'ticketflow_commands_total{command="OpenTicket",outcome="applied"} 1.0' in metrics
    assert 'ticketflow_http_requests_total{method="POST",route="/api/v1/tickets",status="201"}' in metrics
    assert 'ticketflow_view_lag_events{view="tickets"} 0.0' in metrics


def test_reading_at_a_position_beyond_the_log_is_422_and_a_lagging_view_503(api: Api) -> None:
    response = api.get("agent_a", "/api/v1/tickets", params={"min_position": 10**9})
    assert response.status_code == 422 and "beyond the end of the log" in response.json()["detail"]
    services = api.client.app.state.services  # type: ignore[attr-defined]
    services.settings = services.settings.model_copy(update={"read_wait_seconds": 0.2})
    services.read_side.stop()  # the view workers fall behind
    ticket = api.open_ticket()
    position = api.desk.log_position()
    response = api.get("agent_a", f"/api/v1/tickets/{ticket}", params={"min_position": position})
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    services.read_side.start()
    assert api.get("agent_a", f"/api/v1/tickets/{ticket}", params={"min_position": position}).status_code == 200


def test_a_body_over_the_limit_is_413(api: Api) -> None:
    huge = {"subject": "x", "requester_id": str(api.customer), "description": "长" * 600_000}
    response = api.post("agent_a", "/api/v1/tickets", huge)
    assert response.status_code == 413 and response.headers["content-type"].startswith("application/problem+json")


@pytest.fixture
def limited_api(tmp_path: Any) -> Iterator[Api]:
    yield from build_api(Settings(data_dir=tmp_path / "limited", rate_limit_burst=5, rate_limit_per_second=0.5))


def test_a_token_over_its_rate_is_429_with_retry_after(limited_api: Api) -> None:
    statuses = [limited_api.get("agent_a", "/api/v1/me").status_code for _ in range(8)]
    assert statuses[:5] == [200] * 5 and statuses[-1] == 429
    response = limited_api.get("agent_a", "/api/v1/me")
    assert int(response.headers["Retry-After"]) >= 1
    assert limited_api.get("agent_b", "/api/v1/me").status_code == 200  # another token has its own budget


def test_access_logs_are_json_without_tokens_queries_or_personal_data(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ticketflow.access"):
        api.get("agent_a", "/api/v1/search", params={"q": "王小明的手机"}, headers={"X-Request-ID": "req-123"})
    lines = [json.loads(logs.formatter().format(r)) for r in caplog.records if r.name == "ticketflow.access"]
    assert lines and lines[-1]["request_id"] == "req-123" and lines[-1]["route"] == "/api/v1/search"
    assert lines[-1]["level"] == "INFO" and lines[-1]["logger"] == "ticketflow.access"
    assert datetime.fromisoformat(lines[-1]["timestamp"]).utcoffset() == timedelta(0)
    text = caplog.text
    assert "王小明" not in text and api.tokens["agent_a"] not in text and "q=" not in text


def test_a_log_line_is_what_python_json_logger_writes_for_plain_and_other_records() -> None:
    from enum import Enum

    from pythonjsonlogger.json import JsonFormatter

    class Colour(Enum):
        RED = "red"

    formatter = logs.formatter()
    assert isinstance(formatter, JsonFormatter)
    records = []
    for message, args, extra in [
        ("request", None, {"request_id": "r-1", "method": "POST", "route": "/api/v1/tickets/{ticket_id}/assign",
                           "status": 200, "ms": 1.25, "caller": "0123456789ab", "role": None, "replayed": False}),
        ("opened %s in %s", ("工单", "queue"), {}),
        ("with a value python-json-logger converts", None, {"colour": Colour.RED, "when": datetime(2026, 1, 2)}),
        ("odd values", None, {"ratio": float("nan"), "text": '中文 "quoted"\n'}),
    ]:
        record = logging.LogRecord("ticketflow.access", logging.INFO, __file__, 1, message, args, None)
        record.__dict__.update(extra)
        logs.RequestContext().filter(record)
        records.append(record)
    try:
        raise ValueError("boom")
    except ValueError:
        import sys
        records.append(logging.LogRecord("ticketflow", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()))

    for record in records:
        assert formatter.format(record) == JsonFormatter.format(formatter, record)


def test_a_chunked_body_over_the_limit_is_413_too(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"subject": "x", "description": "'
        for _ in range(200):
            yield ("长" * 3000).encode()
        yield b'"}'

    response = api.client.post("/api/v1/tickets", content=chunks(), headers=api.headers("agent_a", **{"content-type": "application/json"}))
    assert response.status_code == 413
    small = api.client.post(
        "/api/v1/tickets",
        content=iter([b'{"subject": "chunked", ', f'"requester_id": "{api.customer}"}}'.encode()]),
        headers=api.headers("agent_a", **{"content-type": "application/json"}),
    )
    assert small.status_code == 201, small.text
