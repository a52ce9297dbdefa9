"""Imported history is kept as facts: what another desk recorded happened, at its own time.

A live command is decided against today's rules; an imported fact is not re-decided. These
tests record the shapes real desks produce that the lifecycle would refuse as commands
(an assignee before a team, a cleared group, a cleared assignee, a reopen after closed,
"new" with an assignee, a category change) and check that the views show them as they were.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

import pytest
from pydantic import ValidationError

from projections.audit import audit_trail
from projections.readside import ReadSide
from projections.tickets import TicketQueries
from tests.support import AGENT, Desk
from ticketflow.clock import FakeClock
from ticketflow.commands import AssignTicket, ImportedFact, OpenTicket, RecordImportedFacts
from ticketflow.describe import describe
from ticketflow.domain import Ticket
from ticketflow.domain.values import Channel, Role, Status
from ticketflow.errors import PermissionDenied, RuleViolation, TeamNotFound
from ticketflow.metadata import Caller

IMPORTER = Caller("import:test", Role.SYSTEM, Channel.IMPORT)
START = datetime(2016, 3, 1, 9, 0, tzinfo=UTC)
FACTS = UUID("6f1f8a52-8c7e-4f5c-9a53-0b6c3a0d2e11")


def fact(n: int, kind: str, **fields: Any) -> ImportedFact:
    """The ``n``-th fact of a test's history, ``n`` hours after START."""
    return ImportedFact(
        fact_id=uuid5(FACTS, str(n)), kind=kind, occurred_at=START + timedelta(hours=n), **fields
    )


def opened(setup: Desk, team_id: UUID | None = None) -> UUID:
    command = OpenTicket(
        subject="INC0012345", requester_id=setup.customer_id, team_id=team_id, occurred_at=START
    )
    return setup.app.open_ticket(command, IMPORTER).object_id


def record(setup: Desk, ticket_id: UUID, *facts: ImportedFact) -> tuple[str, ...]:
    result = setup.app.handle(RecordImportedFacts(ticket_id=ticket_id, facts=list(facts)), IMPORTER)
    return result.events


def test_an_assignee_before_any_team_is_recorded_and_the_ticket_stays_new(setup: Desk) -> None:
    ticket_id = opened(setup)
    with pytest.raises(RuleViolation, match="no team"):  # the live rule is unchanged
        setup.app.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="Frederic"), AGENT)
    assert record(setup, ticket_id, fact(1, "placement", team_id=None, assignee_id="Frederic")) == (
        "Ticket.Assigned",
    )
    ticket = setup.app.get_ticket(ticket_id)
    assert (ticket.team_id, ticket.assignee_id, ticket.status) == (None, "Frederic", Status.NEW)
    assigned = setup.app.history(ticket_id)[-1]
    assert (assigned.occurred_at, assigned.imported, assigned.actor_id) == (
        START + timedelta(hours=1),
        True,
        "import:test",
    )


def test_clearing_the_group_keeps_the_assignee_and_clearing_the_assignee_keeps_the_group(setup: Desk) -> None:
    ticket_id = opened(setup, setup.team_id)
    record(
        setup, ticket_id, fact(1, "placement", team_id=setup.team_id, assignee_id="li.wei", actor_id="li.wei")
    )
    assert record(setup, ticket_id, fact(2, "placement", team_id=None, assignee_id="li.wei")) == (
        "Ticket.RemovedFromTeam",
    )
    ticket = setup.app.get_ticket(ticket_id)
    assert (ticket.team_id, ticket.assignee_id) == (None, "li.wei")
    assert record(
        setup,
        ticket_id,
        fact(3, "placement", team_id=setup.other_team_id, assignee_id="li.wei"),
        fact(4, "placement", team_id=setup.other_team_id, assignee_id=None),
    ) == ("Ticket.Transferred", "Ticket.Unassigned")
    ticket = setup.app.get_ticket(ticket_id)
    assert (ticket.team_id, ticket.assignee_id) == (setup.other_team_id, None)


def test_a_reopen_after_closed_is_recorded_with_its_count(setup: Desk) -> None:
    ticket_id = opened(setup, setup.team_id)
    events = record(
        setup,
        ticket_id,
        fact(1, "status", status=Status.OPEN),
        fact(2, "status", status=Status.CLOSED),
        fact(3, "status", status=Status.OPEN, reason="customer called back"),
        fact(4, "status", status=Status.PENDING),
    )
    assert events == ("Ticket.MarkedOpen", "Ticket.Closed", "Ticket.Reopened", "Ticket.Pended")
    ticket = setup.app.get_ticket(ticket_id)
    assert (ticket.status, ticket.reopen_count, ticket.closed_at) == (Status.PENDING, 1, None)
    reopened = setup.app.history(ticket_id)[-2]
    assert isinstance(reopened, Ticket.Reopened) and reopened.from_status == "closed"


