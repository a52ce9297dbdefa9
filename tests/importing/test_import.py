"""The migration import: source logs become tickets with their original times and people."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from uuid import UUID

import pytest
import typer
from typer.testing import CliRunner

from projections.audit import audit_trail
from projections.readside import ReadSide
from projections.sql import ts
from projections.tickets import TicketQueries
from tests.conftest import SHARED_DATA
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow.domain import Team, Ticket
from ticketflow.domain.values import Priority, Status
from ticketflow.errors import ValidationFailed
from ticketflow.importing import ImportSummary, import_file, import_source, load_source
from ticketflow_cli import importer

BPIC_COLUMNS = [
    "case:concept:name", "org:group", "resource country", "organization country", "org:resource",
    "organization involved", "org:role", "concept:name", "impact", "product", "lifecycle:transition",
    "time:timestamp",
]
HELPDESK_COLUMNS = [
    "case:concept:name", "case:variant", "case:variant-index", "case:creator", "concept:name",
    "lifecycle:transition", "org:resource", "time:timestamp", "Activity", "Resource",
]

STATUS_EVENTS = (Ticket.MarkedOpen, Ticket.Pended, Ticket.PutOnHold, Ticket.Solved, Ticket.Reopened, Ticket.Closed)


def at(text: str) -> str:
    """A CSV time on 2012-05-03 with the offset the BPIC log uses: ``at("09:15")``."""
    return f"2012-05-03T{text}:00+02:00"


def moment(text: str) -> datetime:
    return datetime.fromisoformat(at(text))


def bpic_row(
    case: str, when: str, status: str, sub: str, resource: str = "Frederic", group: str = "V30",
    impact: str = "Medium", organization: str = "Org line A2", product: str = "PROD582",
) -> dict[str, str]:
    return {
        "case:concept:name": case, "org:group": group, "resource country": "France", "organization country": "fr",
        "org:resource": resource, "organization involved": organization, "org:role": "A2_4",
        "concept:name": status, "impact": impact, "product": product, "lifecycle:transition": sub,
        "time:timestamp": at(when),
    }


def helpdesk_row(case: str, when: str, activity: str, resource: str = "Value 1") -> dict[str, str]:
    return {
        "case:concept:name": case, "case:variant": "Variant 1", "case:variant-index": "1",
        "case:creator": "Fluxicon Disco", "concept:name": activity, "lifecycle:transition": "complete",
        "org:resource": resource, "time:timestamp": at(when), "Activity": activity, "Resource": resource,
    }


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)
    return path


def bpic(tmp_path: Path, *rows: dict[str, str]) -> Path:
    return write_csv(tmp_path / "bpic.csv", BPIC_COLUMNS, rows)


def helpdesk(tmp_path: Path, *rows: dict[str, str]) -> Path:
    return write_csv(tmp_path / "helpdesk.csv", HELPDESK_COLUMNS, rows)


def only_ticket(summary: ImportSummary) -> UUID:
    (ticket_id,) = summary.tickets.values()
    return ticket_id


def status_trail(desk: TicketDesk, ticket_id: UUID) -> list[str]:
    return [type(e).__name__ for e in desk.history(ticket_id) if isinstance(e, STATUS_EVENTS)]


# ---------------------------------------------------------------- BPIC 2013 mapping
def test_a_bpic_case_becomes_a_ticket_in_its_team_with_its_owner_priority_and_final_status(
    desk: TicketDesk, tmp_path: Path
) -> None:
    path = bpic(
        tmp_path,
        bpic_row("1-364285768", "09:00", "Queued", "Awaiting Assignment", impact="High"),
        bpic_row("1-364285768", "09:10", "Accepted", "In Progress", impact="High"),
        bpic_row("1-364285768", "09:20", "Completed", "Resolved", impact="High"),
        bpic_row("1-364285768", "09:30", "Completed", "Closed", impact="High"),
    )
    summary = import_file(desk, "bpic2013", path)
    ticket = desk.get_ticket(only_ticket(summary))
    assert (ticket.status, ticket.assignee_id, ticket.priority) == (Status.CLOSED, "Frederic", Priority.HIGH)
    assert ticket.subject == "VINST incident 1-364285768 (PROD582)"
    assert (ticket.category, ticket.ticket_type) == ("PROD582", "incident")
    assert desk.get_team(ticket.team_id).name == "V30"  # type: ignore[arg-type]
    customer = desk.get_customer(ticket.requester_id)
    assert (customer.name, customer.company) == ("Org line A2 (imported)", "Org line A2")
    assert summary.refused == {} and summary.cases == 1 and summary.rows == 4


def test_every_imported_event_keeps_its_row_time_and_person_and_is_marked_imported(
    desk: TicketDesk, tmp_path: Path
) -> None:
    path = bpic(
        tmp_path,
        bpic_row("1-1", "09:00", "Accepted", "In Progress", resource="Frederic"),
        bpic_row("1-1", "10:30", "Accepted", "Wait - User", resource="Frederic"),
        bpic_row("1-1", "11:45", "Completed", "Resolved", resource="Anne Claire"),
    )
    ticket_id = only_ticket(import_file(desk, "bpic2013", path))
    events = desk.history(ticket_id)
    trail = [(type(e).__name__, e.occurred_at, e.actor_id, e.actor_role, e.via, e.imported) for e in events]
    assert trail == [
        ("Opened", moment("09:00"), "Frederic", "agent", "import", True),
        ("Assigned", moment("09:00"), "Frederic", "agent", "import", True),
        ("MarkedOpen", moment("09:00"), "Frederic", "agent", "import", True),
        ("Pended", moment("10:30"), "Frederic", "agent", "import", True),
        ("Solved", moment("11:45"), "Anne_Claire", "agent", "import", True),
    ]
    ticket = desk.get_ticket(ticket_id)
    assert (ticket.created_at, ticket.solved_at) == (moment("09:00"), moment("11:45"))
    team = desk.history(ticket.team_id)  # type: ignore[arg-type]
    assert all(e.imported and e.actor_id == "import:bpic2013" and e.actor_role == "system" for e in team)


def test_a_change_of_support_team_transfers_the_ticket_with_the_reason_and_new_owner(
    desk: TicketDesk, tmp_path: Path
) -> None:
    path = bpic(
        tmp_path,
        bpic_row("1-2", "09:00", "Accepted", "In Progress", resource="Frederic", group="V30"),
        bpic_row("1-2", "10:00", "Accepted", "In Progress", resource="Siebel", group="G97"),
    )
    ticket_id = only_ticket(import_file(desk, "bpic2013", path))
    transferred = desk.history(ticket_id)[-1]
    assert isinstance(transferred, Ticket.Transferred)
    assert (transferred.reason, transferred.assignee_id, transferred.previous_assignee_id) == (
        "reassigned to G97 in the source system", "Siebel", "Frederic",
    )
    assert desk.get_team(desk.get_ticket(ticket_id).team_id).name == "G97"  # type: ignore[arg-type]


def test_a_wait_or_a_close_in_another_support_team_moves_the_ticket_there_first(
    desk: TicketDesk, tmp_path: Path
) -> None:
    path = bpic(
        tmp_path,
        bpic_row("1-21", "09:00", "Accepted", "In Progress", resource="Frederic", group="V30"),
        bpic_row("1-21", "09:10", "Accepted", "Wait - Vendor", resource="Siebel", group="G97"),
        bpic_row("1-21", "09:20", "Completed", "Closed", resource="Anne Claire", group="V13 2nd 3rd"),
    )
    ticket_id = only_ticket(import_file(desk, "bpic2013", path))
    moves = [(desk.get_team(e.to_team_id).name, e.assignee_id) for e in desk.history(ticket_id)
             if isinstance(e, Ticket.Transferred)]
    assert moves == [("G97", "Siebel"), ("V13 2nd 3rd", "Anne_Claire")]
    assert status_trail(desk, ticket_id) == ["MarkedOpen", "PutOnHold", "Solved", "Closed"]


def test_queued_for_another_team_leaves_the_ticket_unassigned_in_that_team(desk: TicketDesk, tmp_path: Path) -> None:
    path = bpic(
        tmp_path,
        bpic_row("1-3", "09:00", "Accepted", "In Progress", group="V30"),
        bpic_row("1-3", "09:30", "Accepted", "Wait - User", group="V30"),
        bpic_row("1-3", "10:00", "Queued", "Awaiting Assignment", group="G96 2nd"),
    )
    ticket = desk.get_ticket(only_ticket(import_file(desk, "bpic2013", path)))
    assert (ticket.status, ticket.assignee_id) == (Status.OPEN, None)  # no longer waiting on the user
    assert desk.get_team(ticket.team_id).name == "G96 2nd"  # type: ignore[arg-type]


def test_waits_pend_or_hold_the_ticket_and_work_resumes_it(desk: TicketDesk, tmp_path: Path) -> None:
    path = bpic(
        tmp_path,
        bpic_row("1-4", "09:00", "Accepted", "In Progress"),
        bpic_row("1-4", "09:10", "Accepted", "Wait - User"),
        bpic_row("1-4", "09:20", "Accepted", "In Progress"),
        bpic_row("1-4", "09:30", "Accepted", "Wait - Vendor"),
        bpic_row("1-4", "09:40", "Accepted", "Wait - Implementation"),
        bpic_row("1-4", "09:50", "Accepted", "Wait - Customer"),
    )
    summary = import_file(desk, "bpic2013", path)
    ticket_id = only_ticket(summary)
    assert status_trail(desk, ticket_id) == ["MarkedOpen", "Pended", "MarkedOpen", "PutOnHold", "Pended"]
    assert summary.skipped == {"already on hold": 1}


def test_rows_that_would_change_nothing_are_skipped_and_counted_by_reason(desk: TicketDesk, tmp_path: Path) -> None:
    path = bpic(
        tmp_path,
        bpic_row("1-5", "09:00", "Accepted", "In Progress"),
        bpic_row("1-5", "09:10", "Accepted", "In Progress"),
        bpic_row("1-5", "09:20", "Queued", "Awaiting Assignment"),
        bpic_row("1-5", "09:30", "Unmatched", "Unmatched"),
        bpic_row("1-5", "09:40", "Completed", "Resolved"),
        bpic_row("1-5", "09:50", "Completed", "Resolved"),
    )
    summary = import_file(desk, "bpic2013", path)
    assert summary.skipped == {
        "already assigned to that person and open": 1,
        "Unmatched/Unmatched rows are not imported": 1,
        "already solved": 1,
    }
    assert summary.refused == {} and desk.get_ticket(only_ticket(summary)).status is Status.SOLVED
    # queued again in its own team: nobody holds it any more (the source's "awaiting assignment")
    assert any(isinstance(e, Ticket.Unassigned) for e in desk.history(only_ticket(summary)))


def test_a_case_closed_then_worked_again_is_reopened_after_the_close_as_in_the_source(
    desk: TicketDesk, tmp_path: Path
) -> None:
    path = bpic(
        tmp_path,
        bpic_row("1-6", "09:00", "Accepted", "In Progress"),
        bpic_row("1-6", "09:10", "Completed", "Closed"),
        bpic_row("1-6", "09:20", "Accepted", "In Progress", resource="Siebel"),
        bpic_row("1-6", "09:30", "Completed", "Closed"),
        bpic_row("1-6", "09:40", "Completed", "Closed"),
    )
    summary = import_file(desk, "bpic2013", path)
    ticket_id = only_ticket(summary)
    # imported facts are kept as they happened: closed, then worked again (a reopen after closed)
    assert status_trail(desk, ticket_id) == ["MarkedOpen", "Solved", "Closed", "Reopened", "Solved", "Closed"]
    assert summary.skipped == {"already closed": 1} and summary.refused == {}
    ticket = desk.get_ticket(ticket_id)
    assert (ticket.assignee_id, ticket.reopen_count, ticket.closed_at) == ("Siebel", 1, moment("09:30"))
    reopened = next(e for e in desk.history(ticket_id) if isinstance(e, Ticket.Reopened))
    assert (reopened.from_status, reopened.occurred_at, reopened.imported) == ("closed", moment("09:20"), True)


def test_the_state_as_of_any_past_instant_is_the_sources_state_then(desk: TicketDesk, tmp_path: Path) -> None:
    from ticketflow.timetravel import TimeBasis, version_at

    path = bpic(
        tmp_path,
        bpic_row("1-20", "09:00", "Queued", "Awaiting Assignment", group="V30"),
        bpic_row("1-20", "09:10", "Accepted", "In Progress", resource="Frederic", group="V30"),
        bpic_row("1-20", "09:20", "Completed", "Closed", resource="Frederic", group="V30"),
        bpic_row("1-20", "09:30", "Accepted", "In Progress", resource="Siebel", group="G97"),
        bpic_row("1-20", "09:40", "Queued", "Awaiting Assignment", resource="Siebel", group="G97"),
        bpic_row("1-20", "09:50", "Accepted", "Wait - User", resource="Siebel", group="G97"),
    )
    ticket_id = only_ticket(import_file(desk, "bpic2013", path))
    expected = {
        "09:05": ("V30", Status.NEW, None), "09:15": ("V30", Status.OPEN, "Frederic"),
        "09:25": ("V30", Status.CLOSED, "Frederic"), "09:35": ("G97", Status.OPEN, "Siebel"),
        "09:45": ("G97", Status.OPEN, None), "09:55": ("G97", Status.PENDING, None),
    }
    for instant, (team, status, assignee) in expected.items():
        ticket = desk.get_ticket(ticket_id, version_at(desk, ticket_id, moment(instant), TimeBasis.BUSINESS))
        assert (desk.get_team(ticket.team_id).name, ticket.status, ticket.assignee_id) == (team, status, assignee), instant  # type: ignore[arg-type]


def test_a_case_completed_in_a_call_logs_the_call_and_is_solved(desk: TicketDesk, tmp_path: Path) -> None:
    path = bpic(
        tmp_path,
        bpic_row("1-7", "09:00", "Accepted", "In Progress"),
        bpic_row("1-7", "09:05", "Completed", "In Call"),
    )
    ticket_id = only_ticket(import_file(desk, "bpic2013", path))
    *_, call, solved = desk.history(ticket_id)
    assert isinstance(call, Ticket.CallLogged) and call.direction == "inbound"
    assert isinstance(solved, Ticket.Solved) and solved.resolution == "completed in the call"


def test_a_cancelled_case_is_solved_as_cancelled_and_closed(desk: TicketDesk, tmp_path: Path) -> None:
    path = bpic(
        tmp_path,
        bpic_row("1-8", "09:00", "Queued", "Awaiting Assignment"),
        bpic_row("1-8", "09:05", "Completed", "Cancelled"),
    )
    ticket_id = only_ticket(import_file(desk, "bpic2013", path))
    *_, solved, closed = desk.history(ticket_id)
    assert isinstance(solved, Ticket.Solved) and solved.resolution == "cancelled"
    assert isinstance(closed, Ticket.Closed)


def test_people_join_their_team_before_they_are_first_assigned(desk: TicketDesk, tmp_path: Path) -> None:
    path = bpic(
        tmp_path,
        bpic_row("1-9", "09:00", "Accepted", "In Progress", resource="Hwei Ling"),
        bpic_row("1-9", "09:10", "Accepted", "In Progress", resource="Siebel"),
        bpic_row("1-10", "08:00", "Queued", "Awaiting Assignment", resource="Siebel"),
    )
    summary = import_file(desk, "bpic2013", path)
    team_id = desk.get_ticket(summary.tickets["1-9"]).team_id
    assert team_id is not None
    added = {e.agent_id: e.occurred_at for e in desk.history(team_id) if isinstance(e, Team.MemberAdded)}
    assert added == {"Siebel": moment("08:00"), "Hwei_Ling": moment("09:00")}


# ------------------------------------------------------------------ helpdesk mapping
def test_a_helpdesk_case_opens_at_its_first_row_and_follows_its_activities(desk: TicketDesk, tmp_path: Path) -> None:
    path = helpdesk(
        tmp_path,
        helpdesk_row("Case7", "09:00", "Assign seriousness", "Value 1"),
        helpdesk_row("Case7", "09:10", "Take in charge ticket", "Value 2"),
        helpdesk_row("Case7", "09:20", "Wait", "Value 2"),
        helpdesk_row("Case7", "09:30", "Take in charge ticket", "Value 2"),
        helpdesk_row("Case7", "09:40", "Create SW anomaly", "Value 2"),
        helpdesk_row("Case7", "09:50", "Resolve SW anomaly", "Value 3"),
        helpdesk_row("Case7", "10:00", "Resolve ticket", "Value 2"),
        helpdesk_row("Case7", "10:10", "Closed", "Value 5"),
    )
    summary = import_file(desk, "helpdesk", path)
    ticket_id = only_ticket(summary)
    ticket = desk.get_ticket(ticket_id)
    assert (ticket.status, ticket.assignee_id, ticket.priority) == (Status.CLOSED, "Value_2", Priority.NORMAL)
    assert desk.get_team(ticket.team_id).name == "Helpdesk IT (imported)"  # type: ignore[arg-type]
    assert desk.get_customer(ticket.requester_id).name == "Helpdesk IT requester (imported)"
    assert status_trail(desk, ticket_id) == [
        "MarkedOpen", "Pended", "MarkedOpen", "PutOnHold", "MarkedOpen", "Solved", "Closed",
    ]
    notes = [e.body for e in desk.history(ticket_id) if isinstance(e, Ticket.NoteAdded)]
    assert notes == ["Create SW anomaly (activity in the source system)"]
    opened = desk.history(ticket_id)[0]
    assert (opened.actor_id, opened.occurred_at) == ("Value_1", moment("09:00"))
    assert summary.skipped == {"Assign seriousness: the log has no seriousness value (priority kept normal)": 1}


def test_a_helpdesk_ticket_taken_again_after_resolution_is_reopened(desk: TicketDesk, tmp_path: Path) -> None:
    path = helpdesk(
        tmp_path,
        helpdesk_row("Case8", "09:00", "Insert ticket", "Value 4"),
        helpdesk_row("Case8", "09:10", "Take in charge ticket", "Value 4"),
        helpdesk_row("Case8", "09:20", "Resolve ticket", "Value 4"),
        helpdesk_row("Case8", "09:30", "Take in charge ticket", "Value 4"),
        helpdesk_row("Case8", "09:40", "Resolve ticket", "Value 4"),
        helpdesk_row("Case8", "09:50", "Closed", "Value 5"),
        helpdesk_row("Case8", "10:00", "VERIFIED", "Value 5"),
    )
    summary = import_file(desk, "helpdesk", path)
    ticket_id = only_ticket(summary)
    assert status_trail(desk, ticket_id) == ["MarkedOpen", "Solved", "Reopened", "Solved", "Closed"]
    assert summary.skipped == {}
    last = desk.history(ticket_id)[-1]  # what the source recorded after the close is kept, at its time
    assert isinstance(last, Ticket.NoteAdded) and last.body == "VERIFIED (activity in the source system)"
    assert desk.history(ticket_id)[0].actor_id == "Value_4"


# -------------------------------------------------------------------- re-import
def test_reimporting_the_same_log_writes_nothing_and_counts_every_command_replayed(
    desk: TicketDesk, tmp_path: Path
) -> None:
    path = bpic(
        tmp_path,
        bpic_row("1-11", "09:00", "Accepted", "In Progress"),
        bpic_row("1-11", "09:10", "Completed", "Closed"),
        bpic_row("1-12", "09:20", "Queued", "Awaiting Assignment", group="G1"),
    )
    first = import_file(desk, "bpic2013", path)
    position = desk.log_position()
    second = import_file(desk, "bpic2013", path)
    assert desk.log_position() == position
    assert (second.events_written, second.replayed, second.refused) == (0, first.commands, {})
    assert second.commands == first.commands
    assert second.tickets == first.tickets


def test_reimport_recognises_tickets_and_teams_with_more_than_64_commands(desk: TicketDesk, tmp_path: Path) -> None:
    # an aggregate remembers only its last 64 command ids; the importer reads the history instead
    rows = [
        bpic_row("1-13", f"{9 + i // 60:02d}:{i % 60:02d}", "Accepted", "In Progress", resource=f"agent{i}")
        for i in range(80)
    ]
    path = bpic(tmp_path, *rows)
    first = import_file(desk, "bpic2013", path)
    assert first.refused == {} and desk.get_ticket(only_ticket(first)).version > 64
    position = desk.log_position()
    second = import_file(desk, "bpic2013", path)
    assert (desk.log_position(), second.refused, second.replayed) == (position, {}, first.commands)


def test_a_larger_import_adds_only_the_cases_not_yet_imported(desk: TicketDesk, tmp_path: Path) -> None:
    path = bpic(
        tmp_path,
        bpic_row("1-14", "09:00", "Accepted", "In Progress"),
        bpic_row("1-15", "09:10", "Accepted", "In Progress", resource="Siebel"),
    )
    first = import_file(desk, "bpic2013", path, limit_cases=1)
    second = import_file(desk, "bpic2013", path)
    assert list(first.tickets) == ["1-14"] and list(second.tickets) == ["1-14", "1-15"]
    assert second.replayed == first.commands and second.refused == {}


# ------------------------------------------------------------------ bad input
def test_an_unknown_format_is_refused_naming_the_valid_formats(desk: TicketDesk, tmp_path: Path) -> None:
    message = "unknown import format 'zendesk'; formats are: bpic2013, helpdesk, servicenow, xes$"
    with pytest.raises(ValidationFailed, match=message):
        import_file(desk, "zendesk", bpic(tmp_path))
    assert desk.log_position() == 0


def test_a_missing_file_is_refused(desk: TicketDesk, tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match="no such file: .*absent.csv"):
        import_file(desk, "helpdesk", tmp_path / "absent.csv")


def test_a_log_without_the_columns_of_its_format_is_refused_naming_them(desk: TicketDesk, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "short.csv", ["case:concept:name", "concept:name", "time:timestamp"], [])
    missing = "missing columns org:resource, org:group"
    with pytest.raises(ValidationFailed, match=rf"short.csv is not a bpic2013 log: {missing}"):
        import_file(desk, "bpic2013", path)
    with pytest.raises(ValidationFailed, match=r"not a helpdesk log: missing column org:resource$"):
        import_file(desk, "helpdesk", path)
    assert desk.log_position() == 0


def test_the_wrong_importer_refuses_another_formats_log_in_one_line_before_writing(
    desk: TicketDesk, tmp_path: Path
) -> None:
    path = bpic(tmp_path, bpic_row("1-1", "09:00", "Accepted", "In Progress"), bpic_row("1-1", "09:10", "Queued", "Awaiting Assignment"))
    message = r"^bpic.csv is not a helpdesk log: none of its first 2 rows has a helpdesk activity \(found 'Accepted', 'Queued'\)$"
    with pytest.raises(ValidationFailed, match=message):
        import_file(desk, "helpdesk", path)
    assert desk.log_position() == 0


@pytest.mark.shared_data
def test_the_helpdesk_importer_refuses_the_real_bpic_log(desk: TicketDesk) -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the real service-desk logs are not here: {SHARED_DATA} is absent (a fresh machine)")
    with pytest.raises(ValidationFailed, match="is not a helpdesk log: none of its first 50 rows"):
        import_file(desk, "helpdesk", SHARED_DATA / "bpic2013_incidents.csv")
    with pytest.raises(ValidationFailed, match="is not a bpic2013 log: missing column"):
        import_file(desk, "bpic2013", SHARED_DATA / "helpdesk_it.csv")
    assert desk.log_position() == 0


def test_a_device_a_binary_file_and_non_utf8_text_are_refused_at_once(desk: TicketDesk, tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed, match=r"^/dev/zero is not a regular file \(a device, pipe or socket\)"):
        import_file(desk, "bpic2013", Path("/dev/zero"))
    binary = tmp_path / "log.csv"
    binary.write_bytes(b"case:concept:name,org:group\n" + bytes(range(256)) * 100)
    with pytest.raises(ValidationFailed, match=r"log.csv is a binary file \(it holds NUL bytes\)"):
        import_file(desk, "bpic2013", binary)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(",".join(BPIC_COLUMNS).encode() + "\nCafé,Hélène\n".encode("latin-1"))
    with pytest.raises(ValidationFailed, match=r"latin.csv is not UTF-8 text \(invalid continuation byte at byte \d+\)"):
        import_file(desk, "bpic2013", latin)
    assert desk.log_position() == 0


def test_the_import_command_says_one_line_for_a_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.support import run_cli

    code, out, err = run_cli(["import", "bpic2013", "/dev/zero"], capsys)
    assert code == 1 and out == ""
    assert err == "error: /dev/zero is not a regular file (a device, pipe or socket): expected a bpic2013 CSV log\n"


def test_a_row_whose_time_has_no_offset_is_rejected_with_its_whole_case_and_the_other_cases_import(
    desk: TicketDesk, tmp_path: Path
) -> None:
    good = helpdesk_row("Case1", "09:00", "Insert ticket")
    other = helpdesk_row("Case2", "09:05", "Insert ticket")
    path = helpdesk(tmp_path, good, {**good, "time:timestamp": "2012-05-03T09:10:00"}, other)
    source = load_source("helpdesk", path)
    assert [(r.line, r.case_id, r.reason) for r in source.rejects] == [
        (3, "Case1", "time:timestamp '2012-05-03T09:10:00' has no UTC offset")
    ]
    summary = import_source(desk, source)
    assert list(summary.tickets) == ["Case2"] and (summary.rejected_rows, summary.left_out) == (1, 1)


def test_imported_tickets_show_in_the_views_with_their_original_times(desk: TicketDesk, tmp_path: Path) -> None:
    path = bpic(
        tmp_path,
        bpic_row("1-16", "09:00", "Accepted", "In Progress"),
        bpic_row("1-16", "09:30", "Completed", "Resolved"),
    )
    ticket_id = str(only_ticket(import_file(desk, "bpic2013", path)))
    read_side = ReadSide(desk)
    try:
        read_side.catch_up()
        row = read_side.read("tickets", lambda db: TicketQueries.get(db, ticket_id))
        assert row is not None
        assert (row["status"], row["assignee_id"], row["imported"]) == ("solved", "Frederic", 1)
        assert (row["created_at"], row["solved_at"]) == (ts(moment("09:00")), ts(moment("09:30")))
        audit = read_side.read("audit", lambda db: audit_trail(db, object_id=ticket_id))
        who = {(r["actor_id"], r["actor_role"], r["via"], r["imported"]) for r in audit}
        assert who == {("Frederic", "agent", "import", 1)}
    finally:
        read_side.close()


# -------------------------------------------------------------------------- CLI
def cli_app(settings: Settings) -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)
    app.command("import")(importer.import_)

    @app.callback()
    def settings_for(ctx: typer.Context) -> None:
        ctx.obj = settings

    return app


def test_the_import_command_prints_a_summary_and_a_rerun_replays(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "desk")
    path = bpic(
        tmp_path,
        bpic_row("1-17", "09:00", "Accepted", "In Progress"),
        bpic_row("1-17", "09:10", "Completed", "Closed"),
    )
    runner = CliRunner()
    first = runner.invoke(cli_app(settings), ["import", "bpic2013", str(path)], env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    assert "events written" in first.output and "try: ticketflow history" in first.output
    again = ["import", "bpic2013", str(path), "--limit-cases", "5"]
    second = runner.invoke(cli_app(settings), again, env={"COLUMNS": "200"})
    assert second.exit_code == 0, second.output
    replayed = next(line for line in second.output.splitlines() if "replayed" in line)
    assert replayed.split()[-2] == "8"  # the customer, team, member, the opening and 4 facts (placed, open, solved, closed)


def test_the_import_command_refuses_an_unknown_format_before_opening_the_store(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "desk")
    result = CliRunner().invoke(cli_app(settings), ["import", "zendesk", str(tmp_path / "x.csv")])
    assert isinstance(result.exception, ValidationFailed)
    assert "formats are: bpic2013, helpdesk, servicenow, xes" in str(result.exception)
    assert not (tmp_path / "desk").exists()


# ----------------------------------------------------------- the real shared logs
REAL_LOGS = {"bpic2013": "bpic2013_incidents.csv", "helpdesk": "helpdesk_it.csv"}
SAMPLE_CASES = 200

#: A case's last row, and the status its ticket must end in.
FINAL_STATUS = {
    "bpic2013": {
        ("Completed", "Closed"): "closed", ("Completed", "Cancelled"): "closed", ("Completed", "Resolved"): "solved",
        ("Completed", "In Call"): "solved", ("Accepted", "Wait - User"): "pending",
        ("Accepted", "In Progress"): "open",
        ("Accepted", "Wait - Implementation"): "on_hold", ("Accepted", "Wait - Vendor"): "on_hold",
    },
    "helpdesk": {
        ("Closed", "complete"): "closed", ("Resolve ticket", "complete"): "solved", ("Wait", "complete"): "pending",
        ("Require upgrade", "complete"): "on_hold", ("Take in charge ticket", "complete"): "open",
    },
}


@pytest.fixture(scope="module", params=sorted(REAL_LOGS))
def real_import(request: pytest.FixtureRequest) -> Iterator[tuple[str, TicketDesk, ImportSummary, ReadSide]]:
    """The first cases of each real log, imported once for the module, with the views caught up."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the real service-desk logs are not here: {SHARED_DATA} is absent (a fresh machine)")
    format_name: str = request.param
    desk = TicketDesk(Settings(database_url="memory://"))
    summary = import_file(desk, format_name, SHARED_DATA / REAL_LOGS[format_name], limit_cases=SAMPLE_CASES)
    read_side = ReadSide(desk)
    read_side.catch_up()
    yield format_name, desk, summary, read_side
    read_side.close()
    desk.close()


