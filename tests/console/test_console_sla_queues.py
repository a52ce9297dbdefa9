"""The console's "SLA breached" queue: the worked tickets of the caller's teams with a breached target."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from tests.console.conftest import Console
from tests.workflow.test_workflow_commands import SYSTEM, define_policy
from ticketflow.commands.workflow import ApplySla, RecordSlaEvent


def _breach(console: Console, ticket: str) -> None:
    desk, ticket_id = console.desk, UUID(ticket)
    if desk.get_ticket(ticket_id).sla is None:
        desk.apply_sla(ApplySla(ticket_id=ticket_id), SYSTEM)
    moment = desk.clock.now() + timedelta(hours=2)
    desk.record_sla_event(
        RecordSlaEvent(
            ticket_id=ticket_id, kind="breached", metric="first_reply_time", cycle="c1", moment=moment
        ),
        SYSTEM,
    )


def test_the_breached_queue_lists_the_teams_breached_tickets_and_no_other(console: Console) -> None:
    define_policy(console.desk)
    seeded = console.seeded
    seeded.open_ticket("按时处理的工单")
    _breach(console, seeded.tickets["printer"])
    _breach(console, seeded.tickets["billing"])  # team B's: not agent A's to see
    console.caught_up()
    console.sign_in("agent_a")
    page = console.client.get("/queues?queue=breached")
    assert page.status_code == 200
    assert "打印机卡纸" in page.text
    assert "按时处理的工单" not in page.text and "Invoice shows the wrong amount" not in page.text
    # The unbreached ticket is agent A's to see: it is left out of the breached queue alone.
    assert "按时处理的工单" in console.client.get("/queues?queue=team").text
