"""``ticketflow import PRESET SOURCE`` / ``--mapping FILE SOURCE``: migrate another desk's history, with its
original times and people (``--dry-run``: plan and report, write nothing)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from projections.integrity.sealer import sealing_on_close
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow.errors import ValidationFailed
from ticketflow.importing import (
    FORMATS,
    DryRun,
    ImportSummary,
    Source,
    import_source,
    load_source,
    write_rejects,
)
from ticketflow.importing import dry_run as plan_dry_run
from ticketflow_cli import output

_STAGES = {"directory": "teams, members, requesters", "tickets": "tickets"}


def import_(
    ctx: typer.Context,
    arguments: Annotated[
        list[str],
        typer.Argument(
            help=f"PRESET SOURCE ({', '.join(FORMATS)}), or just SOURCE with --mapping FILE.",
            metavar="[PRESET] SOURCE",
            show_default=False,
        ),
    ],
    mapping: Annotated[
        Path | None,
        typer.Option("--mapping", help="A TOML mapping file (columns, times, value maps) instead of a preset.", dir_okay=False),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read and plan everything, report it, write nothing.")
    ] = False,
    rejects: Annotated[
        Path | None,
        typer.Option("--rejects", help="Where the rejected rows go (CSV: row, case, reason); default SOURCE-NAME.rejects.csv here.", dir_okay=False),
    ] = None,
    limit_cases: Annotated[
        int | None, typer.Option("--limit-cases", help="Import only the first N cases of the file.", min=1)
    ] = None,
) -> None:
    """Import historical tickets from another desk's log; re-running it writes nothing new."""
    settings: Settings = ctx.obj
    preset, file = _preset_and_source(arguments, mapping)
    source = load_source(preset, file, limit_cases=limit_cases, mapping=mapping)  # checks everything before writing
    console = output.console()
    if dry_run:
        if rejects is not None and source.rejects:
            write_rejects(rejects, source.rejects)
        _print_dry_run(console, plan_dry_run(source), source, rejects)
        return
    if source.rejects:
        rejects = rejects or Path(f"{file.name}.rejects.csv")
        write_rejects(rejects, source.rejects)
    desk = sealing_on_close(TicketDesk(settings))
    try:
        columns = (
            TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
            TaskProgressColumn(), RateColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        )
        with output.progress(*columns, console=console) as progress:
            tasks: dict[str, TaskID] = {}

            def report(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    tasks[stage] = progress.add_task(f"importing {_STAGES.get(stage, stage)}", total=total)
                progress.update(tasks[stage], completed=done, total=total)

            summary = import_source(desk, source, progress=report)
        _print_summary(console, summary, desk, settings)
    finally:
        desk.close()
    if source.rejects:
        console.print(
            f"{len(source.rejects):,} rows rejected ({source.log.left_out:,} cases left out whole): {rejects}",
            highlight=False, markup=False,
        )
    if summary.refused:
        output.console(stderr=True).print(
            f"error: the desk refused {sum(summary.refused.values())} commands (the first are listed above)",
            highlight=False,
        )
        raise typer.Exit(1)


class RateColumn(ProgressColumn):
    """Cases per second."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f}/s")


def _preset_and_source(arguments: list[str], mapping: Path | None) -> tuple[str | None, Path]:
    if mapping is not None:
        if len(arguments) != 1:
            raise ValidationFailed("with --mapping FILE, give only the SOURCE (no preset name)")
        return None, Path(arguments[0])
    if len(arguments) != 2:
        raise ValidationFailed(f"give PRESET SOURCE (presets: {', '.join(FORMATS)}) or --mapping FILE SOURCE")
    return arguments[0], Path(arguments[1])


def _print_dry_run(console: Console, report: DryRun, source: Source, rejects: Path | None) -> None:
    console.print(f"dry run of {report.path} as {report.format}: nothing written", highlight=False, markup=False)
    table = Table()
    table.add_column("what")
    table.add_column("count", justify="right")
    for what, count in (
        ("cases", report.cases),
        ("rows", report.rows),
        ("rows rejected", report.rejected_rows),
        ("cases left out (a row rejected)", report.left_out),
        ("teams", report.teams),
        ("team members", report.members),
        ("requesters", report.customers),
        ("tickets", report.tickets),
        ("facts (imported events)", report.facts),
        ("commands and facts", report.commands),
        ("skipped (would write nothing)", sum(report.skipped.values())),
        ("unmapped values", sum(report.unmapped.values())),
    ):
        table.add_row(what, f"{count:,}")
    console.print(table)
    for reject in source.rejects[:10]:
        console.print(f"rejected row {reject.line}: {reject.reason}", highlight=False, markup=False)
    if len(source.rejects) > 10:
        where = f"all in {rejects}" if rejects else "--rejects FILE writes them all"
        console.print(f"... {len(source.rejects) - 10:,} more rejected rows ({where})", highlight=False, markup=False)
    for value, count in report.unmapped.most_common(20):
        console.print(f"unmapped {value}: {count:,} rows (default kept)", highlight=False, markup=False)
    for reason, count in report.skipped.most_common():
        console.print(f"skipped {count:,}: {reason}", highlight=False, markup=False)
    for message in report.invalid[:10]:
        console.print(f"would be refused: {message}", highlight=False, markup=False)
    if report.sample:
        # no subject and no requester: personal data stays out of terminals and their logs
        sample = Table(title="a sample of the tickets it would write (as their history leaves them)")
        for column in ("case", "status", "team", "assignee", "priority", "category", "facts"):
            sample.add_column(column)
        for ticket in report.sample:
            sample.add_row(
                ticket.case_id, ticket.status, ticket.team or "-", ticket.assignee or "-",
                ticket.priority, ticket.category, str(ticket.facts),
            )
        console.print(sample)


def _print_summary(console: Console, summary: ImportSummary, desk: TicketDesk, settings: Settings) -> None:
    console.print(f"import of {summary.path} as {summary.format}", highlight=False)
    table = Table()
    table.add_column("what")
    table.add_column("count", justify="right")
    rate = summary.events_written / summary.elapsed if summary.elapsed else 0.0
    for what, count in (
        ("cases", summary.cases),
        ("rows", summary.rows),
        ("rows rejected", summary.rejected_rows),
        ("cases left out (a row rejected)", summary.left_out),
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