def test_new_with_an_assignee_and_a_category_change(setup: Desk) -> None:
    ticket_id = opened(setup, setup.team_id)
    assert record(
        setup,
        ticket_id,
        fact(1, "placement", team_id=setup.team_id, assignee_id="emma.clark"),
        fact(2, "category", category="网络"),
    ) == ("Ticket.Assigned", "Ticket.Recategorised")
    ticket = setup.app.get_ticket(ticket_id)
    assert (ticket.status, ticket.assignee_id, ticket.category) == (Status.NEW, "emma.clark", "网络")


def test_a_fact_that_changes_nothing_writes_nothing_and_a_rerun_is_recognised(setup: Desk) -> None:
    ticket_id = opened(setup, setup.team_id)
    facts = [fact(1, "status", status=Status.OPEN), fact(2, "status", status=Status.OPEN)]
    assert record(setup, ticket_id, *facts) == ("Ticket.MarkedOpen",)
    before = setup.app.log_position()
    again = setup.app.handle(RecordImportedFacts(ticket_id=ticket_id, facts=facts), IMPORTER)
    assert again.events == () and setup.app.log_position() == before


@pytest.mark.parametrize(
    ("facts", "error", "message"),
    [
        (lambda s: [fact(1, "placement", team_id=UUID(int=7), assignee_id="x")], TeamNotFound, "team"),
        (
            lambda s: [fact(-1, "status", status=Status.OPEN)],
            RuleViolation,
            "before the ticket's latest event",
        ),
        (
            lambda s: [fact(1, "status", status=Status.OPEN), fact(2, "status", status=Status.NEW)],
            RuleViolation,
            "never returns to new",
        ),
        (
            lambda s: [
                ImportedFact(
                    fact_id=FACTS,
                    kind="status",
                    status=Status.OPEN,
                    occurred_at=datetime(2027, 1, 1, tzinfo=UTC),
                )
            ],
            RuleViolation,
            "in the future",
        ),
    ],
)
def test_facts_of_the_wrong_shape_are_refused_whole(
    setup: Desk, facts: Any, error: type[Exception], message: str
) -> None:
    ticket_id = opened(setup, setup.team_id)
    before = setup.app.log_position()
    with pytest.raises(error, match=message):
        setup.app.handle(RecordImportedFacts(ticket_id=ticket_id, facts=facts(setup)), IMPORTER)
    assert setup.app.log_position() == before


def test_facts_out_of_time_order_or_missing_their_value_are_invalid() -> None:
    with pytest.raises(ValidationError, match="back in time"):
        RecordImportedFacts(
            ticket_id=FACTS, facts=[fact(2, "status", status=Status.OPEN), fact(1, "note", body="x")]
        )
    with pytest.raises(ValidationError, match="needs status"):
        fact(1, "status")
    with pytest.raises(ValidationError, match="assignee_id"):
        fact(1, "placement", assignee_id="two words")


def test_only_an_import_or_an_admin_records_facts(setup: Desk) -> None:
    ticket_id = opened(setup, setup.team_id)
    with pytest.raises(PermissionDenied, match="imported history"):
        setup.app.handle(
            RecordImportedFacts(ticket_id=ticket_id, facts=[fact(1, "status", status=Status.OPEN)]), AGENT
        )


def test_every_view_shows_the_facts_as_they_were(setup: Desk, clock: FakeClock) -> None:
    ticket_id = opened(setup, setup.team_id)
    record(
        setup,
        ticket_id,
        fact(1, "placement", team_id=setup.team_id, assignee_id="li.wei"),
        fact(2, "status", status=Status.CLOSED),
        fact(3, "status", status=Status.OPEN),
        fact(4, "placement", team_id=None, assignee_id="li.wei"),
        fact(5, "placement", team_id=None, assignee_id=None),
        fact(6, "note", body="客户来电，问题复现", actor_id="li.wei"),
    )
    read_side = ReadSide(setup.app)
    try:
        read_side.catch_up()
        row = read_side.read("tickets", lambda db: TicketQueries.get(db, str(ticket_id)))
        assert row is not None
        assert (row["status"], row["team_id"], row["assignee_id"], row["closed_at"], row["reopen_count"]) == (
            "open",
            None,
            None,
            None,
            1,
        )
        audit = read_side.read("audit", lambda db: audit_trail(db, object_id=str(ticket_id), limit=100))
        types = [entry["event_type"] for entry in audit]
        assert {"Ticket.RemovedFromTeam", "Ticket.Unassigned", "Ticket.Reopened"} <= set(types)
        assert all(entry["via"] == "import" for entry in audit)
    finally:
        read_side.close()
    lines = [describe(event) for event in setup.app.history(ticket_id)]
    assert f"removed from team {setup.team_id} (back to triage)" in lines
    assert "unassigned (was li.wei)" in lines
