"""Portable SQL for views: one statement text for SQLite and PostgreSQL.

Statements are written with ``?`` placeholders and ``{p}`` before table names;
:class:`Db` turns them into the dialect's form (``%s`` and a schema-qualified
name on PostgreSQL) once and caches the result. ``{workflow}`` before a table of the
workflow view names it from another view's statement (PostgreSQL: the same schema;
SQLite: the workflow view's file, attached as ``workflow`` — see ``ViewStore.attached``).
``x {in(}SELECT ...{)in}``: x among a subquery's rows, as keys an index is probed with
(PostgreSQL: ``= ANY (ARRAY(...))``, the subquery run once; ``IN (...)`` there is a semi-join,
which may walk another index whole to find the few matching rows in its order). Values are stored portably:
ids and times as text (times as UTC ISO-8601, so text order is time order),
lists and dicts as JSON text, booleans as 0/1.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cached_property, lru_cache
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from operator import itemgetter
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo


class Dialect(StrEnum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"


#: The name the workflow view's SQLite file is attached under by the views that read its tables.
WORKFLOW_ALIAS = "workflow"


@lru_cache(maxsize=4096)
def render(template: str, dialect: Dialect, prefix: str) -> str:
    text = template.replace("{p}", prefix)
    if "{workflow}" in text:
        text = text.replace("{workflow}", prefix if dialect is Dialect.POSTGRES else f"{WORKFLOW_ALIAS}.")
    if "{in(}" in text:
        postgres = dialect is Dialect.POSTGRES
        text = text.replace("{in(}", "= ANY (ARRAY(" if postgres else "IN (").replace("{)in}", "))" if postgres else ")")
    return text.replace("?", "%s") if dialect is Dialect.POSTGRES else text


#: How many times and ids :func:`ts` and :func:`uuid_text` remember. Every view of a batch writes the
#: same event's time and stream: 5 ``isoformat`` and 12 ``str(UUID)`` calls per event in a rebuild of
#: every view (cProfile), each a microsecond or half; a remembered one is a tenth of that.
REMEMBERED = 16_384


@lru_cache(maxsize=REMEMBERED)
def _utc_text(value: datetime) -> str:
    """A UTC time's text (only UTC times come here: equal instants have one text)."""
    return value.isoformat(timespec="microseconds")


@lru_cache(maxsize=REMEMBERED)
def uuid_text(value: UUID) -> str:
    """``str(value)``, remembered (see :data:`REMEMBERED`)."""
    return str(value)


def ts(value: datetime | None) -> str | None:
    """A time as sortable UTC text."""
    if value is None:
        return None
    if value.tzinfo is UTC:  # the times events carry: no conversion (the same text)
        return _utc_text(value)
    try:
        return _utc_text(value.astimezone(UTC))
    except (OverflowError, ValueError):  # a bound at the very edge of the calendar (a filter, not data)
        return "0001-01-01T00:00:00.000000+00:00" if value.year < 2 else "9999-12-31T23:59:59.999999+00:00"


def parse_ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


#: A period's label: the first characters of a local ISO time (``2026-11-02``, ``2026-11``, ``2026``).
PERIOD_WIDTH = {"day": 10, "month": 7, "year": 4}
_PG_PERIOD_FORMAT = {10: "YYYY-MM-DD", 7: "YYYY-MM", 4: "YYYY"}
#: SQLite's name for :func:`local_time_text` (registered on every view connection).
SQLITE_LOCAL_TIME = "tf_local_time"


def local_time_text(value: str | None, zone: str, width: int) -> str | None:
    """The first ``width`` characters of a stored UTC time read as local time in ``zone``."""
    if value is None:
        return None
    offset = _HOUR_OFFSETS.get((value[:13], zone))
    if offset is None:
        offset = _HOUR_OFFSETS[(value[:13], zone)] = _hour_offset(value[:13], zone)
    if offset is False:  # the zone's offset changes within this hour: convert exactly
        return datetime.fromisoformat(value).astimezone(ZoneInfo(zone)).isoformat()[:width]
    return (datetime.fromisoformat(value[:19]) + offset).isoformat()[:width]


