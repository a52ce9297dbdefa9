"""The import writes many tickets per transaction, and an import killed midway then run again ends as one run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.importing.test_import import bpic, bpic_row
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.config import Settings
from ticketflow.importing import import_file, runner


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return bpic(
        tmp_path,
        bpic_row("1-21", "09:00", "Accepted", "In Progress"),
        bpic_row("1-21", "09:30", "Completed", "Closed"),
        bpic_row("1-22", "09:05", "Queued", "Awaiting Assignment", group="G2"),
        bpic_row("1-22", "09:40", "Accepted", "In Progress", resource="Siebel", group="G2"),
        bpic_row("1-23", "09:10", "Accepted", "Wait - User"),
        bpic_row("1-24", "09:20", "Accepted", "In Progress", resource="Siebel", group="G2"),
        bpic_row("1-24", "10:00", "Completed", "Resolved", resource="Siebel", group="G2"),
    )


def new_desk(clock: FakeClock) -> TicketDesk:
    return TicketDesk(Settings(database_url="memory://"), clock=clock)


def stored(desk: TicketDesk) -> list[tuple[Any, ...]]:
    """Every stored event as an import leaves it, decoded (the recorded time aside; each store seals
    personal data under its own keys)."""
    events = (desk.mapper.to_domain_event(n) for n in desk.recorder.select_notifications(1, 10_000))
    return [tuple(str(v) for k, v in sorted(vars(e).items()) if k != "timestamp") for e in events]


@pytest.fixture
def desks(clock: FakeClock) -> Iterator[tuple[TicketDesk, TicketDesk]]:
    one, other = new_desk(clock), new_desk(clock)
    yield one, other
    one.close()
    other.close()


def test_the_tickets_of_an_import_are_saved_a_chunk_per_transaction(
    desk: TicketDesk, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "CASES_PER_WRITE", 3)
    saves: list[int] = []
    desk.on_saved(saves.append)
    summary = import_file(desk, "bpic2013", log)
    assert len(summary.tickets) == 4 and summary.refused == {}
    assert len(saves) == 3  # the directory, then cases 1-3, then case 4
    assert saves[-1] == desk.log_position() == summary.events_written


def test_an_import_killed_midway_then_run_again_ends_as_one_run_would(
    desks: tuple[TicketDesk, TicketDesk], log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    killed, whole = desks
    monkeypatch.setattr(runner, "CASES_PER_WRITE", 2)
    record = killed._record
    calls = 0

    def record_then_die(processing: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 3:  # the directory and the first two cases are in; the process dies in the next write
            raise KeyboardInterrupt
        return record(processing)

    monkeypatch.setattr(killed, "_record", record_then_die)
    with pytest.raises(KeyboardInterrupt):
        import_file(killed, "bpic2013", log)
    assert len({n.originator_id for n in killed.recorder.select_notifications(1, 10_000)}) == 2 + 2 + 1  # no half case
    monkeypatch.setattr(killed, "_record", record)
    again = import_file(killed, "bpic2013", log)
    once = import_file(whole, "bpic2013", log)
    assert again.tickets == once.tickets and again.refused == once.refused == {}
    assert sorted(stored(killed)) == sorted(stored(whole))
