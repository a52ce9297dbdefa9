"""Processes opening one PostgreSQL desk at the same moment (`serve --workers 2` and `ticketflow
project` restarted together): each runs the store's DDL on start, and none may fail because
another is running the same DDL. PostgreSQL refuses a ``CREATE OR REPLACE FUNCTION`` whose row
another open transaction has just replaced ("tuple concurrently updated"): a `project` that died
of it at start left every view behind until someone noticed (a crash trial whose views lagged)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from eventsourcing.postgres import PostgresApplicationRecorder

from projections.readside import ReadSide
from projections.view import PostgresViewStore
from tests.conftest import POSTGRES_URL
from ticketflow.application import TicketDesk
from ticketflow.config import Settings

pytestmark = pytest.mark.postgres


@contextmanager
def paused_ddl(recorder_class: type[Any]) -> Iterator[tuple[threading.Event, list[int], threading.Event]]:
    """Make the first thread that runs ``recorder_class``'s DDL stop at the end of it, its transaction
    still open (as a process descheduled there would): yields (paused, [its backend pid], release)."""
    original: Callable[..., None] = recorder_class._create_table
    paused, release, pids = threading.Event(), threading.Event(), []
    owner: list[int] = []

    def create_table(self: Any, curs: Any) -> None:
        original(self, curs)
        if not owner:  # the first thread here; any other runs through
            owner.append(threading.get_ident())
            pids.append(curs.connection.info.backend_pid)
            paused.set()
            assert release.wait(60), "the test never released the paused DDL"

    recorder_class._create_table = create_table
    try:
        yield paused, pids, release
    finally:
        recorder_class._create_table = original


def wait_until_blocked_by(pid: int) -> None:
    """Until some session waits for a lock that backend ``pid`` holds (the second process has reached
    the DDL the first is in the middle of). Fails, rather than sleeps on, if that never happens."""
    deadline = time.monotonic() + 60
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        while conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (pid,)
        ).fetchone() == (0,):
            assert time.monotonic() < deadline, "the second desk never reached the DDL the first holds"
            time.sleep(0.02)


def open_concurrently(
    first: Callable[[], Any], second: Callable[[], Any], recorder_class: type[Any]
) -> list[Any]:
    """Run ``first`` until it sits inside ``recorder_class``'s DDL transaction, run ``second`` until it waits
    on that transaction, then let ``first`` commit; returns what each returned or raised."""
    results: list[Any] = [None, None]

    def run(index: int, work: Callable[[], Any]) -> None:
        try:
            results[index] = work()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[index] = exc

    with paused_ddl(recorder_class) as (paused, pids, release):
        one = threading.Thread(target=run, args=(0, first))
        one.start()
        try:
            assert paused.wait(60), "the first desk never reached its DDL"
            two = threading.Thread(target=run, args=(1, second))
            two.start()
            wait_until_blocked_by(pids[0])
        finally:
            release.set()
        one.join(60)
        two.join(60)
    return results


def test_a_desk_opened_while_another_process_is_creating_the_event_store_waits_for_it(
    tmp_path: Path, postgres_url: str
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=postgres_url)
    TicketDesk(settings).close()  # the schema exists: this is a restart, as in the crash trial

    desks = open_concurrently(
        lambda: TicketDesk(settings), lambda: TicketDesk(settings), PostgresApplicationRecorder
    )

    assert [type(d).__name__ for d in desks] == ["TicketDesk", "TicketDesk"], desks
    for desk in desks:
        assert desk.log_position() == 0
        desk.close()


def test_views_opened_by_two_processes_at_once_on_a_new_schema_are_created_once(
    tmp_path: Path, postgres_url: str
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=postgres_url)
    desk = TicketDesk(settings)
    try:
        sides = open_concurrently(
            lambda: ReadSide(desk, ["tickets"]), lambda: ReadSide(desk, ["tickets"]), PostgresViewStore
        )
        assert [type(s).__name__ for s in sides] == ["ReadSide", "ReadSide"], sides
        for side in sides:
            assert side.status()[0].position == 0
            side.close()
    finally:
        desk.close()
