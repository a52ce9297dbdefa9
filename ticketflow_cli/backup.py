"""``ticketflow backup DEST`` and ``ticketflow restore SOURCE``: both stores, erasures kept."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from projections.integrity.sealer import seal_to_end
from projections.readside import ReadSide
from ticketflow import backup as backups
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow_cli import output


def backup(
    ctx: typer.Context,
    dest: Annotated[Path, typer.Argument(help="A new (or empty) directory to write the backup into.")],
) -> None:
    """Copy every store of the desk into DEST while it keeps serving (SQLite: online backup of each
    database file; PostgreSQL: pg_dump of the schema), with the data dir's keys and a manifest."""
    settings: Settings = ctx.obj
    desk = TicketDesk(settings)
    try:
        position = desk.log_position()
    finally:
        desk.close()
    manifest = backups.backup(settings, dest, position)
    size = sum(entry["bytes"] for entry in manifest.files)
    output.console().print(
        f"backed up {settings.describe_store()} into {dest} ({len(manifest.files)} files, {size:,} bytes;"
        f" the log had {position} events when it began)", markup=False, soft_wrap=True)


def restore(
    ctx: typer.Context,
    source: Annotated[Path, typer.Argument(help="A directory written by `ticketflow backup`.")],
    ledger: Annotated[Path | None, typer.Option(
        "--ledger", help="The erasure ledger to re-apply. Default: TICKETFLOW_ERASURE_LEDGER.")] = None,
) -> None:
    """Put a backup in place (the replaced store is moved aside, not deleted), re-apply every erasure
    made since, then bring the views and the seal up to date. Stop `serve` and `project` first."""
    settings: Settings = ctx.obj
    console = output.console()
    erasures, aside = backups.begin_restore(settings, source, ledger, lambda: TicketDesk(settings))
    if aside:
        console.print(f"the replaced store was moved to {aside}", markup=False, soft_wrap=True)
    desk = TicketDesk(settings)
    try:
        erased = backups.reapply_erasures(desk, erasures)
        read_side = ReadSide(desk)
        try:
            read_side.catch_up()  # the views act on the erasures: their plaintext copies are purged
        finally:
            read_side.close()
        seal_to_end(desk)
        position = desk.log_position()
    finally:
        desk.close()
    backups.finish_restore(settings)
    console.print(
        f"restored {source} into {settings.describe_store()}: {len(erased)} erasure(s) made since the backup"
        f" re-applied ({len(erasures)} known); the log is at {position}, every view caught up", markup=False, soft_wrap=True)
