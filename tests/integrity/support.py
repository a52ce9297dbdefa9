"""Helpers for the tamper tests: a sealed desk, and raw SQL on its stores (what an attacker does)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from projections.integrity.sealer import Sealer
from ticketflow.application import TicketDesk
from ticketflow.commands import AddNote
from tests.support import AGENT, Desk


@dataclass
class Sealed:
    desk: TicketDesk
    sealer: Sealer
    tickets: list[UUID]


def populate(desk: TicketDesk, tickets: int = 3, notes: int = 4) -> list[UUID]:
    setup = Desk(desk)
    ids = [setup.open(f"ticket {i}") for i in range(tickets)]
    for n in range(notes):
        for ticket in ids:
            desk.add_note(AddNote(ticket_id=ticket, body=f"note {n} on {ticket}"), AGENT)
    return ids


def _table(recorder: Any) -> str:
    schema = getattr(recorder.datastore, "schema", None)
    return f'"{schema}"."{recorder.events_table_name}"' if schema else recorder.events_table_name


def raw(recorder: Any, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run SQL on a recorder's table (``{t}``), with ``?`` placeholders, committing."""
    postgres = hasattr(recorder.datastore, "schema")
    text = sql.replace("{t}", _table(recorder))
    if postgres:
        text = text.replace("?", "%s")
    else:  # SQLite keeps the log position in the rowid
        text = text.replace("notification_id", "rowid")
    with recorder.datastore.transaction(commit=True) as cursor:
        cursor.execute(text, params)
        rows = cursor.fetchall() if text.lstrip().upper().startswith("SELECT") else []
    out = []
    for r in rows:
        row = {k: r[k] for k in r.keys()} if hasattr(r, "keys") else dict(r)
        if "rowid" in row:
            row["notification_id"] = row.pop("rowid")
        out.append(row)
    return out


def oid(desk: TicketDesk, value: Any) -> Any:
    """The originator id as the store's column type expects it."""
    return value if hasattr(desk.recorder.datastore, "schema") else value.hex


def event_at(desk: TicketDesk, position: int) -> dict[str, Any]:
    return raw(desk.recorder, "SELECT notification_id, originator_id, originator_version, topic, state FROM {t}"
               " WHERE notification_id = ?", (position,))[0]


def set_state(desk: TicketDesk, position: int, state: bytes) -> None:
    raw(desk.recorder, "UPDATE {t} SET state = ? WHERE notification_id = ?", (state, position))


def flip(data: bytes, at: int | None = None) -> bytes:
    at = len(data) // 2 if at is None else at
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1:]


def sealed_db(sealer: Sealer, sql: str, params: tuple[Any, ...] = ()) -> None:
    sealer.store.write(lambda db: db.execute(sql, params))
