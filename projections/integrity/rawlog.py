"""Fast, read-only pages of the stored log and of the sealed hashes, as plain tuples.

Verification touches every stored event: building the library's notification objects
(and dict rows) costs more than hashing the bytes, so these read the same columns directly.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

from projections.readside import views_dir
from projections.view import ViewStore
from ticketflow.application import TicketDesk
from ticketflow.config import StorageKind

PAGE = 10_000
#: (position, originator id as hyphenated UUID text, version, topic, stored state bytes)
LogRow = tuple[int, str, int, str, bytes]
#: (position, ordinal, originator id, version, hash hex)
SealedRow = tuple[int, int, str, int, str]


def _flat(pages: Iterator[list[Any]]) -> Iterator[Any]:
    for page in pages:
        yield from page


def log_rows(desk: TicketDesk, page: int = PAGE) -> Iterator[LogRow]:
    """Every stored event in log order."""
    # Read in this thread: a prefetching thread was measured slower (the GIL convoys between
    # the reader's row building and the hashing loop).
    return _flat(_log_pages(desk, page))


def log_pages(desk: TicketDesk, page: int = PAGE) -> tuple[Iterator[list[Any]], Callable[[Any], Any] | None]:
    """Pages of :data:`LogRow` tuples, except that the originator id may be the store's own
    spelling of it: then the returned function turns it into the hyphenated UUID text (pure,
    so callers may cache it per stream; None: the ids are already text)."""
    recorder: Any = desk.recorder
    if hasattr(recorder, "events_table_name") and getattr(recorder.datastore, "schema", None) is None:
        return _sqlite_rows(desk, recorder.events_table_name, page, hyphenate=False), _sqlite_uuid_text
    return _log_pages(desk, page), None


def _log_pages(desk: TicketDesk, page: int) -> Iterator[list[LogRow]]:
    recorder: Any = desk.recorder
    if not hasattr(recorder, "events_table_name"):  # the in-memory store: the library's own reader
        start = 1
        while notifications := recorder.select_notifications(start, page):
            yield [(n.id, str(n.originator_id), n.originator_version, n.topic, bytes(n.state)) for n in notifications]
            start = notifications[-1].id + 1
        return
    table = recorder.events_table_name
    schema = getattr(recorder.datastore, "schema", None)
    if schema is None:
        yield from _sqlite_rows(desk, table, page)
        return
    from psycopg.rows import tuple_row

    sql = (f'SELECT notification_id, originator_id, originator_version, topic, state FROM "{schema}"."{table}"'
           " WHERE notification_id >= %s ORDER BY notification_id LIMIT %s")
    start = 1
    while True:
        with recorder.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(sql, (start, page))
            rows = cursor.fetchall()
        if not rows:
            return
        yield [(r[0], str(r[1]), r[2], r[3], r[4]) for r in rows]
        start = rows[-1][0] + 1


_HYPHENATE = ("substr(?1, 1, 8) || '-' || substr(?1, 9, 4) || '-' || substr(?1, 13, 4)"
              " || '-' || substr(?1, 17, 4) || '-' || substr(?1, 21)")
_odd_ids: sqlite3.Connection | None = None


def _sqlite_uuid_text(stored: Any) -> Any:
    """SQLite keeps UUIDs as 32 hex digits: the hyphenated text, exactly as SQLite's own
    ``substr(...) || '-' || ...`` would spell it (a tampered non-text value goes through SQLite)."""
    if type(stored) is str:
        return f"{stored[:8]}-{stored[8:12]}-{stored[12:16]}-{stored[16:20]}-{stored[20:]}"
    global _odd_ids
    if _odd_ids is None:
        _odd_ids = sqlite3.connect(":memory:", check_same_thread=False)
    return _odd_ids.execute(f"SELECT {_HYPHENATE}", (stored,)).fetchone()[0]


def _sqlite_rows(desk: TicketDesk, table: str, page: int, hyphenate: bool = True) -> Iterator[list[Any]]:
    """SQLite keeps UUIDs as 32 hex digits: SQLite itself writes them hyphenated, so the rows
    come out of ``fetchall`` ready to use, without a Python loop over them. Without
    ``hyphenate`` the id comes as stored (see :func:`_sqlite_uuid_text`), for a caller that
    spells it once per stream: cheaper than SQLite's string building on every row."""
    oid = _HYPHENATE.replace("?1", "originator_id") if hyphenate else "originator_id"
    sql = (f"SELECT rowid, {oid}, originator_version, topic, state FROM {table}"
           " WHERE rowid >= ? ORDER BY rowid LIMIT ?")
    path = desk.settings.sqlite_path
    if desk.settings.storage is StorageKind.SQLITE and path.exists():
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)  # plain tuples: the fastest rows
        fetch = lambda start: connection.execute(sql, (start, page)).fetchall()  # noqa: E731
    else:
        connection = None

        def fetch(start: int) -> list[Any]:
            with desk.recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
                cursor.execute(sql, (start, page))
                return [tuple(r) for r in cursor.fetchall()]
    try:
        start = 1
        while rows := fetch(start):
            yield rows
            start = rows[-1][0] + 1
    finally:
        if connection is not None:
            connection.close()


def sealed_rows(store: ViewStore, desk: TicketDesk | None = None, page: int = PAGE) -> Iterator[SealedRow]:
    """Every sealed hash in log order."""
    return _flat(sealed_pages(store, desk, page))


def sealed_pages(store: ViewStore, desk: TicketDesk | None = None, page: int = PAGE) -> Iterator[list[SealedRow]]:
    sql = "SELECT position, ordinal, originator_id, version, hash FROM {p}integrity_events WHERE position > ? ORDER BY position LIMIT ?"
    path = views_dir(desk.settings) / "integrity.sqlite" if desk is not None else None
    if path is not None and desk is not None and desk.settings.storage is StorageKind.SQLITE and path.exists():
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            after = 0
            while rows := connection.execute(sql.replace("{p}", ""), (after, page)).fetchall():
                yield rows
                after = rows[-1][0]
        finally:
            connection.close()
        return
    after = 0
    while True:
        def query(db: Any, a: int = after) -> list[Any]:
            db.cursor.execute(db.sql(sql), (a, page))
            return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in db.cursor.fetchall()]
        rows = store.read(query)
        if not rows:
            return
        yield rows
        after = rows[-1][0]
