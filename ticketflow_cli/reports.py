"""``ticketflow report sla | data-access | erasures``: compliance reports as a table or as CSV.

Each report opens the desk and the one view it reads, brings that view up to the end
of the log in this process, then queries it (the same queries as the API's
``/api/v1/reports/sla`` and ``/api/v1/reports/data-access``); ``erasures`` reads the log.

Every report takes ``--as-of TIME`` (the report as it stood then, from a temporary copy of its
view, as the API's ``as_of``) and ``--as-of-basis recorded|business`` (what the desk had
recorded by then, or what had happened by then: imported history; default
``TICKETFLOW_AS_OF_BASIS``). When the log holds nothing by then on that basis, a note on
standard error says so and names the earliest event.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from projections.asof import ViewsAsOf, empty_note
from projections.compliance import data_access_report
from projections.operations import team_names
from projections.readside import ReadSide
from projections.sql import Db, ts
from projections.workflow import sla_compliance
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow.errors import ValidationFailed
from ticketflow.privacy.report import erasure_log
from ticketflow.timetravel import TimeBasis, default_basis
from ticketflow_cli import output
from ticketflow_cli.history import parse_id

R = TypeVar("R")

report_app = output.group(help="Compliance reports (SLA, data access) as a table or CSV.")

PERIODS = ("day", "month", "year")
SLA_COLUMNS = ("period", "team_id", "team_name", "priority", "metric", "fulfilled", "breached", "compliance")
DATA_ACCESS_COLUMNS = (
    "period", "actor_id", "actor_role", "customer_id", "reads", "customers", "fields", "purposes",
)
NUMBERS = {"fulfilled", "breached", "compliance", "reads", "customers"}

PeriodOption = Annotated[str, typer.Option(help="day, month or year (in TICKETFLOW_TIME_ZONE, default UTC).")]
SinceOption = Annotated[str | None, typer.Option(
    "--since", "--from", help="From this time (ISO 8601; without an offset, in TICKETFLOW_TIME_ZONE).")]
UntilOption = Annotated[str | None, typer.Option(
    "--until", "--to", help="Before this time (ISO 8601; without an offset, in TICKETFLOW_TIME_ZONE).")]
AsOfOption = Annotated[str | None, typer.Option(
    "--as-of", help="The report as it stood at this instant (ISO 8601; without an offset, in TICKETFLOW_TIME_ZONE), "
                    "on --as-of-basis.")]
BasisOption = Annotated[str | None, typer.Option(
    "--as-of-basis", metavar="recorded|business",
    help="What --as-of goes by: recorded (what the desk had stored by then) or business (what had happened by then: "
         "imported history). Default: TICKETFLOW_AS_OF_BASIS (recorded unless set).")]
CsvOption = Annotated[
    str | None, typer.Option("--csv", help="Write CSV to this file ('-': standard output).", metavar="FILE|-")
]


def parse_time(value: str | None, option: str, zone: str = "UTC") -> datetime | None:
    """An ISO 8601 date or time; without an offset it is taken in the desk's time zone ``zone``."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationFailed(
            f"{option} {value!r} is not an ISO 8601 date or time, e.g. 2026-11-01"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ZoneInfo(zone))


@dataclass(frozen=True)
class AsOf:
    """A report's ``--as-of`` instant (None: now) and the basis it goes by."""

    at: datetime | None
    basis: TimeBasis


def as_of_options(settings: Settings, as_of: str | None, basis: str | None) -> AsOf:
    """``--as-of`` / ``--as-of-basis`` checked (one-line errors); the basis defaults to TICKETFLOW_AS_OF_BASIS."""
    chosen = default_basis(settings)
    if basis is not None:
        try:
            chosen = TimeBasis(basis.strip().lower())
        except ValueError:
            raise ValidationFailed(f"--as-of-basis {basis!r}: expected recorded or business") from None
        if as_of is None:
            raise ValidationFailed("--as-of-basis goes with --as-of (the instant the report is as of)")
    return AsOf(parse_time(as_of, "--as-of", settings.time_zone), chosen)


def _read(desk: TicketDesk, read_side: ReadSide, view: str, query: Callable[[Db], R], at: AsOf) -> R:
    """``query`` on the view now, or as of ``at`` from a temporary copy (a note on stderr when it is empty)."""
    if at.at is None:
        read_side.catch_up([view])
        return read_side.read(view, query)
    views = ViewsAsOf(desk)
    try:
        result, horizon = views.read_as_of(at.at, at.basis, view, query)
    finally:
        views.close()
    if (note := empty_note(at.at, horizon)) is not None:
        output.console(stderr=True).print(f"note: {note}", soft_wrap=True, highlight=False, markup=False)
    return result


def _period(value: str) -> str:
    if value not in PERIODS:
        raise ValidationFailed(f"period {value!r}: expected one of {', '.join(PERIODS)}")
    return value


def read_view(settings: Settings, view: str, query: Callable[[Db], R], at: AsOf | None = None) -> R:
    """Open the desk and one view, catch the view up with the log, and run the query (as of ``at`` when set)."""
    desk = TicketDesk(settings)
    read_side = ReadSide(desk, [view])
    try:
        return _read(desk, read_side, view, query, at or AsOf(None, default_basis(settings)))
    finally:
        read_side.close()
        desk.close()


