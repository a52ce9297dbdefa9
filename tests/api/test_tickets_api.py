"""Working tickets over HTTP: commands, headers, reads of one's own writes, errors as problem+json."""

from __future__ import annotations

from tests.api.conftest import Api

PROBLEM = "application/problem+json"


def test_opening_a_ticket_answers_201_with_location_etag_and_log_position(api: Api) -> None:
    response = api.post("agent_a", "/api/v1/tickets", {"subject": "打印机卡纸", "requester_id": str(api.customer), "team_id": str(api.team_a)})
    assert response.status_code == 201
    body = response.json()
    assert response.headers["Location"] == f"/api/v1/tickets/{body['id']}"
    assert response.headers["ETag"] == '"1"' and body["version"] == 1 and body["events"] == ["Ticket.Opened"]
    position = int(response.headers["X-Log-Position"])
    read = api.get("agent_a", f"/api/v1/tickets/{body['id']}", params={"min_position": position})
    assert read.status_code == 200, read.text
    assert read.json()["subject"] == "打印机卡纸" and read.json()["status"] == "new"
    assert read.headers["ETag"] == '"1"'


def test_a_ticket_is_worked_through_its_lifecycle(api: Api) -> None:
    ticket = api.open_ticket()
    steps = [
        ("/assign", {"assignee_id": "li.wei"}),
        ("/replies", {"body": "您好，请提供截图。"}),
        ("/pend", {"reason": "need screenshot"}),
        ("/replies", {"body": "截图如下", "direction": "inbound", "channel": "web_form"}),
        ("/notes", {"body": "gateway 503"}),
        ("/interactions", {"kind": "call", "direction": "outbound", "body": "called back", "duration_minutes": 4}),
        ("/work-entries", {"action": "重置密码", "minutes": 15, "result": "ok"}),
        ("/priority", {"priority": "high"}),
        ("/solve", {"resolution": "password reset"}),
        ("/satisfaction", {"score": 5, "comment": "很好"}),
        ("/close", {}),
    ]
    for path, body in steps:
        response = api.post("agent_a", f"/api/v1/tickets/{ticket}{path}", body)
        assert response.status_code == 200, (path, response.text)
    position = int(response.headers["X-Log-Position"])
    row = api.get("agent_a", f"/api/v1/tickets/{ticket}", headers={"X-Min-Position": str(position)}).json()
    assert (row["status"], row["priority"], row["satisfaction"], row["reply_count"], row["note_count"]) == ("closed", "high", 5, 2, 1)
    timeline = api.get("agent_a", f"/api/v1/tickets/{ticket}/timeline").json()
    assert [e["entry_type"] for e in timeline] == ["reply", "reply", "note", "call", "work"]
    audit = api.get("agent_a", f"/api/v1/tickets/{ticket}/audit").json()
    assert audit[0]["event_type"] == "Ticket.Opened" and audit[-1]["event_type"] == "Ticket.Closed"
    assert {"field": "status", "old": "solved", "new": "closed"} in audit[-1]["changes"]
    assert all(entry["actor_id"] == "li.wei" and entry["via"] == "api" for entry in audit)


def test_an_invalid_transition_is_a_409_problem_naming_the_allowed_steps(api: Api) -> None:
    ticket = api.open_ticket()
    response = api.post("agent_a", f"/api/v1/tickets/{ticket}/close")
    assert response.status_code == 409
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["type"].endswith("/invalid_transition") and problem["status"] == 409
    assert "it is new" in problem["detail"] and "solve -> solved" in problem["detail"]


def test_malformed_input_is_a_422_listing_the_fields_and_writes_nothing(api: Api) -> None:
    before = api.desk.log_position()
    response = api.post("agent_a", "/api/v1/tickets", {"subject": "", "requester_id": "nope", "priority": "critical"})
    assert response.status_code == 422 and response.headers["content-type"].startswith(PROBLEM)
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"body.subject", "body.requester_id", "body.priority"} <= fields
    assert api.desk.log_position() == before


