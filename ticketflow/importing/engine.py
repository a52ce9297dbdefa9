"""The import engine: a mapping (:mod:`ticketflow.importing.mapping`) turns a source's cases
into tickets, through :class:`~ticketflow.importing.plan.TicketPlan`.

Event rows (one row per activity): the case's first row opens the ticket (its team, requester,
priority, category, channel; subject and description from the mapping's templates), and every
row takes the actions its activity maps to:

==============  ===================================================================
action          what the row does to the ticket
==============  ===================================================================
``open``        nothing on the first row (it opened the ticket); skipped later
``work``        the row's person takes the ticket, in the row's team; open
``queue``       unassigned in the row's team, awaiting assignment (open again
                unless it is still new; nothing on the first row)
``pend``        pending (waiting on the customer)
``hold``        on hold (waiting on a third party)
``resume``      open again after a wait
``solve``       solved (``solve:reason`` gives the resolution)
``close``       solved if it was not, then closed (``close:reason``)
``call``        an inbound call from the customer
``note``        an internal note naming the activity
``ignore``      nothing; counted as skipped
``skip:reason`` nothing; counted under that reason
``assign``      the row's assignee takes the ticket, in its team (no status change)
``unassign``    nobody has the ticket; its team keeps it
``transfer``    to the row's team, with the row's assignee or nobody
``unteam``      no team; the assignee keeps it
``priority``    the row's priority
``recategorise`` the row's category
==============  ===================================================================

The last six replay a ticketflow XES export event by event (the ``xes`` preset).

A wait or completion in another team moves the ticket there first, with the row's person; a
row's priority, when mapped and different, is recorded before its actions.

Snapshot rows (one row per update, each the whole state): the first row opens the ticket and
records its assignee and status (``new`` stays new, even with an assignee); each later row
records, for each field that differs from the previous row, an imported fact at the row's time
and by the row's person: team and assignee together (either may be empty while the other is
set), status (from solved or closed to anything else: reopened first), priority, category. The
mapping's ``counters`` (e.g. ServiceNow's ``reassignment_count``) are kept on each fact as
``source_counters``; a case's last row that changed nothing else records them alone, so the
ticket ends with the source's final counters. ``source_fields`` are kept in each fact's reason.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ticketflow.domain.values import Channel, Priority, Status, TicketType
from ticketflow.importing.directory import Directory, as_name
from ticketflow.importing.mapping import ImportMapping
from ticketflow.importing.plan import TicketPlan
from ticketflow.importing.xes import Case, Row

#: Actions after which a move to another team is recorded first (the row says where the ticket is).
_FOLLOWS = {"pend", "hold", "call", "solve", "close"}
_PRIORITIES = {str(p) for p in Priority}
_CHANNELS = {str(c) for c in Channel}


@dataclass(frozen=True)
class Format:
    """One kind of source log: a mapping, and how its cases become tickets."""

    mapping: ImportMapping

    @property
    def name(self) -> str:
        return self.mapping.name

    @property
    def title(self) -> str:
        return self.mapping.title

    @property
    def columns(self) -> tuple[str, ...]:
        return self.mapping.required

    def plan(self, case: Case, plan: TicketPlan) -> None:
        if self.mapping.shape == "events":
            _EventRows(self.mapping, case, plan).translate()
        else:
            _Snapshots(self.mapping, case, plan).translate()

    def directory(self, cases: Sequence[Case]) -> Directory:
        """Teams (with the people seen working in them) and requesters, each at its first time."""
        m = self.mapping
        found = Directory()
        for case in cases:
            first = case.rows[0]
            key = _requester(m, first.values)
            company = m.requester.render(m.requester.company, key) or None
            found.see_customer(
                key, m.requester.render(m.requester.name, key), first.at, company=company,
                language=m.requester.language,
            )
            for row in case.rows:
                team = _team(m, row.values)
                if team is None:
                    continue
                person = as_name(m.value(row.values, "assignee" if m.shape == "snapshots" else "actor"))
                found.see_team(team, row.at, person)
        return found


def _team(m: ImportMapping, values: Mapping[str, str]) -> str | None:
    return m.value(values, "team") or m.team.unknown


def _requester(m: ImportMapping, values: Mapping[str, str]) -> str:
    return m.value(values, "requester") or m.requester.unknown or "Unknown requester (imported)"


class _Case:
    def __init__(self, mapping: ImportMapping, case: Case, plan: TicketPlan) -> None:
        self.m = mapping
        self.case = case
        self.plan = plan
        self._unmapped_seen: set[tuple[int, str]] = set()  # (line, role): a row read twice counts once

    def _unmapped(self, row: Row, role: str, value: str) -> None:
        if (row.line, role) not in self._unmapped_seen:
            self._unmapped_seen.add((row.line, role))
            self.plan.unmapped[f"{self.m.column(role)} {value!r}"] += 1

    def open(self) -> None:
        m, first = self.m, self.case.rows[0]
        requester = _requester(m, first.values)
        self.plan.open(
            first,
            subject=m.subject.render(first.values, self.case.case_id)[:200] or f"Imported ticket {self.case.case_id}",
            description=m.description.render(first.values, self.case.case_id),
            team=_team(m, first.values),
            requester=requester,
            priority=self.priority(first) or Priority(m.defaults["priority"]),
            ticket_type=TicketType(m.defaults["ticket_type"]),
            category=self.category(first) or m.defaults["category"],
            channel=self.channel(first),
        )

    def mapped(self, row: Row, role: str) -> str | None:
        """The row's ``role`` value mapped to ticketflow's, None when empty or not mapped (counted)."""
        raw = self.m.value(row.values, role)
        if not raw:
            return None
        value = self.m.mapped(role, raw)
        if value is None:
            self._unmapped(row, role, raw)
        return value

    def priority(self, row: Row) -> Priority | None:
        value = self.mapped(row, "priority")
        if value is not None and value not in _PRIORITIES:
            self._unmapped(row, "priority", value)
            return None
        return None if value is None else Priority(value)

    def category(self, row: Row) -> str | None:
        value = self.mapped(row, "category")
        return None if value is None else as_name(value)

    def channel(self, row: Row) -> Channel:
        value = self.mapped(row, "channel")
        if value is not None and value not in _CHANNELS:
            self._unmapped(row, "channel", value)
            value = None
        return Channel(value or self.m.defaults["channel"])


class _EventRows(_Case):
    def translate(self) -> None:
        m, plan = self.m, self.plan
        self.open()
        for index, row in enumerate(self.case.rows):
            plan.counters = m.counters_of(row.values)
            activity = m.activity(row.values)
            actions = m.activities.get(activity, m.otherwise) or ()
            names = [action.split(":", 1)[0] for action in actions]
            if index > 0 and names and names[0] not in ("ignore", "skip"):
                priority = self.priority(row)
                if priority is not None and priority is not plan.state.priority:
                    plan.priority(row, priority, f"{m.column('priority')} {m.value(row.values, 'priority')} in the source system")
            actor = as_name(m.value(row.values, "actor"))
            if _FOLLOWS.intersection(names):
                plan.follow(row, _team(m, row.values), actor)
            for action in actions:
                self.act(index, row, action, activity, actor)

    def act(self, index: int, row: Row, action: str, activity: str, actor: str | None) -> None:
        m, plan = self.m, self.plan
        name, _, argument = action.partition(":")
        match name:
            case "open":
                if index > 0:
                    plan.skip(f"{activity} after the first row (the ticket was opened at its first row)")
            case "work":
                plan.work(row, actor, _team(m, row.values))
            case "queue":
                if index > 0:
                    plan.queue(row, _team(m, row.values))
            case "pend":
                plan.pend(row, argument or m.last_activity(row.values))
            case "hold":
                plan.hold(row, argument or m.last_activity(row.values))
            case "resume":
                plan.resume(row, argument or m.last_activity(row.values))
            case "solve":
                plan.solve(row, argument or "resolved in the source system")
            case "close":
                plan.close(row, argument or "closed in the source system")
            case "call":
                plan.call(row, argument or f"Call with the user ({activity} in the source system)")
            case "note":
                plan.note(row, argument or f"{activity} (activity in the source system)")
            case "ignore":
                plan.skip(f"{activity} rows are not imported")
            case "assign" | "unassign" | "transfer" | "unteam":
                state = plan.state
                assignee = as_name(m.value(row.values, "assignee")) if name in ("assign", "transfer") else None
                team = m.value(row.values, "team") or None if name == "transfer" else state.team
                if name == "unteam":
                    team, assignee = None, state.assignee
                if not plan.place(row, team, assignee, argument or f"{activity} in the source system"):
                    plan.skip(f"{activity} that changed nothing")
            case "priority":  # recorded before the row's actions, as on every row with a priority
                if self.priority(row) is None:
                    plan.skip(f"{activity} without a priority")
            case "recategorise":
                category = self.category(row)
                if category is None or not plan.category(row, category):
                    plan.skip(f"{activity} that changed nothing")
            case _:  # skip
                plan.skip(argument or f"{activity} rows are skipped")


class _Snapshots(_Case):
    def translate(self) -> None:
        m, plan = self.m, self.plan
        self.open()
        last = self.case.rows[-1]
        for row in self.case.rows:
            plan.counters = m.counters_of(row.values)  # checked when the file was read (a bad one is a reject)
            changed = False
            suffix = self.source_fields(row)
            team = m.value(row.values, "team") or None
            assignee = as_name(m.value(row.values, "assignee"))
            state = plan.state
            if (team, assignee) != (state.team, state.assignee):
                changed |= plan.place(row, team, assignee, f"group {team or 'none'}, assigned to {assignee or 'nobody'}{suffix}")
            status_raw = m.value(row.values, "status")
            status = Status(m.mapped("status", status_raw) or str(state.status))
            if status is not state.status:
                if status is Status.NEW:
                    plan.skip(f"back to {status_raw} (a ticket never returns to new; kept as it was)")
                else:
                    changed |= plan.reach(row, status, f"{status_raw} in the source system{suffix}")
            priority = self.priority(row)
            if priority is not None and priority is not state.priority:
                plan.priority(row, priority, f"{m.column('priority')} {m.value(row.values, 'priority')} in the source system{suffix}")
                changed = True
            category = self.category(row)
            if category is not None:
                changed |= plan.category(row, category)
            if changed or (row is last and plan.keep_counters(row)):
                continue
            if row.index > 0:
                plan.skip("update that changed none of the imported fields")

    def source_fields(self, row: Row) -> str:
        kept = [f"{column}={row[column]}" for column in self.m.source_fields if row[column]]
        return f" [{', '.join(kept)}]" if kept else ""


def unmapped_of(plans: Sequence[TicketPlan]) -> Counter[str]:
    found: Counter[str] = Counter()
    for plan in plans:
        found.update(plan.unmapped)
    return found
