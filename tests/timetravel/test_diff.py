"""The diff between two versions equals the audit trail's changes over that range."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from projections.asof import diff
from projections.audit import audit_trail
from projections.readside import ReadSide
from ticketflow.application import TicketDesk
from ticketflow.commands import (
    AddCollaborator, AssignTicket, ChangePriority, ChangeTags, GiveConsent, PostReply, SolveTicket, TransferTicket,
    UpdateCustomerProfile,
)
from ticketflow.domain.values import Direction, Priority
from tests.support import ADMIN, AGENT, SUPERVISOR, Desk


def _audit_changes(desk: TicketDesk, object_id: UUID, after: int, upto: int) -> list[tuple[Any, ...]]:
    side = ReadSide(desk, views=["audit"])
    try:
        side.catch_up()
        rows = side.read("audit", lambda db: audit_trail(db, object_id=str(object_id), limit=10_000))
    finally:
        side.close()
    return [
        (c["field"], c["old"], c["new"], r["version"], r["event_type"])
        for r in rows if after < r["version"] <= upto for c in r["changes"]
    ]


def _diff(desk: TicketDesk, object_id: UUID, after: int, upto: int) -> list[tuple[Any, ...]]:
    return [(c["field"], c["old"], c["new"], c["version"], c["event_type"]) for c in diff(desk, object_id, after, upto)]


@pytest.fixture
def worked(setup: Desk) -> UUID:
    desk = setup.app
    ticket_id = setup.open()
    desk.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), SUPERVISOR)
    desk.change_tags(ChangeTags(ticket_id=ticket_id, add=["vip", "login"]), AGENT)
    desk.post_reply(PostReply(ticket_id=ticket_id, body="请重置密码", direction=Direction.OUTBOUND), AGENT)
    desk.change_priority(ChangePriority(ticket_id=ticket_id, priority=Priority.URGENT), AGENT)
    desk.add_collaborator(AddCollaborator(ticket_id=ticket_id, agent_id="emma.clark"), AGENT)
    desk.change_tags(ChangeTags(ticket_id=ticket_id, remove=["login"]), AGENT)
    desk.transfer_ticket(TransferTicket(ticket_id=ticket_id, team_id=setup.other_team_id, reason="billing", assignee_id="wang.fang"), SUPERVISOR)
    desk.solve_ticket(SolveTicket(ticket_id=ticket_id, resolution="done"), ADMIN)
    return ticket_id


def test_the_diff_over_every_range_equals_the_audit_trail(setup: Desk, worked: UUID) -> None:
    desk = setup.app
    last = desk.get_ticket(worked).version
    for after in range(0, last):
        for upto in range(after + 1, last + 1):
            assert _diff(desk, worked, after, upto) == _audit_changes(desk, worked, after, upto), (after, upto)


def test_each_change_names_the_event_and_actor_that_made_it(setup: Desk, worked: UUID) -> None:
    changes = diff(setup.app, worked, 1, setup.app.get_ticket(worked).version)
    priority = [c for c in changes if c["field"] == "priority"]
    assert priority == [{**priority[0], "old": "normal", "new": "urgent", "event_type": "Ticket.PriorityChanged",
                         "actor_id": "li.wei", "actor_role": "agent"}]
    assert {c["field"] for c in changes} >= {"tags", "priority", "status"}


def test_a_customer_diff_uses_the_same_rules(setup: Desk) -> None:
    desk = setup.app
    customer = setup.customer_id
    desk.update_customer_profile(UpdateCustomerProfile(customer_id=customer, company="华信科技"), ADMIN)
    desk.give_consent(GiveConsent(customer_id=customer, purpose="surveys"), ADMIN)
    last = desk.get_customer(customer).version
    for after in range(0, last):
        assert _diff(desk, customer, after, last) == _audit_changes(desk, customer, after, last)


def test_a_diff_of_no_range_is_empty(setup: Desk, worked: UUID) -> None:
    assert diff(setup.app, worked, 4, 4) == []