def test_a_ticket_is_opened_for_customer_id_and_requester_id_stays_a_deprecated_alias(api: Api) -> None:
    for name in ("customer_id", "requester_id"):
        body = {"subject": f"打印机坏了 ({name})", name: str(api.customer), "team_id": str(api.team_a)}
        response = api.post("agent_a", "/api/v1/tickets", body)
        assert response.status_code == 201, response.text
        api.wait(response.json()["position"])
        shown = api.get("agent_a", f"/api/v1/tickets/{response.json()['id']}").json()
        assert shown["customer_id"] == str(api.customer)
    schema = api.client.get("/openapi.json").json()["components"]["schemas"]["TicketCreate"]
    assert "customer_id" in schema["required"] and "requester_id" not in schema["properties"]
    missing = api.post("agent_a", "/api/v1/tickets", {"subject": "x", "team_id": str(api.team_a)})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "body.customer_id"


def test_a_body_that_is_not_json_is_a_400_and_writes_nothing(api: Api) -> None:
    before = api.desk.log_position()
    for body in ('{"subject": "打印机坏了", '.encode(), b"subject=x", "{'subject': '单引号'}".encode()):
        response = api.client.post("/api/v1/tickets", content=body,
                                   headers=api.headers("agent_a", **{"content-type": "application/json"}))
        assert response.status_code == 400 and response.headers["content-type"].startswith(PROBLEM), response.text
        problem = response.json()
        assert problem["type"].endswith("/malformed_json") and "not valid JSON" in problem["detail"]
    assert api.desk.log_position() == before


def test_a_client_cannot_set_status_version_or_actor(api: Api) -> None:
    ticket = api.open_ticket()
    for field, value in (("status", "closed"), ("version", 9), ("actor_id", "root"), ("command_id", "x")):
        response = api.post("agent_a", f"/api/v1/tickets/{ticket}/notes", {"body": "x", field: value})
        assert response.status_code == 422 and field in response.text


def test_if_match_with_a_stale_version_is_412_and_writes_nothing(api: Api) -> None:
    ticket = api.open_ticket()
    api.post("agent_a", f"/api/v1/tickets/{ticket}/notes", {"body": "first"})
    before = api.desk.log_position()
    stale = api.post("agent_a", f"/api/v1/tickets/{ticket}/pend", {}, **{"If-Match": '"1"'})
    assert stale.status_code == 412 and "not the expected version 1" in stale.json()["detail"]
    assert api.desk.log_position() == before
    fresh = api.post("agent_a", f"/api/v1/tickets/{ticket}/pend", {}, **{"If-Match": '"2"'})
    assert fresh.status_code == 200 and fresh.headers["ETag"] == '"3"'
    bad = api.post("agent_a", f"/api/v1/tickets/{ticket}/open", {}, **{"If-Match": "yesterday"})
    assert bad.status_code == 400 and bad.json()["type"].endswith("/bad_if_match")


def test_unknown_tickets_and_routes_are_404_problems(api: Api) -> None:
    missing = "00000000-0000-0000-0000-000000000042"
    for response in (
        api.get("agent_a", f"/api/v1/tickets/{missing}"),
        api.post("agent_a", f"/api/v1/tickets/{missing}/notes", {"body": "x"}),
        api.get("agent_a", "/api/v1/nothing-here"),
    ):
        assert response.status_code == 404 and response.headers["content-type"].startswith(PROBLEM)


