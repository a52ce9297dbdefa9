"""The audit view's version-2 layout: one remembered-fields row per object, read back by later batches."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from projections.audit import AuditView, audit_trail
from projections.readside import ReadSide
from projections.sql import Dialect, loads
from tests.support import AGENT, Desk
from ticketflow.application import TicketDesk
from ticketflow.commands import AssignTicket, ChangePriority
from ticketflow.config import Settings
from ticketflow.domain.values import Priority


@pytest.fixture
def desk(shared_store_settings: Settings) -> Iterator[TicketDesk]:
    app = TicketDesk(shared_store_settings)
    yield app
    app.close()


def _fields(read_side: ReadSide) -> list[dict[str, Any]]:
    return read_side.read("audit", lambda db: db.all("SELECT * FROM {p}tf_audit_fields ORDER BY object_id"))


def test_each_object_keeps_one_fields_row_and_a_later_batch_reads_its_old_values_from_it(
    desk: TicketDesk,
) -> None:
    setup = Desk(desk)
    ticket = setup.open()
    read_side = ReadSide(desk, ["audit"])
    try:
        read_side.catch_up(batch=1)  # one event per batch: each change reads the stored row back
        desk.assign_ticket(AssignTicket(ticket_id=ticket, assignee_id="li.wei"), AGENT)
        read_side.catch_up(batch=1)
        desk.change_priority(ChangePriority(ticket_id=ticket, priority=Priority.URGENT), AGENT)
        desk.assign_ticket(AssignTicket(ticket_id=ticket, assignee_id="emma.clark"), AGENT)
        read_side.catch_up(batch=1)

        rows = _fields(read_side)
        assert len(rows) == len({row["object_id"] for row in rows})  # one row per object
        fields = loads(next(row["fields"] for row in rows if row["object_id"] == str(ticket)))
        assert fields["assignee_id"] == "emma.clark" and fields["priority"] == "urgent"
        trail = read_side.read("audit", lambda db: audit_trail(db, object_id=str(ticket)))
        changes = [c for row in trail for c in row["changes"] if c["field"] in ("assignee_id", "priority")]
        assert [(c["field"], c["old"], c["new"]) for c in changes][-3:] == [
            ("assignee_id", None, "li.wei"),
            ("priority", fields_before_urgent(trail), "urgent"),
            ("assignee_id", "li.wei", "emma.clark"),
        ]

        live = _fields(read_side)
        read_side.rebuild("audit")  # one big batch gives the same remembered fields
        assert _fields(read_side) == live
    finally:
        read_side.close()


def fields_before_urgent(trail: list[dict[str, Any]]) -> Any:
    """The priority the ticket was opened with (the old value of the change to urgent)."""
    return next(c["new"] for row in trail for c in row["changes"] if c["field"] == "priority")


def test_on_sqlite_the_audit_rows_are_keyed_by_the_rowid_and_the_key_value_tables_have_none() -> None:
    statements = AuditView().ddl(Dialect.SQLITE)
    audit = next(s for s in statements if "TABLE IF NOT EXISTS {p}tf_audit (" in s)
    assert "position INTEGER NOT NULL" in audit and "WITHOUT ROWID" not in audit
    for name in ("tf_audit_fields", "tf_audit_subjects"):
        assert next(s for s in statements if f"{{p}}{name} (" in s).endswith("WITHOUT ROWID")
    postgres = AuditView().ddl(Dialect.POSTGRES)
    assert not any("WITHOUT ROWID" in s for s in postgres)
    assert any("position BIGINT NOT NULL" in s for s in postgres)
