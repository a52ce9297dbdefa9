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
Accepted / In Progress, Assigned      assign to ``org:resource`` (transfer with them
                                      first when ``org:group`` changed; mark open
                                      when it was waiting)
Queued / Awaiting Assignment          transfer, unassigned, when ``org:group`` changed;
                                      mark open when it was waiting
Accepted / Wait - User, - Customer    pend
Accepted / Wait, - Implementation,    hold
- Vendor
Completed / In Call                   log an inbound call; solve too when nothing
                                      later changes the ticket (completed in the call)
Completed / Resolved                  solve
Completed / Closed                    close (solve first); left solved when the source
                                      worked the incident again afterwards
Completed / Cancelled                 solve "cancelled", then close
Unmatched                             skipped and counted
====================================  ==============================================

Any row on a solved incident that the source kept working reopens it first.
"""

from __future__ import annotations

from collections.abc import Sequence

from ticketflow.domain.values import Channel, Priority, TicketType
from ticketflow.importing.directory import Directory, as_name
from ticketflow.importing.plan import Format, Kind, TicketPlan, revived_after, settled_after
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
    kinds = [kind_of(row) or Kind.IGNORE for row in case.rows]
    for index, row in enumerate(case.rows):
        kind = kind_of(row)
        status = f"{row[ACTIVITY]}/{row[TRANSITION]}"
        if index == 0 and kind is Kind.QUEUE:
            continue  # opened straight into its team's queue
        if index > 0 and kind not in (None, Kind.IGNORE):
            impact = PRIORITIES.get(row[IMPACT])
            if impact is not None and impact is not plan.state.priority:
                plan.priority(row, impact, f"impact {row[IMPACT]} in the source system")
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
                if settled_after(kinds, index):
                    plan.solve(row, "completed in the call")
            case Kind.SOLVE:
                plan.solve(row, "resolved in the source system")
            case Kind.CLOSE:
                final = not revived_after(kinds, index)
                plan.close(row, final=final, resolution="closed in the source system")
            case Kind.CANCEL:
                plan.close(row, final=not revived_after(kinds, index), resolution="cancelled")
            case Kind.IGNORE:
                plan.skip(f"{status} rows are not imported")
            case _:
                plan.skip(f"unknown status {status}")


FORMAT = Format(
    name="bpic2013",
    title="BPI Challenge 2013 incidents (Volvo IT VINST)",
    columns=(GROUP, ORGANIZATION, IMPACT, PRODUCT, TRANSITION),
    directory=directory,
    translate=translate,
)
