"""The FastAPI application: wiring only. Rules live in ``ticketflow``, reads in ``projections``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import uuid4

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.telemetry._asgi import NativeTelemetry

from api import console, docs, logs, problems, routes
from api import openapi as openapi_extras
from api.command_routes import CommandLane, CommandThreads
from api.deps import Services, authenticate, authorize, bearer, commands
from api.deps import reads as reads_dependency
from api.problems import ApiProblem
from api.idempotency import IdempotencyStore
from api.metrics import DeskCollector, Metrics, multiprocess_dir
from api.middleware import Gatekeeper, TokenBuckets
from api.routers import customers, health, policies, reads, teams, tickets
from api.routers import mailboxes, privacy, webhooks
from api.routers import problems as problem_library
from api.routers import reminders, reply_templates, surveys
from api.routers import audit as audit_router
from api.routers import compliance, imports, whatif
from projections.automation import Automation
from projections.doorbell import Doorbell, doorbell_path
from projections.integrity.sealer import Sealer, open_seal_store
from projections.readside import ReadSide
from ticketflow.application import TicketDesk
from ticketflow import collector
from ticketflow.clock import Clock
from ticketflow.config import Settings
from ticketflow.whatif.jobs import WhatifJobs

DESCRIPTION = """
ticketflow's HTTP API. Every change is a command recorded as immutable events;
reads come from views built from those events.

