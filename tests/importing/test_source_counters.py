"""A source's own counters (ServiceNow's ``reassignment_count``, ``reopen_count``, ``sys_mod_count``)
are kept as structured fields: each imported fact carries them, the ticket and its API
representation show the last, a counter that is not a whole number is a reject, and the events
stored before they existed still load and project.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from tests.api.conftest import Api, build_api
from tests.importing.test_mapped_import import only_ticket, servicenow, sn_row
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow.describe import describe
from ticketflow.domain import Ticket
from ticketflow.domain.ticket import SourceCounted
from ticketflow.errors import ValidationFailed
from ticketflow.importing import import_file, load_source
from ticketflow.importing.mapping import parse_mapping

COUNTED = ("Ticket.MarkedOpen", "Ticket.Pended", "Ticket.PutOnHold", "Ticket.Solved", "Ticket.Reopened",
           "Ticket.Closed", "Ticket.Assigned", "Ticket.Unassigned", "Ticket.RemovedFromTeam", "Ticket.Transferred",
           "Ticket.PriorityChanged", "Ticket.Recategorised")


def counted(row: dict[str, str], mods: int, reassignments: int = 0, reopens: int = 0) -> dict[str, str]:
    return {**row, "sys_mod_count": str(mods), "reassignment_count": str(reassignments), "reopen_count": str(reopens)}


def history_rows() -> list[dict[str, str]]:
    """One incident: opened, worked in a group, moved to another, closed, reopened, and a last
    update that changed only its counters (a comment in ServiceNow)."""
    return [
        counted(sn_row(0, "13/03/2016 09:00", "New"), 0),
        counted(sn_row(1, "13/03/2016 09:30", "Active", "Group 56", "Resolver 89"), 1),
        counted(sn_row(3, "13/03/2016 11:00", "Active", "Group 70", "Resolver 12"), 3, reassignments=1),
        counted(sn_row(4, "14/03/2016 08:00", "Closed", "Group 70", "Resolver 12"), 4, reassignments=1),
        counted(sn_row(6, "15/03/2016 10:00", "Active", "Group 70", "Resolver 12"), 6, reassignments=1, reopens=1),
        counted(sn_row(9, "15/03/2016 12:00", "Active", "Group 70", "Resolver 12"), 9, reassignments=1, reopens=1),
    ]


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from build_api(Settings(data_dir=tmp_path / "data", rate_limit_burst=10_000, rate_limit_per_second=10_000))


def test_each_fact_carries_its_rows_counters_and_the_ticket_shows_the_sources_final_ones(api: Api, tmp_path: Path) -> None:
    summary = import_file(api.desk, "servicenow", servicenow(tmp_path, *history_rows()))
    ticket_id = only_ticket(summary.tickets)
    events = api.desk.history(ticket_id)
    kept = [(type(e).__name__, e.source_counters) for e in events if isinstance(e, SourceCounted)]
    assert kept == [
        ("Transferred", {"sys_mod_count": 1, "reassignment_count": 0, "reopen_count": 0}),
        ("MarkedOpen", {"sys_mod_count": 1, "reassignment_count": 0, "reopen_count": 0}),
        ("Transferred", {"sys_mod_count": 3, "reassignment_count": 1, "reopen_count": 0}),
        ("Closed", {"sys_mod_count": 4, "reassignment_count": 1, "reopen_count": 0}),
        ("Reopened", {"sys_mod_count": 6, "reassignment_count": 1, "reopen_count": 1}),
        ("SourceCountersRecorded", {"sys_mod_count": 9, "reassignment_count": 1, "reopen_count": 1}),
    ]
    assert all("sys_mod_count" not in getattr(e, "reason", "") for e in events)  # no longer text in the reason
    assert describe(events[-1]) == ("an update in the source system that changed only its counters "
                                    "[source sys_mod_count=9, reassignment_count=1, reopen_count=1]")
    assert not describe(events[0]).endswith("]")  # the opening carries no counters
    final = {"sys_mod_count": 9, "reassignment_count": 1, "reopen_count": 1}
    assert api.desk.get_ticket(ticket_id).source_counters == final

    api.caught_up()
    body = api.get("admin", f"/api/v1/tickets/{ticket_id}").json()
    assert (body["source_counters"], body["status"], body["reopen_count"]) == (final, "open", 1)
    listed = api.get("admin", "/api/v1/tickets", params={"limit": 200}).json()["items"]
    assert [t["source_counters"] for t in listed if t["ticket_id"] == str(ticket_id)] == [final]
    # as of a past instant (business time): the counters the source had then
    then = api.get("admin", f"/api/v1/tickets/{ticket_id}",
                   params={"as_of": "2016-03-14T09:00:00Z", "as_of_basis": "business"}).json()
    assert (then["status"], then["source_counters"]) == ("closed", {"sys_mod_count": 4, "reassignment_count": 1,
                                                                    "reopen_count": 0})
    # a native ticket has none
    native = api.open_ticket()
    api.caught_up()
    assert api.get("admin", f"/api/v1/tickets/{native}").json()["source_counters"] is None


def test_a_counter_that_is_not_a_whole_number_rejects_its_row_with_the_reason(desk: TicketDesk, tmp_path: Path) -> None:
    path = servicenow(
        tmp_path,
        sn_row(0, "13/03/2016 09:00", "New", number="INC1"),
        {**sn_row(1, "13/03/2016 09:10", "Active", number="INC1"), "reassignment_count": "1.5"},
        {**sn_row(0, "13/03/2016 09:00", "New", number="INC2"), "reopen_count": "-1"},
        {**sn_row(0, "13/03/2016 09:00", "New", number="INC3"), "reopen_count": "三"},
        {**sn_row(0, "13/03/2016 09:00", "New", number="INC4"), "reopen_count": "?"},  # empty: left out
    )
    source = load_source("servicenow", path)
    assert [(r.line, r.case_id, r.reason) for r in source.rejects] == [
        (3, "INC1", "counter reassignment_count '1.5' is not a whole number"),
        (4, "INC2", "counter reopen_count '-1' is not a whole number"),
        (5, "INC3", "counter reopen_count '三' is not a whole number"),
    ]
    summary = import_file(desk, "servicenow", path)
    assert list(summary.tickets) == ["INC4"] and summary.rejected_rows == 3
    assert desk.get_ticket(summary.tickets["INC4"]).source_counters == {"sys_mod_count": 0, "reassignment_count": 0}


def test_a_mapping_names_its_counters_as_a_list_of_columns_the_source_must_have() -> None:
    text = """
