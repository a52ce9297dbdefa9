"""The read side's part of erasure: every view drops its plaintext copies of an erased customer's data.

When a view processes ``Customer.Erased`` it overwrites, in the same batch transaction, the
personal fields it copied from that customer's events (the profile, their tickets' subjects,
bodies, summaries, notes...) with :data:`ERASED`, keeping the rows and every non-personal
column. Events recorded later already carry the marker (the customer's key is gone), and a
rebuild reads every earlier event back erased, so no path brings the plaintext back.

Set-based updates go around the batch's row cache, so they go through :func:`overwrite`:
it writes the batch's pending rows first and evicts the table's cached rows afterwards, so
a later event of the same batch reads the erased rows, never a stale plaintext copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from projections.sql import Batch, Db, Dialect, Table, uuid_text
from ticketflow.domain import AGGREGATES, Customer, event_classes
from ticketflow.domain.customer import ERASED

__all__ = [
    "ERASED", "PERSONAL_EVENT_TYPES", "chunks", "erased_customer", "optimize_fts", "overwrite", "overwrite_in",
]

#: The event types (qualified names) that carry personal data in some field.
PERSONAL_EVENT_TYPES: frozenset[str] = frozenset(
    cls.__qualname__ for aggregate in AGGREGATES for cls in event_classes(aggregate) if cls.personal_fields
)

CHUNK = 500


def erased_customer(event: Any) -> str | None:
    """The id of the customer whose personal data ``event`` erases (None for any other event)."""
    return uuid_text(event.originator_id) if isinstance(event, Customer.Erased) else None


def chunks(values: Iterable[str], size: int = CHUNK) -> Iterable[list[str]]:
    items = sorted(set(values))
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _erase_sql(column: str) -> str:
    """The column's erased value: the marker where it held text, unchanged where it held none."""
    return f"{column} = CASE WHEN {column} IS NULL OR {column} = '' THEN {column} ELSE ? END"


def overwrite(batch: Batch, table: Table, columns: Sequence[str], where: str, params: Sequence[Any]) -> None:
    """Replace ``columns`` of the rows of ``table`` matching ``where`` with :data:`ERASED`.

    Consistent with the batch's row cache: pending rows are written first, and the table's
    cached rows are dropped afterwards (the next :meth:`Batch.get` reads the erased row)."""
    batch.flush()
    sets = ", ".join(_erase_sql(c) for c in columns)
    batch.db.execute(f"UPDATE {{p}}{table.name} SET {sets} WHERE {where}", [*([ERASED] * len(columns)), *params])
    batch.evict(table)


def overwrite_in(batch: Batch, table: Table, columns: Sequence[str], column: str, values: Iterable[str]) -> None:
    """:func:`overwrite` for the rows whose ``column`` is one of ``values`` (chunked IN lists)."""
    for chunk in chunks(values):
        overwrite(batch, table, columns, f"{column} IN ({', '.join('?' * len(chunk))})", chunk)


def optimize_fts(db: Db, table: str) -> None:
    """Merge an FTS5 index into one segment: deleted rows' terms leave the index's shadow
    tables only when the segments holding them are merged (SQLite only; PostgreSQL's
    tsvector rows are ordinary rows)."""
    if db.dialect is Dialect.SQLITE:
        db.execute(f"INSERT INTO {{p}}{table} ({table}) VALUES ('optimize')")