* **Auth**: `Authorization: Bearer <token>` (`ticketflow token create`).
* **Writes** answer with `ETag` (the object's version) and `X-Log-Position`; send `If-Match`
  to refuse stale writes (412) and `Idempotency-Key` to retry safely. A write answers
  `{id, version, position, events, replayed}`; send `Prefer: return=representation` (RFC 7240) on a
  ticket or customer write to get the object as its `GET` shows it instead (`Preference-Applied`).
* **Reads** accept `min_position` (or `X-Min-Position`) to wait until the views include your write.
* **Personal data** is masked unless your role may unmask it and you send `X-Access-Purpose`;
  such reads are recorded (`GET /api/v1/access-log`).
* **Errors** are RFC 9457 `application/problem+json`.
"""


class SteadyTelemetry(NativeTelemetry):
    """FastAPI's OpenTelemetry switch, asked at most once a second instead of for every request.

    ``FastAPI.__call__`` asks whether a tracer, meter or logger provider is configured before each
    request (three ``os.environ`` look-ups that miss, when none is): 1.5 % of the event loop's CPU
    per command. A provider set (or named in the environment) while the server runs is picked up
    within a second; until then requests are served as before, unobserved."""

    RECHECK_SECONDS = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._answer, self._asked_at = False, -self.RECHECK_SECONDS

    def enabled(self) -> bool:
        now = time.monotonic()
        if now - self._asked_at >= self.RECHECK_SECONDS:
            self._answer, self._asked_at = super().enabled(), now
        return self._answer


def create_served_app(settings: Settings | None = None, doorbell: Doorbell | None = None) -> FastAPI:
    """The app ``ticketflow serve`` runs (uvicorn's factory): the collector skips what start-up built.
    ``doorbell``: the view process ``serve`` runs beside it (SQLite), rung after each save. A worker of
    ``serve --workers N`` on SQLite is handed that view process's named doorbell in its environment
    (``projections.doorbell.PATH_VARIABLE``): it rings it and keeps no views of its own."""
    if doorbell is None and (path := doorbell_path()) is not None:
        doorbell = Doorbell.at(path)
        settings = (settings or Settings()).model_copy(update={"embedded_projections": False})
    return create_app(settings, freeze_gc=True, doorbell=doorbell)


def create_app(
    settings: Settings | None = None, *, clock: Clock | None = None, freeze_gc: bool = False,
    doorbell: Doorbell | None = None,
) -> FastAPI:
    """``doorbell``: the views are kept by another process listening on it (``serve``'s view process on
    SQLite): every save rings it, and a read waiting for its own write has it apply what is waiting."""
    settings = settings or Settings()
    logs.install()
    desk = TicketDesk(settings, clock=clock)
    read_side = ReadSide(desk)
    if doorbell is not None:
        desk.on_saved(doorbell.saved)
        read_side.hurry_elsewhere = doorbell.hurry
    automation = Automation(desk, read_side)
    tag = uuid4().hex[:12]
    # Embedded: one seal store for the sealer and the metrics (an in-memory store is private to its opener).
    # Otherwise `project` seals: the metrics open its store at their first scrape, not while it may be
    # creating the tables.
    seal_store = open_seal_store(desk) if settings.seal and settings.runs_embedded_projections else None
    later = (lambda: open_seal_store(desk)) if settings.seal and seal_store is None else None
    metrics = Metrics(DeskCollector(read_side, desk.clock.now, seal_store, later), multiprocess_dir())
    services = Services(
        settings=settings,
        desk=desk,
        read_side=read_side,
        idempotency=IdempotencyStore(settings, tag),
        metrics=metrics,
        buckets=TokenBuckets(settings.rate_limit_per_second, settings.rate_limit_burst),
        auth_failures=TokenBuckets(settings.auth_failures_per_second, settings.auth_failure_burst),
        whatif=WhatifJobs(desk),
    )

    command_threads = CommandThreads(on_loop=settings.runs_commands_on_loop)  # where ticket commands run, while the app runs
    sealer: list[Sealer | None] = [None]  # the embedded sealer, while the app runs
    running = [0]  # lifespans entered (a test client and a contract checker may both enter one)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        running[0] += 1
        if running[0] == 1:
            command_threads.open()
        if running[0] == 1 and settings.runs_embedded_projections:
            read_side.start()
            if settings.automation:
                automation.start()
                services.whatif.start_worker()  # what-if jobs run where the automation runs
            if settings.seal:
                sealer[0] = Sealer(desk, anchor=settings.anchor_file, store=seal_store)
                sealer[0].start()
        if running[0] == 1 and freeze_gc:
            collector.settle()  # what start-up built, out of the collector's reach; full collections rarer
        try:
            yield
        finally:
            running[0] -= 1
            if running[0] == 0:
                await command_threads.finish_loop_commands()  # the commands still running finish first,
                command_threads.close()  # while the desk is open
                automation.stop()
                services.whatif.close()  # a job still running goes back to the queue
                if sealer[0] is not None:
                    sealer[0].close()
                if seal_store is not None:
                    seal_store.datastore.close()  # type: ignore[attr-defined]
                metrics.close()
                metrics.desk_facts.close()
                read_side.close()
                services.idempotency.close()
                desk.close()

    app = FastAPI(title="ticketflow", version="0.1.0", description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None, generate_unique_id_function=openapi_extras.operation_id)  # FastAPI's pages load from CDNs: api/docs.py serves them
    if isinstance(getattr(app, "_native_telemetry", None), NativeTelemetry):  # (FastAPI's own, private)
        app._native_telemetry = SteadyTelemetry(app._telemetry)
    app.state.services = services
    app.state.command_threads = command_threads
    docs.install(app)  # /docs, /redoc and their assets, from this server (desks run offline)
    problems.install(app)
    def authenticated(request: Request) -> bool:
        try:
            authenticate(request, services)
        except ApiProblem:
            return False
        return True

    app.add_middleware(
        Gatekeeper, idempotency=services.idempotency, buckets=services.buckets, metrics=metrics,
        max_body_bytes=settings.max_body_bytes, authenticated=authenticated, lane=CommandLane.over,
    )
    for router in (health.router, tickets.router, customers.router, teams.router, reads.router, policies.router,
                   reminders.router, surveys.router, problem_library.router, webhooks.router, mailboxes.router, privacy.router,
                   compliance.router, audit_router.router, reply_templates.router, imports.router, whatif.router):
        # every route: its rule in ticketflow.access (a write route's: checked by api.deps.commands)
        routes.serve(app, router, dependencies=[Depends(authorize)], unless_depends_on=commands)
    console.install(app)  # the web console at / (its pages' rules: ticketflow.access.CONSOLE_ROUTES)
    routes.RouteIndex(app.router).install()  # a request tries only the routes its path's start can match

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            spec = openapi_extras.document_command_headers(spec, app.routes, commands)
            spec = openapi_extras.document_read_security(spec, app.routes, reads_dependency)
            spec.setdefault("components", {}).setdefault("securitySchemes", {}).setdefault(
                openapi_extras.BEARER_SCHEME, bearer.model.model_dump(by_alias=True, exclude_none=True))
            app.openapi_schema = openapi_extras.describe(problems.problem_media_types(spec))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
