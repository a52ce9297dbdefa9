"""The problem library over HTTP: record a resolution, search it in Chinese, suggest for a ticket."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api
from tests.workflow_api.conftest import solve


def open_ticket(api: Api, subject: str, category: str, who: str = "agent_a", team: Any = None) -> str:
    body = {"subject": subject, "category": category, "requester_id": str(api.customer), "team_id": str(team or api.team_a)}
    response = api.post(who, "/api/v1/tickets", body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def record(api: Api, ticket_id: str, summary: str, who: str = "agent_a") -> Any:
    return api.post(who, f"/api/v1/tickets/{ticket_id}/resolution", {"summary": summary})


def test_a_recorded_resolution_is_found_by_a_two_character_chinese_query(api: Api) -> None:
    ticket_id = open_ticket(api, "无法登录账户", "login")
    refused = record(api, ticket_id, "清除缓存后可以登录")
    assert refused.status_code == 409 and "once it is solved" in refused.json()["detail"]
    solve(api, ticket_id)
    response = record(api, ticket_id, "清除缓存后可以登录")
    assert response.status_code == 200, response.text
    api.wait(response.json()["position"])
    (hit,) = api.get("agent_a", "/api/v1/problems", params={"q": "缓存"}).json()
    assert (hit["ticket_id"], hit["customer_id"], hit["category"], hit["summary"], hit["source"]) == (
        ticket_id, str(api.customer), "login", "清除缓存后可以登录", "summary")
    assert api.get("agent_a", "/api/v1/problems", params={"q": "缓存", "category": "billing"}).json() == []
    assert [p["ticket_id"] for p in api.get("agent_a", "/api/v1/problems", params={"category": "login"}).json()] == [ticket_id]


def test_suggestions_for_a_ticket_come_from_its_category_best_match_first(api: Api) -> None:
    login = open_ticket(api, "登录失败", "login")
    solve(api, login, "登录页面报错：清除缓存后恢复")
    other_login = open_ticket(api, "忘记密码", "login")
    solve(api, other_login, "通过短信重置了密码")
    billing = open_ticket(api, "登录发票系统报错", "billing")
    solve(api, billing, "登录发票系统页面报错：开通权限")
    new = open_ticket(api, "无法登录，页面报错", "login")
    api.caught_up()
    response = api.get("agent_a", f"/api/v1/tickets/{new}/suggestions")
    assert response.status_code == 200, response.text
    assert [p["ticket_id"] for p in response.json()] == [login]
    assert api.get("agent_b", f"/api/v1/tickets/{new}/suggestions").status_code == 404


def test_the_library_shows_only_problems_of_tickets_in_the_callers_teams(api: Api) -> None:
    theirs = open_ticket(api, "发票抬头错误", "billing", who="agent_b", team=api.team_b)
    response = api.post("agent_b", f"/api/v1/tickets/{theirs}/solve", {"resolution": "重新开具了发票"})
    assert response.status_code == 200, response.text
    api.wait(response.json()["position"])
    assert [p["ticket_id"] for p in api.get("agent_b", "/api/v1/problems", params={"q": "发票"}).json()] == [theirs]
    assert api.get("agent_a", "/api/v1/problems", params={"q": "发票"}).json() == []
    assert record(api, theirs, "换了模板", who="agent_a").status_code == 404
    masked = api.get("auditor", "/api/v1/problems", params={"q": "发票"}).json()
    assert [p["summary"] for p in masked] == ["***"]
