"""``ticketflow audit seal | verify | export | rotate-key``: the tamper-evident log from the command line."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from projections.integrity.export import export as write_export
from projections.integrity.export import export_fingerprints
from projections.integrity.keys import KeyRing
from projections.integrity.sealer import Sealer, TamperDetected
from projections.integrity.verifier import verify_store
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow_cli import output
from ticketflow_cli.history import parse_id

#: ``audit verify``'s exit status when nothing is wrong but newer events are not sealed yet.
INCOMPLETE = 3

audit_app = output.group(help="Seal the event log, verify it, export it for offline audit.")
Anchor = Annotated[Path | None, typer.Option(
    "--anchor", help="Append each checkpoint to this file (archive it elsewhere). Default: TICKETFLOW_ANCHOR_FILE.")]


@audit_app.command("seal")
def seal(
    ctx: typer.Context,
    follow: Annotated[bool, typer.Option(help="Keep following the log until stopped (Ctrl-C, SIGTERM).")] = False,
    every_events: Annotated[int, typer.Option(min=1, help="Checkpoint at least every N events.")] = 1000,
    every_seconds: Annotated[float, typer.Option(min=0.1, help="...and at least every T seconds while events arrive.")] = 60.0,
    anchor: Anchor = None,
) -> None:
    """Hash and chain every new event, extend the log tree, write signed checkpoints."""
    settings: Settings = ctx.obj
    desk = TicketDesk(settings)
    sealer = Sealer(desk, every_events=every_events, every_seconds=every_seconds, anchor=anchor or settings.anchor_file)
    console = output.console(stderr=True)
    try:
        done = sealer.catch_up(checkpoint=True)
        console.print(f"sealed {done} events; log sealed up to position {sealer.position()}")
        if follow:
            stop = threading.Event()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, lambda *_: stop.set())
            console.print("following the log; Ctrl-C stops")
            sealer.run(stop)
            sealer.checkpoint(force=False)
    finally:
        sealer.close()
        desk.close()


@audit_app.command("verify")
def verify(
    ctx: typer.Context,
    ticket: Annotated[str | None, typer.Option("--ticket", help="Verify one ticket's (or customer's) history only.")] = None,
    anchor: Annotated[Path | None, typer.Option("--anchor", help="Also check the database's checkpoints against this anchor file.")] = None,
    deep: Annotated[bool, typer.Option(help="Check the heads root of every checkpoint (slower), not only the latest.")] = False,
    snapshots: Annotated[bool, typer.Option(help="Check every snapshot against the replay of its events.")] = True,
    trust: Annotated[str | None, typer.Option("--trust", help="Key id the first checkpoint must be signed by.")] = None,
    workers: Annotated[int | None, typer.Option(
        min=1, help="Processes re-hashing the log (SQLite). Default: the CPUs (at most 4) for logs over 50,000 events.")] = None,
) -> None:
    """Recompute hashes, chains, tree roots and signatures; exit 1 naming the first bad event or checkpoint."""
    desk = TicketDesk(ctx.obj)
    sealer = Sealer(desk)
    try:
        report = verify_store(desk, sealer.store, parse_id(ticket) if ticket else None, anchor, snapshots, deep, trust,
                              workers=workers)
    finally:
        sealer.close()
        desk.close()
    if not report.ok:
        more = f" ({len(report.problems) - 1} more problems)" if len(report.problems) > 1 else ""
        raise TamperDetected(f"tampering detected: {report.problems[0]}{more}")
    output.console().print(report.summary(), markup=False)
    if not report.complete:
        raise typer.Exit(INCOMPLETE)


@audit_app.command("export")
def export(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="An empty (or new) directory.", metavar="DIR")],
    ticket: Annotated[str | None, typer.Option("--ticket", help="Only this ticket's history (proven complete).")] = None,
    since: Annotated[datetime | None, typer.Option("--from", help="Events recorded at or after this time.")] = None,
    until: Annotated[datetime | None, typer.Option("--to", help="Events recorded before this time.")] = None,
) -> None:
    """Write a self-contained export that `python -m ticketflow.verify DIR` checks without the database."""
    desk = TicketDesk(ctx.obj)
    sealer = Sealer(desk)
    try:
        manifest = write_export(desk, sealer.store, directory, parse_id(ticket) if ticket else None, _utc(since), _utc(until))
        covered = sealer.store.read(lambda db: db.scalar(
            "SELECT MAX(position) FROM {p}integrity_events WHERE ordinal < ?", (int(manifest["tree_size"]),)))
        end = desk.log_position()
    finally:
        sealer.close()
        desk.close()
    signers = export_fingerprints(directory)
    output.console().print(
        f"exported {manifest['events']} events proven against checkpoint #{manifest['checkpoint']}"
        f" (tree size {manifest['tree_size']}) to {directory}\n"
        f"signed by key{'s' if len(signers) > 1 else ''} {', '.join(signers)}\n"
        "hand the auditor that fingerprint by another channel than the export, then they run:\n"
        f"  ticketflow-verify {directory} " + " ".join(f"--key {f}" for f in signers[-1:]), markup=False, soft_wrap=True)
    if covered is not None and end > int(covered):
        # The export stops at the newest signed checkpoint; say so when the log has gone on since.
        output.console(stderr=True).print(
            f"note: the checkpoint covers the log up to position {covered}; it has gone on to position {end}."
            " Events after the checkpoint are not in this export: run `ticketflow audit seal`, then export again"
            " to include them.", markup=False, soft_wrap=True)


@audit_app.command("fingerprint")
def fingerprint(ctx: typer.Context) -> None:
    """Print the fingerprint of the desk's signing key: what auditors pass to `ticketflow-verify --key`."""
    settings: Settings = ctx.obj
    print(KeyRing(settings.data_dir / "keys").fingerprint())


@audit_app.command("rotate-key")
def rotate_key(ctx: typer.Context, anchor: Anchor = None) -> None:
    """Make a new signing key, announced in a checkpoint signed by the current one."""
    desk = TicketDesk(ctx.obj)
    sealer = Sealer(desk, anchor=anchor or ctx.obj.anchor_file)
    try:
        sealer.catch_up()
        new = sealer.rotate_key()
    finally:
        sealer.close()
        desk.close()
    output.console().print(f"signing key is now {new}")


def _utc(value: datetime | None) -> datetime | None:
    """A time given without a zone is UTC."""
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
