"""BPI Challenge 2013: Volvo IT Belgium's incident management (VINST), flattened from XES.

Each row is a status / sub-status change of an incident (``concept:name`` /
``lifecycle:transition``) by its owner (``org:resource``) in a support team
(``org:group``). The mapping:

====================================  ==============================================
source                                ticketflow
====================================  ==============================================
first row of a case                   open: subject "VINST incident <case> (<product>)",
                                      priority from ``impact``, type incident,
                                      category = product, team = ``org:group``,
                                      requester = the ``organization involved``
Accepted / In Progress, Assigned      placed with ``org:resource`` in ``org:group``
                                      (a new group with its person), status open
Queued / Awaiting Assignment          placed unassigned in ``org:group``; open again
                                      unless it is still new
Accepted / Wait - User, - Customer    pending
Accepted / Wait, - Implementation,    on hold
- Vendor
Completed / In Call                   an inbound call, then solved (completed in the call)
Completed / Resolved                  solved
Completed / Closed                    solved (if it was not), then closed
Completed / Cancelled                 solved "cancelled", then closed
a wait or completion in a new group  placed in that ``org:group`` first, with
                                      ``org:resource``
Unmatched                             skipped and counted
====================================  ==============================================

Every row after the first is recorded as imported facts at its own time (see
:mod:`ticketflow.importing.plan`): work after a close reopens the ticket, as it did in the source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from ticketflow.domain.values import Channel, Priority, TicketType
from ticketflow.importing.directory import Directory, as_name
from ticketflow.importing.plan import Format, Kind, TicketPlan
from ticketflow.importing.xes import ACTIVITY, RESOURCE, TRANSITION, Case, Row

GROUP = "org:group"
IMPACT = "impact"
PRODUCT = "product"
ORGANIZATION = "organization involved"

PRIORITIES = {"Low": Priority.LOW, "Medium": Priority.NORMAL, "High": Priority.HIGH, "Major": Priority.URGENT}

KINDS: dict[tuple[str, str], Kind] = {
    ("Accepted", "In Progress"): Kind.WORK,
    ("Accepted", "Assigned"): Kind.WORK,
    ("Queued", "Awaiting Assignment"): Kind.QUEUE,
    ("Accepted", "Wait - User"): Kind.PEND,
    ("Accepted", "Wait - Customer"): Kind.PEND,
    ("Accepted", "Wait"): Kind.HOLD,
    ("Accepted", "Wait - Implementation"): Kind.HOLD,
    ("Accepted", "Wait - Vendor"): Kind.HOLD,
    ("Completed", "In Call"): Kind.CALL,
    ("Completed", "Resolved"): Kind.SOLVE,
    ("Completed", "Closed"): Kind.CLOSE,
    ("Completed", "Cancelled"): Kind.CANCEL,
    ("Unmatched", "Unmatched"): Kind.IGNORE,
}

UNKNOWN_GROUP = "No support team (imported)"
UNKNOWN_ORGANIZATION = "Unknown organisation"


def team_of(row: Row) -> str:
    return row[GROUP] or UNKNOWN_GROUP


def organization_of(case: Case) -> str:
    """The requester: the organisation involved on the case's first row (it may change later)."""
    return case.rows[0][ORGANIZATION] or UNKNOWN_ORGANIZATION


def directory(cases: Sequence[Case]) -> Directory:
    found = Directory()
    for case in cases:
        organization = organization_of(case)
        found.see_customer(
            organization, f"{organization} (imported)", case.rows[0].at, company=organization, language="en"
        )
        for row in case.rows:
            found.see_team(team_of(row), row.at, as_name(row[RESOURCE]))
    return found


def kind_of(row: Row) -> Kind | None:
    return KINDS.get((row[ACTIVITY], row[TRANSITION]))


def translate(case: Case, plan: TicketPlan) -> None:
    first = case.rows[0]
    product = as_name(first[PRODUCT])
    plan.open(
        first,
        subject=f"VINST incident {case.case_id}" + (f" ({product})" if product else ""),
        description=(
            f"Imported from the BPI Challenge 2013 VINST log: impact {first[IMPACT] or 'unknown'}, "
            f"product {first[PRODUCT] or 'unknown'}, organisation {organization_of(case)}."
        ),
        team=team_of(first),
        requester=organization_of(case),
        priority=PRIORITIES.get(first[IMPACT], Priority.NORMAL),
        ticket_type=TicketType.INCIDENT,
        category=product or "general",
        channel=Channel.PHONE,
    )
    for index, row in enumerate(case.rows):
        kind = kind_of(row)
        status = f"{row[ACTIVITY]}/{row[TRANSITION]}"
        if index == 0 and kind is Kind.QUEUE:
            continue  # opened straight into its team's queue
        if index > 0 and kind not in (None, Kind.IGNORE):
            impact = PRIORITIES.get(row[IMPACT])
            if impact is not None and impact is not plan.state.priority:
                plan.priority(row, impact, f"impact {row[IMPACT]} in the source system")
        if kind in (Kind.PEND, Kind.HOLD, Kind.CALL, Kind.SOLVE, Kind.CLOSE, Kind.CANCEL):
            plan.follow(row, team_of(row), as_name(row[RESOURCE]))
        match kind:
            case Kind.WORK:
                plan.work(row, as_name(row[RESOURCE]), team_of(row))
            case Kind.QUEUE:
                plan.queue(row, team_of(row))
            case Kind.PEND:
                plan.pend(row, row[TRANSITION])
            case Kind.HOLD:
                plan.hold(row, row[TRANSITION])
            case Kind.CALL:
                plan.call(row, f"Call with the user ({status} in the source system)")
                plan.solve(row, "completed in the call")
            case Kind.SOLVE:
                plan.solve(row, "resolved in the source system")
            case Kind.CLOSE:
                plan.close(row, "closed in the source system")
            case Kind.CANCEL:
                plan.close(row, "cancelled")
            case Kind.IGNORE:
                plan.skip(f"{status} rows are not imported")
            case _:
                plan.skip(f"unknown status {status}")


def recognises(values: Mapping[str, str]) -> bool:
    return (values.get(ACTIVITY, ""), values.get(TRANSITION, "")) in KINDS


FORMAT = Format(
    name="bpic2013",
    title="BPI Challenge 2013 incidents (Volvo IT VINST)",
    columns=(GROUP, ORGANIZATION, IMPACT, PRODUCT, TRANSITION),
    directory=directory,
    translate=translate,
    recognises=recognises,
)
