"""A solved ticket's survey follows the customer's survey consent: without it no survey is issued, nothing
is written to the ticket and its work row ends done, not failed; with it, exactly one survey. These guard
the behaviour (the same before and after the scheduler learnt to ask the consent first instead of having
the command refuse), not how the scheduler gets there."""

from __future__ import annotations

from uuid import UUID

from projections.automation import ALWAYS
from projections.workflow import due_work, failed_work
from tests.support import AGENT
from tests.workflow.test_automation import World
from ticketflow.commands import AssignTicket, GiveConsent, SolveTicket
from ticketflow.domain import Ticket
from ticketflow.domain.values import Consent


def solved(world: World) -> UUID:
    ticket_id = world.open(team=True)
    world.desk.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
    world.desk.solve_ticket(SolveTicket(ticket_id=ticket_id), AGENT)
    return ticket_id


def test_a_customer_without_survey_consent_gets_no_survey_nothing_written_and_the_row_done_not_failed(world: World) -> None:
    ticket_id = solved(world)
    version = world.desk.get_ticket(ticket_id).version

    world.settle()

    assert world.events(ticket_id, Ticket.SurveyIssued) == []
    assert world.desk.get_ticket(ticket_id).version == version  # nothing written
    assert world.read_side.read("workflow", lambda db: due_work(db, "survey", ALWAYS)) == []
    assert world.read_side.read("workflow", failed_work) == []


def test_a_customer_who_consented_gets_one_survey(world: World) -> None:
    world.desk.give_consent(GiveConsent(customer_id=world.setup.customer_id, purpose=Consent.SURVEYS),
                            world.setup.customer_caller)
    ticket_id = solved(world)

    world.settle()

    assert len(world.events(ticket_id, Ticket.SurveyIssued)) == 1
    assert world.read_side.read("workflow", lambda db: due_work(db, "survey", ALWAYS)) == []
