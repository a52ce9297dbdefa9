"""Finding a customer by email address: through the keyed blind index, in scope, recorded, gone after erasure."""

from __future__ import annotations

from tests.api.conftest import Api

PURPOSE = {"X-Access-Purpose": "caller asked about their order"}


def _register(api: Api, email: str) -> str:
    response = api.post("admin", "/api/v1/customers", {"name": "陈奥莉", "email": email})
    assert response.status_code == 201, response.text
    api.wait(response.json()["position"])
    return str(response.json()["id"])


def test_a_customer_is_found_by_email_in_any_case_and_the_lookup_is_recorded(api: Api) -> None:
    customer = _register(api, "Olivia.Chen@Example.COM")
    found = api.get("admin", "/api/v1/customers", params={"email": "olivia.chen@example.com"}, headers=PURPOSE)
    assert found.status_code == 200, found.text
    [match] = found.json()["items"]
    assert match["customer_id"] == customer and match["name"] == "陈奥莉" and found.json()["next_cursor"] is None
    api.caught_up()  # the access record is in the log; its view may not have it yet
    log = api.get("compliance", "/api/v1/access-log", params={"customer_id": customer}).json()
    entries = log["items"] if isinstance(log, dict) else log
    assert any(e["purpose"] == PURPOSE["X-Access-Purpose"] and "email" in e["fields"] for e in entries)
    nobody = api.get("admin", "/api/v1/customers", params={"email": "nobody@example.com"}, headers=PURPOSE)
    assert nobody.status_code == 200 and nobody.json()["items"] == []


def test_a_lookup_needs_a_purpose_and_stays_in_the_callers_scope(api: Api) -> None:
    _register(api, "wang@example.cn")
    missing = api.get("admin", "/api/v1/customers", params={"email": "wang@example.cn"})
    assert missing.status_code == 422 and missing.json()["type"].endswith("/purpose_required")
    other_team = api.get("agent_b", "/api/v1/customers", params={"email": "wang@example.cn"}, headers=PURPOSE)
    assert other_team.status_code == 200 and other_team.json()["items"] == []  # outside the caller's teams: no match
    own = api.get("agent_a", "/api/v1/customers", params={"email": "wang@example.cn"}, headers=PURPOSE)
    assert own.status_code == 200 and own.json()["items"] == []  # no ticket in team A yet either
    viewer = api.get("auditor", "/api/v1/customers", params={"email": "wang@example.cn"}, headers=PURPOSE)
    assert viewer.status_code == 403  # a role that may not unmask personal data may not look a person up by it


def test_an_erased_customer_is_not_found_by_their_address(api: Api) -> None:
    customer = _register(api, "erase.me@example.cn")
    erased = api.post("compliance", f"/api/v1/customers/{customer}/erasure", {"reference": "DSR-7"})
    assert erased.status_code == 200, erased.text
    api.caught_up()
    found = api.get("admin", "/api/v1/customers", params={"email": "erase.me@example.cn"}, headers=PURPOSE)
    assert found.status_code == 200 and found.json()["items"] == []
