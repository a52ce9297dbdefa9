"""Helpers for read-side tests: dump every table of a view, deterministically."""

from __future__ import annotations

from typing import Any

from projections.readside import VIEWS, ReadSide


def dump(read_side: ReadSide, name: str) -> dict[str, list[tuple[Any, ...]]]:
    view = VIEWS[name]
    tables = {}
    for table in view.tables:
        columns = ", ".join(table.column_names)
        order = ", ".join(table.key)
        rows = read_side.read(name, lambda db, t=table, c=columns, o=order: db.all(f"SELECT {c} FROM {{p}}{t.name} ORDER BY {o}"))
        tables[table.name] = [tuple(row.values()) for row in rows]
    return tables


def dump_all(read_side: ReadSide) -> dict[str, dict[str, list[tuple[Any, ...]]]]:
    return {name: dump(read_side, name) for name in read_side.stores}
