"""``ticketflow serve`` and ``ticketflow token create``."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from functools import partial
from typing import Annotated, Any
from uuid import UUID

import typer

from projections.doorbell import PATH_VARIABLE as DOORBELL_PATH_VARIABLE
from projections.integrity.sealer import check_anchor_file, sealing_on_close
from projections.readside import ReadSide
from ticketflow.access import TOKEN_ROLES, Permission
from ticketflow.application import TicketDesk
from ticketflow.backup import refuse_while_restoring
from ticketflow.commands.access import IssueToken, RevokeToken
from ticketflow.config import Settings, StorageKind
from ticketflow.domain.values import Channel, Role
from ticketflow.errors import ValidationFailed
from ticketflow.metadata import Caller
from ticketflow_cli import output
from ticketflow_cli.teams import resolve_team
from ticketflow_cli.view_process import ViewProcess

token_app = output.group(help="API tokens.")

#: How long a `serve --workers N` worker may take to answer uvicorn's liveness ping before it is killed
#: and replaced: a starting worker answers only once its interpreter is up, which on a busy machine
#: takes tens of seconds (a hung worker is then replaced this much later).
WORKER_HEALTHCHECK_SECONDS = 120


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="API processes (more than one needs a database file or PostgreSQL).", min=1)] = 1,
) -> None:
    """Serve the HTTP API (and, on the embedded default, the view workers in-process)."""
    import uvicorn

    from api import logs
    from api.app import create_served_app
    from api.metrics import MULTIPROC_VARIABLE
    from api.server import ReusePortWorkers, protocol

    settings: Settings = ctx.obj
    if workers > 1 and settings.storage is StorageKind.MEMORY:
        raise ValidationFailed("--workers above 1 needs a database file or PostgreSQL (a memory store is private to its process)")
    if workers > 1 and settings.storage is StorageKind.SQLITE and settings.runs_embedded_projections \
            and not settings.runs_view_process:
        # Each worker would keep the same views itself: they run in one view process, or in `project`.
        raise ValidationFailed("--workers above 1 keeps the views in serve's view process: unset TICKETFLOW_VIEWS_PROCESS=0, "
                               "or set TICKETFLOW_EMBEDDED_PROJECTIONS=0 and run `ticketflow project` beside")
    refuse_while_restoring(settings)
    desk = TicketDesk(settings)  # fail fast, in one line, when the store is unreachable
    try:
        read_side = ReadSide(desk)
        try:
            read_side.refuse_outdated()  # and when an upgrade changed a view that was not rebuilt
        finally:
            read_side.close()
    finally:
        desk.close()
    # With a view process, the API processes keep no views: the child does, rung by them.
    served = settings.model_copy(update={"embedded_projections": False}) if settings.runs_view_process else settings
    if workers > 1:
        _create_tables(served)
    if settings.seal and settings.runs_embedded_projections and settings.anchor_file is not None:
        check_anchor_file(settings.anchor_file)  # and when the embedded sealer could not anchor its checkpoints
    # SQLite: one view process for every API process; several workers ring it through a named pipe.
    view_process = ViewProcess(named=workers > 1) if settings.runs_view_process else None
    mode = ("views in a child process" if view_process is not None else
            "views in-process" if settings.runs_embedded_projections else "views by `ticketflow project`")
    output.console(stderr=True).print(
        f"serving http://{host}:{port} (console at /, API at /api/v1, {workers} worker(s), {mode}) on {settings.describe_store()}",
        markup=False)
    # Several workers count requests in files of a private directory, so any worker's /metrics
    # answers the total of all of them (prometheus_client's multiprocess mode); removed on exit.
    metrics_dir = tempfile.mkdtemp(prefix="ticketflow-metrics-") if workers > 1 else None
    if metrics_dir is not None:
        os.environ[MULTIPROC_VARIABLE] = metrics_dir  # read by prometheus_client in each worker
    try:
        options: dict[str, Any] = {
            "access_log": False,  # our own JSON access log leaves out query strings and tokens
            "http": protocol(settings.http_parser),
            "log_config": logs.uvicorn_config(),  # uvicorn's lines in the same JSON as ours
            "log_level": "warning",
            # uvicorn kills a worker that does not answer its supervisor's ping in time (5 s by default)
            # and starts another; on a loaded machine a worker still starting (spawned, importing the
            # app) misses it, and so does its replacement: `--workers 2` never came up under load.
            "timeout_worker_healthcheck": WORKER_HEALTHCHECK_SECONDS,
        }
        if view_process is not None:
            view_process.start()
        if view_process is not None and workers == 1:
            uvicorn.run(partial(create_served_app, served, view_process.doorbell), factory=True, host=host, port=port,
                        **options)
        elif workers == 1:
            uvicorn.run("api.app:create_served_app", factory=True, host=host, port=port, **options)
        else:  # a listening socket per worker (SO_REUSEPORT), so connections spread over them: api/server.py
            if view_process is not None and view_process.path is not None:
                os.environ[DOORBELL_PATH_VARIABLE] = view_process.path  # each worker rings it (api.app.create_served_app)
            ReusePortWorkers(uvicorn.Config("api.app:create_served_app", factory=True, host=host, port=port,
                                            workers=workers, **options)).run()
    finally:
        os.environ.pop(DOORBELL_PATH_VARIABLE, None)
        if view_process is not None:
            view_process.stop()  # after the API stopped: the sealer's last checkpoint covers its last command
        if metrics_dir is not None:
            os.environ.pop(MULTIPROC_VARIABLE, None)
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _create_tables(settings: Settings) -> None:
    """Create every table the API processes use, once, before they start: on an empty database two
    workers creating the same table at once collide (PostgreSQL's catalog refuses the second)."""
    import asyncio

    from api.app import create_app

    async def enter_and_leave() -> None:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            pass

    for attempt in range(3):  # `ticketflow project`, started beside, may be creating the same tables
        try:
            asyncio.run(enter_and_leave())
            return
        except Exception:
            if attempt == 2:
                raise


@token_app.command("create")
def create_token(
    ctx: typer.Context,
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(TOKEN_ROLES)}.")],
    agent: Annotated[str | None, typer.Option("--agent", "--agent-id", help="Agents and supervisors: the team member the"
                                                   " token belongs to (their teams come from the directory).")] = None,
    team: Annotated[list[str] | None, typer.Option("--team", help="Integrations: limit to this team, by exact name or id (repeatable; see `ticketflow team list`).")] = None,
    permission: Annotated[list[str] | None, typer.Option("--permission", help="Integrations: a permission, e.g. "
                                                         "tickets:open (repeatable; default: tickets:open, customers:register, events:read).")] = None,
    name: Annotated[str | None, typer.Option(help="What holds it (a system name); agents: default the agent id.")] = None,
) -> None:
    """Issue a token and print it once (only its hash is kept)."""
    settings: Settings = ctx.obj
    if role not in {r.value for r in TOKEN_ROLES}:
        raise ValidationFailed(f"role {role!r} is not one of {', '.join(TOKEN_ROLES)}")
    known = {p.value for p in Permission}
    if unknown := [p for p in permission or [] if p not in known]:
        raise ValidationFailed(f"unknown permission {unknown[0]!r}; one of {', '.join(sorted(known))}")
    desk = sealing_on_close(TicketDesk(settings))
    try:
        team_ids = [resolve_team(desk, t) for t in team or []]
        result, token = desk.issue_token(
            IssueToken(name=name, role=Role(role), agent_id=agent, team_ids=team_ids,
                       permissions=[Permission(p) for p in permission] if permission else None),
            Caller("cli-admin", Role.ADMIN, Channel.CLI),
        )
        principal = desk.authenticate(token) if token else None
    finally:
        desk.close()
    shown = {"token_id": str(result.object_id), "role": role, "agent_id": agent,
             "teams": sorted(str(t) for t in principal.team_ids) if principal else [str(t) for t in team_ids],
             "permissions": sorted(p.value for p in principal.permissions) if principal else None}
    print(json.dumps(shown), file=sys.stderr)
    print(token)


@token_app.command("revoke")
def revoke_token(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(help="The token id printed by `token create`.")],
    reason: Annotated[str, typer.Option(help="Why (kept in the token's history).")] = "",
) -> None:
    """Revoke a token: it stops working at once, in every API process."""
    try:
        parsed = UUID(token_id.strip())
    except ValueError:
        raise ValidationFailed(f"{token_id!r} is not a token id (a UUID)") from None
    desk = sealing_on_close(TicketDesk(ctx.obj))
    desk.revoke_token(RevokeToken(token_id=parsed, reason=reason), Caller("cli-admin", Role.ADMIN, Channel.CLI))
    desk.close()
    print(f"revoked {parsed}", file=sys.stderr)

