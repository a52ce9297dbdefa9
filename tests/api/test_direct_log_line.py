"""``logs.info`` writes the line ``Logger.info`` writes, and goes through ``logging`` whenever anything
but ``serve``'s lone JSON handler would see the record."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from enum import Enum
from typing import Any

import pytest

from api import logs

NOW = 1_764_796_451.123456


class Role(str, Enum):
    AGENT = "agent"


@pytest.fixture
def tree(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[logging.Logger, logging.Logger, io.StringIO]]:
    """A logger under a parent holding :func:`logs.handler` alone (as ``serve`` has it), on a buffer."""
    monkeypatch.setattr(time, "time", lambda: NOW)  # the line's clock, and LogRecord's
    parent, child = logging.getLogger("loop4-direct"), logging.getLogger("loop4-direct.access")
    out = logs.handler()
    stream = io.StringIO()
    out.setStream(stream)  # type: ignore[attr-defined]
    parent.addHandler(out)
    parent.setLevel(logging.INFO)
    parent.propagate = False  # pytest's own handlers listen at the root
    yield parent, child, stream
    parent.removeHandler(out)
    parent.propagate = True
    child.setLevel(logging.NOTSET)
    child.disabled = False
    for each in list(child.filters):
        child.removeFilter(each)


def _both(child: logging.Logger, stream: io.StringIO, message: str, fields: dict[str, Any]) -> tuple[str, str]:
    """What ``logs.info`` wrote, then what ``Logger.info`` wrote, for the same line."""
    stream.seek(0)
    stream.truncate()
    logs.info(child, message, dict(fields))
    direct = stream.getvalue()
    stream.seek(0)
    stream.truncate()
    child.info(message, extra=dict(fields))
    return direct, stream.getvalue()


ACCESS = {"request_id": "req-1", "method": "POST", "route": "/api/v1/tickets/{ticket_id}", "status": 201,
          "ms": 1.25, "caller": "0123456789ab", "role": None, "replayed": False}


@pytest.mark.parametrize("fields", [
    ACCESS,
    {**ACCESS, "role": "agent", "replayed": True, "ms": 0.0, "status": 500},
    {**ACCESS, "request_id": "请求-7", "route": "unmatched"},
    {"request_id": "r", "_private": 1},  # skipped as the formatter skips it
])
def test_the_direct_line_is_what_logger_info_writes(tree: Any, fields: dict[str, Any]) -> None:
    _, child, stream = tree
    direct, general = _both(child, stream, "request", fields)
    assert direct == general and direct.endswith("}\n") and direct.count("\n") == 1


def test_a_value_needing_conversion_a_token_or_no_request_id_goes_through_logging(
    tree: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, child, stream = tree
    made: list[logging.LogRecord] = []
    real = child.makeRecord

    def record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(child, "makeRecord", record)
    token = logs.request_id.set("from-context")
    try:
        for message, fields in (("request", {**ACCESS, "role": Role.AGENT}), ("Bearer abc.def", ACCESS),
                                ("request", {**ACCESS, "request_id": None})):
            made.clear()
            direct, general = _both(child, stream, message, fields)
            assert direct == general and len(made) == 2  # both through a LogRecord
    finally:
        logs.request_id.reset(token)
    assert "abc.def" not in direct + general


@pytest.mark.parametrize("name", ["levelname", "message", "asctime", "created"])
def test_an_extra_logging_refuses_is_refused_alike(tree: Any, name: str) -> None:
    _, child, stream = tree
    for log in (lambda: logs.info(child, "request", {**ACCESS, name: "x"}), lambda: child.info("request", extra={**ACCESS, name: "x"})):
        with pytest.raises(KeyError):
            log()
    assert stream.getvalue() == ""


def test_another_listener_a_filter_a_level_or_a_disabled_logger_is_respected(tree: Any) -> None:
    parent, child, stream = tree
    heard: list[logging.LogRecord] = []

    class Listen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            heard.append(record)

    listen = Listen()
    child.addHandler(listen)
    try:
        direct, general = _both(child, stream, "request", ACCESS)
    finally:
        child.removeHandler(listen)
    assert direct == general and len(heard) == 2 and heard[0].route == ACCESS["route"]  # type: ignore[attr-defined]

    child.addFilter(lambda record: False)
    assert _both(child, stream, "request", ACCESS) == ("", "")
    child.removeFilter(child.filters[0])
    child.setLevel(logging.WARNING)
    assert _both(child, stream, "request", ACCESS) == ("", "")
    child.setLevel(logging.NOTSET)
    child.disabled = True
    assert _both(child, stream, "request", ACCESS) == ("", "")
    child.disabled = False
    parent.handlers[0].addFilter(lambda record: False)  # a second filter on the handler
    assert _both(child, stream, "request", ACCESS) == ("", "")


def test_a_stream_that_fails_is_reported_as_stream_handler_reports_it(tree: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    parent, child, _ = tree
    out = parent.handlers[0]

    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    out.setStream(Broken())
    reported: list[logging.LogRecord] = []
    monkeypatch.setattr(out, "handleError", reported.append)
    logs.info(child, "request", dict(ACCESS))
    child.info("request", extra=dict(ACCESS))
    assert len(reported) == 2
    assert [(r.getMessage(), r.route, r.levelno) for r in reported] == [("request", ACCESS["route"], logging.INFO)] * 2  # type: ignore[attr-defined]
