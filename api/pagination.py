"""One pagination convention for every list: ``limit`` + an opaque ``cursor``, and the next page's
cursor in ``next_cursor`` and in a ``Link: <...>; rel="next"`` header (RFC 8288).

A cursor is base64url of a small JSON document saying where the previous page stopped: the last
log position for lists in log order (events, the access log, deliveries), else how many items
were already given. Clients treat it as opaque; one this service did not issue answers 400
problem+json (``bad_cursor``). A page without a next one has neither ``next_cursor`` nor ``Link``.

Lists that answer a JSON array (as they did before pagination) carry ``next_cursor`` in the
``X-Next-Cursor`` header beside ``Link``; lists that answer an envelope (``{"items", "next_cursor"}``)
carry it in the body too. The list names of the older parameters (``after``, ``after_position``)
are still read, marked deprecated in the OpenAPI document.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Response

from api.problems import ApiProblem

T = TypeVar("T")
#: The most items one page may hold, and how many a list gives without ``limit``.
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100


def encode_cursor(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, key: str) -> Any:
    """The value stored under ``key`` in a cursor this service issued; 400 problem+json otherwise."""
    try:
        state = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value = state[key]
    except (ValueError, binascii.Error, KeyError, TypeError):
        raise ApiProblem(
            400, "bad_cursor", f"the cursor {cursor[:60]!r} is not one this service issued"
        ) from None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ApiProblem(400, "bad_cursor", f"the cursor {cursor[:60]!r} is not one this service issued")
    return value


def next_link(request: Request, cursor: str) -> str:
    """``<url>; rel="next"``: the same request with ``cursor`` set (and any deprecated alias dropped)."""
    params = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k not in ("cursor", "after", "after_position")
    ]
    params.append(("cursor", cursor))
    return f'<{request.url.path}?{urlencode(params)}>; rel="next"'


def link_headers(request: Request, response: Response, next_cursor: str | None) -> None:
    if next_cursor is not None:
        response.headers["Link"] = next_link(request, next_cursor)
        response.headers["X-Next-Cursor"] = next_cursor


@dataclass
class Pager:
    """``limit`` and ``cursor`` of one list request; pages a list computed in full (teams, reports...)."""

    request: Request
    response: Response
    limit: int
    cursor: str | None

    def offset(self) -> int:
        return 0 if self.cursor is None else int(decode_cursor(self.cursor, "offset"))

    def page(self, items: Sequence[T]) -> list[T]:
        """The page of ``items`` (in the list's own order) after the cursor; sets ``Link`` and ``X-Next-Cursor``."""
        start = self.offset()
        chosen = list(items[start : start + self.limit])
        more = start + self.limit < len(items)
        link_headers(
            self.request, self.response, encode_cursor({"offset": start + self.limit}) if more else None
        )
        return chosen


def pager(
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page.")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=500, description="The `next_cursor` of the previous page (opaque).")
    ] = None,
) -> Pager:
    return Pager(request, response, limit, cursor)


PagerDep = Annotated[Pager, Depends(pager)]


def position_cursor(cursor: str | None, deprecated_after: int | None) -> int:
    """The log position a log-ordered list starts after: from the opaque ``cursor``, else from a
    deprecated ``after`` (a plain position), else 0."""
    if cursor is not None:
        return int(decode_cursor(cursor, "position"))
    return deprecated_after or 0


def position_page(
    request: Request,
    response: Response,
    rows: list[dict[str, Any]],
    limit: int,
    position: Callable[[dict[str, Any]], int] = lambda row: int(row["position"]),
) -> list[dict[str, Any]]:
    """Rows read with ``limit + 1`` in log order: the first ``limit``, and the next page's headers."""
    page = rows[:limit]
    more = len(rows) > limit
    link_headers(
        request, response, encode_cursor({"position": position(page[-1])}) if more and page else None
    )
    return page