#: (UTC hour, zone) -> the zone's offset through that hour, or False when it changes within it.
_HOUR_OFFSETS: dict[tuple[str, str], timedelta | bool] = {}


def _hour_offset(hour: str, zone: str) -> timedelta | bool:
    """The zone's UTC offset throughout the UTC hour ``hour`` (``2026-11-01T17``); False when it changes
    within the hour. A year of rows touches 8,760 hours: each is looked up in the zone database once."""
    if len(_HOUR_OFFSETS) > 1 << 18:
        _HOUR_OFFSETS.clear()
    start = datetime.fromisoformat(f"{hour}:00:00+00:00")
    local = ZoneInfo(zone)
    first = start.astimezone(local).utcoffset()
    last = (start + timedelta(hours=1, microseconds=-1)).astimezone(local).utcoffset()
    return first if first is not None and first == last else False


def register_functions(connection: Any) -> None:
    """Give a SQLite connection the functions the views' queries use (PostgreSQL has them built in)."""
    connection.create_function(SQLITE_LOCAL_TIME, 3, local_time_text, deterministic=True)


def local_period(db: Db, column: str, period: str, zone: str) -> tuple[str, list[Any]]:
    """SQL for the day, month or year (``2026-11-02``, ``2026-11``, ``2026``) that ``column``, a stored
    UTC time, falls in as seen in the desk's time zone ``zone``; and its parameters.

    In UTC that is a prefix of the stored text (free, and an index on the column serves it); elsewhere
    PostgreSQL converts with its own zone database, SQLite with Python's (:func:`local_time_text`)."""
    width = PERIOD_WIDTH.get(period)
    if width is None:
        raise ValueError("period is day, month or year")
    if zone == "UTC":
        return f"substr({column}, 1, {width})", []
    if db.dialect is Dialect.POSTGRES:
        return f"to_char(CAST({column} AS timestamptz) AT TIME ZONE CAST(? AS text), '{_PG_PERIOD_FORMAT[width]}')", [zone]
    return f"{SQLITE_LOCAL_TIME}({column}, ?, {width})", [zone]


def uid(value: UUID | str | None) -> str | None:
    if value is None:
        return None
    return uuid_text(value) if type(value) is UUID else str(value)


#: One encoder for every value: ``json.dumps`` with options builds a new encoder on each call, and
#: ``JSONEncoder.encode`` a new C iterator; the stdlib's C encoder built once is twice as fast (the
#: same text: sorted keys, ", " and ": ", non-ASCII kept, ``str`` of what JSON has no type for).
_ENCODER = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str)
_C_ENCODE = (
    None if c_make_encoder is None
    else c_make_encoder(None, str, encode_basestring, None, ": ", ", ", True, False, True)
)


def dumps(value: Any) -> str:
    if _C_ENCODE is None:  # pragma: no cover - a Python built without the _json accelerator
        return _ENCODER.encode(value)
    return "".join(_C_ENCODE(value, 0))


def loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


