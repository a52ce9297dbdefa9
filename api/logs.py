"""Structured logs: one JSON object per line on stderr, from our loggers and uvicorn's alike.

Every line has ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``message`` and the
``request_id`` of the request being served (the one echoed in ``X-Request-ID``; null outside a
request), plus the fields a line adds (the access log's method, route template, status...).

Personal data and tokens are kept out by what is logged (route templates, never paths or query
strings; a hash of the caller, never the token); as a second guard, anything shaped like a bearer
token in a message is replaced before the line is written.

python-json-logger formats the lines: it plugs into the standard ``logging`` module, so uvicorn's
own loggers (configured by ``dictConfig``) and ours share one format without a second logging API.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

#: The request being served in this task or thread (the threadpool copies it along).
request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

_BEARER = re.compile(r"(?i)\bbearer\s+[^\s\"',;]+")
_OURS = "ticketflow-json"


class RequestContext(logging.Filter):
    """Adds ``request_id`` to each record and masks bearer tokens in its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        message = record.getMessage()
        if _BEARER.search(message):
            record.msg, record.args = _BEARER.sub("Bearer [redacted]", message), None
        return True


#: Values json encodes as themselves: a line whose fields are all of these needs none of python-json-logger's
#: conversions (dates, enums, exceptions, dataclasses...).
_PLAIN = (str, int, float, bool, type(None))
_ENCODER = json.JSONEncoder(ensure_ascii=False)
#: What ``_ENCODER.encode`` runs for a dict, made once instead of per line (no circular check: the
#: values are plain); pure Python's where the C encoder is missing.
_C_ENCODE = json.encoder.c_make_encoder and json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, _ENCODER.default, json.encoder.encode_basestring, None,
    _ENCODER.key_separator, _ENCODER.item_separator, False, False, True)


def _encode(line: dict[str, Any]) -> str:
    return "".join(_C_ENCODE(line, 0)) if _C_ENCODE else _ENCODER.encode(line)


#: The last second a line was written in, and its text (replaced whole: threads may log at once).
_SECOND: list[Any] = [None, ""]


def _timestamp(created: float) -> str:
    """``datetime.fromtimestamp(created, tz=UTC).isoformat()``: its second's text made once per second.
    The microseconds are rounded as datetime rounds them (half to even, a carry moves to the next second)."""
    fraction, whole = math.modf(created)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        micro, whole = micro - 1_000_000, whole + 1.0
    second, text = _SECOND
    if second != whole:
        text = datetime.fromtimestamp(whole, tz=UTC).isoformat()[:-6]  # "YYYY-MM-DDTHH:MM:SS"
        _SECOND[:] = whole, text
    return f"{text}.{micro:06d}+00:00" if micro else text + "+00:00"


class _Formatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        """The line python-json-logger writes, built directly when the record is plain (a str message,
        no exception or stack, extras of JSON's own types: the access log's line, every request): its
        generic path (defaults, renames, a dict message, an encoder per line) is a third of what a
        request's access log line costs the event loop. Anything else goes through it."""
        if (type(record.msg) is not str or record.exc_info or record.exc_text or record.stack_info
                or not self.plain()):
            return super().format(record)
        record.message = record.getMessage()
        text = self.plain_line(record.created, record.levelname, record.name, record.message,
                               record.__dict__.get("request_id"), record.__dict__)
        return super().format(record) if text is None else text

    def plain(self) -> bool:
        """Whether :meth:`format` writes every plain record with :meth:`plain_line`."""
        return not (self.defaults or self.static_fields or self.prefix)

    def plain_line(self, created: float, level: str, name: str, message: str, request_id: Any,
                   fields: dict[str, Any]) -> str | None:
        """The line of a plain record (``fields``: its attributes, or the extras it would have), or None
        when one of its values needs python-json-logger's conversions."""
        if type(request_id) not in _PLAIN:
            return None
        skip = self._skip_fields
        line: dict[str, Any] = {
            "timestamp": _timestamp(created), "level": level, "logger": name, "message": message,
            "request_id": request_id,
        }
        for key, value in fields.items():
            if key in skip or key.startswith("_"):
                continue
            if type(value) not in _PLAIN or key in line:
                return None
            line[key] = value
        return _encode(line)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        fields = dict(log_data)  # the timestamp first: lines read (and sort) by time
        log_data.clear()
        log_data["timestamp"] = fields.pop("timestamp")
        log_data.update(fields)


