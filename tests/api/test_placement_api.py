"""Unassign, back to triage, and recategorise over HTTP: the changes real desks make to a ticket's place."""

from __future__ import annotations

from tests.api.conftest import Api

PROBLEM = "application/problem+json"


def _row(api: Api, ticket: str, response: object, who: str = "agent_a") -> dict[str, object]:
    position = int(response.headers["X-Log-Position"])  # type: ignore[attr-defined]
    row: dict[str, object] = api.get(
        who, f"/api/v1/tickets/{ticket}", params={"min_position": position}
    ).json()
    return row


def test_an_assigned_ticket_is_unassigned_and_stays_with_its_team(api: Api) -> None:
    ticket = api.open_ticket()
    api.post("agent_a", f"/api/v1/tickets/{ticket}/assign", {"assignee_id": "li.wei"})
    response = api.post("agent_a", f"/api/v1/tickets/{ticket}/unassign", {"reason": "下班交接"})
    assert response.status_code == 200, response.text
    assert response.json()["events"] == ["Ticket.Unassigned"]
    row = _row(api, ticket, response)
    assert (row["assignee_id"], row["team_id"], row["status"]) == (None, str(api.team_a), "open")
    again = api.post("agent_a", f"/api/v1/tickets/{ticket}/unassign", {})
    assert again.status_code == 409 and again.headers["content-type"].startswith(PROBLEM)
    assert "not assigned" in again.json()["detail"]


def test_back_to_triage_unassigns_and_clears_the_team_with_a_reason(api: Api) -> None:
    ticket = api.open_ticket()
    api.post("agent_a", f"/api/v1/tickets/{ticket}/assign", {"assignee_id": "li.wei"})
    missing = api.post("agent_a", f"/api/v1/tickets/{ticket}/remove-from-team", {})
    assert missing.status_code == 422 and missing.headers["content-type"].startswith(PROBLEM)
    response = api.post("agent_a", f"/api/v1/tickets/{ticket}/remove-from-team", {"reason": "不是技术问题"})
    assert response.status_code == 200, response.text
    assert response.json()["events"] == ["Ticket.Unassigned", "Ticket.RemovedFromTeam"]
    row = _row(api, ticket, response, "admin")  # triage is not in the team agent's scope any more
    assert (row["assignee_id"], row["team_id"]) == (None, None)
    audit = api.get("admin", f"/api/v1/tickets/{ticket}/audit").json()
    assert {"field": "team_id", "old": str(api.team_a), "new": None} in audit[-1]["changes"]


def test_the_category_and_type_change_over_http_guarded_by_if_match(api: Api) -> None:
    ticket = api.open_ticket()
    stale = api.post(
        "agent_a", f"/api/v1/tickets/{ticket}/category", {"category": "网络"}, **{"If-Match": '"7"'}
    )
    assert stale.status_code == 412
    empty = api.post("agent_a", f"/api/v1/tickets/{ticket}/category", {})
    assert empty.status_code == 422 and "give a category" in empty.text
    response = api.post(
        "agent_a",
        f"/api/v1/tickets/{ticket}/category",
        {"category": "网络", "ticket_type": "incident"},
        **{"If-Match": '"1"', "Idempotency-Key": "recat-1"},
    )
    assert response.status_code == 200, response.text
    retried = api.post(
        "agent_a",
        f"/api/v1/tickets/{ticket}/category",
        {"category": "网络", "ticket_type": "incident"},
        **{"If-Match": '"1"', "Idempotency-Key": "recat-1"},
    )
    assert retried.status_code == 200 and retried.json()["version"] == response.json()["version"]
    row = _row(api, ticket, response)
    assert (row["category"], row["ticket_type"]) == ("网络", "incident")


def test_another_teams_agent_and_an_auditor_cannot_change_a_tickets_place(api: Api) -> None:
    ticket = api.open_ticket()
    before = api.desk.log_position()
    for path, body in [
        ("unassign", {}),
        ("remove-from-team", {"reason": "x"}),
        ("category", {"category": "x"}),
    ]:
        assert api.post("agent_b", f"/api/v1/tickets/{ticket}/{path}", body).status_code == 404
        assert api.post("auditor", f"/api/v1/tickets/{ticket}/{path}", body).status_code == 403
    assert api.desk.log_position() == before
