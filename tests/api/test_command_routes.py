"""The ticket command routes answer exactly as FastAPI's dependency solving answered them.

api.command_routes serves a well-formed command without FastAPI's per-request dependency solving; any
other request goes to FastAPI's own handler. Two desks run the same requests: one as served, one
whose command routes are all answered by the handler FastAPI builds for them (APIRoute's, solving
every dependency, as before the change). Every answer (status, headers but Date and X-Request-ID, body) must be the same,
ids aside (each desk has its own: they are named by role before comparing), and a few are checked
against their expected shape as well.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi._body_limit import wrap_app_with_body_limit
from fastapi.routing import APIRoute, request_response

from api.command_routes import CommandRoute, json_content_type
from api.routers import tickets
from tests.api.conftest import Api, build_api
from ticketflow.config import Settings

UNKNOWN = "0b7e6c1e-3a52-4f0e-9d63-5d1b8f3c2a10"  # no ticket has this id
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

#: A body each command route accepts (for some, only in the right state: the answer is compared either way).
VALID: dict[str, Any] = {
    "/assign": {"assignee_id": "emma.clark", "reason": "上班"},
    "/unassign": {"reason": "back to the queue"},
    "/remove-from-team": {"reason": "triage"},
    "/category": {"category": "网络", "ticket_type": "incident"},
    "/transfer": {"team_id": "{team_b}", "reason": "billing"},
    "/replies": {"body": "您好，我们已经重置了您的密码。"},
    "/notes": {"body": "内部备注"},
    "/interactions": {"kind": "call", "direction": "outbound", "body": "回电", "duration_minutes": 6},
    "/work-entries": {"action": "远程排查", "minutes": 30, "result": "已解决"},
    "/pend": {"reason": "等待截图"},
    "/hold": {"reason": "waiting on the vendor"},
    "/open": {"reason": "vendor answered"},
    "/solve": {"resolution": "密码已重置"},
    "/close": {},
    "/reopen": {"reason": "not fixed"},
    "/priority": {"priority": "urgent", "reason": "VIP"},
    "/satisfaction": {"score": 5, "comment": "服务很好"},
    "/tags": {"add": ["打印机", "vip"], "remove": []},
    "/merge": {"into_ticket_id": "{other}"},
    "/links": {"other_ticket_id": "{other}", "kind": "related"},
}
#: The order a ticket goes through them (so most succeed): state changes last.
LIFECYCLE = ["/assign", "/category", "/replies", "/notes", "/interactions", "/work-entries", "/priority", "/tags",
             "/links", "/pend", "/open", "/hold", "/open", "/unassign", "/assign", "/solve", "/satisfaction",
             "/reopen", "/solve", "/close", "/reopen", "/remove-from-team", "/transfer", "/merge"]


def command_paths() -> list[str]:
    """The command routes of the tickets router (path after /api/v1/tickets), from the router itself."""
    return [route.path.removeprefix("/api/v1/tickets").removeprefix("/{ticket_id}")
            for route in tickets.router.routes
            if isinstance(route, APIRoute) and "POST" in (route.methods or ())]


class Desk:
    """One desk's API and what its ids stand for."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.names = {str(api.team_a): "TEAM_A", str(api.team_b): "TEAM_B", str(api.customer): "CUSTOMER"}
        self.ids: dict[str, str] = {}

    def fill(self, text: str) -> str:
        return text.format(team_a=self.api.team_a, team_b=self.api.team_b, customer=self.api.customer, **self.ids)

    def name(self, text: str) -> str:
        return _UUID.sub(lambda m: self.names.get(m.group(0), m.group(0)), text)

    def request(self, path: str, json: Any = None, *, raw: bytes | None = None, who: str | None = "admin",
                headers: dict[str, str] | None = None, remember: str | None = None) -> tuple[int, dict[str, str], str]:
        sent = dict(headers or {})
        if who is not None:
            sent["Authorization"] = f"Bearer {self.api.tokens[who]}"
        if raw is not None:
            response = self.api.client.post(self.fill(path), content=raw, headers=sent)
        else:
            body = _filled(self, json)
            response = self.api.client.post(self.fill(path), json=body, headers=sent)
        if remember is not None and response.status_code == 201:
            ticket = response.json()["id"]
            self.ids[remember] = ticket
            self.names[ticket] = remember.upper()
        kept = {k: self.name(v) for k, v in response.headers.items() if k not in ("date", "x-request-id")}
        return response.status_code, kept, self.name(response.text)


