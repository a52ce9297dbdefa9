"""Finding a customer by email address or phone number (through the keyed blind index, in scope, recorded,
and listing customers page by page."""

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


def _register_phone(api: Api, name: str, phone: str) -> str:
    response = api.post("admin", "/api/v1/customers", {"name": name, "phone": phone})
    assert response.status_code == 201, response.text
    api.wait(response.json()["position"])
    return str(response.json()["id"])


def test_a_customer_is_found_by_phone_however_the_number_is_written_and_the_lookup_is_recorded(api: Api) -> None:
    customer = _register_phone(api, "李娜", "+86 138-0013-8000")
    for written in ("+8613800138000", "+86 (138) 0013 8000", "＋８６ １３８ ００１３ ８０００"):
        found = api.get("admin", "/api/v1/customers", params={"phone": written}, headers=PURPOSE)
        assert found.status_code == 200, found.text
        assert [m["customer_id"] for m in found.json()["items"]] == [customer], written
        assert found.json()["items"][0]["phone"] == "+86 138-0013-8000"
    without_plus = api.get("admin", "/api/v1/customers", params={"phone": "8613800138000"}, headers=PURPOSE)
    assert without_plus.json()["items"] == []  # a leading + is part of the number
    api.caught_up()
    log = api.get("compliance", "/api/v1/access-log", params={"customer_id": customer}).json()
    entries = log["items"] if isinstance(log, dict) else log
    assert any(e["resource"] == "GET /api/v1/customers?phone=" and "phone" in e["fields"] for e in entries)
    missing = api.get("admin", "/api/v1/customers", params={"phone": "+8613800138000"})
    assert missing.status_code == 422 and missing.json()["type"].endswith("/purpose_required")
    both = api.get("admin", "/api/v1/customers", params={"phone": "+8613800138000", "email": "a@b.cn"}, headers=PURPOSE)
    assert both.status_code == 422 and both.json()["type"].endswith("/one_filter")


def test_a_changed_phone_number_is_found_by_the_new_number_only_and_not_after_erasure(api: Api) -> None:
    customer = _register_phone(api, "赵强", "+86 139 0000 1111")
    changed = api.client.patch(f"/api/v1/customers/{customer}", json={"phone": "+86 139 0000 2222"},
                               headers=api.headers("admin"))
    assert changed.status_code == 200, changed.text
    api.wait(changed.json()["position"])

    def found(number: str) -> list[str]:
        answer = api.get("admin", "/api/v1/customers", params={"phone": number}, headers=PURPOSE)
        assert answer.status_code == 200, answer.text
        return [m["customer_id"] for m in answer.json()["items"]]

    assert found("+8613900001111") == [] and found("+8613900002222") == [customer]
    erased = api.post("compliance", f"/api/v1/customers/{customer}/erasure", {"reference": "DSR-9"})
    assert erased.status_code == 200, erased.text
    api.caught_up()
    assert found("+8613900002222") == []
    assert api.desk.find_customer_by_phone("+8613900002222") is None


def test_customers_are_listed_page_by_page_masked_unless_a_purpose_is_given_and_then_recorded(api: Api) -> None:
    registered = [str(api.customer)] + [_register_phone(api, f"客户{n}", f"+86 137 0000 000{n}") for n in range(3)]
    first = api.get("admin", "/api/v1/customers", params={"limit": 3})
    assert first.status_code == 200, first.text
    page = first.json()
    assert [c["customer_id"] for c in page["items"]] == registered[:3]
    assert all(c["name"] == "***" and "name" in c["masked"] for c in page["items"])
    assert page["next_cursor"] and 'rel="next"' in first.headers["Link"]
    second = api.get("admin", "/api/v1/customers", params={"limit": 3, "cursor": page["next_cursor"]}, headers=PURPOSE)
    assert second.status_code == 200, second.text
    assert [c["customer_id"] for c in second.json()["items"]] == registered[3:]
    assert second.json()["items"][0]["name"] == "客户2" and second.json()["next_cursor"] is None
    assert "Link" not in second.headers
    api.caught_up()
    log = api.get("compliance", "/api/v1/access-log", params={"customer_id": registered[3]}).json()
    entries = log["items"] if isinstance(log, dict) else log
    assert [e["resource"] for e in entries] == ["GET /api/v1/customers"]
    unrecorded = api.get("compliance", "/api/v1/access-log", params={"customer_id": registered[1]}).json()
    assert (unrecorded["items"] if isinstance(unrecorded, dict) else unrecorded) == []  # shown masked only
    auditor = api.get("auditor", "/api/v1/customers", headers=PURPOSE)
    assert auditor.status_code == 403


def test_a_team_scoped_agent_lists_only_the_customers_of_their_team(api: Api) -> None:
    _register_phone(api, "钱多多", "+86 136 0000 0001")  # no ticket anywhere: nobody's in team A
    assert api.get("agent_a", "/api/v1/customers").json()["items"] == []
    api.wait(api.post("agent_a", "/api/v1/tickets", {"subject": "无法登录", "requester_id": str(api.customer),
                                                     "team_id": str(api.team_a)}).json()["position"])
    listed = api.get("agent_a", "/api/v1/customers").json()
    assert [c["customer_id"] for c in listed["items"]] == [str(api.customer)]
    assert api.get("agent_b", "/api/v1/customers").json()["items"] == []
