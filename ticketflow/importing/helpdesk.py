"""The help desk of an Italian software company (Mendeley Data 39bp3vv62t), flattened from XES.

Each row is an activity (``concept:name``) by a person (``org:resource``, anonymised
as ``Value N``, imported as ``Value_N``). The log has no teams and no customers
(``case:creator`` is the conversion tool), so every ticket goes to one team,
"Helpdesk IT (imported)", and comes from one requester, "Helpdesk IT requester
(imported)". The mapping:

===================================================  =====================================
source                                               ticketflow
===================================================  =====================================
Insert ticket, else the case's first row             open (incident, priority normal)
Assign seriousness                                   priority; the log carries no
                                                     seriousness value, so it stays normal
                                                     and the row is counted as skipped
Take in charge ticket                                assigned to ``org:resource``, open
Wait                                                 pend
Resolve ticket                                       solve
Closed                                               solved (if it was not), then closed
Require upgrade, Create SW anomaly,                  hold, plus a note naming the activity
Schedule intervention
Resolve SW anomaly                                   mark open
VERIFIED, INVALID, DUPLICATE, RESOLVED, and others   internal note naming the activity
===================================================  =====================================

Every row after the first is recorded as imported facts at its own time: work after a
resolution or a close reopens the ticket, as it did in the source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ticketflow.domain.values import Channel, Priority, TicketType
from ticketflow.importing.directory import Directory, as_name
from ticketflow.importing.plan import Format, Kind, TicketPlan
from ticketflow.importing.xes import ACTIVITY, RESOURCE, Case

TEAM = "Helpdesk IT (imported)"
REQUESTER = "Helpdesk IT requester (imported)"

KINDS: dict[str, Kind] = {
    "Insert ticket": Kind.OPEN,
    "Assign seriousness": Kind.PRIORITY,
    "Take in charge ticket": Kind.WORK,
    "Wait": Kind.PEND,
    "Resolve ticket": Kind.SOLVE,
    "Closed": Kind.CLOSE,
    "Require upgrade": Kind.HOLD,
    "Create SW anomaly": Kind.HOLD,
    "Schedule intervention": Kind.HOLD,
    "Resolve SW anomaly": Kind.RESUME,
}


def directory(cases: Sequence[Case]) -> Directory:
    found = Directory()
    for case in cases:
        found.see_customer(REQUESTER, REQUESTER, case.rows[0].at, company=None, language="it")
        for row in case.rows:
            found.see_team(TEAM, row.at, as_name(row[RESOURCE]))
    return found


def translate(case: Case, plan: TicketPlan) -> None:
    first = case.rows[0]
    plan.open(
        first,
        subject=f"Helpdesk IT ticket {case.case_id}",
        description="Imported from the Helpdesk IT ticketing log (Mendeley Data 39bp3vv62t).",
        team=TEAM,
        requester=REQUESTER,
        priority=Priority.NORMAL,
        ticket_type=TicketType.INCIDENT,
        category="general",
        channel=Channel.WEB_FORM,
    )
    kinds = [KINDS.get(row[ACTIVITY], Kind.NOTE) for row in case.rows]
    for index, (row, kind) in enumerate(zip(case.rows, kinds)):
        activity = row[ACTIVITY]
        match kind:
            case Kind.OPEN:
                if index > 0:
                    plan.skip("Insert ticket after the first row (the ticket was opened at its first row)")
            case Kind.PRIORITY:
                plan.skip("Assign seriousness: the log has no seriousness value (priority kept normal)")
            case Kind.WORK:
                plan.work(row, as_name(row[RESOURCE]))
            case Kind.PEND:
                plan.pend(row, activity)
            case Kind.SOLVE:
                plan.solve(row, "resolved in the source system")
            case Kind.CLOSE:
                plan.close(row, "closed in the source system")
            case Kind.HOLD:
                plan.hold(row, activity)
                plan.note(row, f"{activity} (activity in the source system)")
            case Kind.RESUME:
                plan.resume(row, activity)
            case _:
                plan.note(row, f"{activity} (activity in the source system)")


def recognises(values: Mapping[str, str]) -> bool:
    return values.get(ACTIVITY, "") in KINDS


FORMAT = Format(
    name="helpdesk",
    title="Helpdesk IT tickets (Italian software company)",
    columns=(),
    directory=directory,
    translate=translate,
    recognises=recognises,
)
