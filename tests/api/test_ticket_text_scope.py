"""The ``tickets:text`` token scope: a CRM sync reads ticket text unmasked, every read recorded;
customers' names and emails stay masked; a token without it sees what it saw before."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.support import ADMIN
from ticketflow.access import TICKET_TEXT_PURPOSE, Permission
from ticketflow.commands.access import IssueToken
from ticketflow.domain.values import Role


def crm_token(api: Api, *permissions: Permission) -> str:
    command = IssueToken(name="crm-sync", role=Role.INTEGRATION, permissions=list(permissions))
    _, token = api.desk.issue_token(command, ADMIN)
    assert token is not None
    api.tokens["crm"] = token
    return "crm"


def access_log(api: Api) -> list[dict[str, object]]:
    api.caught_up()
    log: list[dict[str, object]] = api.get(
        "compliance", "/api/v1/access-log", params={"customer_id": str(api.customer)}
    ).json()
    return log


def test_a_token_granted_ticket_text_reads_subjects_and_bodies_and_each_read_is_recorded(api: Api) -> None:
    crm = crm_token(api, Permission.TICKETS_READ, Permission.EVENTS_READ, Permission.TICKETS_TEXT)
    ticket = api.open_ticket(subject="无法登录账户")
    api.post("agent_a", f"/api/v1/tickets/{ticket}/replies", {"body": "请重置密码"})
    api.caught_up()

    assert api.get(crm, f"/api/v1/tickets/{ticket}").json()["subject"] == "无法登录账户"
    assert [t["subject"] for t in api.get(crm, "/api/v1/tickets").json()["items"]] == ["无法登录账户"]
    assert [e["body"] for e in api.get(crm, f"/api/v1/tickets/{ticket}/timeline").json()] == ["请重置密码"]
    events = api.get(crm, "/api/v1/events", params={"limit": 1000}).json()["items"]
    opened = next(e for e in events if e["event_type"] == "Ticket.Opened")
    assert opened["payload"]["subject"] == "无法登录账户"
    registered = next(e for e in events if e["event_type"] == "Customer.Registered")
    assert registered["payload"]["name"] == "***" and "xiaoming" not in str(events)  # not customers' data

    log = [e for e in access_log(api) if e["actor_id"] == "crm-sync"]
    assert {str(e["resource"]).split("?")[0] for e in log} == {
        f"GET /api/v1/tickets/{ticket}",
        "GET /api/v1/tickets",
        f"GET /api/v1/tickets/{ticket}/timeline",
        "GET /api/v1/events",
    }
    assert {e["purpose"] for e in log} == {TICKET_TEXT_PURPOSE}
    assert "无法登录账户" not in str(log) and "请重置密码" not in str(log)

    stated = api.get(crm, f"/api/v1/tickets/{ticket}", headers={"X-Access-Purpose": "CRM case 42"})
    assert stated.status_code == 200
    assert [e["purpose"] for e in access_log(api) if e["actor_id"] == "crm-sync"][-1] == "CRM case 42"


def test_a_token_without_ticket_text_still_reads_masked_text_and_records_nothing(api: Api) -> None:
    crm = crm_token(api, Permission.TICKETS_READ, Permission.EVENTS_READ)
    ticket = api.open_ticket(subject="无法登录账户")
    api.caught_up()
    assert api.get(crm, f"/api/v1/tickets/{ticket}").json()["subject"] == "***"
    assert [t["subject"] for t in api.get(crm, "/api/v1/tickets").json()["items"]] == ["***"]
    events = api.get(crm, "/api/v1/events", params={"limit": 1000}).json()["items"]
    assert "无法登录账户" not in str(events)
    assert api.get(crm, "/api/v1/events", headers={"X-Access-Purpose": "sync"}).status_code == 403
    assert [e for e in access_log(api) if e["actor_id"] == "crm-sync"] == []


def test_ticket_text_is_granted_only_to_integration_tokens_that_ask_for_it(api: Api) -> None:
    assert Permission.TICKETS_TEXT not in api.get("integration", "/api/v1/me").json()["permissions"]
    crm = crm_token(api, Permission.TICKETS_TEXT)
    assert "tickets:text" in api.get(crm, "/api/v1/me").json()["permissions"]
