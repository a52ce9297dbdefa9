"""``ticketflow history TICKET --as-of T`` / ``--version N``: the events up to then and the state then."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support import AGENT, Desk
from ticketflow.application import TicketDesk
from ticketflow.commands import ChangePriority
from ticketflow.config import Settings
from ticketflow.domain.values import Priority
from ticketflow.timetravel import event_at
from ticketflow_cli import main


def test_history_as_of_prints_the_events_until_then_and_the_state(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    desk = TicketDesk(Settings(data_dir=data_dir))
    ticket_id = Desk(desk).open()
    opened = event_at(desk, ticket_id, 1)
    assert opened is not None
    time.sleep(0.005)  # the change is recorded strictly after the opening
    desk.change_priority(ChangePriority(ticket_id=ticket_id, priority=Priority.URGENT), AGENT)
    desk.close()

    assert main(["history", str(ticket_id), "--as-of", opened.timestamp.strftime("%Y-%m-%dT%H:%M:%S.%f%z")]) == 0
    out = capsys.readouterr().out
    assert "1 events" in out and "PriorityChanged" not in out
    assert "state at version 1" in out and "normal" in out and "urgent" not in out

    assert main(["history", str(ticket_id), "--version", "2"]) == 0
    out = capsys.readouterr().out
    assert "2 events" in out and "state at version 2" in out and "urgent" in out

    assert main(["history", str(ticket_id), "--as-of", "2000-01-01"]) != 0
    assert "did not exist yet" in capsys.readouterr().err
