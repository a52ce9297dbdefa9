"""The incremental event export: global order, a stable cursor, masked payloads."""

from __future__ import annotations

from tests.api.conftest import Api


def test_following_the_cursor_returns_every_event_once_in_order(api: Api) -> None:
    ticket = api.open_ticket()
    api.post("agent_a", f"/api/v1/tickets/{ticket}/replies", {"body": "您好"})
    positions, cursor = [], "0"
    while True:
        page = api.get("admin", "/api/v1/events", params={"cursor": cursor, "limit": 7}).json()
        if not page["items"]:
            assert page["next_cursor"] == cursor
            break
        positions += [item["position"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert positions == list(range(1, api.desk.log_position() + 1))
    again = api.get("admin", "/api/v1/events", params={"cursor": "0", "limit": 3}).json()
    assert [i["position"] for i in again["items"]] == [1, 2, 3]  # stable: the same cursor, the same page


def test_items_carry_metadata_and_masked_payloads(api: Api) -> None:
    ticket = api.open_ticket(subject="隐私主题")
    items = api.get("integration", "/api/v1/events", params={"limit": 1000}).json()["items"]
    opened = next(i for i in items if i["object_id"] == ticket)
    assert (opened["event_type"], opened["object_type"], opened["version"]) == ("Ticket.Opened", "ticket", 1)
    assert (opened["actor_id"], opened["actor_role"], opened["via"]) == ("li.wei", "agent", "api")
    assert opened["payload"]["subject"] == "***" and opened["payload"]["priority"] == "normal"
    assert not any(i["event_type"].startswith("ApiToken") for i in items)


def test_unmasked_export_is_recorded_per_customer(api: Api) -> None:
    api.open_ticket(subject="隐私主题")
    response = api.get("admin", "/api/v1/events", params={"limit": 1000}, headers={"X-Access-Purpose": "migration audit"})
    assert response.status_code == 200, response.text
    page = response.json()
    assert any(i["payload"].get("subject") == "隐私主题" for i in page["items"])
    assert all("secret_hash" not in i["payload"] for i in page["items"])
    api.caught_up()
    log = api.get("compliance", "/api/v1/access-log", params={"customer_id": str(api.customer)}).json()
    assert log and log[-1]["purpose"] == "migration audit" and "subject" in log[-1]["fields"] and "email" in log[-1]["fields"]