name = "jira"
shape = "snapshots"
counters = ["watch_count"]
[columns]
case = "key"
time = "updated"
status = "status"
[values.status]
"Open" = "open"
"""
    mapping = parse_mapping(text, "jira.toml")
    assert mapping.counters == ("watch_count",) and "watch_count" in mapping.required
    assert mapping.counters_of({"watch_count": "7"}) == {"watch_count": 7}
    with pytest.raises(ValidationFailed, match="counters must be a list of column names"):
        parse_mapping(text.replace('["watch_count"]', '"watch_count"'), "jira.toml")


def _rows_before_v2(desk: TicketDesk, ticket_id: UUID) -> list[StoredEvent]:
    """The ticket's stored rows as the code before source counters wrote them."""
    old = []
    for stored in desk.recorder.select_events(ticket_id):
        state: dict[str, Any] = desk.mapper.transcoder.decode(desk.writer_mac.unwrap(stored).state)
        if stored.topic.endswith(COUNTED):
            assert state.pop("class_version") == 2
            state.pop("source_counters")
        else:
            assert "source_counters" not in state
        old.append(desk.writer_mac.wrap(StoredEvent(
            stored.originator_id, stored.originator_version, stored.topic, desk.mapper.transcoder.encode(state))))
    return old


def test_imported_facts_stored_before_v2_still_load_and_project_without_counters(tmp_path: Path) -> None:
    plain = Settings(data_dir=tmp_path / "v2", encrypt_personal_data=False)
    writer = TicketDesk(plain)
    rows = [r for r in history_rows() if r["sys_mod_count"] != "9"]  # v1 had no counters-only event
    ticket_id = only_ticket(import_file(writer, "servicenow", servicenow(tmp_path, *rows)).tickets)
    expected = writer.get_ticket(ticket_id)
    old = _rows_before_v2(writer, ticket_id)
    assert {s.topic.rsplit(":", 1)[-1] for s in old} >= {
        "Ticket.Transferred", "Ticket.MarkedOpen", "Ticket.Closed", "Ticket.Reopened"}
    writer.close()

    reader_settings = Settings(data_dir=tmp_path / "v1", encrypt_personal_data=False, rate_limit_burst=10_000,
                               rate_limit_per_second=10_000)
    reader = TicketDesk(reader_settings)
    reader.recorder.insert_events(old)
    ticket = reader.get_ticket(ticket_id)
    assert (ticket.status, ticket.assignee_id, ticket.reopen_count) == (expected.status, "Resolver_12", 1)
    assert ticket.source_counters is None
    assert all(e.source_counters is None for e in reader.history(ticket_id) if isinstance(e, SourceCounted))
    assert sum(isinstance(e, Ticket.Reopened) for e in reader.history(ticket_id)) == 1
    reader.close()

    for api in build_api(reader_settings):  # the tickets view projects the old rows
        api.caught_up()
        body = api.get("admin", f"/api/v1/tickets/{ticket_id}").json()
        assert (body["status"], body["assignee_id"], body["reopen_count"]) == ("open", "Resolver_12", 1)
        assert body["source_counters"] is None


