"""Each finding of the outside review (#9 §1), reproduced against the API and now refused."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from api.middleware import TokenBuckets
from tests.access.conftest import Desk
from tests.support import ADMIN
from ticketflow.access import Permission
from ticketflow.commands import AddTeamMember, DeactivateTeamMember, ReactivateTeamMember
from ticketflow.commands.access import IssueToken
from ticketflow.domain.values import MemberRole, Role
from ticketflow.errors import RuleViolation

TICKET_COMMANDS: list[tuple[str, dict[str, Any]]] = [
    ("assign", {"assignee_id": "li.wei"}), ("replies", {"body": "您好"}), ("notes", {"body": "内部备注"}),
    ("pend", {}), ("hold", {}), ("open", {}), ("solve", {"resolution": "已解决"}), ("close", {}),
    ("reopen", {"reason": "again"}), ("priority", {"priority": "high"}), ("satisfaction", {"score": 5}),
    ("merge", {"into_ticket_id": "00000000-0000-0000-0000-000000000001"}), ("resolution", {"problem": "x"}),
]


def _supervisor_of_team_b(desk: Desk) -> str:
    api = desk.api
    api.desk.add_team_member(AddTeamMember(team_id=api.team_b, agent_id="zhao.sup", role=MemberRole.SUPERVISOR), ADMIN)
    _, token = api.desk.issue_token(IssueToken(role=Role.SUPERVISOR, agent_id="zhao.sup"), ADMIN)
    assert token is not None
    api.tokens["supervisor_b"] = token
    return "supervisor_b"


def test_a_teams_supervisor_may_not_change_desk_wide_policy(desk: Desk) -> None:
    api, who = desk.api, _supervisor_of_team_b(desk)
    rules = {"rules": [{"name": "抢单", "team_id": str(api.team_b), "keywords": ["发票"]}], "default_team_id": str(api.team_b)}
    assert api.client.put("/api/v1/routing-rules", json=rules, headers=api.headers(who)).status_code == 403
    sla = {"name": "夜班", "position": 2, "targets": {"normal": {"first_reply_time": {"minutes": 30}}}}
    assert api.post(who, "/api/v1/sla-policies", sla).status_code == 403
    assert api.post(who, f"/api/v1/sla-policies/{desk.sla_policy}/retire", {"reason": "x"}).status_code == 403
    calendar = {"name": "夜班", "timezone": "Asia/Shanghai", "weekly": {"0": [["09:00", "18:00"]]}}
    assert api.post(who, "/api/v1/calendars", calendar).status_code == 403
    # ... while the admin may, and the supervisor still runs their own team
    assert api.client.put("/api/v1/routing-rules", json=rules, headers=api.headers("admin")).status_code == 200
    assert api.client.put(f"/api/v1/teams/{api.team_b}/strategy", json={"strategy": "least_loaded"},
                          headers=api.headers(who)).status_code == 200
    assert api.client.put(f"/api/v1/teams/{api.team_a}/strategy", json={"strategy": "least_loaded"},
                          headers=api.headers(who)).status_code == 404


@pytest.mark.parametrize(("path", "body"), TICKET_COMMANDS)
def test_an_integration_token_without_teams_may_not_work_tickets(desk: Desk, path: str, body: dict[str, Any]) -> None:
    ticket = desk.own["ticket_id"]
    response = desk.api.post("integration", f"/api/v1/tickets/{ticket}/{path}", body)
    assert response.status_code == 403, response.text


def test_an_im_bridge_may_open_tickets_and_post_the_customers_messages_only(desk: Desk) -> None:
    api = desk.api
    permissions = [Permission.TICKETS_OPEN, Permission.TICKETS_MESSAGE]
    _, token = api.desk.issue_token(
        IssueToken(name="wechat-bridge", role=Role.INTEGRATION, team_ids=[api.team_a], permissions=permissions), ADMIN)
    api.tokens["bridge"] = token  # type: ignore[assignment]
    customer, mine, theirs = desk.own["customer_id"], desk.own["ticket_id"], desk.other["ticket_id"]
    opened = api.post("bridge", "/api/v1/tickets", {"subject": "微信咨询", "requester_id": customer, "team_id": str(api.team_a)})
    assert opened.status_code == 201, opened.text
    assert api.post("bridge", "/api/v1/tickets", {"subject": "x", "requester_id": customer,
                                                  "team_id": str(api.team_b)}).status_code == 403
    inbound = api.post("bridge", f"/api/v1/tickets/{mine}/replies", {"body": "还是登不上", "direction": "inbound", "channel": "chat"})
    assert inbound.status_code == 200, inbound.text
    assert api.post("bridge", f"/api/v1/tickets/{mine}/replies", {"body": "我们来处理"}).status_code == 403  # outbound
    assert api.post("bridge", f"/api/v1/tickets/{mine}/notes", {"body": "x"}).status_code == 403
    assert api.post("bridge", f"/api/v1/tickets/{theirs}/replies", {"body": "x", "direction": "inbound"}).status_code == 404
    assert api.get("bridge", f"/api/v1/tickets/{mine}").status_code == 403
    api.caught_up()
    [message] = [e for e in api.get("admin", f"/api/v1/tickets/{mine}/timeline").json() if e["body"] == "还是登不上"]
    assert message["author_id"] == customer  # the customer's message, posted by the bridge


def test_integration_permissions_are_limited_to_what_an_integration_may_hold(desk: Desk) -> None:
    with pytest.raises(RuleViolation, match="policies:write"):
        desk.api.desk.issue_token(IssueToken(name="x", role=Role.INTEGRATION, permissions=[Permission.POLICIES_WRITE]), ADMIN)
    with pytest.raises(RuleViolation, match="only integrations"):
        desk.api.desk.issue_token(IssueToken(name="x", role=Role.AUDITOR, permissions=[Permission.TICKETS_READ]), ADMIN)


def test_an_agent_may_not_open_a_ticket_in_another_team_nor_fill_another_teams_agents_queue(desk: Desk) -> None:
    api = desk.api
    customer = desk.own["customer_id"]
    refused = api.post("agent_a", "/api/v1/tickets", {"subject": "x", "requester_id": customer, "team_id": str(api.team_b)})
    assert refused.status_code == 403, refused.text
    due = "2030-01-01T09:00:00+08:00"
    theirs = api.post("agent_a", "/api/v1/reminders", {"customer_id": customer, "agent_id": "wang.fang", "due_at": due})
    assert theirs.status_code == 403, theirs.text
    other_team = api.post("agent_a", "/api/v1/reminders", {"customer_id": customer, "team_id": str(api.team_b), "due_at": due})
    assert other_team.status_code == 404
    teammate = api.post("agent_a", "/api/v1/reminders", {"customer_id": customer, "agent_id": "emma.clark", "due_at": due})
    assert teammate.status_code == 201, teammate.text


def test_a_token_belongs_to_a_team_member_whose_teams_come_from_the_directory(desk: Desk) -> None:
    api = desk.api
    for bad, message in [
        (IssueToken(role=Role.AGENT), "agent id"),
        (IssueToken(role=Role.AGENT, name="helpdesk"), "not an active member"),
        (IssueToken(role=Role.AGENT, agent_id="nobody"), "not an active member"),
        (IssueToken(role=Role.SUPERVISOR, agent_id="li.wei"), "supervisor or lead"),
        (IssueToken(role=Role.AGENT, agent_id="li.wei", team_ids=[api.team_b]), "membership"),
    ]:
        with pytest.raises(RuleViolation, match=message):
            api.desk.issue_token(bad, ADMIN)
    me = api.get("agent_a", "/api/v1/me").json()
    assert me["name"] == "li.wei" and me["team_ids"] == [str(api.team_a)]
    ticket = desk.own["ticket_id"]
    assert api.get("agent_a", f"/api/v1/tickets/{ticket}").status_code == 200
    api.desk.deactivate_team_member(DeactivateTeamMember(team_id=api.team_a, agent_id="li.wei", reason="离职"), ADMIN)
    assert api.get("agent_a", f"/api/v1/tickets/{ticket}").status_code == 404  # at once, no view lag involved
    assert api.post("agent_a", f"/api/v1/tickets/{ticket}/notes", {"body": "x"}).status_code == 404
    api.desk.reactivate_team_member(ReactivateTeamMember(team_id=api.team_a, agent_id="li.wei"), ADMIN)
    api.desk.add_team_member(AddTeamMember(team_id=api.team_b, agent_id="li.wei"), ADMIN)
    assert set(api.get("agent_a", "/api/v1/me").json()["team_ids"]) == {str(api.team_a), str(api.team_b)}
    note = api.post("agent_a", f"/api/v1/tickets/{ticket}/notes", {"body": "跟进中"})
    assert note.status_code == 200
    api.caught_up()
    [entry] = [e for e in api.get("admin", f"/api/v1/tickets/{ticket}/timeline").json() if e["body"] == "跟进中"]
    assert entry["author_id"] == "li.wei"
    audit = api.get("admin", f"/api/v1/tickets/{ticket}/audit").json()
    assert audit[-1]["actor_id"] == "li.wei"


def test_staff_write_as_themselves_and_only_an_admin_may_record_for_someone_else(desk: Desk) -> None:
    api, ticket = desk.api, desk.own["ticket_id"]
    spoofed = api.post("agent_a", f"/api/v1/tickets/{ticket}/replies", {"body": "冒名回复", "author_id": "emma.clark"})
    assert spoofed.status_code == 403, spoofed.text
    work = api.post("agent_a", f"/api/v1/tickets/{ticket}/work-entries",
                    {"action": "排查", "minutes": 5, "performer_id": "wang.fang"})
    assert work.status_code == 403
    inbound_as_someone = api.post("agent_a", f"/api/v1/tickets/{ticket}/replies",
                                  {"body": "x", "direction": "inbound", "author_id": "emma.clark"})
    assert inbound_as_someone.status_code == 403
    assert api.post("agent_a", f"/api/v1/tickets/{ticket}/replies", {"body": "自己的回复", "author_id": "li.wei"}).status_code == 200
    on_behalf = api.post("admin", f"/api/v1/tickets/{ticket}/work-entries",
                         {"action": "补录电话记录", "minutes": 10, "performer_id": "emma.clark"})
    assert on_behalf.status_code == 200
    api.caught_up()
    timeline = api.get("admin", f"/api/v1/tickets/{ticket}/timeline").json()
    assert {e["body"] for e in timeline} >= {"自己的回复"} and "冒名回复" not in str(timeline)
    [history] = [e for e in api.desk.history(UUID(ticket)) if type(e).__name__ == "WorkLogged"]
    assert (history.performer_id, history.actor_id) == ("emma.clark", "root")  # type: ignore[attr-defined]


def test_staff_see_and_change_only_customers_with_a_ticket_in_their_teams(desk: Desk) -> None:
    api = desk.api
    theirs, mine = desk.other["customer_id"], desk.own["customer_id"]
    assert api.client.patch(f"/api/v1/customers/{theirs}", json={"company": "改名"}, headers=api.headers("agent_a")).status_code == 404
    assert api.get("agent_a", f"/api/v1/customers/{theirs}").status_code == 404
    assert api.get("agent_a", f"/api/v1/customers/{theirs}/overview").status_code == 404
    assert api.client.patch(f"/api/v1/customers/{mine}", json={"company": "华信"}, headers=api.headers("agent_a")).status_code == 200
    registered = api.post("agent_a", "/api/v1/customers", {"name": "新客户"}).json()["id"]
    api.caught_up()
    assert api.get("agent_a", f"/api/v1/customers/{registered}").status_code == 200  # whom they registered
    assert api.get("agent_b", f"/api/v1/customers/{registered}").status_code == 404
    assert api.get("admin", f"/api/v1/customers/{theirs}").status_code == 200
    # a ticket for that customer in team A makes the customer team A's too
    api.post("admin", "/api/v1/tickets", {"subject": "转来的", "requester_id": theirs, "team_id": str(api.team_a)})
    api.caught_up()
    assert api.get("agent_a", f"/api/v1/customers/{theirs}").status_code == 200


def test_metrics_need_a_token_unless_the_operator_opens_them(desk: Desk, tmp_path: Any) -> None:
    from tests.api.conftest import build_api
    from ticketflow.config import Settings

    api = desk.api
    assert api.client.get("/metrics").status_code == 401
    assert api.get("agent_a", "/metrics").status_code == 403
    assert api.get("integration_a", "/metrics").status_code == 200  # a scraper token with metrics:read
    for opened in build_api(Settings(data_dir=tmp_path / "open-metrics", metrics_public=True)):
        assert opened.client.get("/metrics").status_code == 200


def test_failed_authentication_is_throttled_per_client_address(desk: Desk) -> None:
    api = desk.api
    now = [0.0]
    api.client.app.state.services.auth_failures = TokenBuckets(0.2, 20, clock=lambda: now[0])  # type: ignore[attr-defined]
    statuses = [api.client.get("/api/v1/me", headers={"Authorization": f"Bearer tf_guess{i}"}).status_code
                for i in range(300)]
    assert statuses.count(401) == 20 and statuses.count(429) == 280
    refused = api.get("agent_a", "/api/v1/me")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "5"
    now[0] += 5.0  # one failure's worth of refill
    assert api.get("agent_a", "/api/v1/me").status_code == 200
    assert api.client.get("/api/v1/me").status_code == 401  # no header at all is not a guess


def test_the_event_export_holds_only_the_customers_in_the_callers_scope(desk: Desk) -> None:
    api = desk.api
    theirs, mine = desk.other["customer_id"], desk.own["customer_id"]
    for who, purpose in (("supervisor_a", {"X-Access-Purpose": "bi"}), ("integration_a", {})):
        items = api.get(who, "/api/v1/events", params={"limit": 1000}, headers=purpose).json()["items"]
        customers = {e["object_id"] for e in items if e["object_type"] == "customer"}
        assert mine in customers and theirs not in customers, who
        assert "乙客户" not in str(items)
    everyone = api.get("admin", "/api/v1/events", params={"limit": 1000}).json()["items"]
    assert theirs in {e["object_id"] for e in everyone}


def test_a_reminder_about_another_teams_customer_is_refused(desk: Desk) -> None:
    response = desk.api.post("agent_a", "/api/v1/reminders", {"customer_id": desk.other["customer_id"],
                                                              "agent_id": "li.wei", "due_at": "2030-01-01T09:00:00Z"})
    assert response.status_code == 404


def test_a_token_name_identifies_one_writer(desk: Desk) -> None:
    api = desk.api
    with pytest.raises(RuleViolation, match="exists already"):
        api.desk.issue_token(IssueToken(name="crm-bridge-a", role=Role.AUDITOR), ADMIN)
    with pytest.raises(RuleViolation, match="team member's id"):
        api.desk.issue_token(IssueToken(name="li.wei", role=Role.INTEGRATION), ADMIN)
    first = api.desk.issue_token(IssueToken(role=Role.INTEGRATION, team_ids=[api.team_a]), ADMIN)[1]
    second = api.desk.issue_token(IssueToken(role=Role.INTEGRATION, team_ids=[api.team_b]), ADMIN)[1]
    assert first and second
    names = {api.desk.authenticate(t).name for t in (first, second)}  # type: ignore[union-attr]
    assert len(names) == 2
    api.tokens.update(gateway_a=first, gateway_b=second)
    registered = api.post("gateway_a", "/api/v1/customers", {"name": "网关客户"}).json()["id"]
    api.caught_up()
    _, reader = api.desk.issue_token(IssueToken(name="reader-b", role=Role.INTEGRATION, team_ids=[api.team_b],
                                                permissions=[Permission.CUSTOMERS_READ]), ADMIN)
    api.tokens["reader_b"] = reader  # type: ignore[assignment]
    assert api.get("reader_b", f"/api/v1/customers/{registered}").status_code == 404


def test_an_integration_that_works_tickets_must_be_limited_to_teams(desk: Desk) -> None:
    for permission in (Permission.TICKETS_WRITE, Permission.TICKETS_MESSAGE, Permission.CUSTOMERS_WRITE):
        with pytest.raises(RuleViolation, match="must be limited to teams"):
            desk.api.desk.issue_token(IssueToken(name=f"wide-{permission.value.replace(':', '-')}", role=Role.INTEGRATION,
                                                 permissions=[permission]), ADMIN)


def test_a_revoked_token_cannot_replay_a_stored_answer_and_bad_tokens_store_nothing(desk: Desk) -> None:
    from ticketflow.commands.access import RevokeToken

    api = desk.api
    _, token = api.desk.issue_token(IssueToken(name="short-lived", role=Role.ADMIN), ADMIN)
    api.tokens["short"] = token  # type: ignore[assignment]
    body = {"name": "临时客户"}
    assert api.post("short", "/api/v1/customers", body, **{"Idempotency-Key": "k-1"}).status_code == 201
    assert api.post("short", "/api/v1/customers", body, **{"Idempotency-Key": "k-1"}).headers["Idempotent-Replayed"] == "true"
    principal = api.desk.authenticate(token)  # type: ignore[arg-type]
    api.desk.revoke_token(RevokeToken(token_id=principal.token_id), ADMIN)  # type: ignore[union-attr]
    assert api.post("short", "/api/v1/customers", body, **{"Idempotency-Key": "k-1"}).status_code == 401
    guessed = api.client.post("/api/v1/customers", json=body,
                              headers={"Authorization": "Bearer tf_guess", "Idempotency-Key": "k-2"})
    assert guessed.status_code == 401 and "Idempotent-Replayed" not in guessed.headers
