"""On PostgreSQL a view batch's COMMIT does not wait for its WAL flush; everything else keeps the server's
setting (projections/view.py ``PostgresViewStore._batch_begun``; README "Group commit and durability").

A view batch holds only rows made from events already durable in the log and the position they reach,
so a crash that loses it is repaired by catching up from the log. The event store's group (what the API
acknowledges) and the workflow store's other transactions (the automation's marks) are not: they stay
as the server says.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from projections.readside import ReadSide
from projections.sql import Db
from projections.tickets import TicketQueries
from projections.view import ViewStore
from tests.support import Desk
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.config import Settings
from ticketflow.pg_ddl import DeskRecorder

pytestmark = pytest.mark.postgres

_LEVEL = "SELECT current_setting('synchronous_commit') AS level"


@pytest.fixture
def pg_desk(postgres_url: str, tmp_path: Path, clock: FakeClock) -> Iterator[TicketDesk]:
    app = TicketDesk(Settings(database_url=postgres_url, data_dir=tmp_path / "data"), clock=clock)
    yield app
    app.close()


def _server_level(app: TicketDesk) -> str:
    assert isinstance(app.recorder, DeskRecorder)
    with app.recorder.datastore.get_connection() as conn:
        row = conn.execute("SHOW synchronous_commit").fetchone()
    assert row is not None
    return str(next(iter(row.values())))


def test_a_view_batch_commits_without_waiting_for_its_wal_and_the_event_store_waits(
    pg_desk: TicketDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = _server_level(pg_desk)
    assert server != "off"  # the shared server flushes on commit: the event store's groups must too
    in_view_batch: list[str] = []
    in_event_group: list[str] = []
    apply_in, insert_all = ViewStore._apply_in, DeskRecorder._insert_all

    def spying_view(self: ViewStore, cursor: Any, events: Any) -> Any:
        in_view_batch.append(Db(cursor, self.dialect, self.prefix).one(_LEVEL)["level"])  # type: ignore[index]
        return apply_in(self, cursor, events)

    def spying_store(self: DeskRecorder, conn: Any, pipeline: Any, batches: Any) -> None:
        with conn.cursor() as curs:
            curs.execute(_LEVEL)
            in_event_group.append(curs.fetchone()["level"])
        insert_all(self, conn, pipeline, batches)

    monkeypatch.setattr(ViewStore, "_apply_in", spying_view)
    monkeypatch.setattr(DeskRecorder, "_insert_all", spying_store)
    setup = Desk(pg_desk)
    ticket_id = setup.open("异步提交的视图")
    read_side = ReadSide(pg_desk, ["tickets", "workflow"])
    try:
        assert read_side.step_all({"tickets": 0, "workflow": 0}, 100) > 0
        row = read_side.read("tickets", lambda db: TicketQueries.get(db, str(ticket_id)))
        # The automation's marks go through the workflow store's own transaction, not a batch's.
        workflow = read_side.stores["workflow"]
        with workflow._transaction(commit=True) as cursor:
            in_marks = Db(cursor, workflow.dialect, workflow.prefix).one(_LEVEL)
    finally:
        read_side.close()

    assert row is not None and row["subject"] == "异步提交的视图"  # the batch committed
    assert in_view_batch and set(in_view_batch) == {"off"}  # both views' batches, this transaction only
    assert in_event_group and set(in_event_group) == {server}  # what the API acknowledges waits for its WAL
    assert in_marks is not None and in_marks["level"] == server
    assert _server_level(pg_desk) == server  # SET LOCAL: the pooled connections keep the server's level


def test_a_view_fed_inside_a_holding_block_keeps_the_servers_setting(
    pg_desk: TicketDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo's holding block commits rows with the writer's own transaction: not a batch of its own.
    server = _server_level(pg_desk)
    seen: list[str] = []
    apply_in = ViewStore._apply_in

    def spying_view(self: ViewStore, cursor: Any, events: Any) -> Any:
        seen.append(Db(cursor, self.dialect, self.prefix).one(_LEVEL)["level"])  # type: ignore[index]
        return apply_in(self, cursor, events)

    setup = Desk(pg_desk)
    setup.open("演示")
    read_side = ReadSide(pg_desk, ["tickets"])
    monkeypatch.setattr(ViewStore, "_apply_in", spying_view)
    try:
        with read_side.holding(["tickets"]):
            assert read_side.step("tickets", 100) > 0
    finally:
        read_side.close()
    assert seen == [server]


def test_a_view_read_is_read_only_and_keeps_its_connections_prepared_statements(pg_desk: TicketDesk) -> None:
    # A read ends in COMMIT, not ROLLBACK: psycopg forgets (DEALLOCATE ALL) a connection's prepared
    # statements after a ROLLBACK, and every statement then ran unprepared again on that connection.
    Desk(pg_desk).open("只读")
    read_side = ReadSide(pg_desk, ["tickets"])
    try:
        read_side.step_all({"tickets": 0}, 100)
        store = read_side.stores["tickets"]

        def prepare_and_look(db: Db) -> tuple[Any, str]:
            db.cursor.execute("SELECT 1 AS one", prepare=True)
            mode = db.one("SELECT current_setting('transaction_read_only') AS mode")
            assert mode is not None
            return db.cursor.connection, str(mode["mode"])

        connection, mode = store.read(prepare_and_look)
        with connection.cursor() as cursor:  # after the read: the statement it prepared is still there
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            prepared = [row["statement"] for row in cursor.fetchall()]
        with pytest.raises(Exception, match="read-only transaction"):
            store.read(lambda db: db.execute("UPDATE {p}tf_tickets SET subject = subject"))
    finally:
        read_side.close()
    assert mode == "on"
    assert "SELECT 1 AS one" in prepared
