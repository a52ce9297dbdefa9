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
from fastapi.routing import APIRoute, APIRouter, request_response
from fastapi.utils import create_model_field
from pydantic import BaseModel


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