def read_with_team_names(
    settings: Settings, view: str, query: Callable[[Db], list[dict[str, Any]]], at: AsOf | None = None,
) -> list[dict[str, Any]]:
    """Like :func:`read_view`, and each row's ``team_name`` beside its ``team_id`` (the team's name now, from
    the directory view; empty for no team), as the API's reports answer."""
    desk = TicketDesk(settings)
    read_side = ReadSide(desk, [view, "directory"])
    try:
        rows = _read(desk, read_side, view, query, at or AsOf(None, default_basis(settings)))
        read_side.catch_up(["directory"])
        names = read_side.read("directory", team_names)
    finally:
        read_side.close()
        desk.close()
    return [{**row, "team_name": names.get(str(row["team_id"])) if row.get("team_id") else None} for row in rows]


@contextmanager
def _csv_target(target: str) -> Iterator[IO[str]]:
    if target == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    try:
        with Path(target).open("w", encoding="utf-8", newline="") as handle:
            yield handle
    except OSError as exc:  # no such directory, no permission, no space left (/dev/full)...
        raise ValidationFailed(f"cannot write {target}: {exc.strerror or exc}") from None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return "; ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def write_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str], target: str) -> None:
    """CSV with a header row; dict cells (fields, purposes) as ``name=count; name=count``."""
    with _csv_target(target) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])


def _show(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column in NUMBERS else "left")
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    output.console(min_width=160).print(table)


def _emit(rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str, target: str | None) -> None:
    if target is not None:
        write_csv(rows, columns, target)
        if target != "-":
            output.console(stderr=True).print(f"{len(rows)} rows written to {target}")
    else:
        _show(rows, columns, title)


def _title(title: str, at: AsOf) -> str:
    return title if at.at is None else f"{title}, as of {at.at.isoformat()} ({at.basis} time)"


@report_app.command("sla")
def sla(
    ctx: typer.Context, period: PeriodOption = "month", since: SinceOption = None, until: UntilOption = None,
    csv_file: CsvOption = None, as_of: AsOfOption = None, as_of_basis: BasisOption = None,
) -> None:
    """Service-standard compliance: SLA targets met per period, team, priority and metric."""
    period = _period(period)
    zone = ctx.obj.time_zone
    at = as_of_options(ctx.obj, as_of, as_of_basis)
    start, end = ts(parse_time(since, "--since", zone)), ts(parse_time(until, "--until", zone))
    rows = read_with_team_names(ctx.obj, "workflow", lambda db: sla_compliance(db, period, start, end, zone=zone), at)
    _emit(rows, SLA_COLUMNS, _title(f"SLA compliance per {period} ({zone})", at), csv_file)


@report_app.command("data-access")
def data_access(
    ctx: typer.Context, period: PeriodOption = "month", since: SinceOption = None, until: UntilOption = None,
    by_customer: Annotated[bool, typer.Option("--by-customer", help="One row per customer too.")] = False,
    actor: Annotated[str | None, typer.Option(help="Only this actor's reads.")] = None,
    customer: Annotated[
        str | None, typer.Option(help="Only reads of this customer's data (customer id).")
    ] = None,
    csv_file: CsvOption = None, as_of: AsOfOption = None, as_of_basis: BasisOption = None,
) -> None:
    """Who read whose personal data: unmasked reads per period and actor, with fields and purposes."""
    period = _period(period)
    zone = ctx.obj.time_zone
    at = as_of_options(ctx.obj, as_of, as_of_basis)
    start, end = ts(parse_time(since, "--since", zone)), ts(parse_time(until, "--until", zone))
    if customer is not None:
        customer = str(parse_id(customer, "customer"))
    rows = read_view(ctx.obj, "access", lambda db: data_access_report(
        db, period, start, end, by_customer=by_customer, actor_id=actor, customer_id=customer, zone=zone), at)
    columns = DATA_ACCESS_COLUMNS if by_customer else tuple(
        c for c in DATA_ACCESS_COLUMNS if c != "customer_id"
    )
    _emit(rows, columns, _title(f"unmasked reads of personal data per {period} ({zone})", at), csv_file)



ERASURE_COLUMNS = (
    "customer_id", "basis", "reference", "requested_at", "requested_by", "requested_by_role", "completed_at", "tickets",
)


@report_app.command("erasures")
def erasures(ctx: typer.Context, csv_file: CsvOption = None, as_of: AsOfOption = None,
             as_of_basis: BasisOption = None) -> None:
    """The erasure and retention log: every erasure, its basis and case, who asked, when it completed."""
    at = as_of_options(ctx.obj, as_of, as_of_basis)
    desk = TicketDesk(ctx.obj)
    try:
        rows = erasure_log(desk, as_of=at.at, business=at.basis is TimeBasis.BUSINESS)
    finally:
        desk.close()
    _emit(rows, ERASURE_COLUMNS, _title("erasures (on request and by retention)", at), csv_file)
