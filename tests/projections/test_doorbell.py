"""The doorbell from ``serve``'s API process to its view process (SQLite has no NOTIFY): saves wake the
view worker, a reader waiting for its own write hurries it, the pipe's end stops it, and ringing never
blocks the API, however far behind the view process is."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from projections import doorbell
from projections.doorbell import HURRY, SAVED, Doorbell
from projections.readside import ReadSide
from tests.support import ADMIN
from ticketflow.application import TicketDesk
from ticketflow.commands import FormTeam
from ticketflow.config import Settings


def test_a_save_rings_and_a_waiting_reader_hurries() -> None:
    read, write = os.pipe()
    bell = Doorbell(write)
    bell.saved(17)
    bell.hurry()
    assert os.read(read, 16) == SAVED + HURRY
    os.close(read)
    os.close(write)


def test_the_saves_of_one_turn_of_the_event_loop_ring_once_at_its_end() -> None:
    read, write = os.pipe()
    os.set_blocking(read, False)
    bell = Doorbell(write)

    async def turns() -> list[bytes]:
        heard = []
        for saves in (3, 1, 5):
            for position in range(saves):  # the commands a group commit answered, resumed in one turn
                bell.saved(position)
            with pytest.raises(BlockingIOError):
                os.read(read, 16)  # nothing rung yet: the turn is not over
            await asyncio.sleep(0)
            heard.append(os.read(read, 16))
        bell.hurry()  # a hurry is never held back
        heard.append(os.read(read, 16))
        return heard

    assert asyncio.run(turns()) == [SAVED, SAVED, SAVED, HURRY]
    os.close(read)
    os.close(write)


def test_ringing_never_blocks_when_the_view_process_reads_nothing() -> None:
    read, write = os.pipe()
    bell = Doorbell(write)
    for _ in range(200_000):  # far more than a pipe holds (64 KiB on Linux)
        bell.saved()
    assert len(os.read(read, 1 << 20)) > 0
    os.close(read)
    os.close(write)


def test_ringing_a_closed_doorbell_is_no_error() -> None:
    read, write = os.pipe()
    bell = Doorbell(write)
    os.close(read)  # the view process is gone: the write fails with EPIPE, which is ignored
    bell.saved()
    os.close(write)
    bell.hurry()  # closed on this side too (serve stopping)


def test_the_view_process_wakes_on_saves_hurries_for_readers_and_stops_when_the_pipe_ends() -> None:
    read, write = os.pipe()
    calls: list[str] = []
    rung, hurried, gone = threading.Event(), threading.Event(), threading.Event()

    def ring() -> None:
        calls.append("ring")
        rung.set()

    def hurry() -> None:
        calls.append("hurry")
        hurried.set()

    thread = doorbell.answer(read, ring, hurry, gone.set)
    os.write(write, SAVED)
    assert rung.wait(10)
    os.write(write, HURRY)
    assert hurried.wait(10)
    assert not gone.is_set()
    os.close(write)  # serve exited (or was killed): the view process stops
    assert gone.wait(10)
    thread.join(10)
    assert not thread.is_alive()
    assert calls == ["ring", "hurry"]
    os.close(read)


def test_the_view_process_finds_its_end_of_the_pipe_in_its_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(doorbell.FD_VARIABLE, raising=False)
    assert doorbell.doorbell_fd() is None  # `ticketflow project` started by hand
    monkeypatch.setenv(doorbell.FD_VARIABLE, "7")
    assert doorbell.doorbell_fd() == 7
    monkeypatch.setenv(doorbell.FD_VARIABLE, "seven")
    assert doorbell.doorbell_fd() is None


def test_a_reader_waiting_for_views_kept_by_another_process_hurries_that_process(tmp_path: Path) -> None:
    desk = TicketDesk(Settings(data_dir=tmp_path))
    read_side = ReadSide(desk, ["directory"])
    hurried: list[int] = []

    def elsewhere() -> None:  # the process keeping the views applies what is waiting when asked
        hurried.append(1)
        read_side.catch_up()

    read_side.hurry_elsewhere = elsewhere
    try:
        desk.form_team(FormTeam(name="一线支持"), ADMIN)
        # Reached only by hurrying the other process: no timing (a short time out was flaky under load,
        # the first position read alone could use it up before any hurry).
        assert read_side.wait(desk.log_position(), timeout=60)
        assert hurried
        hurried.clear()
        desk.form_team(FormTeam(name="Billing"), ADMIN)
        assert read_side.wait(desk.log_position(), timeout=0.05, hurry=False) is False
        assert not hurried  # the automation's waits do not hurry
    finally:
        read_side.close()
        desk.close()
