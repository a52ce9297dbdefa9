"""The ``xes`` preset: XES XML logs (``.xes``, ``.xes.gz``) import, and round-trip ``ticketflow export xes``."""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest

from tests.importing.servicenow_export import generate
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.config import Settings
from ticketflow.domain import Ticket
from ticketflow.errors import ValidationFailed
from ticketflow.export import export_xes
from ticketflow.importing import import_file
from ticketflow.timetravel import TimeBasis, version_at


@pytest.fixture
def original(clock: FakeClock, tmp_path: Path) -> Iterator[tuple[TicketDesk, dict[str, UUID]]]:
    """A desk holding 40 incidents of a generated ServiceNow export (every kind of placement and status)."""
    desk = TicketDesk(Settings(database_url="memory://"), clock=clock)
    summary = import_file(desk, "servicenow", generate(tmp_path / "sn.csv", cases=40, seed=7))
    assert summary.refused == {}
    yield desk, summary.tickets
    desk.close()


def state(desk: TicketDesk, ticket: Ticket, team_names: bool) -> tuple[str, str | None, str | None, str, str]:
    team = None if ticket.team_id is None else desk.get_team(ticket.team_id).name if team_names else str(ticket.team_id)
    return (str(ticket.status), team, ticket.assignee_id, str(ticket.priority), ticket.category)


@pytest.mark.parametrize("name", ["tickets.xes", "tickets.xes.gz"])
def test_an_exported_xes_log_imports_into_another_desk_with_the_same_states_then_and_now(
    original: tuple[TicketDesk, dict[str, UUID]], clock: FakeClock, tmp_path: Path, name: str
) -> None:
    source, tickets = original
    plain = tmp_path / "tickets.xes"
    assert export_xes(source, plain).traces == len(tickets)
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(plain.read_bytes()))
    copy = TicketDesk(Settings(database_url="memory://"), clock=clock)
    try:
        summary = import_file(copy, "xes", path)
        assert summary.refused == {} and summary.rejected_rows == 0
        assert set(summary.tickets) == {str(ticket_id) for ticket_id in tickets.values()}
        rng = random.Random(49)
        for ticket_id in tickets.values():
            imported_id = summary.tickets[str(ticket_id)]
            mine, theirs = source.get_ticket(ticket_id), copy.get_ticket(imported_id)
            assert state(copy, theirs, team_names=True) == state(source, mine, team_names=False)
            history = source.history(ticket_id)
            for _ in range(5):
                instant = history[0].occurred_at + timedelta(
                    seconds=rng.randrange(1, int((history[-1].occurred_at - history[0].occurred_at).total_seconds()) + 3600)
                )
                then_mine = source.get_ticket(ticket_id, version_at(source, ticket_id, instant, TimeBasis.BUSINESS))
                then_theirs = copy.get_ticket(imported_id, version_at(copy, imported_id, instant, TimeBasis.BUSINESS))
                assert state(copy, then_theirs, team_names=True) == state(source, then_mine, team_names=False)
    finally:
        copy.close()


def test_a_file_that_is_not_an_xes_log_is_refused_in_one_line(desk: TicketDesk, tmp_path: Path) -> None:
    fake = tmp_path / "fake.xes.gz"
    fake.write_bytes(b"<log></log>")
    with pytest.raises(ValidationFailed, match=r"fake.xes.gz is not a gzipped xes XES log \(Not a gzipped file"):
        import_file(desk, "xes", fake)
    html = tmp_path / "page.xes"
    html.write_text("<html><body>not a log</body></html>", encoding="utf-8")
    with pytest.raises(ValidationFailed, match=r"^page.xes is not a xes XES log: its root element is <html>, not <log>$"):
        import_file(desk, "xes", html)
    broken = tmp_path / "broken.xes"
    broken.write_text("<log><trace>", encoding="utf-8")
    with pytest.raises(ValidationFailed, match=r"^broken.xes is not well-formed XML"):
        import_file(desk, "xes", broken)
    with pytest.raises(ValidationFailed, match=r"^/dev/zero is not a regular file .*: expected a xes XES log$"):
        import_file(desk, "xes", Path("/dev/zero"))
    assert desk.log_position() == 0
