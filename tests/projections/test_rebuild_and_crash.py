"""Views survive crashes at any point and a rebuild equals what the live workers built."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from projections.readside import ReadSide
from projections.tickets import TicketsView
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.config import Settings
from ticketflow.simulation import DeskSimulation
from tests.projections.support import dump, dump_all

REPO = Path(__file__).resolve().parents[2]


def simulate(desk: TicketDesk, clock: FakeClock, tickets: int, seed: int) -> None:
    simulation = DeskSimulation(desk, clock, tickets=tickets, customers=15, seed=seed)
    simulation.setup()
    simulation.run()


def test_rebuild_while_the_desk_writes_ends_equal_to_the_live_views(shared_store_settings: Settings) -> None:
    clock = FakeClock()
    desk = TicketDesk(shared_store_settings, clock=clock)
    live = ReadSide(desk)
    live.start()
    simulate(desk, clock, 60, seed=1)
    assert live.wait(desk.log_position(), timeout=60)
    before = dump_all(live)

    # Rebuild in a second read side (as `ticketflow rebuild` would) while the desk keeps writing
    # and the live workers keep running: every range is committed by exactly one of them.
    rebuilder = ReadSide(TicketDesk(shared_store_settings, clock=clock))
    writer = threading.Thread(target=simulate, args=(desk, clock, 30, 2))
    writer.start()
    for name in rebuilder.stores:
        rebuilder.rebuild(name)
    writer.join()
    assert live.wait(desk.log_position(), timeout=60)
    rebuilder.catch_up()
    after_live = dump_all(live)
    live.stop()

    rebuilder.rebuild_all()  # one shared pass over the log for every view
    assert dump_all(rebuilder) == after_live
    assert all(len(after_live[n][t]) >= len(before[n][t]) for n in before for t in before[n])
    rebuilder.close()
    live.close()
    desk.close()


def test_a_batch_that_fails_midway_leaves_no_trace_and_the_view_resumes(
    store_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    desk = TicketDesk(store_settings, clock=clock)
    simulate(desk, clock, 40, seed=3)
    read_side = ReadSide(desk, ["tickets"])
    read_side.step("tickets", 100)
    position, rows = read_side.position("tickets"), dump(read_side, "tickets")

    original = TicketsView.apply
    calls = {"n": 0}

    def crash_on_the_50th(self: TicketsView, batch: object, event: object, pos: int) -> None:
        calls["n"] += 1
        if calls["n"] == 50:
            raise RuntimeError("worker killed mid-batch")
        original(self, batch, event, pos)  # type: ignore[arg-type]

    monkeypatch.setattr(TicketsView, "apply", crash_on_the_50th)
    with pytest.raises(RuntimeError):
        read_side.step("tickets", 100)
    assert read_side.position("tickets") == position
    assert dump(read_side, "tickets") == rows

    monkeypatch.setattr(TicketsView, "apply", original)
    read_side.catch_up()
    resumed = dump(read_side, "tickets")
    read_side.rebuild("tickets")
    assert dump(read_side, "tickets") == resumed
    read_side.close()
    desk.close()


def test_a_batch_is_refused_when_the_view_moved_since_it_was_read(store_settings: Settings) -> None:
    clock = FakeClock()
    desk = TicketDesk(store_settings, clock=clock)
    simulate(desk, clock, 5, seed=4)
    read_side = ReadSide(desk, ["tickets"])
    read_side.step("tickets", 10)
    store = read_side.stores["tickets"]
    notifications = desk.recorder.select_notifications(11, 5)
    events = [(desk.mapper.to_domain_event(n), n.id) for n in notifications]
    with pytest.raises(IntegrityError):  # a stale worker thinks the view is still at 5
        store.process_batch(events, Tracking(desk.name, notifications[-1].id), previous=5)
    assert read_side.position("tickets") == 10
    store.process_batch(events, Tracking(desk.name, notifications[-1].id), previous=10)
    assert read_side.position("tickets") == notifications[-1].id
    read_side.close()
    desk.close()


SLOW_PROJECTOR = textwrap.dedent(
    """
    import sys, time
    from projections.view import ViewStore
    original = ViewStore.process_batch
    def slow(self, events, tracking, previous=None):
        time.sleep(0.05)  # a slow disk: the kill lands while a batch is in flight
        original(self, events, tracking, previous)
    ViewStore.process_batch = slow
    import projections.readside as readside
    readside.LIVE_BATCH = 40
    from ticketflow_cli import main
    sys.exit(main(["project", "--status-every", "0"]))
    """
)


def test_killing_the_projection_process_mid_batch_then_restarting_equals_a_rebuild(
    shared_store_settings: Settings, tmp_path: Path
) -> None:
    clock = FakeClock()
    desk = TicketDesk(shared_store_settings, clock=clock)
    simulate(desk, clock, 120, seed=5)
    end = desk.log_position()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if shared_store_settings.database_url:
        env["TICKETFLOW_DATABASE_URL"] = shared_store_settings.database_url
    env["TICKETFLOW_DATA_DIR"] = str(shared_store_settings.data_dir)
    env["TICKETFLOW_AUTOMATION"] = "false"  # the views alone: the automation would write to the log meanwhile
    process = subprocess.Popen([sys.executable, "-c", SLOW_PROJECTOR], env=env, cwd=tmp_path)
    observer = ReadSide(desk)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and min(observer.position(n) for n in observer.stores) < 100:
            time.sleep(0.01)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        positions = [observer.position(n) for n in observer.stores]
        assert all(0 < p < end for p in positions), positions  # killed part-way through

        observer.catch_up()  # "restart": resume from each view's committed position
        resumed = dump_all(observer)
        for name in observer.stores:
            observer.rebuild(name)
        assert dump_all(observer) == resumed
    finally:
        if process.poll() is None:
            process.kill()
        observer.close()
        desk.close()


def _index_names(read_side: ReadSide, name: str, db: Any = None) -> set[str]:
    """The view's secondary indexes (through ``db`` when inside its transaction)."""
    store = read_side.stores[name]
    if store.dialect.value == "postgres":
        schema = store.datastore.schema  # type: ignore[attr-defined]
        sql, params = "SELECT indexname AS name FROM pg_indexes WHERE schemaname = ?", (schema,)
    else:
        sql, params = "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL", ()
    rows = db.all(sql, params) if db is not None else store.read(lambda d: d.all(sql, params))
    return {row["name"] for row in rows}


