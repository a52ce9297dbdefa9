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
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import fastapi
import pytest
import starlette
from fastapi import FastAPI
from fastapi._body_limit import wrap_app_with_body_limit
from fastapi.routing import APIRoute, request_response
from fastapi.testclient import TestClient
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY, RequestBodyLimitMiddleware
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from api.command_routes import CommandLane, CommandRoute, json_content_type
from api.middleware import Gatekeeper
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
    """Serve the app's command routes with FastAPI's own handler (APIRoute's), as before the change: no
    direct handler for the command lane to take, the route's app FastAPI's."""
    for route in app.router.routes:
        if isinstance(route, CommandRoute):
            route.direct = None
            route.app = wrap_app_with_body_limit(request_response(APIRoute.get_route_handler(route)), route.max_body_size)


def gatekeeper(app: Any) -> Gatekeeper:
    """The app's Gatekeeper, in the middleware stack Starlette built at the app's first request."""
    layer = app.middleware_stack
    while not isinstance(layer, Gatekeeper):
        layer = layer.app
    return layer


def _desks(tmp_path: Any, on_loop: bool = True) -> Iterator[tuple[Desk, Desk]]:
    def settings(name: str) -> Settings:
        return Settings(data_dir=tmp_path / name, rate_limit_burst=10_000, rate_limit_per_second=10_000,
                        embedded_projections=False, commands_on_loop=on_loop)

    served, solved = build_api(settings("served")), build_api(settings("solved"))
    first, second = next(served), next(solved)
    solved_by_fastapi(second.client.app)  # type: ignore[arg-type]
    yield Desk(first), Desk(second)
    for rest in (served, solved):
        next(rest, None)


