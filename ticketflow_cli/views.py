"""``ticketflow views | rebuild [VIEW] | project``: the read side from the command line."""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from api import logs
from projections import doorbell
from projections.automation import Automation
from projections.integrity.sealer import Sealer
from projections.readside import VIEWS, ReadSide
from projections.workflow import failed_work
from ticketflow import collector
from ticketflow.application import TicketDesk
from ticketflow.backup import refuse_while_restoring
from ticketflow.config import Settings
from ticketflow.errors import ValidationFailed
from ticketflow.whatif.jobs import WhatifJobs
from ticketflow_cli import output


def _open(settings: Settings, names: list[str] | None = None) -> tuple[TicketDesk, ReadSide]:
    unknown = sorted(set(names or []) - set(VIEWS))
    if unknown:
        raise ValidationFailed(f"unknown view {', '.join(unknown)}; views are {', '.join(VIEWS)}")
    desk = TicketDesk(settings)
    return desk, ReadSide(desk, names)


def views(ctx: typer.Context) -> None:
    """Each view's position in the event log and how far it lags behind."""
    desk, read_side = _open(ctx.obj)
    table = Table(title=f"views of {ctx.obj.describe_store()}")
    for column in ("view", "position", "log position", "lag", "version"):
        table.add_column(column, justify="left" if column == "view" else "right")
    outdated = {name: (stored, code) for name, stored, code in read_side.outdated()}
    for status in read_side.status():
        version = str(read_side.stores[status.name].view.version)
        if status.name in outdated:
            version = f"{outdated[status.name][0]} (code: {outdated[status.name][1]}; rebuild it)"
        table.add_row(status.name, str(status.position), str(status.log_position), str(status.lag), version)
    console = output.console()
    console.print(table)
    if "workflow" in read_side.stores:
        failed = read_side.read("workflow", failed_work)
        if failed:
            console.print(f"automation: {len(failed)} item(s) set aside after an error (see the log): " + ", ".join(
                f"{row['kind']} {row['object_id']}" for row in failed[:10]))
    read_side.close()
    desk.close()


def rebuild(
    ctx: typer.Context,
    view: Annotated[str | None, typer.Argument(help=f"One of: {', '.join(VIEWS)}. All when omitted.")] = None,
) -> None:
    """Empty a view and replay the whole event log into it (safe while the desk keeps writing)."""
    names = [view] if view else list(VIEWS)
    desk, read_side = _open(ctx.obj, names)
    console = output.console()
    total = desk.log_position()
    label = view or "all views"
    started = time.perf_counter()
    with output.progress(
        TextColumn(f"rebuilding {label}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as progress:
        task = progress.add_task(label, total=total)

        def advance(done: int) -> None:
            progress.update(task, advance=done, total=max(total, desk.log_position()))

        read_side.rebuild_all(names, advance)
    elapsed = time.perf_counter() - started
    for name in names:
        position = read_side.position(name)
        console.print(f"{name}: caught up at position {position}")
    console.print(f"rebuilt {', '.join(names)} over {total} events in {elapsed:.1f} s ({total / elapsed if elapsed else 0:,.0f} events/s)")
    read_side.close()
    desk.close()


def project(
    ctx: typer.Context,
    view: Annotated[list[str] | None, typer.Option("--view", help="Run only these views (repeatable).")] = None,
    status_every: Annotated[float, typer.Option(help="Seconds between status lines (0: none).")] = 30.0,
    quiet: Annotated[bool, typer.Option("--quiet", help="Log warnings and errors only (no start, stop or status lines).")] = False,
) -> None:
    """Standalone mode: keep the views caught up in this process until stopped (Ctrl-C, SIGTERM)."""
    refuse_while_restoring(ctx.obj)
    desk, read_side = _open(ctx.obj, view)
    try:
        read_side.refuse_outdated()
    except ValidationFailed:
        read_side.close()
        desk.close()
        raise
    logs.install()  # JSON lines with timestamp and level, as `serve` writes them
    if quiet:  # (`ticketflow demo`'s view process: its terminal shows the demo's progress)
        logging.getLogger("ticketflow").setLevel(logging.WARNING)
    log = logging.getLogger("ticketflow.project")
    stop = threading.Event()
    fd = doorbell.doorbell_fd()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if fd is not None:  # run by `serve`, in its process group: the end of the doorbell's pipe alone stops it
        doorbell.ignore_stopping_signals()
    read_side.start()
    if fd is not None:  # run by `serve` beside its API process (SQLite): woken by its saves, stopped by its end
        worker = read_side.workers["views"]
        doorbell.answer(fd, worker.wakeup.ring, worker.hurry, stop.set)
    automation = Automation(desk, read_side) if ctx.obj.automation and "workflow" in read_side.stores else None
    jobs = WhatifJobs(desk) if automation is not None else None
    if automation is not None:
        automation.start()  # the router, SLA clock, scheduler and outbox follow the same log
    if jobs is not None:
        jobs.start_worker()  # what-if jobs asked for over HTTP run here in scale-out
    sealer = Sealer(desk, anchor=ctx.obj.anchor_file) if ctx.obj.seal else None
    if sealer is not None:
        sealer.start()  # hash chains, the log tree and signed checkpoints
    collector.settle()  # full collections ten times rarer: each paused the views for tens of ms
    log.info("projecting %s from %s; Ctrl-C stops", ", ".join(read_side.stores), ctx.obj.describe_store(),
             extra={"views": list(read_side.stores)})
    while not stop.wait(status_every if status_every > 0 else None):
        # positions and lags only: a status line never carries event contents (no personal data)
        status = read_side.status()
        log.info(", ".join(f"{s.name} {s.position} (lag {s.lag})" for s in status),
                 extra={"views": {s.name: {"position": s.position, "lag": s.lag} for s in status}})
    if automation is not None:
        automation.stop()
    if jobs is not None:
        jobs.close()  # a job still running goes back to the queue
    if sealer is not None:
        sealer.close()
    read_side.close()
    desk.close()
    log.info("stopped")