def test_a_rebuild_loads_without_the_secondary_indexes_and_ends_with_all_of_them(
    store_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeClock()
    desk = TicketDesk(store_settings, clock=clock)
    simulate(desk, clock, 20, seed=4)
    read_side = ReadSide(desk, ["tickets", "audit"])
    expected = {name: _index_names(read_side, name) for name in read_side.stores}
    declared = {t.index_name(c) for t in TicketsView.tables for c in t.indexes}
    assert all(len(name) <= 63 for name in declared)  # PostgreSQL would cut a longer name short
    assert declared and declared <= expected["tickets"]

    seen_while_loading: list[set[str]] = []
    original = TicketsView.apply

    def look(self: TicketsView, batch: Any, event: object, position: int) -> None:
        if not seen_while_loading:
            seen_while_loading.append(_index_names(read_side, "tickets", batch.db))
        original(self, batch, event, position)  # type: ignore[arg-type]

    monkeypatch.setattr(TicketsView, "apply", look)
    read_side.rebuild("tickets")
    assert not seen_while_loading[0] & declared  # loaded without them...
    assert _index_names(read_side, "tickets") == expected["tickets"]  # ...and indexed after

    def fail(self: TicketsView, batch: object, event: object, position: int) -> None:
        raise RuntimeError("rebuild interrupted")

    monkeypatch.setattr(TicketsView, "apply", fail)
    with pytest.raises(RuntimeError, match="rebuild interrupted"):
        read_side.rebuild_all()
    assert {name: _index_names(read_side, name) for name in read_side.stores} == expected  # even when it fails
    monkeypatch.setattr(TicketsView, "apply", original)
    read_side.rebuild_all()
    assert {name: _index_names(read_side, name) for name in read_side.stores} == expected
    read_side.close()
    desk.close()


def test_catching_up_decodes_each_event_once_for_all_the_views(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A desk restarted on a long log, `ticketflow views`, the seeding of benchmarks: decoding
    (MAC, decryption, JSON) is most of the cost, so it is paid once an event, not once a view."""
    clock = FakeClock()
    desk = TicketDesk(Settings(data_dir=tmp_path / "data"), clock=clock)
    simulate(desk, clock, 10, seed=5)
    read_side = ReadSide(desk)
    assert len(read_side.stores) > 1
    decoded = 0
    original = desk.mapper.to_domain_event

    def counting(notification: Any) -> Any:
        nonlocal decoded
        decoded += 1
        return original(notification)

    monkeypatch.setattr(desk.mapper, "to_domain_event", counting)
    read_side.catch_up()
    assert decoded == desk.log_position()
    assert {s.lag for s in read_side.status()} == {0}
