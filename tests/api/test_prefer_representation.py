"""`Prefer: return=representation` (RFC 7240): a write answers with the object as its GET shows it."""

from __future__ import annotations

from tests.api.conftest import Api

PREFER = {"Prefer": "return=representation"}


def test_opening_a_ticket_with_prefer_answers_the_ticket_as_get_shows_it(api: Api) -> None:
    body = {"subject": "打印机坏了 [URGENT]", "customer_id": str(api.customer), "team_id": str(api.team_a)}
    response = api.post("agent_a", "/api/v1/tickets", body, **PREFER)
    assert response.status_code == 201, response.text
    assert response.headers["Preference-Applied"] == "return=representation"
    shown = response.json()
    assert shown["subject"] == "打印机坏了 [URGENT]" and shown["status"] == "new" and shown["version"] == 1
    assert response.headers["Location"] == f"/api/v1/tickets/{shown['ticket_id']}"
    assert response.headers["ETag"] == '"1"'
    assert shown == api.get("agent_a", f"/api/v1/tickets/{shown['ticket_id']}").json()


def test_a_ticket_command_with_prefer_answers_the_changed_ticket(api: Api) -> None:
    ticket = api.open_ticket()
    response = api.post("agent_a", f"/api/v1/tickets/{ticket}/priority", {"priority": "urgent", "reason": "VIP"},
                        Prefer='respond-async, return="representation"; x=1')
    assert response.status_code == 200 and response.headers["Preference-Applied"] == "return=representation"
    assert response.json()["priority"] == "urgent" and response.json()["version"] == 2


def test_without_prefer_or_with_return_minimal_a_write_answers_the_command_outcome(api: Api) -> None:
    ticket = api.open_ticket()
    for headers in ({}, {"Prefer": "return=minimal"}, {"Prefer": "representation"}):
        response = api.post("agent_a", f"/api/v1/tickets/{ticket}/notes", {"body": "checked"}, **headers)
        assert response.status_code == 200 and "Preference-Applied" not in response.headers
        assert set(response.json()) == {"id", "version", "position", "events", "replayed"}


def test_a_customer_write_with_prefer_is_masked_like_a_read_unless_a_purpose_is_given(api: Api) -> None:
    created = api.post("agent_a", "/api/v1/customers", {"name": "陈奥莉", "email": "olivia@example.com"}, **PREFER)
    assert created.status_code == 201 and created.headers["Preference-Applied"] == "return=representation"
    profile = created.json()
    assert profile["name"] == "***" and profile["email"] == "***"
    customer = profile["customer_id"]
    patched = api.client.patch(f"/api/v1/customers/{customer}", json={"company": "东方物流"},
                               headers=api.headers("admin", **PREFER, **{"X-Access-Purpose": "verify the change"}))
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "陈奥莉" and patched.json()["company"] == "东方物流"
    api.caught_up()  # the access record is in the log; its view may not have it yet
    log = api.get("compliance", "/api/v1/access-log", params={"customer_id": customer}).json()
    assert any(entry["purpose"] == "verify the change" for entry in (log["items"] if isinstance(log, dict) else log))


def test_a_refused_write_with_prefer_is_still_a_problem(api: Api) -> None:
    ticket = api.open_ticket()
    response = api.post("agent_a", f"/api/v1/tickets/{ticket}/close", {}, **PREFER)
    assert response.status_code == 409 and response.headers["content-type"].startswith("application/problem+json")
