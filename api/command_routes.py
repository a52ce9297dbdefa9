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
  (``run_in_executor`` on the app's :class:`CommandThreads`, the context copied along as anyio does):
  anyio's ``to_thread`` (cancel scope, checkpoints) cost 50 us more CPU per hop here. A command
  still borrows a token of anyio's default thread limiter, the one the reads' and the middleware's
  thread hops borrow: at most 40 threads (anyio's default) work at once, commands and reads
  together, as when commands ran in anyio's threads. Unlike anyio's hop, a cancelled request does
  not wait for its thread: a command not yet started is dropped, one running finishes in its
  thread (and gives its token back then), and its answer is dropped. The threads are the app's,
  made when its lifespan starts and shut down, after their last command, when it ends (before the
  desk closes). On SQLite and memory stores the same work runs on the event loop instead
  (``CommandThreads.on_loop``, ticketflow/loop_commands.py): no hop, no token; the command gives the
  loop back while its save waits for its group commit; the lifespan's end waits for those still running.

Anything else (an empty or non-JSON body, a body or path parameter that does not validate, a
dependency override, a route-level body size limit, an app whose lifespan is not running) is
handed, untouched, to the handler FastAPI built for the route, so every
error answer (the 400/422 problem documents with their field list, their order against 401/403)
is FastAPI's own. The route is declared as before, so the OpenAPI document does not change.

In a served app the Gatekeeper hands a command request to :class:`CommandLane`, which calls the route's
direct handler itself, without the layers FastAPI puts between the app's middleware and the route.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.message
import inspect
import weakref
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from typing import Any, cast

from anyio import CapacityLimiter, WouldBlock
from anyio.to_thread import current_default_thread_limiter
from fastapi.middleware.asyncexitstack import AsyncExitStackMiddleware
from fastapi.routing import APIRoute, _get_scope_effective_route_context
from pydantic import BaseModel, ValidationError
from starlette._exception_handler import wrap_app_handling_exceptions
from starlette.exceptions import HTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import commands, commands_now
from api.middleware import replaying
from api.routes import RouteIndex
from ticketflow.loop_commands import run_on_loop

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

#: Threads an app's commands run in. Every command also borrows one of anyio's default thread limiter's
#: 40 tokens; commands past these threads wait in the pool's queue. Fewer threads than tokens on
#: purpose: a process runs one thread's Python at a time, and 40 commands deciding at once only take
#: turns at the GIL (each SQLite call hands it over) and cost the CPU more (bench_request_path, 32
#: clients, interleaved at load 12-18: 40 threads 0.92-1.07 ms CPU per command, 16 threads 0.75, 12 threads
#: 0.73-0.80, 8 threads 0.72-0.81, 6 threads 0.85-0.92). 16 still lets a group commit take 16 saves at once.
WORKERS = 16


class CommandThreads:
    """Where an app's commands run while the app runs: its lifespan opens them (in a served worker
    process: after the fork) and closes them before the desk closes. With ``on_loop`` (SQLite and memory
    stores: ``Settings.runs_commands_on_loop``) ticket commands run on the event loop
    (ticketflow/loop_commands.py), counted until each ended; otherwise on the threads."""

    def __init__(self, workers: int = WORKERS, on_loop: bool = False) -> None:
        self.workers = workers
        self.on_loop = on_loop
        self.pool: ThreadPoolExecutor | None = None
        self.loop_commands = 0  # commands running on the event loop (a cancelled caller's included)
        self._loop_idle: asyncio.Event | None = None

    async def run_on_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` as a command on the running event loop."""
        self.loop_commands += 1
        return await run_on_loop(fn, *args, ended=self._loop_command_ended)

    def _loop_command_ended(self) -> None:
        self.loop_commands -= 1
        if not self.loop_commands and self._loop_idle is not None:
            self._loop_idle.set()

    async def finish_loop_commands(self) -> None:
        """Return once no command runs on the event loop (the lifespan's end waits for them, as
        :meth:`close` waits for the threads', before the desk closes)."""
        while self.loop_commands:
            self._loop_idle = asyncio.Event()
            await self._loop_idle.wait()

    def open(self) -> None:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="ticketflow-command")

    def close(self) -> None:
        """Stop taking commands and wait for those running (a request cancelled at a forced shutdown
        leaves its command running: it finishes before the desk closes)."""
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


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


#: The event loop last asked about (weakly: a closed loop is not kept) and its anyio default thread limiter.
_LAST_LIMITER: tuple[weakref.ref[asyncio.AbstractEventLoop], CapacityLimiter] | None = None


def loop_thread_limiter() -> CapacityLimiter:
    """``current_default_thread_limiter()``: anyio's default thread limiter of the running event loop
    (one per loop, made at its first use), remembered for the loop last asked about. anyio finds it
    through its run variables each time: 2.3 us per command on the event loop thread, against 0.2 us
    here (timed in a loop of 100,000 calls each, python 3.11)."""
    global _LAST_LIMITER
    loop = asyncio.get_running_loop()
    last = _LAST_LIMITER  # (one read: another thread's loop may replace it meanwhile)
    if last is not None and last[0]() is loop:
        return last[1]
    limiter = current_default_thread_limiter()
    _LAST_LIMITER = weakref.ref(loop), limiter
    return limiter


def give_back(loop: asyncio.AbstractEventLoop, release: Callable[[object], None], borrower: object) -> None:
    """Return a thread limiter token from a worker thread (the limiter is the event loop's)."""
    try:
        loop.call_soon_threadsafe(release, borrower)
    except RuntimeError:  # the loop is closed: so is its limiter
        pass


class CommandRoute(APIRoute):
    """An API route whose command requests skip FastAPI's dependency solving (see the module's doc);
    a route of another shape (a read, an async endpoint, other dependencies) is served as by APIRoute."""

    #: What serves a well-formed command request straight from its ``Request`` (the :class:`CommandLane`
    #: calls it): its ``Response``, or None when FastAPI's own handler must answer it. None on a route
    #: this class serves as APIRoute does.
    direct: Callable[[Request], Coroutine[Any, Any, Response | None]] | None = None

    def get_route_handler(self) -> Handler:
        general = super().get_route_handler()
        direct = self.direct = self._direct_handler()
        if direct is None:
            return general

        async def handle(request: Request) -> Response:
            answer = await direct(request)
            return await general(request) if answer is None else answer  # (a body read stays read for it)

        return handle

    def _direct_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response | None]] | None:
        shape = self._command_shape()
        if shape is None:
            return None
        body_model, body_name, commands_name = shape
        call = self.dependant.call
        path_fields = list(self.dependant.path_params)
        overrides = self.dependency_overrides_provider

        def run(request: Request, arguments: dict[str, Any]) -> Response:
            arguments[commands_name] = commands_now(request)
            return call(**arguments)  # type: ignore[misc,no-any-return]

        async def direct(request: Request) -> Response | None:
            if overrides is not None and getattr(overrides, "dependency_overrides", None):
                return None
            threads = getattr(request.app.state, "command_threads", None)
            if not isinstance(threads, CommandThreads):
                return None
            pool = threads.pool
            if pool is None or MAX_BODY_SIZE_SCOPE_KEY in request.scope:
                # Not running (no lifespan), or a body limit of Starlette's, whose errors only
                # FastAPI's handler tells apart: FastAPI serves it.
                return None
            try:
                raw = await request.body()
            except HTTPException:
                raise
            except Exception as exc:  # what FastAPI's handler answers when the body cannot be read
                raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc
            content_type = request.headers.get("content-type")
            if not raw or not content_type or not json_content_type(content_type):
                return None
            try:
                body = body_model.model_validate_json(raw)
            except ValidationError:
                return None  # FastAPI lists the errors, in its shape and order
            arguments: dict[str, Any] = {body_name: body}
            params = request.path_params
            for field in path_fields:
                value, errors = field.validate(params.get(field.alias), {}, loc=("path", field.alias))
                if errors:
                    return None
                arguments[field.name] = value
            if threads.on_loop:  # the command's greenlet runs in a copy of this context (run_on_loop)
                return await threads.run_on_loop(run, request, arguments)  # type: ignore[no-any-return]
            context = contextvars.copy_context()  # the request id the logs carry, as anyio copies it
            limiter = loop_thread_limiter()  # the event loop's: reads and middleware borrow it too
            borrower = object()
            try:
                limiter.acquire_on_behalf_of_nowait(borrower)
            except WouldBlock:
                await limiter.acquire_on_behalf_of(borrower)
            try:
                work: Future[Response] = pool.submit(context.run, run, request, arguments)
            except BaseException:
                limiter.release_on_behalf_of(borrower)
                raise
            try:
                return await asyncio.wrap_future(work)
            finally:
                if work.done():  # (done, failed, or cancelled before it started)
                    limiter.release_on_behalf_of(borrower)
                else:  # cancelled while running: its thread keeps the token until the command ends
                    loop = asyncio.get_running_loop()
                    work.add_done_callback(lambda _: give_back(loop, limiter.release_on_behalf_of, borrower))

        return direct

    def _command_shape(self) -> tuple[type[BaseModel], str, str] | None:
        """(the body model, the body's and the Commands' parameter names) when this route is a command
        route this class can serve directly, else None."""
        dependant, field = self.dependant, self.body_field
        call = dependant.call
        embedded = getattr(self, "_embed_body_fields", True)  # FastAPI's own flag (private: absent -> not served)
        if call is None or inspect.iscoroutinefunction(call) or embedded or field is None:
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



class CommandLane:
    """The layer under the Gatekeeper for a POST: a command request goes straight to its route's direct
    handler, the rest on down the stack.

    Below the Gatekeeper a request passes Starlette's ``ExceptionMiddleware`` (the app's exception
    handlers), FastAPI's ``AsyncExitStackMiddleware`` (for dependencies with ``yield``), the router, the
    route's ``handle`` and FastAPI's ``request_response`` (a ``Request``, two more exit stacks and the
    exception handlers again) before :class:`CommandRoute`'s handler, each a coroutine layer of its own
    on the event loop, the thread every request shares. A command route's direct handler uses none
    of what they add (no dependency with ``yield``, no route body limit), so the lane selects the route
    as the router would (:meth:`api.routes.RouteIndex.select`), serves the command through the same
    exception handlers (what the app's ``ExceptionMiddleware`` holds, looked up as Starlette looks them
    up: a refused command is the same problem document) and sends the route's answer. A request the
    direct handler leaves to FastAPI (an empty, non-JSON or invalid body, a path parameter that does
    not parse, dependency overrides, an app whose lifespan is not running) goes down the whole stack,
    its body replayed, as does any request for another route: every such answer is FastAPI's own.
    ``tests/api/test_command_routes.py`` sends the same requests to a desk as served and to one
    without the lane and compares every answer."""

    def __init__(self, below: ExceptionMiddleware, index: RouteIndex) -> None:
        self.below, self.index = below, index

    @classmethod
    def over(cls, app: ASGIApp) -> CommandLane | None:
        """The lane over ``app``, the layer FastAPI builds under the app's own middleware, when it is the
        stack the lane knows (exception handlers, exit stack, a router with its :class:`RouteIndex`);
        else None (the Gatekeeper then hands every request to ``app``)."""
        stack = getattr(app, "app", None)
        index = getattr(getattr(stack, "app", None), "middleware_stack", None)
        if isinstance(app, ExceptionMiddleware) and isinstance(stack, AsyncExitStackMiddleware) \
                and isinstance(index, RouteIndex):
            return cls(app, index)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self.index.select(scope) if scope["type"] == "http" and scope["method"] == "POST" else None
        direct = getattr(route, "direct", None)
        if (direct is None or getattr(route, "max_body_size", None) is not None
                or _get_scope_effective_route_context(scope) is not None):
            await self.below(scope, receive, send)
            return
        below = self.below
        scope["starlette.exception_handlers"] = (below._exception_handlers, below._status_handlers)
        request = Request(scope, receive, send)
        left = False

        async def serve(scope: Scope, receive: Receive, send: Send) -> None:
            nonlocal left
            answer = await direct(request)
            if answer is None:
                left = True
            else:
                await answer(scope, receive, send)

        await wrap_app_handling_exceptions(serve, request)(scope, receive, send)
        if left:  # FastAPI answers it, from the top of the stack the lane skipped, with the body as read
            await below(scope, replaying(await request.body(), receive), send)