class Db:
    """A cursor in one transaction, speaking the portable statement form."""

    def __init__(self, cursor: Any, dialect: Dialect, prefix: str) -> None:
        self.cursor = cursor
        self.dialect = dialect
        self.prefix = prefix

    def sql(self, template: str) -> str:
        return render(template, self.dialect, self.prefix)

    def execute(self, template: str, params: Sequence[Any] = ()) -> None:
        self.cursor.execute(self.sql(template), tuple(params))

    def executemany(self, template: str, rows: Iterable[Sequence[Any]]) -> None:
        rows = list(rows)
        if rows:
            self.cursor.executemany(self.sql(template), rows)

    def all(self, template: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        self.cursor.execute(self.sql(template), tuple(params))
        rows = self.cursor.fetchall()
        if not rows or isinstance(rows[0], dict):  # PostgreSQL's rows are new dicts already
            return rows  # type: ignore[no-any-return]
        # SQLite's rows (sqlite3.Row): zipped with the column names, not dict(row), which looks each
        # column up by its name (a view's prepare reads ~100 rows of ~30 columns a batch: 3x faster).
        names = _column_names(rows[0].keys())
        if names is None:  # a name twice (a join's SELECT *): a dict keeps the first, as dict(row) does
            return [dict(row) for row in rows]
        return [dict(zip(names, row)) for row in rows]

    def one(self, template: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        rows = self.all(template, params)
        return rows[0] if rows else None

    def scalar(self, template: str, params: Sequence[Any] = ()) -> Any:
        row = self.one(template, params)
        return None if row is None else next(iter(row.values()))


def _column_names(keys: Iterable[str]) -> tuple[str, ...] | None:
    """The column names of a result (None when one is there twice)."""
    names = tuple(keys)
    return names if len(set(names)) == len(names) else None


@dataclass(frozen=True)
class Table:
    """A view table: its columns, key and indexes. Everything else is derived."""

    name: str
    columns: tuple[str, ...]  # "name TYPE" pairs, portable types only
    key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()
    #: Indexes an earlier version of the code created and this one no longer reads: dropped when the
    #: store opens (as new indexes are created then), so they cost no writes.
    retired_indexes: tuple[tuple[str, ...], ...] = ()
    #: Partial indexes: (columns, condition) pairs, each index holding only the rows that meet its condition
    #: (``sla_breached = 1``), so the rows that do not cost it no write. A query uses one only when its WHERE
    #: states the condition as written, with literals, not parameters (both planners prove it from the text).
    partial_indexes: tuple[tuple[tuple[str, ...], str], ...] = ()
    #: Partial indexes an earlier version created (by their columns), dropped as ``retired_indexes`` are.
    retired_partial_indexes: tuple[tuple[str, ...], ...] = ()

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.split()[0] for c in self.columns)

    def ddl(self) -> list[str]:
        statements = [
            f"CREATE TABLE IF NOT EXISTS {{p}}{self.name} ("
            + ", ".join(self.columns)
            + f", PRIMARY KEY ({', '.join(self.key)}))"
        ]
        retired = [f"DROP INDEX IF EXISTS {{p}}{self.index_name(columns)}" for columns in self.retired_indexes]
        retired += [f"DROP INDEX IF EXISTS {{p}}{self.index_name(columns, partial=True)}"
                    for columns in self.retired_partial_indexes]
        return statements + retired + [create for _, create in self.index_ddl()]

    def index_name(self, columns: tuple[str, ...], partial: bool = False) -> str:
        """``<table>_<columns>_idx`` (a partial index: ``..._part_idx``); past PostgreSQL's 63-character
        identifiers (it would cut the name short itself), the first 50 characters and a digest of the whole
        name, the same on both databases."""
        name = f"{self.name}_{'_'.join(columns)}{'_part' if partial else ''}_idx"
        if len(name) <= 63:
            return name
        return f"{name[:50]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}_idx"

    def index_ddl(self) -> list[tuple[str, str]]:
        """(drop, create) of each secondary index: a rebuild drops them, loads, then creates them."""
        statements = []
        for columns in self.indexes:
            index = self.index_name(columns)
            statements.append((
                f"DROP INDEX IF EXISTS {{p}}{index}",
                f"CREATE INDEX IF NOT EXISTS {index} ON {{p}}{self.name} ({', '.join(columns)})",
            ))
        for columns, condition in self.partial_indexes:
            index = self.index_name(columns, partial=True)
            statements.append((
                f"DROP INDEX IF EXISTS {{p}}{index}",
                f"CREATE INDEX IF NOT EXISTS {index} ON {{p}}{self.name} ({', '.join(columns)}) WHERE {condition}",
            ))
        return statements

    @cached_property
    def values(self) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
        """A row's values in column order (the parameters of :attr:`upsert_sql`)."""
        get = itemgetter(*self.column_names)
        if len(self.column_names) == 1:
            return lambda row: (get(row),)
        return get

    @cached_property
    def upsert_sql(self) -> str:
        return self.upsert()

    def upsert(self) -> str:
        names = self.column_names
        updates = [n for n in names if n not in self.key]
        on_conflict = (
            f" ON CONFLICT ({', '.join(self.key)}) DO UPDATE SET " + ", ".join(f"{n} = excluded.{n}" for n in updates)
            if updates
            else f" ON CONFLICT ({', '.join(self.key)}) DO NOTHING"
        )
        return f"INSERT INTO {{p}}{self.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})" + on_conflict

    def select_by_key(self) -> str:
        where = " AND ".join(f"{k} = ?" for k in self.key)
        return f"SELECT * FROM {{p}}{self.name} WHERE {where}"



class Batch:
    """The rows one batch of events touches: loaded once, changed in memory, written once.

    Applying many events to cached rows and writing each changed row once per
    batch is what makes a rebuild fast; the whole batch commits with the
    view's tracking position in one transaction.
    """

    def __init__(self, db: Db) -> None:
        self.db = db
        self._rows: dict[str, dict[tuple[Any, ...], dict[str, Any] | None]] = {}
        self._dirty: dict[str, set[tuple[Any, ...]]] = {}
        self._tables: dict[str, Table] = {}

    def get(self, table: Table, *key: Any) -> dict[str, Any] | None:
        rows = self._rows.setdefault(table.name, {})
        if key not in rows:
            rows[key] = self.db.one(table.select_by_key(), key)
        return rows[key]

    def cache(self, table: Table) -> dict[tuple[Any, ...], dict[str, Any] | None]:
        """The table's cached rows by key (None: known to be absent), for a view's ``prepare`` to
        fill with the rows a batch will read, loaded in a few queries."""
        return self._rows.setdefault(table.name, {})

    def put(self, table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
        name = table.name
        dirty = self._dirty.get(name)
        if dirty is None:
            self._tables[name] = table
            self._rows.setdefault(name, {})
            dirty = self._dirty[name] = set()
        key_columns = table.key
        key = (row[key_columns[0]],) if len(key_columns) == 1 else tuple(row[k] for k in key_columns)
        stored = row if type(row) is dict else dict(row)
        self._rows[name][key] = stored
        dirty.add(key)
        return stored

    def touch(self, table: Table, row: dict[str, Any]) -> None:
        """Mark a row obtained from :meth:`get` as changed in place."""
        self.put(table, row)

    def evict(self, *tables: Table) -> None:
        """Write every pending row, then forget the cached rows of ``tables``: for a view that
        changed those tables with a set-based statement, so later reads see the stored rows."""
        self.flush()
        for table in tables:
            self._rows[table.name] = {}

    def flush(self) -> None:
        # Keys in sorted order: concurrent writers of one view take row locks in the same order.
        for name, keys in self._dirty.items():
            table = self._tables[name]
            rows = self._rows[name]
            values = table.values
            self.db.executemany(table.upsert_sql, [values(row) for k in sorted(keys) if (row := rows[k]) is not None])
            keys.clear()


def preload(batch: Batch, table: Table, column: str, keys: set[str]) -> None:
    """Fetch many rows by a single-column key in a few IN queries (rebuilds touch thousands)."""
    missing = sorted(keys)
    for start in range(0, len(missing), 500):
        chunk = missing[start : start + 500]
        rows = batch.db.all(
            f"SELECT * FROM {{p}}{table.name} WHERE {column} IN ({', '.join('?' * len(chunk))})", chunk
        )
        found = {row[column]: row for row in rows}
        cache = batch.cache(table)
        for key in chunk:
            cache.setdefault((key,), found.get(key))


def log_page(db: Db, table: str, after: int, limit: int, conditions: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows of a one-row-per-event table after a log position, in log order.

    ``conditions`` maps "column op" to a value (``{"actor_id =": "li.wei", "occurred_at >=": t}``);
    a None value leaves that condition out.
    """
    clauses, params = ["position > ?"], [after]
    for condition, value in conditions.items():
        if value is not None:
            clauses.append(f"{condition} ?")
            params.append(value)
    params.append(limit)
    return db.all(f"SELECT * FROM {{p}}{table} WHERE {' AND '.join(clauses)} ORDER BY position LIMIT ?", params)
