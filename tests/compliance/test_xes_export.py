"""``ticketflow export xes``: the ticket log as IEEE XES, read back by pm4py (a process-mining tool)."""

from __future__ import annotations

import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tests.conftest import SHARED_DATA
from tests.support import ADMIN, AGENT, Desk
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import (
    AssignTicket,
    LogWork,
    PostReply,
    RateSatisfaction,
    RegisterCustomer,
    SolveTicket,
)
from ticketflow.config import Settings
from ticketflow.export import export_xes
from ticketflow.export.xes import OPENED_TOPIC
from ticketflow.importing import import_file
from ticketflow.simulation import DeskSimulation
from ticketflow_cli import main

pm4py = pytest.importorskip("pm4py", reason="pm4py is a test dependency: pip install -e '.[test]'")

XES = "{http://www.xes-standard.org/}"
TICKET_TOPIC = "ticketflow.domain.ticket:"


def read_xes(path: Path) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pm4py's hints about optional faster parsers
        return pm4py.read_xes(str(path), return_legacy_log_object=False, show_progress_bar=False)


def millis(moment: datetime) -> datetime:
    """XES times carry milliseconds (what ProM and pm4py expect)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def ticket_ids(desk: TicketDesk) -> list[UUID]:
    return [n.originator_id for n in desk.recorder.select_notifications(1, 10**6, topics=[OPENED_TOPIC])]


def ticket_events_in_log(desk: TicketDesk) -> int:
    """Ticket events counted straight from the notification log (not through the exporter's path)."""
    return sum(1 for n in desk.recorder.select_notifications(1, 10**7) if n.topic.startswith(TICKET_TOPIC))


@pytest.fixture(scope="module")
def simulated() -> Iterator[TicketDesk]:
    """A realistic mix: tickets of several teams, interleaved in the log, in every status."""
    clock = FakeClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    desk = TicketDesk(Settings(database_url="memory://"), clock=clock)
    simulation = DeskSimulation(desk, clock, tickets=60, customers=15, days=6, seed=21)
    simulation.setup()
    simulation.run()
    yield desk
    desk.close()


def test_pm4py_reads_one_case_per_ticket_and_one_event_per_ticket_event(simulated: TicketDesk, tmp_path: Path) -> None:
    path = tmp_path / "tickets.xes"
    summary = export_xes(simulated, path)
    tickets = ticket_ids(simulated)
    assert len(tickets) == 60
    expected_events = ticket_events_in_log(simulated)
    assert (summary.traces, summary.events) == (len(tickets), expected_events)

    log = read_xes(path)
    assert log["case:concept:name"].nunique() == len(tickets)
    assert set(log["case:concept:name"]) == {str(t) for t in tickets}
    assert len(log) == expected_events
    for ticket_id in tickets[:10]:
        history = simulated.history(ticket_id)
        case = log[log["case:concept:name"] == str(ticket_id)]
        assert list(case["concept:name"]) == [type(e).__qualname__ for e in history]  # version order
        assert list(case["org:resource"]) == [e.actor_id for e in history]
        assert list(case["org:role"]) == [e.actor_role for e in history]
        assert list(case["time:timestamp"]) == [millis(e.occurred_at) for e in history]  # business time
        assert list(case["ticketflow:version"]) == [e.originator_version for e in history]
    assert set(log["lifecycle:transition"]) == {"complete"}
    assert {"Ticket.Opened", "Ticket.Assigned", "Ticket.Solved"} <= set(log["concept:name"])
    assert log["ticketflow:recorded_at"].notna().all()


def test_the_log_is_a_standard_xes_1849_2016_document(simulated: TicketDesk, tmp_path: Path) -> None:
    path = tmp_path / "tickets.xes"
    export_xes(simulated, path)
    root = ET.parse(path).getroot()
    assert root.tag == f"{XES}log" and root.get("xes.version") == "1849-2016"
    assert {e.get("prefix") for e in root.findall(f"{XES}extension")} == {"concept", "time", "org", "lifecycle"}
    traces = root.findall(f"{XES}trace")
    assert len(traces) == 60
    names = [t.find(f"{XES}string[@key='concept:name']").get("value") for t in traces]  # type: ignore[union-attr]
    assert len(set(names)) == len(names)  # each ticket once: grouped although the log interleaves tickets
    assert not path.with_name("tickets.xes.partial").exists()


def test_no_personal_data_reaches_the_file(any_desk: TicketDesk, clock: FakeClock, tmp_path: Path) -> None:
    desk = any_desk  # each store: the topic-filtered read of the log is the recorder's
    setup = Desk(desk)
    marker = "Secret-subject-7f3c91"
    ticket = setup.open(subject=f"{marker} 我的手机号 13912345678")
    desk.assign_ticket(AssignTicket(ticket_id=ticket, assignee_id="li.wei"), AGENT)
    clock.advance(timedelta(minutes=5))
    desk.post_reply(PostReply(ticket_id=ticket, body="Private-reply-body-51be2e"), AGENT)
    desk.log_work(LogWork(ticket_id=ticket, action="Private-work-action-0d4a", minutes=5, result="Private-result-8c1f"), AGENT)
    desk.solve_ticket(SolveTicket(ticket_id=ticket, resolution="Private-resolution-33aa"), AGENT)
    desk.rate_satisfaction(RateSatisfaction(ticket_id=ticket, score=2, comment="Private-comment-9e0b"), setup.customer_caller)
    other = desk.register_customer(RegisterCustomer(name="Zhou Private-Name", email="private.person@example.org"), ADMIN)
    assert other.object_id

    path = tmp_path / "tickets.xes"
    summary = export_xes(desk, path)
    text = path.read_text(encoding="utf-8")
    for secret in (marker, "13912345678", "Private-", "王小明", "xiaoming@example.cn", "13800000000"):
        assert secret not in text
    assert summary.traces == 1 and summary.events == len(desk.history(ticket))
    log = read_xes(path)
    assert "Ticket.WorkLogged" in set(log["concept:name"]) and len(log) == summary.events


def test_the_cli_exports_the_tickets_opened_in_a_period(on_demo: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    desk = TicketDesk(Settings(data_dir=on_demo))
    opened = [desk.mapper.to_domain_event(n).occurred_at
              for n in desk.recorder.select_notifications(1, 10**6, topics=[OPENED_TOPIC])]
    desk.close()
    everything = tmp_path / "all.xes"
    assert main(["export", "xes", str(everything)]) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    assert f"wrote {len(opened)} traces (tickets)" in err
    assert len(ET.parse(everything).getroot().findall(f"{XES}trace")) == len(opened)

    middle = sorted(opened)[len(opened) // 2]
    since, until = middle.replace(hour=0, minute=0, second=0, microsecond=0), middle + timedelta(hours=12)
    expected = sum(1 for at in opened if since <= at < until)
    part = tmp_path / "part.xes"
    assert main(["export", "xes", str(part), "--from", since.isoformat(), "--to", until.isoformat()]) == 0
    assert f"wrote {expected} traces" in capsys.readouterr().err
    assert len(ET.parse(part).getroot().findall(f"{XES}trace")) == expected


def test_the_cli_refuses_a_bad_period_on_one_line(on_demo: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "xes", str(tmp_path / "x.xes"), "--from", "yesterday"]) == 1
    assert "--from 'yesterday' is not an ISO 8601 date" in capsys.readouterr().err
    assert main(["export", "xes", str(tmp_path / "x.xes"), "--from", "2026-03-02", "--to", "2026-03-01"]) == 1
    assert "--to must be after --from" in capsys.readouterr().err
    assert not (tmp_path / "x.xes").exists()


@pytest.mark.shared_data
def test_an_imported_real_log_exports_one_case_per_imported_case(tmp_path: Path) -> None:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the real service-desk logs are not here: {SHARED_DATA} is absent (a fresh machine)")
    desk = TicketDesk(Settings(database_url="memory://"))
    summary = import_file(desk, "helpdesk", SHARED_DATA / "helpdesk_it.csv", limit_cases=80)
    assert summary.refused == {}, summary.refusals
    path = tmp_path / "helpdesk.xes"
    exported = export_xes(desk, path)
    log = read_xes(path)
    assert log["case:concept:name"].nunique() == summary.cases == len(summary.tickets) == exported.traces
    assert set(log["case:concept:name"]) == {str(t) for t in summary.tickets.values()}
    assert len(log) == ticket_events_in_log(desk) == exported.events
    assert log["case:ticketflow:imported"].all()
    desk.close()
