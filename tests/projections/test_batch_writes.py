"""A view batch writes a row it read back as an UPDATE of the columns that changed (only the indexes
holding them are written), and writes whole only the rows it did not read."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest

from projections.sql import Batch, Db, Dialect, Table, render

ITEMS = Table(
    "tf_items",
    columns=("item_id TEXT NOT NULL", "status TEXT", "updated_at TEXT", "count INTEGER"),
    key=("item_id",),
    indexes=(("status", "item_id"), ("updated_at", "item_id")),
)


@pytest.fixture
def connection() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.row_factory = sqlite3.Row
    for statement in ITEMS.ddl():
        conn.execute(render(statement, Dialect.SQLITE, ""))
    conn.executemany(
        "INSERT INTO tf_items VALUES (?, ?, ?, ?)",
        [("a", "new", "2026-01-01", 0), ("b", "new", "2026-01-01", 0), ("c", "open", "2026-01-02", 5)],
    )
    yield conn
    conn.close()


def written(conn: sqlite3.Connection, change: object) -> list[str]:
    """The statements a batch's flush sends (the writes only)."""
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        change(Batch(Db(conn.cursor(), Dialect.SQLITE, "")))  # type: ignore[operator]
    finally:
        conn.set_trace_callback(None)
    return [s for s in statements if s.startswith(("INSERT", "UPDATE"))]


def rows(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return [tuple(r) for r in conn.execute("SELECT * FROM tf_items ORDER BY item_id")]


def test_a_row_read_and_changed_is_updated_in_the_changed_columns_alone(connection: sqlite3.Connection) -> None:
    def change(batch: Batch) -> None:
        row = batch.get(ITEMS, "a")
        assert row is not None
        row.update(count=1, updated_at="2026-02-01")
        batch.touch(ITEMS, row)
        batch.flush()

    statements = written(connection, change)

    assert statements == ["UPDATE tf_items SET updated_at = '2026-02-01', count = 1 WHERE item_id = 'a'"]
    assert rows(connection) == [("a", "new", "2026-02-01", 1), ("b", "new", "2026-01-01", 0), ("c", "open", "2026-01-02", 5)]


def test_a_row_touched_but_unchanged_is_not_written(connection: sqlite3.Connection) -> None:
    def change(batch: Batch) -> None:
        row = batch.get(ITEMS, "b")
        assert row is not None
        row["count"] = 0
        batch.touch(ITEMS, row)
        batch.flush()

    assert written(connection, change) == []


def test_rows_preloaded_into_the_cache_count_as_read(connection: sqlite3.Connection) -> None:
    def change(batch: Batch) -> None:
        cache = batch.cache(ITEMS)
        for found in batch.db.all("SELECT * FROM {p}tf_items WHERE item_id IN ('a', 'c')"):
            cache.setdefault((found["item_id"],), found)
        for key in ("a", "c"):
            row = batch.get(ITEMS, key)
            assert row is not None
            row["status"] = "solved"
            batch.touch(ITEMS, row)
        batch.flush()

    statements = written(connection, change)

    assert statements == ["UPDATE tf_items SET status = 'solved' WHERE item_id = 'a'",
                          "UPDATE tf_items SET status = 'solved' WHERE item_id = 'c'"]
    assert [r[1] for r in rows(connection)] == ["solved", "new", "solved"]


def test_a_row_put_without_being_read_is_written_whole_new_or_not(connection: sqlite3.Connection) -> None:
    def change(batch: Batch) -> None:
        batch.put(ITEMS, {"item_id": "d", "status": "new", "updated_at": "2026-03-01", "count": 0})
        batch.put(ITEMS, {"item_id": "c", "status": "closed", "updated_at": "2026-03-01", "count": 6})
        batch.flush()

    statements = written(connection, change)

    assert len(statements) == 2 and all(s.startswith("INSERT INTO tf_items") for s in statements)
    assert rows(connection)[2:] == [("c", "closed", "2026-03-01", 6), ("d", "new", "2026-03-01", 0)]


def test_a_row_changed_again_after_a_flush_writes_only_the_later_change(connection: sqlite3.Connection) -> None:
    def change(batch: Batch) -> None:
        row = batch.get(ITEMS, "a")
        assert row is not None
        row["count"] = 1
        batch.touch(ITEMS, row)
        batch.flush()
        row["status"] = "open"
        batch.touch(ITEMS, row)
        batch.flush()

    statements = written(connection, change)

    assert statements == ["UPDATE tf_items SET count = 1 WHERE item_id = 'a'",
                          "UPDATE tf_items SET status = 'open' WHERE item_id = 'a'"]
    assert rows(connection)[0] == ("a", "open", "2026-01-01", 1)


def test_after_an_eviction_rows_are_read_again_and_compared_with_what_is_stored(connection: sqlite3.Connection) -> None:
    def change(batch: Batch) -> None:
        row = batch.get(ITEMS, "a")
        assert row is not None
        row["count"] = 1
        batch.touch(ITEMS, row)
        batch.evict(ITEMS)  # written, then a set-based change elsewhere; the cache forgets the table
        batch.db.execute("UPDATE {p}tf_items SET count = 9 WHERE item_id = 'a'")
        again = batch.get(ITEMS, "a")
        assert again is not None and again["count"] == 9
        again["count"] = 1
        batch.touch(ITEMS, again)
        batch.flush()

    statements = written(connection, change)

    assert statements[-1] == "UPDATE tf_items SET count = 1 WHERE item_id = 'a'"
    assert rows(connection)[0] == ("a", "new", "2026-01-01", 1)