def test_queues_page_with_a_cursor_and_filter(api: Api) -> None:
    ids = [api.open_ticket(subject=f"queue {i}") for i in range(5)]
    api.post("agent_a", f"/api/v1/tickets/{ids[0]}/assign", {"assignee_id": "li.wei"})
    api.caught_up()
    first = api.get("agent_a", "/api/v1/tickets", params={"limit": 3}).json()
    second = api.get("agent_a", "/api/v1/tickets", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert [t["ticket_id"] for t in first["items"] + second["items"]] == ids and second["next_cursor"] is None
    mine = api.get("agent_a", "/api/v1/tickets", params={"assignee_id": "li.wei", "status": ["open"]}).json()
    assert [t["ticket_id"] for t in mine["items"]] == [ids[0]]
    bad = api.get("agent_a", "/api/v1/tickets", params={"cursor": "bogus"})
    assert bad.status_code == 400


def test_search_finds_chinese_with_two_characters(api: Api) -> None:
    ticket = api.open_ticket(subject="网络连接经常中断")
    api.caught_up()
    hits = api.get("agent_a", "/api/v1/search", params={"q": "网络"}).json()
    assert [h["ticket_id"] for h in hits] == [ticket]


def test_reports_name_their_teams_and_customer_360_answers(api: Api) -> None:
    ticket = api.open_ticket()
    api.post("agent_a", f"/api/v1/tickets/{ticket}/replies", {"body": "ok"})
    api.caught_up()
    backlog = api.get("agent_a", "/api/v1/reports/backlog").json()
    assert backlog == [{"status": "open", "team_id": str(api.team_a), "team_name": "技术支持", "tickets": 1}]
    by_team = api.get("agent_a", "/api/v1/reports/volume", params={"by": "team"}).json()
    assert [(r["value"], r["team_id"], r["team_name"], r["tickets"]) for r in by_team] == [
        (str(api.team_a), str(api.team_a), "技术支持", 1)]
    times = api.get("agent_a", "/api/v1/reports/response-times").json()
    assert times[0]["first_reply_hours"]["count"] == 1 and times[0]["team_name"] == "技术支持"
    assert {r["team_name"] for r in api.get("agent_a", "/api/v1/reports/sla").json()} <= {"技术支持"}
    overview = api.get("agent_a", f"/api/v1/customers/{api.customer}/overview").json()
    assert overview["figures"]["ticket_count"] == 1 and overview["tickets"][0]["ticket_id"] == ticket


def test_customers_are_registered_and_patched_with_if_match(api: Api) -> None:
    created = api.post("agent_a", "/api/v1/customers", {"name": "Olivia Chen", "email": "olivia@example.com"})
    assert created.status_code == 201
    customer = created.json()["id"]
    patch = api.client.patch(f"/api/v1/customers/{customer}", json={"company": "Contoso"}, headers=api.headers("agent_a", **{"If-Match": '"1"'}))
    assert patch.status_code == 200 and patch.headers["ETag"] == '"2"'
    stale = api.client.patch(f"/api/v1/customers/{customer}", json={"company": "Fabrikam"}, headers=api.headers("agent_a", **{"If-Match": '"1"'}))
    assert stale.status_code == 412


def test_teams_and_membership(api: Api) -> None:
    created = api.post("admin", "/api/v1/teams", {"name": "Sales 销售"})
    assert created.status_code == 201
    team = created.json()["id"]
    assert api.post("admin", f"/api/v1/teams/{team}/members", {"agent_id": "zhao.lei", "skills": ["quote"]}).status_code == 200
    assert api.post("admin", f"/api/v1/teams/{team}/members/zhao.lei/deactivate", {"reason": "leave"}).status_code == 200
    api.caught_up()
    listed = {t["name"]: t for t in api.get("agent_a", "/api/v1/teams").json()}
    assert listed["Sales 销售"]["members"]["zhao.lei"] == {"role": "agent", "skills": ["quote"], "active": False}
    assert api.post("supervisor_a", f"/api/v1/teams/{team}/members", {"agent_id": "x"}).status_code == 404
    assert api.post("supervisor_a", f"/api/v1/teams/{api.team_a}/members", {"agent_id": "new.hire"}).status_code == 200


def test_odd_cursors_and_huge_positions_are_client_errors(api: Api) -> None:
    import base64
    import json

    forged = base64.urlsafe_b64encode(json.dumps(["created_at", {"x": 1}, "t"]).encode()).decode()
    assert api.get("agent_a", "/api/v1/tickets", params={"cursor": forged}).status_code == 400
    huge = base64.urlsafe_b64encode(json.dumps(["priority", 10**30, "t"]).encode()).decode()
    assert api.get("agent_a", "/api/v1/tickets", params={"cursor": huge, "sort": "priority"}).status_code == 400
    ticket = api.open_ticket()
    assert api.get("admin", f"/api/v1/tickets/{ticket}/audit", params={"after_position": 10**20}).status_code == 422
    assert api.get("admin", "/api/v1/access-log", params={"after": 10**20}).status_code == 422