def last_rows(format_name: str) -> dict[str, tuple[str, str]]:
    """Each sampled case's last row (by time) as (activity, transition), read independently of the importer."""
    rows: dict[str, list[tuple[datetime, int, tuple[str, str]]]] = {}
    with (SHARED_DATA / REAL_LOGS[format_name]).open(encoding="utf-8", newline="") as handle:
        for n, record in enumerate(csv.DictReader(handle)):
            case = record["case:concept:name"]
            if case not in rows and len(rows) == SAMPLE_CASES:
                continue
            when = datetime.fromisoformat(record["time:timestamp"])
            rows.setdefault(case, []).append((when, n, (record["concept:name"], record["lifecycle:transition"])))
    return {case: max(found)[2] for case, found in rows.items()}


@pytest.mark.shared_data
def test_the_first_cases_of_each_real_log_import_without_a_refusal(
    real_import: tuple[str, TicketDesk, ImportSummary, ReadSide],
) -> None:
    _, _, summary, _ = real_import
    assert summary.refused == {}, summary.refusals
    assert summary.cases == len(summary.tickets) == SAMPLE_CASES
    assert summary.events_written > summary.rows // 2


@pytest.mark.shared_data
def test_the_views_show_the_real_tickets_in_the_status_their_log_ends_in(
    real_import: tuple[str, TicketDesk, ImportSummary, ReadSide],
) -> None:
    format_name, desk, summary, read_side = real_import
    expected = FINAL_STATUS[format_name]
    checked = 0
    for case, last in last_rows(format_name).items():
        ticket_id = str(summary.tickets[case])
        row = read_side.read("tickets", partial(TicketQueries.get, ticket_id=ticket_id))
        assert row is not None and row["imported"] == 1
        assert row["status"] == desk.get_ticket(summary.tickets[case]).status.value
        if last in expected:
            assert (case, row["status"]) == (case, expected[last])
            checked += 1
    assert checked > SAMPLE_CASES * 0.9


@pytest.mark.shared_data
def test_the_audit_trail_of_a_real_ticket_carries_the_original_people_and_times(
    real_import: tuple[str, TicketDesk, ImportSummary, ReadSide],
) -> None:
    format_name, desk, summary, read_side = real_import
    case, ticket_id = next(iter(summary.tickets.items()))
    people: set[str] = set()
    times: set[str] = set()
    with (SHARED_DATA / REAL_LOGS[format_name]).open(encoding="utf-8", newline="") as handle:
        for record in csv.DictReader(handle):
            if record["case:concept:name"] == case:
                people.add(record["org:resource"].replace(" ", "_"))
                when = datetime.fromisoformat(record["time:timestamp"]).astimezone(UTC)
                times.add(when.isoformat(timespec="microseconds"))
    audit = read_side.read("audit", lambda db: audit_trail(db, object_id=str(ticket_id), limit=1000))
    assert audit and len(audit) == desk.get_ticket(ticket_id).version
    assert {row["actor_id"] for row in audit} <= people
    assert {row["occurred_at"] for row in audit} <= times
    assert min(row["occurred_at"] for row in audit) == min(times)
    assert {(row["actor_role"], row["via"], row["imported"]) for row in audit} == {("agent", "import", 1)}
