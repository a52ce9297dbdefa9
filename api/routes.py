"""Routers' routes registered on the app itself, each once.

FastAPI (0.165) keeps an included router whole: the app's router asks the included router whether
it matches (a scan of its routes), then the included router matches again to pick the route, so
every request was matched twice (18% of the request path's event-loop CPU). Each route of a router
is put on the app directly instead, as ``include_router`` would have served it (the include's
dependencies first, its ``include_in_schema``, the app's operation ids): matched once, the same
OpenAPI document (``tests/api/test_openapi_document.py``).

A route is a copy of the router's (already built when its module was imported) with what the
include changes: its dependant (the include's dependencies put first), its operation id, and its
handler. Building every route again would cost start-up most of a second of CPU (a pydantic adapter
for each error response of each route).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, params
from fastapi._body_limit import wrap_app_with_body_limit
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import _get_body_field, _get_flat_body_params, get_parameterless_sub_dependant
from fastapi.routing import APIRoute, APIRouter, _apply_router_form_limits, _update_scope, request_response
from fastapi.telemetry._api import _route_selected
from fastapi.utils import create_model_field
from pydantic import BaseModel
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Receive, Scope, Send


def serve(
    app: FastAPI,
    router: APIRouter,
    *,
    dependencies: Sequence[params.Depends] = (),
    include_in_schema: bool = True,
    unless_depends_on: Callable[..., Any] | None = None,
) -> None:
    """Add every route of ``router`` to ``app`` as ``app.include_router(router, dependencies=...,
    include_in_schema=...)`` would serve it. Only plain API routes (what the routers here hold).
    A route that depends on ``unless_depends_on`` is served without ``dependencies`` (that dependency
    does their work itself)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(
                f"{type(route).__name__} {getattr(route, 'path', '')}: only API routes can be served flat"
            )
        covered = unless_depends_on is not None and depends_on(route.dependant, unless_depends_on)
        app.router.routes.append(_served(app, route, () if covered else dependencies, include_in_schema))
    app.router._mark_routes_changed()


def _served(
    app: FastAPI, route: APIRoute, dependencies: Sequence[params.Depends], include_in_schema: bool
) -> APIRoute:
    served = copy.copy(route)
    served.include_in_schema = route.include_in_schema and include_in_schema
    own_id = route.generate_unique_id_function
    # The route's own (its router's) function if it has one, else the app's (as an include picks).
    if isinstance(own_id, DefaultPlaceholder):
        served.generate_unique_id_function = app.router.generate_unique_id_function
    generate = served.generate_unique_id_function
    served.unique_id = served.operation_id or (
        generate.value if isinstance(generate, DefaultPlaceholder) else generate
    )(served)
    served.dependencies = [*dependencies, *route.dependencies]
    served.dependant = dataclasses.replace(
        route.dependant,
        dependencies=[
            *(get_parameterless_sub_dependant(depends=d, path=route.path_format) for d in dependencies),
            *route.dependant.dependencies,
        ],
    )
    if served.unique_id != route.unique_id:  # what FastAPI names after the operation id
        if route.body_field is not None and route._embed_body_fields:
            served.body_field = _get_body_field(
                body_params=_get_flat_body_params(served.dependant),
                name=served.unique_id,
                embed_body_fields=True,
            )
        model = route.response_model
        if route.response_field is not None and not (
            isinstance(model, type) and issubclass(model, BaseModel)
        ):
            served.response_field = create_model_field(
                name="Response_" + served.unique_id, type_=model, mode="serialization"
            )
    served.app = wrap_app_with_body_limit(request_response(served.get_route_handler()), served.max_body_size)
    return served


def depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    """Whether ``call`` is among the dependencies of ``dependant``, at any depth."""
    return any(sub.call is call or depends_on(sub, call) for sub in dependant.dependencies)