def test_a_batch_over_http_keeps_its_rows_counters_and_rejects_a_row_whose_counter_is_not_a_whole_number(
    api: Api,
) -> None:
    opened = {"kind": "opened", "occurred_at": "2016-03-01T09:00:00+08:00", "subject": "打印机无法连接",
              "customer_id": str(api.customer), "team_id": str(api.team_a)}
    events: list[dict[str, Any]] = [
        {**opened, "case_id": "INC1"},
        {"case_id": "INC1", "kind": "assignee", "occurred_at": "2016-03-01T09:05:00+08:00", "assignee_id": "李伟",
         "source_counters": {"reassignment_count": 0, "sys_mod_count": 1}},
        {"case_id": "INC1", "kind": "status", "occurred_at": "2016-03-01T10:00:00+08:00", "status": "solved",
         "source_counters": {"reassignment_count": 0, "sys_mod_count": 2}},
        {**opened, "case_id": "INC2"},
        {"case_id": "INC2", "kind": "status", "occurred_at": "2016-03-01T10:00:00+08:00", "status": "open",
         "source_counters": {"reopen_count": "2"}},
        {**opened, "case_id": "INC3"},
        {"case_id": "INC3", "kind": "status", "occurred_at": "2016-03-01T10:00:00+08:00", "status": "open",
         "source_counters": {"reopen_count": -1}},
        {**opened, "case_id": "INC4"},
        {"case_id": "INC4", "kind": "note", "occurred_at": "2016-03-01T10:00:00+08:00", "body": "备注",
         "source_counters": {"reopen_count": 1}},  # a note records no counters
    ]
    answer = api.post("admin", "/api/v1/imports", {"source": "servicenow", "events": events}).json()
    rejects = {r["row"]: r["reason"] for r in answer["rejects"]}
    assert set(rejects) == {3, 4, 5, 6, 7, 8} and list(answer["tickets"]) == ["INC1"]
    assert "integer" in rejects[4] and "greater than or equal to 0" in rejects[6]
    assert "does not carry source_counters" in rejects[8]
    ticket_id = answer["tickets"]["INC1"]
    api.caught_up()
    assert api.get("admin", f"/api/v1/tickets/{ticket_id}").json()["source_counters"] == {
        "reassignment_count": 0, "sys_mod_count": 2}
