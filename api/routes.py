"""Routers' routes registered on the app itself, each once.

FastAPI (0.165) keeps an included router whole: the app's router asks the included router whether
it matches (a scan of its routes), then the included router matches again to pick the route, so
every request was matched twice (18% of the request path's event-loop CPU). Registering each route
of a router directly on the app, with what ``include_router`` would have combined (the include's
dependencies first, the route's tags, responses and operation id), matches it once and serves the
same OpenAPI document (``tests/api/test_openapi_document.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, params
from fastapi.datastructures import DefaultPlaceholder
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIRouter


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
        own_id = route.generate_unique_id_function
        app.router.add_api_route(
            route.path,  # the router's prefix included
            route.endpoint,
            response_model=route.response_model,
            status_code=route.status_code,
            tags=list(route.tags),  # the router's tags included
            dependencies=[*(() if covered else dependencies), *route.dependencies],  # the router's included
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses=dict(route.responses),
            deprecated=route.deprecated,
            methods=set(route.methods or ()),
            operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema and include_in_schema,
            response_class=route.response_class,
            name=route.name,
            callbacks=route.callbacks,
            openapi_extra=route.openapi_extra,
            # The route's own (its router's) function if it has one, else the app's (as an include picks).
            generate_unique_id_function=own_id
            if not isinstance(own_id, DefaultPlaceholder)
            else app.router.generate_unique_id_function,
            strict_content_type=route.strict_content_type,
            max_body_size=route.max_body_size,
        )


def depends_on(dependant: Dependant, call: Callable[..., Any]) -> bool:
    """Whether ``call`` is among the dependencies of ``dependant``, at any depth."""
    return any(sub.call is call or depends_on(sub, call) for sub in dependant.dependencies)