class RouteIndex:
    """The app's routes looked up by the literal start of their path, not tried one by one.

    FastAPI's router tries every route in order until one matches fully (195 routes: the tickets'
    come early, the console's last, so a console page was tried against every route before it). A
    route can only match a path that starts with its literal segments (those before the first
    ``{``), so each route is filed under its first :data:`DEPTH` literal segments and a request
    tries, in their order, only the routes filed under its path's first segments. The first route
    to match fully is the one FastAPI's scan would pick (every route that can match is tried, in
    the same order); the rest (a method that does not match: 405, a slash redirect, 404) is left to
    FastAPI's own scan, unchanged. Rebuilt when the routes change.

    Within a start, a route whose path ends in a literal segment (``.../{ticket_id}/close``) can only
    match a path ending in that segment: a request tries those of its own last segment and the routes
    that end in a parameter (a ticket's command tried 8 routes' patterns on average, now 1 or 2)."""

    DEPTH = 3

    def __init__(self, router: APIRouter) -> None:
        self.router, self.scan = router, router.middleware_stack
        self._built: tuple[int, int, int] | None = None
        self._filed: dict[tuple[str, ...], list[BaseRoute]] = {}
        #: Per start: its routes by the literal last segment a path must end in (the routes ending in
        #: a parameter are in every list), and under None those that end in a parameter only.
        self._tails: dict[tuple[str, ...], dict[str | None, list[BaseRoute]]] = {}

    def install(self) -> None:
        self.router.middleware_stack = self

    def candidates(self, path: str) -> list[BaseRoute]:
        """The routes that may match ``path``, in the router's order."""
        routes = self.router.routes
        built = (id(routes), len(routes), self.router._routes_version)
        if built != self._built:
            self._filed, self._built = self._file(routes), built
            self._tails = {start: self._by_tail(found) for start, found in self._filed.items()}
        segments = path.split("/", self.DEPTH + 1)[1 : self.DEPTH + 1]
        start: tuple[str, ...] = ()
        for depth in range(len(segments), 0, -1):
            if tuple(segments[:depth]) in self._filed:
                start = tuple(segments[:depth])
                break
        tails = self._tails[start]
        found = tails.get(path.rpartition("/")[2])
        return found if found is not None else tails[None]

    def _by_tail(self, routes: list[BaseRoute]) -> dict[str | None, list[BaseRoute]]:
        tails = [self._tail(route) for route in routes]  # (routes are not hashable)
        return {
            tail: [route for route, own in zip(routes, tails, strict=True) if own is None or own == tail]
            for tail in {None, *tails}
        }

    @staticmethod
    def _tail(route: BaseRoute) -> str | None:
        """The literal last segment every path the route matches ends in; None when there is none
        (a parameter, a mount, a route without a path)."""
        path = getattr(route, "path", None)
        if isinstance(route, Mount) or not isinstance(path, str) or not path.startswith("/"):
            return None
        last = path.rpartition("/")[2]
        return None if "{" in last or "}" in last else last

    def _file(self, routes: list[BaseRoute]) -> dict[tuple[str, ...], list[BaseRoute]]:
        """Each literal start, with the routes filed under it or under a shorter start of it, in order
        (a path's longest start that is filed gives every route that may match it)."""
        starts: dict[tuple[str, ...], list[int]] = {(): []}
        for number, route in enumerate(routes):
            starts.setdefault(self._literal(route), []).append(number)
        return {
            start: [routes[n] for n in sorted(n for other, numbers in starts.items()
                                              if start[: len(other)] == other for n in numbers)]
            for start in starts
        }

    def _literal(self, route: BaseRoute) -> tuple[str, ...]:
        path = getattr(route, "path", None)
        if not isinstance(path, str) or not path.startswith("/"):
            return ()  # no path to file it by (a mount at the root, a custom route): tried for every request
        literal = []
        for segment in path.split("/")[1 : self.DEPTH + 1]:
            if "{" in segment:
                break
            literal.append(segment)
        return tuple(literal)

    def select(self, scope: Scope) -> BaseRoute | None:
        """The route an HTTP request is for, its scope updated as FastAPI's router updates it (the route,
        its path parameters): the first route to match fully, or None (FastAPI's scan answers it).
        Selecting again (the command lane selects before the stack does) changes nothing more."""
        for route in self.candidates(get_route_path(scope)):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:  # what FastAPI's APIRouter.app does with the first full match
                _apply_router_form_limits(scope, self.router.form_limits)
                scope.setdefault("router", self.router)
                _update_scope(scope, child_scope)
                _route_selected(scope=scope, path=getattr(route, "path_format", None),
                                mount=isinstance(route, Mount))
                return route
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.select(scope) if scope["type"] == "http" else None
        if route is not None:
            await route.handle(scope, receive, send)
        else:
            await self.scan(scope, receive, send)
