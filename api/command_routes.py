"""Command routes served without FastAPI's per-request dependency solving.

A command route (``POST /api/v1/tickets/{ticket_id}/assign`` and its kind: path parameters, one JSON
body model, :class:`~api.deps.Commands`, a sync endpoint answering a ``Response``) spent about half
of its event-loop CPU in FastAPI's generic machinery: reading its dependant tree
(``solve_dependencies``: the sub-dependency, its cache key, the path parameters, the body through
``request_body_to_args``), then a thread hop for the endpoint. :class:`CommandRoute` is an
``APIRoute`` whose handler (FastAPI's own extension point, ``get_route_handler``) does the same
work directly for a well-formed request:

* the body: what FastAPI would parse as JSON (the same ``Content-Type`` rule) is validated by the
  route's own body model straight from the bytes (``model_validate_json``);
* the path parameters: each by the route's own field (``ModelField.validate``, what FastAPI calls);
* then, in ONE worker-thread hop, the route's access rule and caller (:func:`api.deps.commands_now`,
  the body of the ``commands`` dependency) and the endpoint. The hop is asyncio's own
  (``run_in_executor`` on a pool of :data:`WORKERS` threads, the context copied along as anyio does):
  anyio's ``to_thread`` (capacity limiter, cancel scope, checkpoints) cost 50 us more CPU per hop
  here. Unlike anyio's, a cancelled request does not wait for its thread; the command still
  finishes (or not) in it, exactly as it would have, and its answer is dropped.

Anything else (an empty or non-JSON body, a body or path parameter that does not validate, a
dependency override) is handed, untouched, to the handler FastAPI built for the route, so every
error answer (the 400/422 problem documents with their field list, their order against 401/403)
is FastAPI's own. The route is declared as before, so the OpenAPI document does not change.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.message
import inspect
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from functools import cache, lru_cache
from typing import Any, cast

from fastapi._body_limit import get_body_limit_error
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.requests import Request
from starlette.responses import Response

from api.deps import commands, commands_now

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

#: Threads commands run in (anyio's default for the thread pool it lends run_in_threadpool: 40).
WORKERS = 40


@cache
def workers() -> ThreadPoolExecutor:
    """The command threads of this process (made at the first command: after a server's fork)."""
    return ThreadPoolExecutor(WORKERS, thread_name_prefix="ticketflow-command")


@lru_cache(maxsize=64)
def json_content_type(value: str) -> bool:
    """Whether FastAPI reads a body sent with this ``Content-Type`` as JSON (its rule: ``application/json``
    or ``application/*+json``, parameters ignored)."""
    message = email.message.Message()
    message["content-type"] = value
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


class CommandRoute(APIRoute):
    """An API route whose command requests skip FastAPI's dependency solving (see the module's doc);
    a route of another shape (a read, an async endpoint, other dependencies) is served as by APIRoute."""

    def get_route_handler(self) -> Handler:
        general = super().get_route_handler()
        shape = self._command_shape()
        if shape is None:
            return general
        body_model, body_name, commands_name = shape
        call = self.dependant.call
        path_fields = list(self.dependant.path_params)
        overrides = self.dependency_overrides_provider

        def run(request: Request, arguments: dict[str, Any]) -> Response:
            arguments[commands_name] = commands_now(request)
            return call(**arguments)  # type: ignore[misc,no-any-return]

        async def handle(request: Request) -> Response:
            if overrides is not None and getattr(overrides, "dependency_overrides", None):
                return await general(request)
            try:
                raw = await request.body()
            except HTTPException:
                raise
            except Exception as exc:  # what FastAPI's handler answers when the body cannot be read
                if MAX_BODY_SIZE_SCOPE_KEY in request.scope and (error := get_body_limit_error(exc)):
                    raise error from exc
                raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc
            content_type = request.headers.get("content-type")
            if not raw or not content_type or not json_content_type(content_type):
                return await general(request)  # (the body stays read: FastAPI's handler gets it again)
            try:
                body = body_model.model_validate_json(raw)
            except ValidationError:
                return await general(request)  # FastAPI lists the errors, in its shape and order
            arguments: dict[str, Any] = {body_name: body}
            params = request.path_params
            for field in path_fields:
                value, errors = field.validate(params.get(field.alias), {}, loc=("path", field.alias))
                if errors:
                    return await general(request)
                arguments[field.name] = value
            context = contextvars.copy_context()  # the request id the logs carry, as anyio copies it
            response: Response = await asyncio.get_running_loop().run_in_executor(
                workers(), context.run, run, request, arguments)
            return response

        return handle

    def _command_shape(self) -> tuple[type[BaseModel], str, str] | None:
        """(the body model, the body's and the Commands' parameter names) when this route is a command
        route this class can serve directly, else None."""
        dependant, field = self.dependant, self.body_field
        call = dependant.call
        if call is None or inspect.iscoroutinefunction(call) or self._embed_body_fields or field is None:
            return None
        returns = inspect.signature(call).return_annotation
        if not (isinstance(returns, type) and issubclass(returns, Response)):
            return None  # FastAPI would serialise what it returns
        if (dependant.query_params or dependant.header_params or dependant.cookie_params
                or len(dependant.body_params) != 1 or len(dependant.dependencies) != 1):
            return None
        if (dependant.request_param_name or dependant.websocket_param_name or dependant.http_connection_param_name
                or dependant.response_param_name or dependant.background_tasks_param_name
                or dependant.security_scopes_param_name):
            return None
        sub = dependant.dependencies[0]
        if sub.call is not commands or sub.name is None or sub.dependencies:
            return None
        model = field.field_info.annotation
        declared = dependant.body_params[0].field_info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel) and declared == model):
            return None
        return cast(type[BaseModel], model), dependant.body_params[0].name, sub.name

