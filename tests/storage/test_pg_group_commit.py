"""Group commit on PostgreSQL (ticketflow/pg_group_commit.py): saves that wait together commit together.

As on SQLite (tests/storage/test_group_commit.py), saves are held in the recorder's queue
(``recorder.held()``) until every thread has queued its batch, then released. The transactions that
wrote events are counted by the events' ``xmin`` (the id of the transaction, or of the savepoint's
subtransaction, that inserted each row), never by time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent

from tests.storage.test_group_commit import _bodies, _together
from tests.support import AGENT, Desk
from ticketflow.application import CommandResult, TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import OpenTicket, PostReply
from ticketflow.config import Settings
from ticketflow.errors import ConcurrencyConflict
from ticketflow.pg_ddl import DeskRecorder

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_settings(postgres_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=postgres_url, data_dir=tmp_path / "data", lock_timeout=1)


@pytest.fixture
def pg_desk(pg_settings: Settings, clock: FakeClock) -> Iterator[TicketDesk]:
    app = TicketDesk(pg_settings, clock=clock)
    yield app
    app.close()


def _recorder(app: TicketDesk) -> DeskRecorder:
    assert isinstance(app.recorder, DeskRecorder)
    return app.recorder


def _table(app: TicketDesk) -> str:
    recorder = _recorder(app)
    return f'"{recorder.datastore.schema}"."{recorder.events_table_name}"'


def _sql(settings: Settings, query: str, *params: Any) -> list[Any]:
    assert settings.database_url is not None
    with psycopg.connect(settings.database_url.split("?")[0], autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def _transactions_after(app: TicketDesk, position: int) -> int:
    """How many transactions wrote the events after ``position``."""
    ((count,),) = _sql(
        app.settings,
        f"SELECT count(DISTINCT xmin::text) FROM {_table(app)} WHERE notification_id > %s",
        position,
    )
    return int(count)


def _positions(app: TicketDesk) -> list[int]:
    return [row[0] for row in _sql(app.settings, f"SELECT notification_id FROM {_table(app)} ORDER BY 1")]


def _event(app: TicketDesk, originator: UUID, version: int) -> list[StoredEvent]:
    topic = app.recorder.select_events(originator, limit=1)[0].topic
    return [StoredEvent(originator_id=originator, originator_version=version, topic=topic, state=b"{}")]


def _inserting(app: TicketDesk, originator: UUID, version: int) -> Callable[[], Any]:
    return lambda: app.recorder.insert_events(_event(app, originator, version))


def test_saves_waiting_together_are_committed_in_one_transaction(pg_desk: TicketDesk) -> None:
    setup = Desk(pg_desk)
    tickets = [setup.open(f"工单 {n}") for n in range(8)]
    before = pg_desk.log_position()

    def reply(ticket_id: UUID) -> Callable[[], CommandResult]:
        return lambda: pg_desk.post_reply(PostReply(ticket_id=ticket_id, body=f"已收到 {ticket_id}"), AGENT)

    results = _together(pg_desk, [reply(t) for t in tickets])

    assert all(isinstance(r, CommandResult) for r in results), results
    assert _transactions_after(pg_desk, before) == 1
    written = sum(len(r.events) for r in results)
    assert _positions(pg_desk)[-written:] == list(range(before + 1, before + written + 1))  # no gap
    assert sorted(r.position for r in results) == sorted({r.position for r in results})
    for ticket_id, result in zip(tickets, results, strict=True):
        history = pg_desk.history(ticket_id)
        assert f"已收到 {ticket_id}" in _bodies(history)
        assert result.version == len(history)
    assert _recorder(pg_desk).group_stats.groups[-1] == 8


def test_a_save_that_loses_its_version_race_fails_alone_while_the_rest_of_its_group_commits(
    pg_desk: TicketDesk,
) -> None:
    setup = Desk(pg_desk)
    contested, other = setup.open("争用"), setup.open("旁观")
    version = pg_desk.get_ticket(contested).version
    before = pg_desk.log_position()

    first, second, bystander = _together(
        pg_desk,
        [
            lambda: pg_desk.post_reply(
                PostReply(ticket_id=contested, body="甲", expected_version=version), AGENT
            ),
            lambda: pg_desk.post_reply(
                PostReply(ticket_id=contested, body="乙", expected_version=version), AGENT
            ),
            lambda: pg_desk.post_reply(PostReply(ticket_id=other, body="丙"), AGENT),
        ],
    )

    conflicts = [o for o in (first, second) if isinstance(o, ConcurrencyConflict)]
    landed = [o for o in (first, second) if isinstance(o, CommandResult)]
    assert (len(conflicts), len(landed)) == (1, 1), (first, second)
    assert isinstance(bystander, CommandResult)
    assert _transactions_after(pg_desk, before) == 1
    bodies = _bodies(pg_desk.history(contested)[version:])
    assert len(bodies) == 1 and bodies[0] in ("甲", "乙")
    assert _bodies(pg_desk.history(other)) == ["丙"]
    # The refused save took no position: the log has no gap.
    written = len(landed[0].events) + len(bystander.events)
    assert _positions(pg_desk)[-written:] == list(range(before + 1, before + written + 1))


def test_the_recorder_answers_a_version_taken_in_its_own_group_alone_with_an_integrity_error(
    pg_desk: TicketDesk,
) -> None:
    a, b = Desk(pg_desk).open(), Desk(pg_desk).open()
    version = pg_desk.get_ticket(a).version
    recorder = _recorder(pg_desk)
    start = pg_desk.log_position()

    taken, duplicate, separate, twice = _together(
        pg_desk,
        [
            lambda: recorder.insert_events(_event(pg_desk, a, version + 1)),
            lambda: recorder.insert_events(_event(pg_desk, a, version + 1) + _event(pg_desk, a, version + 2)),
            lambda: recorder.insert_events(_event(pg_desk, b, 99)),
            lambda: recorder.insert_events(_event(pg_desk, b, 100) + _event(pg_desk, b, 100)),
        ],
    )

    assert isinstance(duplicate, IntegrityError) != isinstance(taken, IntegrityError)
    assert isinstance(twice, IntegrityError)  # a save holding one version twice
    good = taken if not isinstance(taken, IntegrityError) else duplicate
    # The saves joined the group in whatever order their threads ran: together they took the next
    # positions, with no gap where the refused one would have been.
    positions = sorted([*good, *separate])
    assert positions == list(range(start + 1, start + 1 + len(positions))) and len(list(separate)) == 1
    kept = [version + 1] if good is taken else [version + 1, version + 2]
    assert [e.originator_version for e in recorder.select_events(a, gt=version)] == kept
    assert [e.originator_version for e in recorder.select_events(b, gt=98)] == [99]


def test_a_version_the_check_misses_is_refused_by_the_table_and_rolled_back_to_its_savepoint_alone(
    pg_desk: TicketDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check under the table lock answers version races before the INSERT; should one reach it
    anyway, the primary key refuses it, the group's insert is redone one save at a time, each behind
    its savepoint, and only that save fails."""
    a, b, c = (Desk(pg_desk).open() for _ in range(3))
    version = pg_desk.get_ticket(a).version
    recorder = _recorder(pg_desk)
    pg_desk.recorder.insert_events(_event(pg_desk, a, version + 1))
    monkeypatch.setattr("ticketflow.pg_group_commit._refuse_taken", lambda group, taken: [x for x in group])
    transactions: list[int] = []
    original = DeskRecorder._write_group

    def counted(self: DeskRecorder, *args: Any) -> None:
        transactions.append(1)
        original(self, *args)

    monkeypatch.setattr(DeskRecorder, "_write_group", counted)

    first, stale, last = _together(
        pg_desk,
        [
            lambda: recorder.insert_events(_event(pg_desk, b, 50)),
            lambda: recorder.insert_events(_event(pg_desk, a, version + 1)),  # taken above
            lambda: recorder.insert_events(_event(pg_desk, c, 50)),
        ],
    )

    assert isinstance(stale, IntegrityError), stale
    assert not isinstance(first, Exception) and not isinstance(last, Exception), (first, last)
    assert list(first) < list(last)  # queue order
    assert len(transactions) == 1  # the savepoints are inside the group's one transaction
    assert [e.originator_version for e in recorder.select_events(a, gt=version)] == [version + 1]
    assert [len(recorder.select_events(x, gt=49)) for x in (b, c)] == [1, 1]


