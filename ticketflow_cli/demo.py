"""``ticketflow demo``: build a realistic desk on the configured store and run a month of it."""

from __future__ import annotations

import logging
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from projections import reports
from projections.automation import Automation
from projections.integrity.sealer import sealing_on_close
from projections.outbox import DELIVERIES, SUBSCRIPTIONS
from projections.readside import ReadSide, views_dir
from projections.sql import Db, ts
from projections.tickets import TicketQueries
from projections.webhook_sender import WebhookSender
from projections.workflow import DUE_LIMIT, makes_work, sla_compliance
from projections.workflow import next_due as next_due_work
from ticketflow import collector
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.config import Settings, StorageKind
from ticketflow.domain.values import Status
from ticketflow.errors import ValidationFailed
from ticketflow.simulation import DemoSummary, DeskSimulation
from ticketflow_cli import output
from ticketflow_cli.history import as_of_example
from ticketflow_cli.view_process import ViewProcess

log = logging.getLogger("ticketflow.demo")
R = TypeVar("R")


def demo(
    ctx: typer.Context,
    fresh: Annotated[bool, typer.Option("--fresh", help="Delete the embedded store first and start over.")] = False,
    tickets: Annotated[int, typer.Option(help="Tickets to simulate.", min=1)] = 1000,
    customers: Annotated[int, typer.Option(help="Customers to register.", min=1)] = 200,
    days: Annotated[int, typer.Option(help="Days of history to simulate, ending now.", min=1)] = 30,
    seed: Annotated[int | None, typer.Option(help="Seed for a reproducible run.")] = None,
    workflow: Annotated[bool, typer.Option(help="Route, measure SLAs, send surveys and follow-ups automatically.")] = True,
    end: Annotated[
        datetime | None,
        typer.Option(
            help="When the simulated days end (ISO 8601, UTC unless an offset is given). Default: now; "
            "with --seed, 2026-11-01 00:00 Shanghai, so a seeded run is the same run every time.",
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z"],
        ),
    ] = None,
) -> None:
    """Run a realistic desk: teams, agents, customers, and tickets through their lifecycles."""
    settings: Settings = ctx.obj
    console = output.console()
    if fresh:
        _start_over(settings, console)
    clock = FakeClock(demo_end(end, seed))
    held = demo_cache_size(tickets, customers)
    if 0 < settings.aggregate_cache_size < held:
        # The run is the store's only writer: its aggregate cache holds everything it writes, so no command
        # loads (decodes, decrypts) again a ticket, customer or reminder the LRU cache had let go.
        settings = settings.model_copy(update={"aggregate_cache_size": held})
    # Its cache is kept current without the library's fast-forward (a query per load: ~17,000 a run): the run's
    # saves replace what they changed in it (TicketDesk.batch), and before every command the desk's watch of the
    # log evicts whatever another writer changed meanwhile (ErasureWatch with select_written), as for a command
    # that borrows its aggregate from the cache.
    desk = sealing_on_close(TicketDesk(settings, clock=clock, env={"AGGREGATE_CACHE_FASTFORWARD": "n"}))
    # No view workers: the views the run reads are fed its events in this thread as it writes them (see
    # _Slices), the automation's before each of its looks. On SQLite the others are kept by a child process
    # (`ticketflow project`, as `serve`'s views are) on the other core, rung after each slice; elsewhere
    # (or with TICKETFLOW_VIEWS_PROCESS=0) this thread gives them each slice's events once, at its end.
    read_side = _FedReadSide(desk)
    beside = _views_beside(settings, read_side) if workflow else None
    started = time.perf_counter()
    simulation = DeskSimulation(desk, clock, tickets=tickets, customers=customers, days=days, seed=seed, workflow=workflow)
    slices = _Slices(desk, read_side, AUTOMATION_VIEWS, views=beside.kept if beside is not None else None)
    if beside is not None:
        slices.committed = beside.process.doorbell.saved
    extra_steps = {}
    if "outbox" in read_side.stores:  # as the automation would send them, but not looked for in vain
        extra_steps["webhooks"] = slices.unless_no_deliveries(WebhookSender(read_side, desk, clock))
    automation = Automation(desk, read_side, clock, extra_steps=extra_steps)
    slices.saved = automation.saved  # the SLA clocks take each slice's events once saved (not read back)
    done: Counter[str] = Counter()

    def tick() -> None:
        """The automation looks as a live desk's does after a save: passes until one finds nothing to do
        (a routing changes the ticket, whose SLA is then measured), each pass seeing the last one's writes."""
        for _ in range(SETTLE_PASSES):
            slices.feed(LOOKED_AT_VIEWS)  # the others are fed when the automation reads them (_FedReadSide)
            written = len(desk.batched_events())
            with desk.batch():
                acted = automation.run_once()
            done.update(acted)
            if not any(acted.values()):
                return
            if slices.base is not None and len(desk.batched_events()) == written:
                # It acted but wrote nothing (an SLA look that found no mark due): the views are as the
                # pass found them, so the next pass would find nothing to do at this instant.
                return
            if SKIP_AFTER_WORKLESS and slices.base is not None and max(acted.values()) < DUE_LIMIT and not any(
                makes_work(event) for event in desk.batched_events()[written:]
            ):
                # What it wrote makes no work (SLA marks, a survey issued, a reminder fired: see makes_work)
                # and every kind's due rows were all read: the next pass would find nothing to do at this
                # instant either. The views are given these events with the next look's.
                return

    def next_due(after: datetime, before: datetime) -> datetime | None:
        due = read_side.read("workflow", lambda db: next_due_work(db, ts(after) or "", ts(before) or ""))
        return datetime.fromisoformat(due) if due else None

    try:
        with console.status("registering teams, agents and customers..."):
            simulation.setup()
        # What imports and setup built (the domain's classes, the views' statements, the desk) lives as long
        # as the run: out of the collector's reach, and full collections ten times rarer (as `serve` does).
        collector.settle()
        total = simulation.step_count()
        with output.progress(
            TextColumn("simulating tickets", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("tickets", total=total)
            summary = simulation.run(
                lambda n: progress.update(task, completed=n), tick=tick if workflow else None, next_due=next_due,
                transaction=slices.slice if workflow else None,
            )
        elapsed = time.perf_counter() - started
        with console.status("views catching up..."):
            if beside is not None:
                beside.stop()  # it applies what it has read and seals up to the log's end; the rest is caught up here
            read_side.catch_up()
        _print_summary(console, desk, read_side, settings, summary, elapsed)
        if workflow:
            _print_workflow(console, read_side, summary, done)
    finally:
        if beside is not None:
            beside.stop()  # (a run that failed: the child stops too)
        read_side.close()
        desk.close()


def demo_cache_size(tickets: int, customers: int) -> int:
    """Aggregates the demo's cache holds: every ticket and its reminders (follow-ups, fired reminders),
    every customer, and the teams, policies and calendars."""
    return 3 * tickets + customers + 500


#: Most automation passes at one instant (each sees the previous one's writes; two or three are usual).
SETTLE_PASSES = 10
#: No further pass at an instant after one that wrote only events making no work (see ``tick``; the tests
#: turn it off to show the pass it saves would have found nothing to do).
SKIP_AFTER_WORKLESS = True
#: The views the automation reads (work rows, round-robin, agents' loads): fed as the run writes.
AUTOMATION_VIEWS = ("tickets", "workflow")
#: The automation's views that every look reads (its work rows): fed before each pass. The others of
#: AUTOMATION_VIEWS (agents' loads, read only to route a ticket) are fed what they lack when read.
LOOKED_AT_VIEWS = ("workflow",)


class _FedReadSide(ReadSide):
    """The demo's read side: a read of a view first gives it what the slice wrote that it lacks
    (``on_read``, see :meth:`_Slices.feed`), so a view read only now and then (the tickets view: agents'
    loads, read to route a ticket) takes the events written since in one batch, not one batch a look."""

    on_read: Callable[[str], None] | None = None

    def read(self, name: str, query: Callable[[Db], R]) -> R:
        if self.on_read is not None:
            self.on_read(name)
        return super().read(name, query)


class _Slices:
    """The run written a slice at a time (see ``DeskSimulation.run``): each slice's commands in one batch
    of the desk (one transaction of the event store), and the views the automation reads fed the
    batch's events as it grows, at the log positions they will have, instead of being caught up from
    the log after every save; the other views take the slice's events once, at its end (nothing is
    decoded from the log). Every view holds one transaction for the slice (its rows, the automation's
    bookkeeping, its position), committed right after the events are: a look in the slice sees the
    views as they will be, and a crash leaves them behind the log (caught up later, as after any
    crash), never ahead.

    Should the log not end where the slice expected (another process wrote meanwhile), the views'
    transactions are rolled back and the next slice catches them up from the log first: what the
    automation marked done in that slice is looked at again, and found done (each of its commands is
    recognised by its id, and each work row the log settles is settled)."""

    def __init__(
        self, desk: TicketDesk, read_side: ReadSide, names: tuple[str, ...], views: tuple[str, ...] | None = None
    ) -> None:
        self.desk = desk
        self.read_side = read_side
        self.names = names
        #: The views the slices keep (default: all of the read side's; the others are kept elsewhere).
        self.views = tuple(views) if views is not None else tuple(read_side.stores)
        #: Called once each slice's events are committed (the doorbell of the process keeping the others).
        self.committed: Callable[[], None] | None = None
        self.base: int | None = None  # the log position the slice's first event follows (None: no slice)
        self.fed = dict.fromkeys(names, 0)  # how many of the batch's events each view was given
        self.shown = 0  # how many of the batch's events the last feed showed the views
        self.no_deliveries: bool | None = None  # no webhook delivery pending in this slice (None: not asked)
        #: Told each slice's events once the desk saved them (the automation's SLA clocks take them).
        self.saved: Callable[[Sequence[Any]], None] | None = None
        if isinstance(read_side, _FedReadSide):
            read_side.on_read = self._on_read

    @contextmanager
    def slice(self) -> Iterator[None]:
        views = list(self.views)
        self.read_side.catch_up(views)
        positions = {self.read_side.position(name) for name in views}
        if len(positions) != 1:  # pragma: no cover - catch_up ends every view at the same position
            raise RuntimeError(f"views {', '.join(views)} are not at one position: {sorted(positions)}")
        self.base, self.fed, self.shown = positions.pop(), dict.fromkeys(self.names, 0), 0
        self.no_deliveries = None
        try:
            with self.read_side.holding(views):
                with self.desk.batch():
                    yield
                    self.feed()  # the slice's last events, for the views to commit with them
                    # The other views take the slice's events once, in one batch each (as a rebuild's).
                    events = self.desk.batched_events()
                    others = [name for name in views if name not in self.names]
                    self.read_side.apply(others, [(event, self.base + i) for i, event in enumerate(events, 1)])
                    if events:
                        self.read_side.advance(views, self.base + len(events), previous=self.base)
                if self.committed is not None and events:
                    self.committed()
                if self.saved is not None:
                    self.saved(events)
                if self.desk.log_position() != self.base + len(events):
                    raise _Overtaken(self.base + len(events), self.desk.log_position())
        except _Overtaken as exc:
            log.warning("demo: %s; the views are caught up from the log", exc)
        finally:
            self.base = None

    def feed(self, names: tuple[str, ...] | None = None) -> None:
        """Show the automation's views what the slice's batch holds now (outside a slice: catch them all
        up from the log): ``names`` (default all of them) are given at once what each lacks, the others
        when next read (:meth:`_on_read`): the same events, up to the same point, in log order."""
        if self.base is None:
            self.read_side.catch_up(self.names)
            return
        self.shown = len(self.desk.batched_events())
        for name in names if names is not None else self.names:
            self._give(name)

    def unless_no_deliveries(self, sender: WebhookSender) -> Callable[[], int]:
        """The webhook sender's pass, skipped in a slice that began with no delivery pending: the outbox
        view takes the slice's events only at its end, so none can fall due in it (the sender's query
        would find nothing at every look of the slice)."""

        def run() -> int:
            if self.base is not None:
                if self.no_deliveries is None:
                    self.no_deliveries = not sender.store.read(_any_pending_delivery)
                if self.no_deliveries:
                    return 0
            return sender.run_once()

        return run

    def _on_read(self, name: str) -> None:
        """A view about to be read is given what it lacks of what :meth:`feed` last showed (not what
        was written since: the automation's pass sees its views as they were when it began)."""
        if self.base is not None and name in self.fed:
            self._give(name)

    def _give(self, name: str) -> None:
        fed = self.fed[name]
        if fed >= self.shown:
            return
        assert self.base is not None
        events = self.desk.batched_events()[fed:self.shown]
        previous = self.base + fed
        self.read_side.apply((name,), [(event, previous + i) for i, event in enumerate(events, 1)])
        self.fed[name] = self.shown


class _ViewsBeside:
    """The views the run does not read, kept by a child process (``ticketflow project --view ...``, quiet)
    on the other core: it reads each slice's events from the log once they are committed (rung by
    :attr:`process`'s doorbell) and seals the log as it grows, as ``serve``'s view process does. Stopped
    at the end of the run (it applies what it has read and seals up to the log's end); whatever it had not
    applied the run's read side catches up in its thread."""

    def __init__(self, kept: tuple[str, ...], beside: tuple[str, ...]) -> None:
        self.kept = kept  # the views the run keeps itself
        command = [sys.executable, "-m", "ticketflow_cli", "project", "--status-every", "0", "--quiet"]
        for name in beside:
            command += ["--view", name]
        self.process = ViewProcess(command)
        self._stopped = False

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        """Stop the child, once: a second stop would close its pipe's descriptor number again."""
        if not self._stopped:
            self._stopped = True
            self.process.stop()


def views_read_by_the_run(settings: Settings) -> frozenset[str]:
    """The views the run's looks read, which it keeps itself: the automation's, the outbox (its webhook
    sender reads it) and, with a retention period, the customers (the retention reads them). Each is read
    at a known instant of the run, so it must stand exactly where the run's writes left it."""
    return frozenset(AUTOMATION_VIEWS) | {"outbox"} | ({"customers"} if settings.retention_days else frozenset())


def _views_beside(settings: Settings, read_side: ReadSide) -> _ViewsBeside | None:
    """The child keeping the views the run does not read (see :func:`views_read_by_the_run`), started;
    None where every view stays in this process: a memory store is private to it, a PostgreSQL desk
    runs `ticketflow project` itself, and ``TICKETFLOW_VIEWS_PROCESS=0`` keeps views in-process; and views
    an older version built (which `ticketflow project` refuses to keep until rebuilt) stay here as before."""
    if not settings.runs_view_process or read_side.outdated():
        return None
    read = views_read_by_the_run(settings)
    kept = tuple(name for name in read_side.stores if name in read)
    beside = tuple(name for name in read_side.stores if name not in read)
    if not beside:
        return None
    child = _ViewsBeside(kept, beside)
    try:
        child.start()
    except OSError as exc:  # no process to be had (fork refused: memory, process limits): the run keeps them
        log.warning("demo: the view process could not be started (%s); every view is kept in the run's thread", exc)
        child.stop()  # (its pipe closed)
        return None
    return child


def _any_pending_delivery(db: Db) -> bool:
    """Whether a delivery of an active webhook is pending, however late its next attempt is due."""
    return db.scalar(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM {{p}}{DELIVERIES.name} d JOIN {{p}}{SUBSCRIPTIONS.name} w"
        " ON w.webhook_id = d.webhook_id WHERE d.state = 'pending' AND w.active = 1 LIMIT 1) pending"
    ) not in (None, 0)


class _Overtaken(Exception):
    def __init__(self, expected: int, found: int) -> None:
        super().__init__(f"the log ends at {found}, not at {expected}: another process wrote during the slice")

#: Where a seeded demo's simulated days end: the SLA calendar's business hours and holidays (the demo's
#: month takes in October's Golden Week) then fall on the same instants in every run.
SEEDED_END = datetime(2026, 11, 1, tzinfo=ZoneInfo("Asia/Shanghai"))


def demo_end(end: datetime | None, seed: int | None) -> datetime:
    """The simulated days end at ``end``; else at :data:`SEEDED_END` for a seeded run, else now."""
    if end is not None:
        return end if end.tzinfo is not None else end.replace(tzinfo=UTC)
    return SEEDED_END.astimezone(UTC) if seed is not None else datetime.now(UTC)


def _print_workflow(console: Console, read_side: ReadSide, summary: DemoSummary, done: Counter[str]) -> None:
    """SLA compliance and satisfaction per team: the figures a service review asks for."""
    compliance = read_side.read("workflow", lambda db: sla_compliance(db, "year"))
    met: Counter[tuple[str, str]] = Counter()
    missed: Counter[tuple[str, str]] = Counter()
    for row in compliance:
        key = (row["team_id"] or "", row["metric"])
        met[key] += row["fulfilled"]
        missed[key] += row["breached"]
    ratings = {r["team_id"]: r for r in read_side.read("tickets", lambda db: reports.satisfaction(db, None, None, None))}
    table = Table(title="service standards (SLA met / measured) and satisfaction, per team")
    table.add_column("team")
    metrics = ("first_reply_time", "next_reply_time", "resolution_time")
    for metric in metrics:
        table.add_column(metric.replace("_time", "").replace("_", " "), justify="right")
    table.add_column("satisfaction", justify="right")
    for team_id, name in sorted(summary.teams.items(), key=lambda kv: kv[1]):
        cells = []
        for metric in metrics:
            ok, bad = met[(str(team_id), metric)], missed[(str(team_id), metric)]
            cells.append(f"{ok}/{ok + bad} ({ok / (ok + bad):.0%})" if ok + bad else "-")
        rating = ratings.get(str(team_id))
        cells.append(f"{rating['average']:.2f} ({rating['ratings']})" if rating and rating["ratings"] else "-")
        table.add_row(name, *cells)
    console.print(table)
    console.print(
        "automation: " + ", ".join(f"{kind} {n}" for kind, n in sorted(done.items()) if n)
        + " (actions taken; each is an event naming its rule or policy version)"
    )


def _start_over(settings: Settings, console: Console) -> None:
    if settings.storage is not StorageKind.SQLITE:
        raise ValidationFailed("--fresh only deletes the embedded SQLite store; clear a PostgreSQL schema yourself")
    path = settings.sqlite_path
    for suffix in ("", "-wal", "-shm"):
        candidate = path.with_name(path.name + suffix)
        if candidate.exists():
            candidate.unlink()
    shutil.rmtree(views_dir(settings), ignore_errors=True)
    console.print(f"deleted the store at {path} and its views")


def _print_summary(
    console: Console, desk: TicketDesk, read_side: ReadSide, settings: Settings, summary: DemoSummary, elapsed: float
) -> None:
    counts = read_side.read("tickets", lambda db: TicketQueries.count_by(db, "team_id", "status"))
    by_team: Counter[tuple[str, str]] = Counter()
    for row in counts:
        team = summary.teams.get(UUID(row["team_id"]), row["team_id"]) if row["team_id"] else "no team"
        by_team[(team, row["status"])] += int(row["tickets"])
    statuses = [s.value for s in Status]
    total_tickets = sum(by_team.values())
    table = Table(title=f"{total_tickets} tickets in the store by team and status (from the tickets view)")
    table.add_column("team")
    for status in statuses:
        table.add_column(status, justify="right", no_wrap=True, min_width=len(status))
    table.add_column("total", justify="right", no_wrap=True, min_width=5)
    for team in sorted({team for team, _ in by_team}):
        row_counts = [by_team[(team, s)] for s in statuses]
        table.add_row(team, *map(str, row_counts), str(sum(row_counts)))
    totals = [sum(n for (_, s), n in by_team.items() if s == status) for status in statuses]
    table.add_row("all", *map(str, totals), str(total_tickets), style="bold")
    console.print(table)

    rate = summary.events_written / elapsed if elapsed else 0.0
    console.print(
        f"this run: {len(summary.tickets)} tickets, teams {len(summary.teams)}, agents {summary.agents}, "
        f"customers {summary.customers}, commands {summary.commands} ({sum(summary.refused.values())} refused)"
    )
    console.print(
        f"events written {summary.events_written} in {elapsed:.1f} s ({rate:,.0f} events/s); "
        f"events in the store {desk.log_position()}"
    )
    lags = ", ".join(f"{s.name} {s.position}" for s in read_side.status())
    console.print(f"views caught up: {lags}")
    console.print(f"data: {settings.describe_store()}")
    if summary.tickets:
        sample = summary.tickets[0]
        console.print(f"try: ticketflow history {sample}", soft_wrap=True)
        if (as_of := as_of_example(desk, sample, ZoneInfo(settings.time_zone))) is not None:
            console.print(f"     ticketflow history {sample} --as-of {as_of} --business-time", soft_wrap=True)
