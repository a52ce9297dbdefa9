"""The route index (api.routes.RouteIndex) picks, for every request, the route FastAPI's own scan picks."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from api.app import create_app
from api.routes import RouteIndex
from ticketflow.config import Settings

TICKET = "0b4c7f7e-6a0e-4b8a-9d55-4d1f0f1e2a3b"


def _scope(method: str, path: str) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "query_string": b"", "headers": []}


def _first_full(routes: Any, scope: dict[str, Any]) -> Any:
    return next((route for route in routes if route.matches(scope)[0] is Match.FULL), None)


def _requests(app: Any) -> list[tuple[str, str]]:
    """Every route's path with its parameters filled in, under each method, plus paths no route takes."""
    paths = {re.sub(r"\{[^}]+\}", TICKET, getattr(route, "path", "")) or "/" for route in app.router.routes}
    paths |= {"/", "/api", "/api/v1", "/api/v1/", "/api/v1/tickets/", "/nowhere", "/api/v1/tickets/x/y/z/w",
              "/api/docs-static/swagger-ui.css", "/docs/", "//api/v1/tickets"}
    return [(method, path) for path in sorted(paths) for method in ("GET", "POST", "PATCH", "PUT", "DELETE")]


def test_every_request_is_routed_to_the_route_fastapis_scan_picks(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, embedded_projections=False))
    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    routed = 0
    for method, path in _requests(app):
        scope = _scope(method, path)
        expected = _first_full(app.router.routes, scope)
        assert _first_full(index.candidates(path), scope) is expected, (method, path)
        routed += expected is not None
    assert routed > len(app.router.routes)  # the requests did reach routes (not only 404s and 405s)


def test_a_route_added_later_is_found(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, embedded_projections=False))
    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    assert _first_full(index.candidates("/late/route"), _scope("GET", "/late/route")) is None

    async def late(request: Request) -> Response:
        raise AssertionError("not called")

    app.add_route("/late/route", late)  # a plain route (no operation id needed), after the index was built
    found = _first_full(index.candidates("/late/route"), _scope("GET", "/late/route"))
    assert found is not None and found.path == "/late/route"