def test_a_group_that_cannot_take_the_table_answers_every_save_with_the_error_and_the_next_one_works(
    pg_desk: TicketDesk,
) -> None:
    tickets = [Desk(pg_desk).open() for _ in range(3)]
    recorder = _recorder(pg_desk)
    start = pg_desk.log_position()
    assert pg_desk.settings.database_url is not None
    blocker = psycopg.connect(pg_desk.settings.database_url.split("?")[0])  # another writer, mid-transaction
    try:
        blocker.execute(f"LOCK TABLE {_table(pg_desk)} IN EXCLUSIVE MODE")
        outcomes = _together(pg_desk, [_inserting(pg_desk, t, 50) for t in tickets])
    finally:
        blocker.rollback()
        blocker.close()

    assert all(isinstance(o, OperationalError) for o in outcomes), outcomes  # lock_timeout (1 s here)
    assert pg_desk.log_position() == start  # nothing of the group was written
    assert list(recorder.insert_events(_event(pg_desk, tickets[0], 50)) or []) == [start + 1]


def test_a_retried_create_in_the_same_group_is_answered_from_its_first_outcome(pg_desk: TicketDesk) -> None:
    setup = Desk(pg_desk)
    command = OpenTicket(subject="重复提交", requester_id=setup.customer_id, team_id=setup.team_id)

    one, two = _together(pg_desk, [lambda: pg_desk.open_ticket(command, setup.customer_caller)] * 2)

    assert isinstance(one, CommandResult) and isinstance(two, CommandResult), (one, two)
    assert one.object_id == two.object_id
    assert sorted([one.replayed, two.replayed]) == [False, True]
    assert len(pg_desk.history(one.object_id)) == max(one.version, two.version)


