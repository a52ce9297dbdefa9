"""``ticketflow report ...``: every report takes ``--as-of`` and ``--as-of-basis recorded|business``
(default ``TICKETFLOW_AS_OF_BASIS``), as the API's reports do; a bad value is a one-line error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support import ADMIN
from tests.support import run_cli as run
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import OpenTicket, RegisterCustomer
from ticketflow.commands.access import RecordDataAccess
from ticketflow.commands.privacy import EraseCustomer
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller

FIRST = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
IMPORTER = Caller("import:servicenow", Role.SYSTEM, Channel.IMPORT)
COMPLIANCE = Caller("comp.lee", Role.COMPLIANCE, Channel.API)
BETWEEN, LATER = "2026-11-02T10:00:00+00:00", "2026-11-02T12:00:00+00:00"


@pytest.fixture
def desk_log(data_dir: Path) -> Path:
    """A read of personal data at 09:00 and another at 11:00, an erasure at 11:30 (business time: the desk's
    clock; recorded time is the machine's), and a ticket imported with its 2016 business time."""
    clock = FakeClock(FIRST)
    desk = TicketDesk(Settings(data_dir=data_dir), clock=clock)
    first = desk.register_customer(RegisterCustomer(name="王秀英"), ADMIN).object_id
    second = desk.register_customer(RegisterCustomer(name="李伟"), ADMIN).object_id
    desk.record_data_access(
        RecordDataAccess(
            customer_id=first, fields=["name"], purpose="DSR-1", request_id="r-1", resource="history"
        ),
        ADMIN,
    )
    clock.advance(timedelta(hours=2))
    desk.record_data_access(
        RecordDataAccess(
            customer_id=second, fields=["name"], purpose="DSR-2", request_id="r-2", resource="history"
        ),
        ADMIN,
    )
    clock.advance(timedelta(minutes=30))
    desk.erase_customer(EraseCustomer(customer_id=second, reference="DSR-2"), COMPLIANCE)
    desk.open_ticket(
        OpenTicket(
            subject="INC0000001 打印机无法连接",
            requester_id=first,
            occurred_at=datetime(2016, 3, 1, 1, 0, tzinfo=UTC),
        ),
        IMPORTER,
    )
    desk.close()
    return data_dir


def reads(out: str) -> int:
    return sum(int(line.split(",")[3]) for line in out.splitlines()[1:])


def test_a_report_as_of_an_instant_counts_what_had_happened_by_then(
    desk_log: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(["report", "data-access", "--csv", "-"], capsys)
    assert code == 0 and reads(out) == 2, err
    code, out, err = run(
        ["report", "data-access", "--csv", "-", "--as-of", BETWEEN, "--as-of-basis", "business"], capsys
    )
    assert code == 0 and reads(out) == 1 and "note:" not in err, err
    code, out, err = run(
        ["report", "erasures", "--csv", "-", "--as-of", BETWEEN, "--as-of-basis", "business"], capsys
    )
    assert code == 0 and out.splitlines()[1:] == [], err
    code, out, err = run(
        ["report", "erasures", "--csv", "-", "--as-of", LATER, "--as-of-basis", "business"], capsys
    )
    assert code == 0 and len(out.splitlines()) == 2 and ",DSR-2," in out, err
    code, out, err = run(["report", "sla", "--as-of", LATER, "--as-of-basis", "business"], capsys)
    assert code == 0 and "as of 2026-11-02T12:00:00+00:00 (business time)" in out, err


def test_the_basis_comes_from_the_flag_else_from_TICKETFLOW_AS_OF_BASIS(
    desk_log: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # In 2016 the desk had recorded nothing; on business time the imported ticket had happened by then.
    argv = ["report", "sla", "--csv", "-", "--as-of", "2016-06-01"]
    code, _, err = run(argv, capsys)
    assert (
        code == 0
        and "note: the log holds nothing at or before 2016-06-01T00:00:00+00:00 on recorded time" in err
    )
    code, _, err = run([*argv, "--as-of-basis", "business"], capsys)
    assert code == 0 and "note:" not in err, err
    monkeypatch.setenv("TICKETFLOW_AS_OF_BASIS", "business")
    code, _, err = run(argv, capsys)
    assert code == 0 and "note:" not in err, err
    code, _, err = run([*argv, "--as-of-basis", "recorded"], capsys)
    assert code == 0 and "on recorded time" in err
    # Before any business time too: the note names the basis and the earliest event on it.
    code, _, err = run(["report", "data-access", "--as-of", "2015-01-01"], capsys)
    assert code == 0 and "on business time: its earliest event is at 2016-03-01T01:00:00+00:00" in err, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["report", "sla", "--as-of", "2026-11-02", "--as-of-basis", "bogus"],
            "--as-of-basis 'bogus': expected recorded or business",
        ),
        (
            ["report", "data-access", "--as-of", "yesterday"],
            "--as-of 'yesterday' is not an ISO 8601 date or time",
        ),
        (["report", "erasures", "--as-of-basis", "business"], "--as-of-basis goes with --as-of"),
    ],
)
def test_a_bad_as_of_value_is_one_line_and_exit_1(
    desk_log: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(argv, capsys)
    assert code == 1 and err.count("\n") == 1 and message in err, err
