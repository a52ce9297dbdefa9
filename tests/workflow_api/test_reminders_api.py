"""/api/v1/reminders: schedule, the agent's queue on a fake clock, complete, cancel, scoping, masking."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from ticketflow.clock import FakeClock
from ticketflow.commands.workflow import FireReminder
from tests.api.conftest import Api
from tests.workflow_api.conftest import SYSTEM


def schedule(api: Api, who: str = "agent_a", **fields: Any) -> str:
    response = api.post(who, "/api/v1/reminders", fields)
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/api/v1/reminders/{response.json()['id']}"
    api.wait(int(response.headers["X-Log-Position"]))
    return str(response.json()["id"])


def queue_ids(api: Api, who: str, **params: Any) -> list[str]:
    response = api.get(who, "/api/v1/reminders", params=params)
    assert response.status_code == 200, response.text
    return [r["reminder_id"] for r in response.json()]


def test_a_reminder_is_in_the_agents_queue_when_due_and_leaves_it_when_completed(api: Api, clock: FakeClock) -> None:
    ticket_id = api.open_ticket()
    due_at = (clock.now() + timedelta(days=1)).isoformat()
    reminder_id = schedule(api, ticket_id=ticket_id, agent_id="li.wei", team_id=str(api.team_a), due_at=due_at,
                           kind="follow_up", note="回访：确认客户可以登录")
    assert queue_ids(api, "agent_a") == [reminder_id]
    assert queue_ids(api, "agent_a", due="true") == []
    clock.advance(timedelta(days=1, minutes=1))
    api.desk.fire_reminder(FireReminder(reminder_id=UUID(reminder_id)), SYSTEM)
    api.caught_up()
    (row,) = api.get("agent_a", "/api/v1/reminders", params={"due": "true"}).json()
    assert (row["reminder_id"], row["due"], row["state"], row["note"]) == (reminder_id, True, "fired", "回访：确认客户可以登录")
    done = api.post("agent_a", f"/api/v1/reminders/{reminder_id}/complete", {"outcome": "客户确认已解决"})
    assert done.status_code == 200, done.text
    api.wait(done.json()["position"])
    assert queue_ids(api, "agent_a") == []
    assert api.get("agent_a", f"/api/v1/reminders/{reminder_id}").json()["state"] == "done"
    again = api.post("agent_a", f"/api/v1/reminders/{reminder_id}/complete", {"outcome": "again"})
    assert again.status_code == 409 and "already done" in again.json()["detail"]


def test_a_team_reminder_for_no_one_shows_in_each_members_queue_not_in_other_teams(api: Api, clock: FakeClock) -> None:
    api.open_ticket()  # the customer is team A's (a reminder about a customer needs them in scope)
    api.caught_up()
    due_at = (clock.now() + timedelta(hours=1)).isoformat()
    reminder_id = schedule(api, "supervisor_a", customer_id=str(api.customer), team_id=str(api.team_a), due_at=due_at)
    assert queue_ids(api, "agent_a") == [reminder_id]
    assert queue_ids(api, "agent_a2") == [reminder_id]
    assert queue_ids(api, "supervisor_a", team_id=str(api.team_a)) == [reminder_id]
    assert queue_ids(api, "agent_b") == []
    assert queue_ids(api, "agent_b", team_id=str(api.team_a)) == []
    assert api.get("agent_b", f"/api/v1/reminders/{reminder_id}").status_code == 404
    assert api.post("agent_b", f"/api/v1/reminders/{reminder_id}/cancel", {"reason": "not mine"}).status_code == 404


def test_a_cancelled_reminder_is_listed_by_its_ticket_on_request(api: Api, clock: FakeClock) -> None:
    ticket_id = api.open_ticket()
    reminder_id = schedule(api, ticket_id=ticket_id, agent_id="li.wei", due_at=clock.now().isoformat())
    response = api.post("agent_a", f"/api/v1/reminders/{reminder_id}/cancel", {"reason": "customer called first"})
    assert response.status_code == 200, response.text
    api.wait(response.json()["position"])
    assert queue_ids(api, "agent_a", ticket_id=ticket_id) == []
    (row,) = api.get("agent_a", "/api/v1/reminders", params={"ticket_id": ticket_id, "state": "cancelled"}).json()
    assert (row["reminder_id"], row["cancel_reason"]) == (reminder_id, "customer called first")
    assert api.get("agent_b", "/api/v1/reminders", params={"ticket_id": ticket_id}).status_code == 404


def test_scheduling_is_refused_without_a_target_and_for_another_teams_ticket(api: Api, clock: FakeClock) -> None:
    due_at = clock.now().isoformat()
    missing = api.post("agent_a", "/api/v1/reminders", {"agent_id": "li.wei", "due_at": due_at})
    assert missing.status_code == 422 and "ticket_id or customer_id" in missing.json()["detail"]
    other = api.open_ticket(who="agent_b", team="b")
    foreign = api.post("agent_a", "/api/v1/reminders", {"ticket_id": other, "agent_id": "li.wei", "due_at": due_at})
    assert foreign.status_code == 404
    assert api.post("auditor", "/api/v1/reminders", {"customer_id": str(api.customer), "team_id": str(api.team_a),
                                                     "due_at": due_at}).status_code == 403


def test_the_desk_reads_a_reminders_note_and_an_auditor_may_not_read_reminders(api: Api, clock: FakeClock) -> None:
    api.open_ticket()  # the customer is team A's
    api.caught_up()
    reminder_id = schedule(api, customer_id=str(api.customer), agent_id="li.wei", due_at=clock.now().isoformat(),
                           note="客户手机号 138")
    assert api.get("admin", f"/api/v1/reminders/{reminder_id}").json()["note"] == "客户手机号 138"
    response = api.get("auditor", f"/api/v1/reminders/{reminder_id}")
    assert response.status_code == 403  # auditors do not read reminders at all


def test_a_reminder_on_a_ticket_is_seen_by_whoever_sees_the_ticket(api: Api, clock: FakeClock) -> None:
    ticket_id = api.open_ticket()
    reminder_id = schedule(api, "agent_a", ticket_id=ticket_id, agent_id="li.wei", due_at=clock.now().isoformat())
    assert queue_ids(api, "supervisor_a") == [reminder_id]  # no team on it, but the ticket is the team's
    assert queue_ids(api, "agent_a2") == []  # an agent's own queue: not someone else's reminder
    assert queue_ids(api, "agent_a2", agent_id="li.wei") == [reminder_id]
    assert queue_ids(api, "agent_b") == [] and queue_ids(api, "agent_b", agent_id="li.wei") == []
