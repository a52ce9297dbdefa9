"""What every request passes through: request id, body limit, rate limit, idempotency,
metrics and a JSON access log line (no personal data, no tokens, no query strings)."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api import logs
from api.idempotency import STORE_ERRORS, IdempotencyStore, Outcome, Stored
from api.metrics import Metrics
from api.problems import problem, storage_problem
from ticketflow.privacy.watch import request_arrived

access_log = logging.getLogger("ticketflow.access")

REPLAYED_HEADERS = ("etag", "location", "x-log-position", "content-type")


class TokenBuckets:
    """Per-caller token buckets (per API process): ``rate`` requests/s, bursts of ``burst``."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait(self, who: str) -> float:
        """0 when ``who`` has a token left, else the seconds until it has one (takes nothing)."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(who, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, who: str) -> float:
        """0 when allowed, else the seconds to wait."""
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(who, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[who] = (tokens - 1, now)
                return 0.0
            self._buckets[who] = (tokens, now)
            return (1 - tokens) / self.rate


def caller_scope(request: Request) -> str:
    """A stable, non-reversible name for the caller: the hash of the bearer token itself (so the
    spelling of the header cannot open a second rate-limit bucket or idempotency scope).
    Worked out once per request (the rate limit, the command id and the access log all ask)."""
    state = getattr(request, "scope", {}).get("state")
    known = state.get("caller_scope") if isinstance(state, dict) else None
    if known is not None:
        return str(known)
    client = request.client
    return _caller(state, request.headers.get("authorization", ""), client.host if client else "")


def _caller(state: Any, authorization: str, host: str) -> str:
    """:func:`caller_scope` from the ``Authorization`` header's value and the client's address."""
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        source = "token:" + token.strip()
    else:
        source = f"anonymous:{host}"
    found = hashlib.sha256(source.encode()).hexdigest()[:32]
    if isinstance(state, dict):
        state["caller_scope"] = found
    return found


#: The key of ``scope["state"]`` holding when the request came in (``time.monotonic()``, set by
#: :mod:`api.server`'s protocol as it begins parsing the request).
ARRIVED = "arrived"


def new_request_id() -> str:
    """A random (version 4) UUID in its canonical text, as ``str(uuid.uuid4())`` writes it, without
    building a ``UUID`` object (a tenth of the Gatekeeper's own CPU per request)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


#: The 17th hex digit of a version 4 UUID: its two top bits are the RFC 4122 variant (10).
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}


def route_template(scope: Scope) -> str:
    """The template of the route a request is for (``/api/v1/tickets/{ticket_id}``), never its raw path:
    one metric label per route. A request answered before routing (413, 429, a replayed idempotent
    answer) is matched here; a path no route takes is ``unmatched``."""
    route = scope.get("route")
    if route is not None and getattr(route, "path", None):
        return str(route.path)
    found = _find_route(getattr(getattr(scope.get("app"), "router", None), "routes", ()), scope, "")
    return found[1] if found else "unmatched"


def _find_route(routes: Any, scope: Scope, prefix: str) -> tuple[Match, str] | None:
    """The first route taking the request fully (else the first taking its path only), as a template.
    Routers FastAPI includes as a whole are searched inside, with their prefix."""
    partial = None
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            extra = str(getattr(getattr(route, "include_context", None), "prefix", "") or "")
            if not scope["path"].startswith(extra):
                continue
            found = _find_route(inner.routes, {**scope, "path": scope["path"][len(extra):]}, prefix + extra)
        else:
            match, _ = route.matches(scope)
            found = (match, prefix + route.path) if match is not Match.NONE and getattr(route, "path", None) else None
        if found is not None and found[0] is Match.FULL:
            return found
        partial = partial or found
    return partial


