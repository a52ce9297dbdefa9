"""Every list endpoint pages the same way: ``limit`` + opaque ``cursor``, the next page in
``Link: <...>; rel="next"`` (and ``next_cursor``); walking page by page gives each item exactly once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from api.pagination import encode_cursor
from tests.api.conftest import Api, build_api
from ticketflow.config import Settings

#: Every list endpoint, with the query that makes it answer (and who may read it).
LISTS: dict[str, dict[str, Any]] = {
    "/api/v1/tickets": {},
    "/api/v1/tickets/{ticket_id}/diff": {},
    "/api/v1/tickets/{ticket_id}/timeline": {},
    "/api/v1/tickets/{ticket_id}/audit": {},
    "/api/v1/tickets/{ticket_id}/suggestions": {},
    "/api/v1/teams": {},
    "/api/v1/search": {"q": "登录"},
    "/api/v1/reports/volume": {"by": "team"},
    "/api/v1/reports/backlog": {},
    "/api/v1/reports/response-times": {},
    "/api/v1/reports/satisfaction": {},
    "/api/v1/reports/sla": {},
    "/api/v1/reports/erasures": {},
    "/api/v1/reports/data-access": {"by_customer": "true"},
    "/api/v1/events": {},
    "/api/v1/access-log": {},
    "/api/v1/routing-rules/history": {},
    "/api/v1/calendars": {},
    "/api/v1/sla-policies": {},
    "/api/v1/sla-policies/{policy_id}/history": {},
    "/api/v1/reminders": {},
    "/api/v1/problems": {},
    "/api/v1/webhooks": {},
    "/api/v1/webhooks/event-types": {},
    "/api/v1/webhooks/{webhook_id}/deliveries": {},
    "/api/v1/mailboxes": {},
    "/api/v1/teams/{team_id}/reply-templates": {},
    "/api/v1/whatif": {},
    "/api/v1/customers": {},
}
#: Lists the setup below fills with more than two items: walking them takes several pages.
SEVERAL_PAGES = {
    "/api/v1/tickets",
    "/api/v1/tickets/{ticket_id}/timeline",
    "/api/v1/tickets/{ticket_id}/audit",
    "/api/v1/teams",
    "/api/v1/search",
    "/api/v1/events",
    "/api/v1/access-log",
    "/api/v1/webhooks",
    "/api/v1/webhooks/event-types",
    "/api/v1/webhooks/{webhook_id}/deliveries",
    "/api/v1/tickets/{ticket_id}/diff",
    "/api/v1/reports/backlog",
    "/api/v1/routing-rules/history",
}
LINK = re.compile(r'^<([^>]+)>; rel="next"$')


def items_of(body: Any) -> list[Any]:
    return list(body["items"]) if isinstance(body, dict) else list(body)


def walk(api: Api, path: str, params: dict[str, Any]) -> list[Any]:
    """Every item, following ``Link: rel="next"`` with limit=2."""
    seen: list[Any] = []
    query: dict[str, Any] = {**params, "limit": 2}
    for _ in range(1000):
        response = api.get("admin", path, params=query)
        assert response.status_code == 200, (path, response.text)
        page = items_of(response.json())
        assert len(page) <= 2
        if path == "/api/v1/events" and not page:
            return seen  # the export never ends: an empty page is its end for now
        seen += page
        link = response.headers.get("link")
        if link is None:
            assert "x-next-cursor" not in response.headers
            if (
                isinstance(response.json(), dict) and path != "/api/v1/events"
            ):  # the export always says where to poll next
                assert response.json()["next_cursor"] is None
            return seen
        match = LINK.match(link)
        assert match, link
        url = urlsplit(match.group(1))
        assert url.path == path
        query = dict(parse_qsl(url.query))
        assert query["cursor"] == response.headers.get("x-next-cursor", query["cursor"])
    raise AssertionError(f"{path} never ended")


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    # No automation thread: it would change deliveries (attempts) and write events between two reads.
    settings = Settings(
        data_dir=tmp_path / "api-data",
        rate_limit_burst=10_000,
        rate_limit_per_second=10_000,
        automation=False,
    )
    yield from build_api(settings)


@pytest.fixture
def filled(api: Api) -> dict[str, str]:
    """Tickets with replies, a third team, webhooks with deliveries, recorded reads."""
    hooks = []
    for name in ("CRM", "BI", "Chat"):
        response = api.post(
            "admin",
            "/api/v1/webhooks",
            {"name": name, "url": f"https://{name.lower()}.example.com/h", "event_types": ["*"]},
        )
        assert response.status_code == 201, response.text
        hooks.append(response.json()["id"])
    tickets = [api.open_ticket(subject=f"无法登录账户 {i}") for i in range(3)]
    api.open_ticket(who="agent_b", team="b", subject="发票抬头")
    for i in range(3):
        api.post("agent_a", f"/api/v1/tickets/{tickets[0]}/replies", {"body": f"第 {i} 次回复：请重新登录"})
    api.post("admin", "/api/v1/teams", {"name": "第三团队"})
    for team in (api.team_a, api.team_b, api.team_a):
        published = api.client.put(
            "/api/v1/routing-rules", json={"default_team_id": str(team)}, headers=api.headers("admin")
        )
        assert published.status_code in (200, 201), published.text
    api.caught_up()  # the customer is read from the customers view: let it see the registration first
    for _ in range(3):
        shown = api.get(
            "agent_a", f"/api/v1/customers/{api.customer}", headers={"X-Access-Purpose": "callback"}
        )
        assert shown.status_code == 200
    api.caught_up()
    return {
        "ticket_id": tickets[0],
        "webhook_id": hooks[0],
        "team_id": str(api.team_a),
        "policy_id": "00000000-0000-0000-0000-000000000000",
    }


def test_every_list_endpoint_walked_two_at_a_time_gives_each_item_exactly_once(
    api: Api, filled: dict[str, str]
) -> None:
    policies = api.get("admin", "/api/v1/sla-policies").json()
    values = {**filled, "policy_id": policies[0]["policy_id"]} if policies else filled
    document = api.client.get("/openapi.json").json()
    for template, params in LISTS.items():
        if "{policy_id}" in template and not policies:
            continue
        path = template.format(**values)
        [limit] = [
            p["schema"]["maximum"]
            for p in document["paths"][template]["get"]["parameters"]
            if p["name"] == "limit"
        ]
        whole = items_of(api.get("admin", path, params={**params, "limit": limit}).json())
        walked = walk(api, path, params)
        assert walked == whole, template
        if template in SEVERAL_PAGES:
            assert len(whole) > 2, (template, len(whole))


def test_every_list_endpoint_of_the_app_is_walked_here(api: Api) -> None:
    document = api.client.get("/openapi.json").json()
    paged = {
        path
        for path, operations in document["paths"].items()
        if any(p["name"] == "cursor" for p in operations.get("get", {}).get("parameters", []))
    }
    assert paged == set(LISTS)


@pytest.mark.parametrize(
    "cursor", ["not-a-cursor", "%%%", encode_cursor({"offset": -1}), encode_cursor({"other": 1})]
)
def test_a_cursor_this_service_did_not_issue_is_a_400_problem(api: Api, cursor: str) -> None:
    for path in ("/api/v1/teams", "/api/v1/access-log", "/api/v1/tickets"):
        response = api.get("admin", path, params={"cursor": cursor})
        assert response.status_code == 400, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


def test_the_old_position_parameters_still_work_as_deprecated_aliases(
    api: Api, filled: dict[str, str]
) -> None:
    log = api.get("admin", "/api/v1/access-log").json()
    assert len(log) == 3
    after_first = api.get("admin", "/api/v1/access-log", params={"after": log[0]["position"]}).json()
    assert after_first == log[1:]
    audit = api.get("admin", f"/api/v1/tickets/{filled['ticket_id']}/audit").json()
    later = api.get(
        "admin",
        f"/api/v1/tickets/{filled['ticket_id']}/audit",
        params={"after_position": audit[0]["position"]},
    )
    assert later.json() == audit[1:]
    deliveries = api.get("admin", f"/api/v1/webhooks/{filled['webhook_id']}/deliveries").json()
    rest = api.get(
        "admin",
        f"/api/v1/webhooks/{filled['webhook_id']}/deliveries",
        params={"after": deliveries[0]["position"]},
    )
    assert rest.json() == deliveries[1:]
    document = api.client.get("/openapi.json").json()
    deprecated = {
        (path, p["name"])
        for path, operations in document["paths"].items()
        for p in operations.get("get", {}).get("parameters", [])
        if p.get("deprecated")
    }
    assert deprecated == {
        ("/api/v1/access-log", "after"),
        ("/api/v1/tickets/{ticket_id}/audit", "after_position"),
        ("/api/v1/webhooks/{webhook_id}/deliveries", "after"),
    }
