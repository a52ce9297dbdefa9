"""Running an import: the directory first, then each case as one ticket, through the desk.

The directory (teams, members, requesters) and each ticket's opening are commands, run
through :meth:`TicketDesk.handle` with the original person as an agent calling via
``import`` (so the desk accepts its historical time and marks its events imported).
The rest of a case is its history: :class:`RecordImportedFacts`, which the desk keeps as
facts at their original times (no lifecycle guard re-decides them), checking their shape.
Every fact of a case is built and validated before its ticket is opened, so a case whose
row cannot be a fact writes nothing.

Re-running an import writes nothing new: creations are recognised by their derived ids,
and for an object that already existed the importer reads the command and fact ids in its
history first, because an aggregate only remembers its last 64 and a long ticket or a big
team has more.
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar
from uuid import UUID, uuid5

from eventsourcing.persistence import IntegrityError
from pydantic import ValidationError

from ticketflow.application import ID_NAMESPACE, CommandResult, TicketDesk
from ticketflow.commands import (
    AddTeamMember,
    Command,
    FormTeam,
    ImportedFact,
    RecordImportedFacts,
    RegisterCustomer,
)
from ticketflow.commands.imported import MAX_FACTS
from ticketflow.domain import Customer, Team, Ticket, TicketflowAggregate
from ticketflow.errors import NotFound, TicketflowError, ValidationFailed
from ticketflow.importing.directory import Directory, DirectoryIds, command_id, system_caller
from ticketflow.importing.engine import Format
from ticketflow.importing.formats import get_format, mapped_format
from ticketflow.importing.plan import NotInDirectory, TicketPlan
from ticketflow.importing.xes import Case, Log, Reject, read_log
from ticketflow.metadata import Caller

#: ``progress(stage, done, total)``: stage is "directory" (teams, members, requesters) or "tickets".
Progress = Callable[[str, int, int], None]

#: Cases written per transaction: big enough that the fsync is no longer the cost, small enough
#: that the progress moves and a chunk's events (a few thousand) sit in memory comfortably.
CASES_PER_WRITE = 200

T = TypeVar("T")

#: How many refusal messages a summary keeps for diagnosis.
KEPT_REFUSALS = 20

ABANDONED = "rest of the case after a refused command"


@dataclass(frozen=True)
class Source:
    """A checked log and the format that reads it, with the rows it rejected."""

    format: Format
    log: Log
    rejects: tuple[Reject, ...] = ()


@dataclass
class ImportSummary:
    """What an import did. ``commands`` counts every planned command and imported fact that ran
    or was recognised as already done (``replayed``); ``skipped`` counts rows, or parts of rows,
    that wrote nothing, by reason; ``refused`` counts commands (a batch of facts is one) the desk
    refused, by error."""

    format: str
    path: Path
    cases: int = 0
    rows: int = 0
    rejected_rows: int = 0
    left_out: int = 0  # cases with a rejected row, not imported
    teams: int = 0
    members: int = 0
    customers: int = 0
    commands: int = 0
    events_written: int = 0
    replayed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    refusals: list[str] = field(default_factory=list)
    tickets: dict[str, UUID] = field(default_factory=dict)  # case id -> ticket id
    elapsed: float = 0.0

    def copy(self) -> ImportSummary:
        """A copy to go back to (its counters and collections copied; their items are immutable)."""
        return replace(
            self, skipped=Counter(self.skipped), refused=Counter(self.refused), refusals=list(self.refusals),
            tickets=dict(self.tickets),
        )


def load_source(
    format_name: str | None, path: Path, *, limit_cases: int | None = None, mapping: Path | None = None
) -> Source:
    """Check the format (a preset's name, or a ``mapping`` file) and read the log; raises
    ValidationFailed before anything is written."""
    if mapping is not None:
        fmt = mapped_format(mapping)
    elif format_name is not None:
        fmt = get_format(format_name)
    else:
        raise ValidationFailed("name a preset or give a mapping file (--mapping FILE)")
    log, rejects = read_log(path, fmt.mapping, limit_cases=limit_cases)
    return Source(fmt, log, tuple(rejects))


def write_rejects(path: Path, rejects: Sequence[Reject]) -> None:
    """The rejected rows as CSV: row (the line in the source), case, reason."""
    try:
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["row", "case", "reason"])
            for reject in rejects:
                writer.writerow([reject.line, reject.case_id, reject.reason])
    except OSError as exc:
        raise ValidationFailed(f"cannot write the rejects file {path}: {exc.strerror or exc}") from None


def import_file(
    desk: TicketDesk,
    format_name: str,
    path: Path,
    *,
    limit_cases: int | None = None,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import the first ``limit_cases`` cases (all when None) of the log at ``path``."""
    return import_source(desk, load_source(format_name, path, limit_cases=limit_cases), progress=progress)


def import_source(desk: TicketDesk, source: Source, *, progress: Progress | None = None) -> ImportSummary:
    return _Importer(desk, source, progress or (lambda stage, done, total: None)).run()


class _Importer:
    def __init__(self, desk: TicketDesk, source: Source, progress: Progress) -> None:
        self.desk = desk
        self.format = source.format
        self.log = source.log
        self.progress = progress
        self.system = system_caller(self.format.name)
        self.summary = ImportSummary(
            self.format.name, self.log.path, len(self.log.cases), self.log.rows, len(source.rejects), self.log.left_out
        )
        self._case = ""
        self.actor = self.format.mapping.column("actor") or ""

    def run(self) -> ImportSummary:
        started = time.perf_counter()
        directory = self.format.directory(self.log.cases)
        ids = self._batched(lambda: self._directory(directory))
        cases, total = self.log.cases, len(self.log.cases)
        for start in range(0, total, CASES_PER_WRITE):
            chunk = cases[start : start + CASES_PER_WRITE]
            self._batched(lambda chunk=chunk: self._tickets(chunk, ids))  # type: ignore[misc]
            self.progress("tickets", start + len(chunk), total)
        self.summary.elapsed = time.perf_counter() - started
        return self.summary

    def _batched(self, work: Callable[[], T]) -> T:
        """Run ``work`` with its commands saved together, in one transaction (all or nothing: an
        import killed midway has written whole chunks, and a re-run recognises them). Should another
        writer have created one of its objects meanwhile, the chunk runs again one command at a time,
        recognising what exists."""
        before = self.summary.copy()
        try:
            with self.desk.batch():
                return work()
        except IntegrityError:
            self.summary = before
            return work()

    # ------------------------------------------------------------- directory
    def _directory(self, directory: Directory) -> DirectoryIds:
        summary = self.summary
        summary.teams, summary.members = len(directory.teams), directory.member_count
        summary.customers = len(directory.customers)
        total = summary.teams + summary.members + summary.customers
        done = 0
        ids = DirectoryIds(teams={}, customers={})
        source = self.format.name
        for customer in sorted(directory.customers.values(), key=lambda c: (c.since, c.key)):
            registered = self._create(
                Customer,
                RegisterCustomer(
                    command_id=command_id(source, "customer", customer.key), occurred_at=customer.since,
                    name=customer.name, company=customer.company, preferred_language=customer.language,
                ),
                self.system,
            )
            if registered is not None:
                ids.customers[customer.key] = registered[0]
            done += 1
            self.progress("directory", done, total)
        for team in sorted(directory.teams.values(), key=lambda t: (t.since, t.name)):
            formed = self._create(
                Team,
                FormTeam(
                    command_id=command_id(source, "team", team.name), occurred_at=team.since, name=team.name,
                    description=f"Imported from the {self.format.title} log.",
                ),
                self.system,
            )
            done += 1
            if formed is None:
                done += len(team.members)
                continue
            team_id, known = formed
            ids.teams[team.name] = team_id
            members = set(self.desk.get_team(team_id).members) if known else set()
            for agent, since in sorted(team.members.items(), key=lambda m: (m[1], m[0])):
                add = AddTeamMember(
                    command_id=command_id(source, "member", team.name, agent), occurred_at=since,
                    team_id=team_id, agent_id=agent,
                )
                if str(add.command_id) in known:
                    self._recognised()
                elif agent in members:
                    summary.skipped["already a member of the team (added outside this import)"] += 1
                else:
                    self._run(add, self.system)
                done += 1
            self.progress("directory", done, total)
        return ids

    # --------------------------------------------------------------- tickets
    def _tickets(self, cases: Sequence[Case], ids: DirectoryIds) -> None:
        for case in cases:
            self._ticket(case, ids)

    def _ticket(self, case: Case, ids: DirectoryIds) -> None:
        self._case = case.case_id
        plan = TicketPlan(self.format.name, case.case_id, ids, self.actor)
        try:
            self.format.plan(case, plan)
        except NotInDirectory as exc:  # its team or requester was refused above
            self.summary.skipped[f"case needs {exc.args[0]!r}, which could not be created"] += 1
            return
        self.summary.skipped.update(plan.skipped)
        if plan.opening is None:
            return
        try:
            opening = plan.opening.build()
            facts = [fact.build() for fact in plan.facts]
        except ValidationError as exc:
            self.summary.commands += 1
            self._refused("ValidationFailed", f"row {exc.title}: {exc.errors()[0]['msg']}")
            self.summary.skipped[ABANDONED] += len(plan.facts)
            return
        opened = self._create(Ticket, opening, plan.opening.caller)
        if opened is None:
            self.summary.skipped[ABANDONED] += len(facts)
            return
        ticket_id, known = opened
        self.summary.tickets[case.case_id] = ticket_id
        new = [fact for fact in facts if str(fact.fact_id) not in known]
        self.summary.commands += len(facts) - len(new)
        self.summary.replayed += len(facts) - len(new)
        for start in range(0, len(new), MAX_FACTS):
            if not self._record(ticket_id, new[start : start + MAX_FACTS], plan.correlation_id):
                self.summary.skipped[ABANDONED] += max(0, len(new) - start - MAX_FACTS)
                return

    def _record(self, ticket_id: UUID, facts: list[ImportedFact], correlation_id: str) -> bool:
        """Record a batch of a ticket's facts in one write; False when the desk refused it."""
        self.summary.commands += len(facts)
        command = RecordImportedFacts(
            command_id=command_id(self.format.name, self._case, "facts", facts[0].fact_id), ticket_id=ticket_id,
            facts=facts,
        )
        try:
            result = self.desk.handle(command, system_caller(self.format.name, correlation_id))
        except TicketflowError as exc:
            self._refused(type(exc).__name__, f"{len(facts)} facts: {exc}")
            return False
        self.summary.events_written += len(result.events)
        return True

    # -------------------------------------------------------------- plumbing
    def _create(
        self, cls: type[TicketflowAggregate], command: Command, caller: Caller
    ) -> tuple[UUID, set[str]] | None:
        """Run a create, or recognise it when what it creates exists already: then the id and
        the command ids in that object's history, so its later commands are recognised too.

        The id is derived as the desk derives it (``TicketDesk._create``); looking first, rather
        than relying on the desk's retry check, also covers objects with more than 64 later
        commands, whose create the desk no longer remembers."""
        object_id = uuid5(ID_NAMESPACE, f"{cls.__name__}:{command.command_id}")
        try:
            handled = {event.command_id for event in self.desk.history(object_id)}
        except NotFound:
            result = self._run(command, caller)
            if result is None:
                return None
            if result.object_id != object_id:
                raise RuntimeError(f"the desk gave {cls.__name__} {result.object_id}, not {object_id}")
            return object_id, set()
        self._recognised()
        return object_id, handled

    def _run(self, command: Command, caller: Caller) -> CommandResult | None:
        self.summary.commands += 1
        try:
            result = self.desk.handle(command, caller)
        except TicketflowError as exc:
            self._refused(type(exc).__name__, f"{type(command).__name__}: {exc}")
            return None
        if result.replayed:
            self.summary.replayed += 1
        else:
            self.summary.events_written += len(result.events)
        return result

    def _recognised(self) -> None:
        self.summary.commands += 1
        self.summary.replayed += 1

    def _refused(self, error: str, message: str) -> None:
        self.summary.refused[error] += 1
        if len(self.summary.refusals) < KEPT_REFUSALS:
            where = f"case {self._case}: " if self._case else ""
            self.summary.refusals.append(f"{where}{message}")


@dataclass(frozen=True)
class SampleTicket:
    """A ticket an import would write, as its history would leave it."""

    case_id: str
    subject: str
    status: str
    team: str | None
    assignee: str | None
    priority: str
    category: str
    facts: int


@dataclass
class DryRun:
    """What an import would do, worked out without writing: every case planned and every
    command and fact built (so checked) exactly as the import builds them."""

    format: str
    path: Path
    cases: int = 0
    rows: int = 0
    rejected_rows: int = 0
    left_out: int = 0
    teams: int = 0
    members: int = 0
    customers: int = 0
    tickets: int = 0
    facts: int = 0
    invalid: list[str] = field(default_factory=list)  # cases whose commands would be refused
    skipped: Counter[str] = field(default_factory=Counter)
    unmapped: Counter[str] = field(default_factory=Counter)
    sample: list[SampleTicket] = field(default_factory=list)

    @property
    def commands(self) -> int:
        """Commands and facts the import would run: the directory's, each ticket's opening, the facts."""
        return self.teams + self.members + self.customers + self.tickets + self.facts


def dry_run(source: Source, *, sample: int = 5) -> DryRun:
    """Plan every case of ``source`` as :func:`import_source` would, writing nothing."""
    fmt, log = source.format, source.log
    report = DryRun(fmt.name, log.path, len(log.cases), log.rows, len(source.rejects), log.left_out)
    directory = fmt.directory(log.cases)
    report.teams, report.members, report.customers = len(directory.teams), directory.member_count, len(directory.customers)
    ids = DirectoryIds(
        teams={name: _derived(Team, command_id(fmt.name, "team", name)) for name in directory.teams},
        customers={key: _derived(Customer, command_id(fmt.name, "customer", key)) for key in directory.customers},
    )
    actor = fmt.mapping.column("actor") or ""
    for case in log.cases:
        plan = TicketPlan(fmt.name, case.case_id, ids, actor)
        fmt.plan(case, plan)
        report.skipped.update(plan.skipped)
        report.unmapped.update(plan.unmapped)
        if plan.opening is None:
            continue
        try:
            opening = plan.opening.build()
            for fact in plan.facts:
                fact.build()
        except ValidationError as exc:
            report.invalid.append(f"case {case.case_id}: {exc.errors()[0]['msg']}")
            continue
        report.tickets += 1
        report.facts += len(plan.facts)
        if len(report.sample) < sample:
            state = plan.state
            report.sample.append(
                SampleTicket(
                    case.case_id, str(getattr(opening, "subject", "")), str(state.status), state.team,
                    state.assignee, str(state.priority), state.category, len(plan.facts),
                )
            )
    return report


def _derived(cls: type[TicketflowAggregate], command: UUID) -> UUID:
    """The id the desk gives what ``command`` creates (as ``TicketDesk._create`` derives it)."""
    return uuid5(ID_NAMESPACE, f"{cls.__name__}:{command}")
