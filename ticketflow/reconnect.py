"""After a database restart, a pool still holds connections to the old server: each fails once,
with "server closed the connection unexpectedly", and is then thrown away by the pool. Work that
is safe to repeat retries on such an error, so the first request after recovery succeeds:
reads, and commands (a command is recognised by its id: one that did commit before the
connection died is answered from what it wrote, never written twice).

Only a dead connection is retried; a database that is still down fails at once (a new
connection is refused) and the caller answers 503.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from eventsourcing.persistence import InterfaceError, OperationalError

R = TypeVar("R")

#: More than a pool holds: each attempt discards at most one dead connection.
ATTEMPTS = 32

_DEAD = (
    "server closed the connection", "terminating connection", "connection is closed", "connection already closed",
    "the connection is lost", "consuming input failed", "connection has been closed", "no connection to the server",
    "ssl connection has been closed", "broken pipe", "connection reset",
)


def is_dead_connection(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, (OperationalError, InterfaceError)) and any(marker in text for marker in _DEAD)


def retry_dead_connections(work: Callable[[], R]) -> R:
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return work()
        except (OperationalError, InterfaceError) as exc:
            if attempt == ATTEMPTS or not is_dead_connection(exc):
                raise
    raise AssertionError("unreachable")  # pragma: no cover