def _filled(desk: Desk, value: Any) -> Any:
    if isinstance(value, str):
        return desk.fill(value)
    if isinstance(value, dict):
        return {k: _filled(desk, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_filled(desk, v) for v in value]
    return value


def solved_by_fastapi(app: FastAPI) -> None:
    """Serve the app's command routes with FastAPI's own handler (APIRoute's), as before the change."""
    for route in app.router.routes:
        if isinstance(route, CommandRoute):
            route.app = wrap_app_with_body_limit(request_response(APIRoute.get_route_handler(route)), route.max_body_size)


def _desks(tmp_path: Any) -> Iterator[tuple[Desk, Desk]]:
    def settings(name: str) -> Settings:
        return Settings(data_dir=tmp_path / name, rate_limit_burst=10_000, rate_limit_per_second=10_000,
                        embedded_projections=False)

    served, solved = build_api(settings("served")), build_api(settings("solved"))
    first, second = next(served), next(solved)
    solved_by_fastapi(second.client.app)  # type: ignore[arg-type]
    yield Desk(first), Desk(second)
    for rest in (served, solved):
        next(rest, None)


@pytest.fixture
def desks(tmp_path: Any) -> Iterator[tuple[Desk, Desk]]:
    yield from _desks(tmp_path)


def both(desks: tuple[Desk, Desk], path: str, json: Any = None, **kwargs: Any) -> tuple[int, dict[str, str], str]:
    served, solved = (desk.request(path, json, **kwargs) for desk in desks)
    assert served == solved, f"POST {path} {json!r} {kwargs}"
    return served


def open_tickets(desks: tuple[Desk, Desk], *names: str) -> None:
    for name in names:
        status, headers, body = both(desks, "/api/v1/tickets", {
            "subject": "无法登录账户 " + name, "customer_id": "{customer}", "team_id": "{team_a}"}, remember=name)
        assert status == 201 and headers["location"] == f"/api/v1/tickets/{name.upper()}", body


def test_every_ticket_command_route_is_served_directly_in_the_app(desks: tuple[Desk, Desk]) -> None:
    app = desks[0].api.client.app
    paths = {"/api/v1/tickets" + ("/{ticket_id}" + path if path else "") for path in command_paths()}
    served = {route.path: route for route in app.routes  # type: ignore[attr-defined]
              if isinstance(route, APIRoute) and route.path in paths and "POST" in (route.methods or ())}
    assert len(served) == len(paths) == 21
    for path, route in served.items():
        assert isinstance(route, CommandRoute) and route._command_shape() is not None, path


def test_successful_commands_answer_as_before(desks: tuple[Desk, Desk]) -> None:
    open_tickets(desks, "t1", "other")
    outcomes = []
    for step in LIFECYCLE:
        status, headers, body = both(desks, "/api/v1/tickets/{t1}" + step, VALID[step])
        outcomes.append(status)
        assert headers["content-type"] == ("application/json" if status < 400 else "application/problem+json")
    assert outcomes.count(200) >= 20, outcomes
    status, headers, body = both(desks, "/api/v1/tickets/{other}/replies", {"body": "您好"}, who="agent_a",
                                 headers={"X-Correlation-Id": "corr-1"})
    assert status == 200 and '"events":["Ticket.Replied","Ticket.MarkedOpen"]' in body and headers["x-log-position"].isdigit()


def test_invalid_bodies_answer_with_fastapis_problem_documents(desks: tuple[Desk, Desk]) -> None:
    open_tickets(desks, "t1", "other")
    for path in command_paths():
        where = "/api/v1/tickets" + ("" if path == "" else "/{t1}" + path)
        status, _, body = both(desks, where, {"unexpected": "字段"})
        assert status == 422 and '"field":"body.unexpected"' in body, (path, body)
        status, _, body = both(desks, where, raw=b'{"body": "\xe6\x82\xa8', headers={"Content-Type": "application/json"})
        assert status == 400 and "malformed_json" in body, (path, body)
        for raw, content_type in [(b"", "application/json"), (b"[]", "application/json"), (b"{}", "text/plain"),
                                  (b"{}", "")]:
            status, _, body = both(desks, where, raw=raw, headers={"Content-Type": content_type})
            assert status in (400, 422), (path, raw, content_type, body)
        status, _, body = both(desks, "/api/v1/tickets/not-a-ticket" + path, VALID.get(path, {}))
        assert path == "" or (status == 422 and '"field":"path.ticket_id"' in body), (path, body)
    status, _, body = both(desks, "/api/v1/tickets/{t1}/assign", {})
    assert status == 422 and '"field":"body.assignee_id","message":"Field required"' in body
    status, _, body = both(desks, "/api/v1/tickets/{t1}/satisfaction", {"score": "五"})
    assert status == 422 and '"field":"body.score"' in body
    status, _, body = both(desks, "/api/v1/tickets/{t1}/priority", {"priority": "紧急"})
    assert status == 422 and '"field":"body.priority"' in body
    status, _, body = both(desks, "/api/v1/tickets/{t1}/tags", {"add": "打印机"})
    assert status == 422 and '"field":"body.add"' in body
    status, _, body = both(desks, "/api/v1/tickets/{t1}/replies", raw='{"body": "您好"}'.encode("utf-16"),
                           headers={"Content-Type": "application/json"})
    assert status == 200  # JSON in UTF-16 is JSON to FastAPI (its parser detects the encoding)
    status, _, body = both(desks, "/api/v1/tickets/{t1}/notes", raw='{"body": "备注"}'.encode(),
                           headers={"Content-Type": "application/vnd.ticketflow+json; charset=utf-8"})
    assert status == 200


def test_refusals_answer_as_before(desks: tuple[Desk, Desk]) -> None:
    open_tickets(desks, "t1", "other")
    for path in command_paths():
        if path == "":
            continue
        status, _, body = both(desks, f"/api/v1/tickets/{UNKNOWN}" + path, VALID[path])
        assert status == 404 and '"status":404' in body, (path, body)
        status, _, body = both(desks, "/api/v1/tickets/{t1}" + path, VALID[path], headers={"If-Match": '"99"'})
        assert status in (409, 412, 404), (path, body)
        status, headers, body = both(desks, "/api/v1/tickets/{t1}" + path, VALID[path], who=None)
        assert status == 401 and headers["www-authenticate"] == 'Bearer realm="ticketflow"', (path, body)
        status, _, body = both(desks, "/api/v1/tickets/{t1}" + path, VALID[path], who="auditor")
        assert status == 403, (path, body)
    status, _, body = both(desks, "/api/v1/tickets/{t1}/assign", VALID["/assign"], headers={"If-Match": '"99"'})
    assert status == 412 and '"status":412' in body, body
    status, _, body = both(desks, "/api/v1/tickets/{t1}/assign", VALID["/assign"], headers={"If-Match": "soon"})
    assert status == 400 and "bad_if_match" in body
    status, _, body = both(desks, "/api/v1/tickets/{t1}/assign", VALID["/assign"], who="agent_b")
    assert status == 404  # another team's ticket
    status, _, body = both(desks, "/api/v1/tickets/{t1}/close", {})
    assert status == 409 and "invalid_transition" in body


def test_idempotent_replays_answer_as_before(desks: tuple[Desk, Desk]) -> None:
    open_tickets(desks, "t1", "other")
    key = {"Idempotency-Key": "retry-" + uuid.uuid4().hex}
    first = both(desks, "/api/v1/tickets/{t1}/replies", {"body": "您好"}, headers=key)
    again = both(desks, "/api/v1/tickets/{t1}/replies", {"body": "您好"}, headers=key)
    assert first[0] == again[0] == 200 and first[2] == again[2]
    assert again[1]["idempotent-replayed"] == "true" and again[1]["etag"] == first[1]["etag"]
    status, _, body = both(desks, "/api/v1/tickets/{t1}/replies", {"body": "另一条"}, headers=key)
    assert status == 422 and "idempotency_key_reused" in body
    opening = {"subject": "重复", "customer_id": "{customer}"}
    opened = both(desks, "/api/v1/tickets", opening, headers={"Idempotency-Key": "open-1"}, remember="dup")
    reopened = both(desks, "/api/v1/tickets", opening, headers={"Idempotency-Key": "open-1"})
    assert opened[0] == reopened[0] == 201 and reopened[2] == opened[2] and reopened[1]["location"] == "/api/v1/tickets/DUP"


@pytest.mark.parametrize("value, json", [
    ("application/json", True), ("Application/JSON; charset=utf-8", True), ("application/problem+json", True),
    ("application/jsonl", False), ("text/json", False), ("application/x-www-form-urlencoded", False),
])
def test_the_json_content_types_are_fastapis(value: str, json: bool) -> None:
    assert json_content_type(value) is json
