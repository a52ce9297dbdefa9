"""The ticket page's forms to unassign, send back to triage and recategorise: the API's commands, in en and zh-CN."""

from __future__ import annotations

import re
from uuid import UUID

from tests.console.conftest import Console


def _post(console: Console, ticket: str, action: str, **fields: str) -> object:
    page = console.client.get(f"/tickets/{ticket}").text
    version = re.search(r'name="version" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    data = {"csrf_token": console.csrf(), "version": version, **fields}
    return console.client.post(f"/tickets/{ticket}/{action}", follow_redirects=True, data=data)


def test_an_agent_unassigns_recategorises_then_sends_a_ticket_back_to_triage(console: Console) -> None:
    console.sign_in("agent_a")
    ticket = console.seeded.tickets["printer"]
    assert f'action="/tickets/{ticket}/unassign"' not in console.client.get(f"/tickets/{ticket}").text
    _post(console, ticket, "assign", assignee_id="li.wei")
    unassigned = _post(console, ticket, "unassign", reason="交接")
    assert unassigned.status_code == 200 and "Unassigned: the ticket waits in its team" in unassigned.text  # type: ignore[attr-defined]
    assert "unassigned it" in unassigned.text  # type: ignore[attr-defined]
    refused = _post(console, ticket, "category", category="two words")
    assert refused.status_code == 422  # type: ignore[attr-defined]
    changed = _post(console, ticket, "category", category="打印机", ticket_type="incident")
    assert "Category changed." in changed.text and console.desk.get_ticket(UUID(ticket)).category == "打印机"  # type: ignore[attr-defined]
    gone = _post(console, ticket, "remove-from-team", reason="不属于本组")
    assert gone.url.path == "/queues"  # type: ignore[attr-defined]  # triage is outside the agent's teams
    assert console.desk.get_ticket(UUID(ticket)).team_id is None


def test_the_timeline_names_the_new_changes_in_chinese(console: Console) -> None:
    console.sign_in("agent_a")
    ticket = console.seeded.tickets["printer"]
    _post(console, ticket, "assign", assignee_id="li.wei")
    _post(console, ticket, "unassign")
    console.client.get("/language", params={"lang": "zh-CN", "next": f"/tickets/{ticket}"})
    page = console.client.get(f"/tickets/{ticket}").text
    assert "取消了工单的分配" in page and "退回待分派（无服务组）" in page