def test_a_retried_change_in_the_same_group_writes_once(pg_desk: TicketDesk) -> None:
    ticket_id = Desk(pg_desk).open()
    command = PostReply(ticket_id=ticket_id, body="只发一次")

    results = _together(pg_desk, [lambda: pg_desk.handle(command, AGENT)] * 2)

    assert all(isinstance(r, CommandResult) for r in results), results
    assert sorted(r.replayed for r in results) == [False, True]
    assert _bodies(pg_desk.history(ticket_id)) == ["只发一次"]


def test_a_group_in_flight_keeps_the_log_in_commit_order_for_another_process_and_its_readers(
    pg_desk: TicketDesk, pg_settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Positions are a sequence: a writer that took higher ones and committed first would let a reader
    tail past the lower ones still in flight. A group holds the event table from its first position
    to its COMMIT, so another process's save waits, then takes the positions after it; a reader meanwhile
    sees neither."""
    other = TicketDesk(pg_settings, clock=clock)  # another serve worker / project
    try:
        mine, theirs = Desk(pg_desk).open("本进程"), Desk(other).open("另一进程")
        start = pg_desk.log_position()
        inserted, release = threading.Event(), threading.Event()
        recorder = _recorder(pg_desk)
        original = type(recorder)._insert_all

        def pausing(self: DeskRecorder, conn: Any, pipeline: Any, batches: Any) -> None:
            original(self, conn, pipeline, batches)
            if self is recorder:
                inserted.set()  # positions taken, not committed
                assert release.wait(30)

        monkeypatch.setattr(type(recorder), "_insert_all", pausing)
        results: dict[str, CommandResult] = {}
        first = threading.Thread(
            target=lambda: results.update(mine=pg_desk.handle(PostReply(ticket_id=mine, body="先"), AGENT))
        )
        second = threading.Thread(
            target=lambda: results.update(theirs=other.handle(PostReply(ticket_id=theirs, body="后"), AGENT))
        )
        first.start()
        assert inserted.wait(30)
        second.start()
        table = _table(pg_desk).replace('"', "")
        waiting: list[Any] = []
        for _ in range(300):  # the other process's group queues on the table lock (seen in pg_locks)
            waiting = _sql(
                pg_settings, "SELECT 1 FROM pg_locks WHERE NOT granted AND relation = %s::regclass", table
            )
            if waiting:
                break
            threading.Event().wait(0.1)
        assert waiting, "the other process's save did not wait for the table"
        assert pg_desk.recorder.select_notifications(start + 1, 10) == []  # nothing visible to readers yet
        assert other.log_position() == start
        release.set()
        first.join(30)
        second.join(30)
    finally:
        other.close()

    assert results["mine"].position is not None and results["theirs"].position is not None
    assert results["mine"].position < results["theirs"].position
    seen = [n.id for n in pg_desk.recorder.select_notifications(start + 1, 10)]
    assert seen == list(range(start + 1, start + 1 + len(seen)))
    assert seen[-1] == results["theirs"].position


def test_the_postgres_desk_groups_its_saves_and_takes_the_configured_wait(pg_desk: TicketDesk) -> None:
    recorder = _recorder(pg_desk)
    assert recorder.max_wait == pg_desk.settings.group_commit_wait_ms / 1000
    ticket_id = Desk(pg_desk).open()
    saves = recorder.group_stats.saves
    pg_desk.handle(PostReply(ticket_id=ticket_id, body="经由 handle"), AGENT)
    assert recorder.group_stats.saves == saves + 1 and recorder._preparing == 0


def test_a_group_commits_durably_even_where_the_session_turned_synchronous_commit_off(
    pg_settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = pg_settings.model_copy(update={"pool_size": 1})
    app = TicketDesk(settings, clock=clock, env={"POSTGRES_MAX_OVERFLOW": "0"})  # one pooled connection
    try:
        recorder = _recorder(app)
        with recorder.datastore.get_connection() as conn:
            conn.execute("SET synchronous_commit = off")  # the session's, kept by the pooled connection
        seen: list[str] = []
        original = DeskRecorder._insert_all

        def spying(self: DeskRecorder, conn: Any, pipeline: Any, batches: Any) -> None:
            with conn.cursor() as curs:
                curs.execute("SELECT current_setting('synchronous_commit') AS level")
                seen.append(curs.fetchone()["level"])
            original(self, conn, pipeline, batches)

        monkeypatch.setattr(DeskRecorder, "_insert_all", spying)
        Desk(app).open("持久")
        with recorder.datastore.get_connection() as conn:
            session = conn.execute("SHOW synchronous_commit").fetchone()
    finally:
        app.close()

    assert seen and set(seen) == {"local"}  # the group's transaction flushes its WAL before answering
    assert session is not None and next(iter(session.values())) == "off"  # only the transaction was raised


def test_a_groups_statements_are_prepared_on_the_first_save_a_connection_writes(
    pg_desk: TicketDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not after psycopg's five unprepared runs on each pooled connection (parsed and planned each time).
    seen: list[Any] = []
    insert_all = DeskRecorder._insert_all

    def spying(self: DeskRecorder, conn: Any, pipeline: Any, batches: Any) -> None:
        seen.append(conn)
        insert_all(self, conn, pipeline, batches)

    monkeypatch.setattr(DeskRecorder, "_insert_all", spying)
    Desk(pg_desk).open("一次就准备好")
    assert seen
    with seen[-1].cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = " | ".join(row["statement"] for row in cursor.fetchall())
    assert "NOTIFY" in prepared
    assert "JOIN unnest" in prepared  # the optimistic-concurrency check
    assert f'INSERT INTO {_table(pg_desk)}' in prepared
