"""``ticketflow ticket unassign|remove-from-team|recategorise``: one line each, one-line errors."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest

from tests.support import ADMIN, Desk
from tests.support import run_cli as run
from ticketflow.application import TicketDesk
from ticketflow.commands import AssignTicket
from ticketflow.config import Settings


def _assigned_ticket(data_dir: Path) -> tuple[str, UUID]:
    desk = TicketDesk(Settings(data_dir=data_dir))
    try:
        setup = Desk(desk)
        ticket_id = setup.open()
        desk.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), ADMIN)
        return str(ticket_id), setup.team_id
    finally:
        desk.close()


def test_an_operator_unassigns_recategorises_and_sends_a_ticket_back_to_triage(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ticket, _ = _assigned_ticket(data_dir)
    code, out, err = run(["ticket", "unassign", ticket, "--reason", "交接"], capsys)
    assert (code, err) == (0, "") and "Unassigned" in out
    code, out, err = run(
        ["ticket", "recategorise", ticket, "--category", "网络", "--type", "incident"], capsys
    )
    assert (code, err) == (0, "") and "Recategorised" in out
    code, out, err = run(
        ["ticket", "remove-from-team", ticket, "--reason", "不属于本组", "--operator", "zhang.ops"], capsys
    )
    assert (code, err) == (0, "") and "RemovedFromTeam" in out
    desk = TicketDesk(Settings(data_dir=data_dir))
    try:
        ticket_now = desk.get_ticket(UUID(ticket))
        assert (ticket_now.assignee_id, ticket_now.team_id, ticket_now.category) == (None, None, "网络")
        last = desk.history(UUID(ticket))[-1]
        assert (last.actor_id, last.actor_role, last.via) == ("zhang.ops", "admin", "cli")
    finally:
        desk.close()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ticket", "unassign", "not-a-ticket"], "is not a ticket id"),
        (["ticket", "recategorise", "{ticket}"], "give a category, a ticket_type or both"),
        (["ticket", "remove-from-team", "{ticket}", "--reason", " "], "reason"),
        (["ticket", "recategorise", "{ticket}", "--category", "two words"], "category"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(
    data_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    ticket, _ = _assigned_ticket(data_dir)
    code, out, err = run([part.format(ticket=ticket) for part in argv], capsys)
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
