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


def test_history_as_of_basis_business_reads_imported_history_and_the_desk_can_make_it_the_default(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime
    from uuid import uuid4

    from ticketflow.commands import ImportedFact, OpenTicket, RecordImportedFacts
    from ticketflow.domain.values import Channel, Role
    from ticketflow.metadata import Caller

    importer = Caller("import:test", Role.SYSTEM, Channel.IMPORT)
    desk = TicketDesk(Settings(data_dir=data_dir))
    setup = Desk(desk)
    opened = datetime(2016, 3, 1, 9, 0, tzinfo=UTC)
    ticket_id = desk.open_ticket(OpenTicket(subject="INC0000001 邮箱满了", requester_id=setup.customer_id,
                                            occurred_at=opened), importer).object_id
    desk.handle(RecordImportedFacts(ticket_id=ticket_id, facts=[ImportedFact(
        fact_id=uuid4(), kind="priority", priority=Priority.URGENT, occurred_at=datetime(2016, 3, 2, 9, 0, tzinfo=UTC))]),
        importer)
    desk.close()
    between = ["history", str(ticket_id), "--as-of", "2016-03-01T12:00:00+00:00"]

    assert main([*between, "--as-of-basis", "business"]) == 0
    out = capsys.readouterr().out
    assert "state at version 1" in out and "urgent" not in out
    assert main(between) != 0  # the desk's default: recorded time, when nothing of it was recorded yet
    assert "add --business-time (or --as-of-basis business)" in capsys.readouterr().err

    monkeypatch.setenv("TICKETFLOW_AS_OF_BASIS", "business")
    assert main(between) == 0 and "state at version 1" in capsys.readouterr().out
    assert main([*between, "--as-of-basis", "recorded"]) != 0
    assert "did not exist yet at 2016-03-01T12:00:00+00:00 (recorded time)" in capsys.readouterr().err
    assert main(["history", str(ticket_id), "--as-of", "2016-02-01", "--as-of-basis", "business"]) != 0
    assert "its first event is at 2016-03-01T09:00:00+00:00 on business time" in capsys.readouterr().err