def _sole_handler(logger: logging.Logger) -> logging.StreamHandler[Any] | None:
    """The handler an INFO line of ``logger`` would reach when it is :func:`handler`'s kind alone (our
    formatter, plain, our filter only, no filter on the logger), else None. Walks what
    ``Logger.callHandlers`` walks: the logger's handlers, then its parents' while it propagates."""
    if logger.disabled or logger.filters or not logger.isEnabledFor(logging.INFO):
        return None
    found = None
    current: logging.Logger | None = logger
    while current is not None:
        for each in current.handlers:
            if found is not None:
                return None
            found = each
        if not current.propagate:
            break
        current = current.parent
    if (type(found) is not logging.StreamHandler or found.level > logging.INFO
            or type(found.formatter) is not _Formatter or not found.formatter.plain()
            or len(found.filters) != 1 or type(found.filters[0]) is not RequestContext):
        return None
    return found


#: What a ``LogRecord`` has itself (and what ``makeRecord`` refuses as an extra).
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def info(logger: logging.Logger, message: str, fields: dict[str, Any]) -> None:
    """``logger.info(message, extra=fields)``: the same line, to the same stream, under the handler's lock.

    When the line goes to :func:`handler`'s stream alone (``serve``) and its values are plain, it is
    written here without a ``LogRecord`` (caller lookup, filters, handler chain): the access log line
    cost 11 % of the event loop thread's CPU through ``Logger.info`` (py-spy --gil, bench_http.py
    --store sqlite --clients 32); written here it takes 6.6-7.2 us against 13.6-14.0 us (timeit, an
    access log line, serve's handler writing to /dev/null). Anything else (another handler listening, a filter, a value needing
    conversion, a token-shaped message) goes through ``logging`` as before."""
    out = _sole_handler(logger)
    if (out is None or fields.get("request_id") is None or _BEARER.search(message)
            or not _RECORD_ATTRIBUTES.isdisjoint(fields)):  # (logging refuses these: KeyError)
        logger.info(message, extra=fields)
        return
    formatter: _Formatter = out.formatter  # type: ignore[assignment]
    created = time.time()
    text = formatter.plain_line(created, logging.getLevelName(logging.INFO), logger.name, message, fields["request_id"], fields)
    if text is None:
        logger.info(message, extra=fields)
        return
    out.acquire()
    try:
        try:
            out.stream.write(text + out.terminator)
            out.flush()
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - as StreamHandler.emit: reported (the record made only now), never raised
            out.handleError(logger.makeRecord(logger.name, logging.INFO, "(unknown file)", 0, message, (),
                                              None, extra=fields))
    finally:
        out.release()


def formatter() -> logging.Formatter:
    """One JSON object per line: ``timestamp``, ``level``, ``logger``, ``message``, ``request_id``, extras."""
    return _Formatter(
        "{levelname}{name}{message}{request_id}",
        style="{",
        timestamp=True,
        rename_fields={"levelname": "level", "name": "logger"},
        json_ensure_ascii=False,
    )


def handler() -> logging.Handler:
    """A stderr handler writing JSON lines (what ``serve`` and an app built in-process use)."""
    out = logging.StreamHandler(sys.stderr)
    out.set_name(_OURS)
    out.setFormatter(formatter())
    out.addFilter(RequestContext())
    return out


def install() -> None:
    """Send the ``ticketflow.*`` loggers' lines (INFO and up) to stderr as JSON, once per process."""
    logger = logging.getLogger("ticketflow")
    if not any(h.get_name() == _OURS for h in logger.handlers):
        logger.addHandler(handler())
    logger.setLevel(logging.INFO)
    # Lines still propagate: `serve` gives the root logger no handler, so nothing is written twice,
    # and a host (or pytest's caplog) that listens at the root hears them.


def uvicorn_config() -> dict[str, Any]:
    """uvicorn's ``log_config`` for ``serve``: its loggers write the same JSON lines (in every worker)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"json": {"()": "api.logs.handler"}},
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": "WARNING", "propagate": False},
            "uvicorn.error": {"level": "WARNING"},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
    }
