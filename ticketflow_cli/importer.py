"""``ticketflow import FORMAT FILE``: migrate another desk's history, with its original times and people."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from projections.integrity.sealer import sealing_on_close
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow.importing import FORMATS, ImportSummary, import_source, load_source
from ticketflow_cli import output

_STAGES = {"directory": "teams, members, requesters", "tickets": "tickets"}


def import_(
    ctx: typer.Context,
    format: Annotated[
        str, typer.Argument(help=f"The log's format: {', '.join(sorted(FORMATS))}.", metavar="FORMAT")
    ],
    file: Annotated[Path, typer.Argument(help="The CSV log (XES columns).", metavar="FILE")],
    limit_cases: Annotated[
        int | None, typer.Option("--limit-cases", help="Import only the first N cases of the file.", min=1)
    ] = None,
) -> None:
    """Import historical tickets from an event log; re-running it writes nothing new."""
    settings: Settings = ctx.obj
    source = load_source(format, file, limit_cases=limit_cases)  # checks everything before writing
    console = output.console()
    desk = sealing_on_close(TicketDesk(settings))
    try:
        columns = (TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console) as progress:
            tasks: dict[str, TaskID] = {}

            def report(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = progress.add_task(f"importing {_STAGES.get(stage, stage)}", total=total)
                progress.update(tasks[stage], completed=done, total=total)

            summary = import_source(desk, source, progress=report)
        _print_summary(console, summary, desk, settings)
    finally:
        desk.close()
    if summary.refused:
        output.console(stderr=True).print(
            f"error: the desk refused {sum(summary.refused.values())} commands (the first are listed above)",
            highlight=False,
        )
        raise typer.Exit(1)


def _print_summary(console: Console, summary: ImportSummary, desk: TicketDesk, settings: Settings) -> None:
    console.print(f"import of {summary.path} as {summary.format}", highlight=False)
    table = Table()
    table.add_column("what")
    table.add_column("count", justify="right")
    rate = summary.events_written / summary.elapsed if summary.elapsed else 0.0
    for what, count in (
        ("cases", summary.cases),
        ("rows", summary.rows),
        ("teams", summary.teams),
        ("team members", summary.members),
        ("requesters", summary.customers),
        ("commands and facts", summary.commands),
        ("  replayed (already imported)", summary.replayed),
        ("  refused", sum(summary.refused.values())),
        ("events written", summary.events_written),
        ("skipped (wrote nothing)", sum(summary.skipped.values())),
    ):
        table.add_row(what, f"{count:,}")
    console.print(table)
    if summary.skipped:
        skipped = Table(title="skipped, by reason")
        skipped.add_column("reason")
        skipped.add_column("count", justify="right")
        for reason, count in summary.skipped.most_common():
            skipped.add_row(reason, f"{count:,}")
        console.print(skipped)
    for error, count in summary.refused.most_common():
        console.print(f"refused {error}: {count:,}", highlight=False)
    for message in summary.refusals:
        console.print(f"  {message}", highlight=False, markup=False)
    console.print(
        f"{summary.elapsed:.1f} s ({rate:,.0f} events/s); events in the store {desk.log_position():,}; "
        f"data: {settings.describe_store()}",
        highlight=False,
    )
    if summary.tickets:
        console.print(f"try: ticketflow history {next(iter(summary.tickets.values()))}", highlight=False)