def replaying(body: bytes, receive: Receive) -> Receive:
    """A receive channel that hands the already-read body to the app, then defers to the client."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class Gatekeeper:
    """Plain ASGI middleware (no per-request task group or stream, unlike BaseHTTPMiddleware)."""

    def __init__(
        self, app: ASGIApp, *, idempotency: IdempotencyStore, buckets: TokenBuckets, metrics: Metrics,
        max_body_bytes: int, authenticated: Callable[[Request], bool],
        lane: Callable[[ASGIApp], ASGIApp | None] | None = None,
    ) -> None:
        self.app = app
        #: Where an HTTP request goes on from here: ``lane(app)`` when it makes one (the command lane,
        #: :class:`api.command_routes.CommandLane`), else the next layer itself.
        self.forward: ASGIApp = (lane(app) if lane is not None else None) or app
        self.idempotency, self.buckets, self.metrics, self.max_body_bytes = idempotency, buckets, metrics, max_body_bytes
        self.authenticated = authenticated

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # The headers this layer reads, in one pass (the first of each, as Request.headers.get finds it).
        request_id = length = authorization = key = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                if request_id is None:
                    request_id = value.decode("latin-1")
            elif name == b"content-length":
                if length is None:
                    length = value.decode("latin-1")
            elif name == b"authorization":
                if authorization is None:
                    authorization = value.decode("latin-1")
            elif name == b"idempotency-key" and key is None:
                key = value.decode("latin-1")
        if not request_id or len(request_id) > 100 or not request_id.isprintable():
            request_id = new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        client = scope.get("client")
        who = _caller(state, authorization or "", client[0] if client else "")
        context = logs.request_id.set(request_id)
        # When the request came in (api.server stamps it as the parser begins it): the commands it runs
        # share the erasure watch's looks that began after it (ticketflow.privacy.watch.request_arrived).
        arrival = request_arrived.set(state.get(ARRIVED) or time.monotonic())
        code, replayed = 500, False
        raw_id = request_id.encode("latin-1")

        async def send_with_id(message: Message) -> None:
            nonlocal code, replayed
            if message["type"] == "http.response.start":
                code = message["status"]
                # What MutableHeaders(scope=message)["X-Request-ID"] = request_id does (a copy of the
                # list, the header replaced or added), and whether the answer says it is replayed.
                headers = message["headers"] = list(message["headers"])
                has_id = has_replayed = False
                for name, value in headers:
                    if name == b"x-request-id":
                        has_id = True
                    elif name == b"idempotent-replayed" and not has_replayed:
                        has_replayed, replayed = True, value == b"true"
                if has_id:
                    MutableHeaders(scope=message)["X-Request-ID"] = request_id
                else:
                    headers.append((b"x-request-id", raw_id))
            await send(message)

        method = scope["method"]
        try:
            await self._guarded(scope, receive, send_with_id, method, length, who, key)
        finally:
            template = route_template(scope)
            elapsed = time.perf_counter() - started
            self.metrics.observe_request(method, template, int(code), elapsed)
            logs.info(access_log, "request", {
                "request_id": request_id, "method": method, "route": template, "status": code,
                "ms": round(elapsed * 1000, 2), "caller": who[:12],
                "role": scope["state"].get("role"), "replayed": replayed,
            })
            request_arrived.reset(arrival)
            logs.request_id.reset(context)

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, method: str, length: str | None, who: str, key: str | None,
    ) -> None:
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            too_big = problem(413, "payload_too_large", f"request bodies are limited to {self.max_body_bytes} bytes",
                              Request(scope, receive))
            await too_big(scope, receive, send)
            return
        if length is None and method in ("POST", "PUT", "PATCH"):
            # A body without Content-Length (chunked): read it here, within the limit, then replay it.
            request = Request(scope, receive)
            body = b""
            async for chunk in request.stream():
                body += chunk
                if len(body) > self.max_body_bytes:
                    too_big = problem(413, "payload_too_large", f"request bodies are limited to {self.max_body_bytes} bytes", request)
                    await too_big(scope, receive, send)
                    return
            receive = replaying(body, receive)
        wait = self.buckets.take(who)
        if wait > 0:
            retry = str(max(1, int(wait + 0.999)))
            limited = problem(429, "rate_limited", f"too many requests; retry after {retry} s", Request(scope, receive),
                              headers={"Retry-After": retry})
            await limited(scope, receive, send)
            return
        if method != "POST" or key is None:
            await self.forward(scope, receive, send)
            return
        request = Request(scope, receive)
        if not await run_in_threadpool(self.authenticated, request):
            # An unknown or revoked token neither replays a stored answer nor stores one: the app
            # answers it (401, or 429 once its address has failed too often).
            await self.forward(scope, receive, send)
            return
        await self._idempotent(request, scope, receive, send, who, key)

    async def _idempotent(self, request: Request, scope: Scope, receive: Receive, send: Send, who: str, key: str) -> None:
        if not 1 <= len(key) <= 200 or not key.isprintable():
            bad = problem(400, "bad_idempotency_key", "Idempotency-Key must be 1 to 200 printable characters", request)
            await bad(scope, receive, send)
            return
        body = await request.body()
        if len(body) > self.max_body_bytes:
            too_big = problem(413, "payload_too_large", f"request bodies are limited to {self.max_body_bytes} bytes", request)
            await too_big(scope, receive, send)
            return
        fingerprint = hashlib.sha256(request.method.encode() + request.url.path.encode() + b"\n" + body).hexdigest()
        try:
            outcome, stored = await run_in_threadpool(self.idempotency.begin, who, key, fingerprint)
        except STORE_ERRORS as exc:
            access_log.warning("idempotency store unavailable", extra={"error": type(exc).__name__})
            await storage_problem(exc, request)(scope, receive, send)
            return
        if outcome is Outcome.MISMATCH:
            answer: Response = problem(422, "idempotency_key_reused",
                                       "this Idempotency-Key was used with a different request; use a new key", request)
        elif outcome is Outcome.RUNNING:
            answer = problem(409, "request_in_progress", "a request with this Idempotency-Key is still running; retry shortly",
                             request, headers={"Retry-After": "1"})
        elif outcome is Outcome.REPLAY and stored is not None:
            answer = Response(stored.body, status_code=stored.status, headers={**stored.headers, "Idempotent-Replayed": "true"})
        else:
            answer = None  # type: ignore[assignment]
        if answer is not None:
            await answer(scope, receive, send)
            return

        replay_body = replaying(body, receive)
        # The response is held back until it is stored: a client that retries the moment it
        # has the answer (on any API process) must find it recorded, not "still running".
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        try:
            await self.forward(scope, replay_body, hold)
        except Exception:
            await self._settle(self.idempotency.abandon, who, key)
            raise
        start = next((m for m in held if m["type"] == "http.response.start"), None)
        status = int(start["status"]) if start else 500
        if status < 500 and start is not None:
            headers = MutableHeaders(scope=start)
            kept = {k: v for k, v in headers.items() if k.lower() in REPLAYED_HEADERS}
            body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
            await self._settle(self.idempotency.finish, who, key, Stored(status, kept, body))
        else:
            await self._settle(self.idempotency.abandon, who, key)
        for message in held:
            await send(message)

    @staticmethod
    async def _settle(step: Any, *args: Any) -> None:
        """Record the key's outcome; if the key store is down now, the client still gets the answer
        the command gave. The key stays "running" until a retry takes it over, and that retry's
        command (same command id) is recognised by the desk and answered from what was written."""
        try:
            await run_in_threadpool(step, *args)
        except STORE_ERRORS as exc:
            access_log.warning("idempotency store unavailable", extra={"error": type(exc).__name__})
