"""``ticketflow export xes FILE``: the ticket event log for process-mining tools."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow.errors import ValidationFailed
from ticketflow.export import export_xes
from ticketflow.export.xes import check_target
from ticketflow_cli import output
from ticketflow_cli.reports import SinceOption, UntilOption, parse_time

export_app = output.group(help="Export the event log for outside tools.")


@export_app.command("xes")
def xes(
    ctx: typer.Context,
    file: Annotated[
        Path, typer.Argument(help="The .xes file to write (replaced if it exists).", dir_okay=False)
    ],
    since: SinceOption = None,
    until: UntilOption = None,
) -> None:
    """IEEE 1849-2016 XES: one trace per ticket (opened in [--from, --to) when given), one event per ticket
    event, with activity, resource, role and business time. Personal data is never written."""
    settings: Settings = ctx.obj
    start, end = parse_time(since, "--from", settings.time_zone), parse_time(until, "--to", settings.time_zone)
    if start is not None and end is not None and end <= start:
        raise ValidationFailed("--to must be after --from")
    check_target(file)  # before the progress bar starts
    desk = TicketDesk(settings)
    console = output.console(stderr=True)
    started = time.perf_counter()
    try:
        with output.progress(
            TextColumn("exporting tickets (log position)", markup=False), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), console=console,
        ) as progress:
            task = progress.add_task("xes", total=None)

            def advance(position: int, end_position: int) -> None:
                progress.update(task, completed=position, total=end_position)

            summary = export_xes(desk, file, since=start, until=end, progress=advance)
    finally:
        desk.close()
    elapsed = time.perf_counter() - started
    console.print(
        f"wrote {summary.traces} traces (tickets) and {summary.events} events to {file} "
        f"in {elapsed:.1f} s (log position {summary.log_position})"
    )