@pytest.fixture(params=[True, False], ids=["commands-on-the-loop", "commands-on-threads"])
def desks(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[tuple[Desk, Desk]]:
    """A desk served as `serve` serves it and one whose command routes are FastAPI's own: both with
    ticket commands on the event loop (SQLite's default), then both with them on threads (PostgreSQL's)."""
    yield from _desks(tmp_path, on_loop=request.param)


@pytest.fixture
def thread_desks(tmp_path: Any) -> Iterator[tuple[Desk, Desk]]:
    yield from _desks(tmp_path, on_loop=False)


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


def test_the_command_lane_serves_every_command_without_the_routes_own_stack(desks: tuple[Desk, Desk]) -> None:
    """In the served app the Gatekeeper hands a POST to the command lane, which runs a command route's
    direct handler itself: with every command route's own ASGI app (FastAPI's stack under the router)
    made to fail, every well-formed command is still answered; a request the direct handler leaves to
    FastAPI goes down that stack (here: to the failing app)."""
    open_tickets(desks, "t1")
    app = desks[0].api.client.app
    assert isinstance(gatekeeper(app).forward, CommandLane)
    below: list[str] = []

    async def not_here(scope: Scope, receive: Receive, send: Send) -> None:
        below.append(scope["path"])
        await PlainTextResponse("the route's own stack", status_code=418)(scope, receive, send)

    for route in app.router.routes:  # type: ignore[attr-defined]
        if isinstance(route, CommandRoute) and route.direct is not None:
            route.app = not_here
    served = desks[0]
    for step in ["/assign", "/replies", "/notes", "/solve", "/close"]:
        status, _, body = served.request("/api/v1/tickets/{t1}" + step, VALID[step])
        assert status == 200, (step, body)
    status, _, body = served.request("/api/v1/tickets/{t1}/notes", {"body": "备注"}, who="auditor")
    assert status == 403 and "forbidden" in body  # a refusal: the app's exception handlers, in the lane
    status, _, body = served.request("/api/v1/tickets", {"subject": "新", "customer_id": "{customer}"}, remember="t2")
    assert status == 201 and not below
    status, _, body = served.request("/api/v1/tickets/{t2}/notes", {"unexpected": "字段"})
    assert (status, body) == (418, "the route's own stack") and below == [served.fill("/api/v1/tickets/{t2}/notes")]


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


def test_each_app_runs_its_commands_in_threads_of_its_own_until_its_lifespan_ends(tmp_path: Any) -> None:
    runs = [build_api(Settings(data_dir=tmp_path / name, rate_limit_burst=10_000, rate_limit_per_second=10_000,
                               embedded_projections=False, commands_on_loop=False)) for name in ("one", "two")]
    before = set(threading.enumerate())
    apis = [next(run) for run in runs]
    pools = [api.client.app.state.command_threads.pool for api in apis]  # type: ignore[attr-defined]
    assert all(isinstance(pool, ThreadPoolExecutor) for pool in pools) and pools[0] is not pools[1]
    for api in apis:
        desk = Desk(api)
        status, _, body = desk.request("/api/v1/tickets", {"subject": "打印机卡纸", "customer_id": "{customer}"},
                                       remember="t1")
        assert status == 201, body
        status, _, body = desk.request("/api/v1/tickets/{t1}/notes", {"body": "内部备注"})
        assert status == 200, body
    workers = [t for t in set(threading.enumerate()) - before if t.name.startswith("ticketflow-command")]
    assert len(workers) >= 2  # each app's commands ran in its own pool's threads (the direct path was taken)
    next(runs[0], None)  # the first app's lifespan ends
    with pytest.raises(RuntimeError):
        pools[0].submit(int)  # shut down
    assert pools[1].submit(int, "7").result() == 7  # the other app's threads still work
    next(runs[1], None)
    assert not [t for t in workers if t.is_alive()]  # every command thread ended with its app


def test_an_app_on_sqlite_runs_its_ticket_commands_on_its_event_loop_and_one_writer_commits_them(tmp_path: Any) -> None:
    run = build_api(Settings(data_dir=tmp_path / "loop", rate_limit_burst=10_000, rate_limit_per_second=10_000,
                             embedded_projections=False))
    before = set(threading.enumerate())
    api = next(run)
    threads = api.client.app.state.command_threads  # type: ignore[attr-defined]
    assert threads.on_loop
    desk = Desk(api)
    status, _, body = desk.request("/api/v1/tickets", {"subject": "打印机卡纸", "customer_id": "{customer}"}, remember="t1")
    assert status == 201, body
    for n in range(3):
        status, _, body = desk.request("/api/v1/tickets/{t1}/notes", {"body": f"内部备注 {n}"})
        assert status == 200, body
    new = {t.name for t in set(threading.enumerate()) - before}
    assert "ticketflow-group-commit" in new  # the commands' saves were committed by the writer
    assert not [name for name in new if name.startswith("ticketflow-command")]  # and no command ran in a thread
    assert threads.loop_commands == 0
    next(run, None)  # the lifespan ends: the desk closes, and its writer with it
    assert not [t for t in threading.enumerate() if t.name == "ticketflow-group-commit" and t not in before]


def test_commands_run_on_threads_on_postgresql_or_when_turned_off(tmp_path: Any) -> None:
    assert Settings(data_dir=tmp_path).runs_commands_on_loop
    assert Settings(database_url="memory://").runs_commands_on_loop
    assert not Settings(data_dir=tmp_path, commands_on_loop=False).runs_commands_on_loop
    assert not Settings(database_url="postgresql://u@127.0.0.1:5432/db").runs_commands_on_loop
    assert Settings(database_url="postgresql://u@127.0.0.1:5432/db", commands_on_loop=True).runs_commands_on_loop


def test_an_app_whose_lifespan_is_not_running_answers_through_fastapis_handler(tmp_path: Any) -> None:
    from api.app import create_app
    app = create_app(Settings(data_dir=tmp_path / "idle", embedded_projections=False))
    assert app.state.command_threads.pool is None
    client = TestClient(app)  # no lifespan: no command threads
    response = client.post(f"/api/v1/tickets/{UNKNOWN}/notes", json={"body": "备注"})
    assert response.status_code == 401 and app.state.command_threads.pool is None
    app.state.services.desk.close()


def test_the_fastapi_and_starlette_internals_command_routes_rely_on_are_unchanged() -> None:
    """api.command_routes reads FastAPI internals (checked with fastapi 0.165.0, starlette 1.10.0); if an
    upgrade changes them, this fails with what changed (else the direct path would silently be off, or wrong)."""
    versions = f"fastapi {fastapi.__version__}, starlette {starlette.__version__}"
    route = next(r for r in tickets.router.routes if isinstance(r, APIRoute) and r.path.endswith("/{ticket_id}/notes"))
    missing = [name for name in ("_embed_body_fields", "body_field", "dependant", "dependency_overrides_provider")
               if not hasattr(route, name)]
    assert not missing, f"{versions}: APIRoute no longer has {missing}; review api.command_routes._command_shape"
    assert route._embed_body_fields is False, f"{versions}: APIRoute._embed_body_fields changed meaning"
    field = route.dependant.path_params[0]
    value, errors = field.validate(UNKNOWN, {}, loc=("path", field.alias))
    assert value == uuid.UUID(UNKNOWN) and not errors, f"{versions}: ModelField.validate answers {value!r}, {errors!r}"
    value, errors = field.validate("not-a-ticket", {}, loc=("path", field.alias))
    assert errors, f"{versions}: ModelField.validate no longer answers a list of errors for a bad value"
    seen: dict[str, Any] = {}

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.update(scope)
        await PlainTextResponse("ok")(scope, receive, send)

    from starlette.middleware.exceptions import ExceptionMiddleware

    handlers = ExceptionMiddleware(inner)
    assert isinstance(getattr(handlers, "_exception_handlers", None), dict) and isinstance(
        getattr(handlers, "_status_handlers", None), dict), (
        f"{versions}: ExceptionMiddleware no longer keeps its handlers in _exception_handlers and "
        "_status_handlers; review api.command_routes.CommandLane")
    TestClient(RequestBodyLimitMiddleware(inner, max_body_size=10)).post("/", content=b"x")
    assert MAX_BODY_SIZE_SCOPE_KEY in seen, (
        f"{versions}: Starlette's body limit no longer marks the scope with {MAX_BODY_SIZE_SCOPE_KEY!r}; "
        "api.command_routes would read limited bodies itself instead of leaving them to FastAPI")


def test_commands_on_threads_borrow_the_thread_tokens_reads_borrow(thread_desks: tuple[Desk, Desk]) -> None:
    """Commands on threads and the app's other thread hops share anyio's default limiter: with its tokens
    all lent, a command waits for one instead of starting in a thread of its own."""
    from anyio.to_thread import current_default_thread_limiter
    desks = thread_desks
    served = desks[0]
    open_tickets(desks, "t1")
    portal = served.api.client.portal
    assert portal is not None
    limiter = portal.call(current_default_thread_limiter)
    holder = object()
    tokens = portal.call(lambda: limiter.total_tokens)
    portal.call(setattr, limiter, "total_tokens", 1)
    portal.call(limiter.acquire_on_behalf_of_nowait, holder)  # a read's hop holds the only token
    answers: list[tuple[int, dict[str, str], str]] = []
    sender = threading.Thread(target=lambda: answers.append(served.request("/api/v1/tickets/{t1}/notes", {"body": "等"})))
    try:
        sender.start()
        for _ in range(10_000):  # until the command waits for the token (no time limit asserted)
            if portal.call(lambda: limiter.statistics().tasks_waiting) == 1:
                break
            threading.Event().wait(0.005)
        assert portal.call(lambda: limiter.statistics().tasks_waiting) == 1 and not answers
    finally:
        portal.call(limiter.release_on_behalf_of, holder)
        sender.join()
        portal.call(setattr, limiter, "total_tokens", tokens)
    assert answers and answers[0][0] == 200, answers
    assert portal.call(lambda: limiter.borrowed_tokens) == 0  # the command gave its token back


def test_the_remembered_thread_limiter_is_each_event_loops_own() -> None:
    import asyncio

    from anyio.to_thread import current_default_thread_limiter

    from api.command_routes import loop_thread_limiter

    async def both() -> tuple[object, object, object]:
        return loop_thread_limiter(), current_default_thread_limiter(), loop_thread_limiter()

    seen = [asyncio.run(both()) for _ in range(3)]  # a new loop each time, each with its own limiter
    assert all(remembered is own is again for remembered, own, again in seen)
    assert len({id(limiter) for limiter, _, _ in seen}) == 3
    with asyncio.Runner() as first, asyncio.Runner() as second:  # two live loops taking turns
        turns = [first.run(both()), second.run(both()), first.run(both()), second.run(both())]
    assert all(remembered is own is again for remembered, own, again in turns)
    assert turns[0][0] is turns[2][0] and turns[1][0] is turns[3][0] and turns[0][0] is not turns[1][0]
