"""/api/v1/reminders: reminders and follow-ups (提醒, 回访) and each agent's queue of them.

Who sees a reminder: roles that see every team; its agent; whoever scheduled it; the
members of its team; and whoever sees its ticket. ``note`` and ``outcome`` are personal
data, masked like ticket bodies.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from api import schemas as s
from api.pagination import Pager
from api.deps import CommandsDep, Reads, ReadsDep, encode
from api.problems import responses
from projections.reminders import OPEN_STATES, ReminderFilter, get_reminder, list_reminders
from projections.sql import ts
from ticketflow.access import MASK, Principal
from ticketflow.commands import workflow as wf
from ticketflow.domain.values import Role
from ticketflow.errors import NotFound, TeamNotFound, TicketNotFound

router = APIRouter(prefix="/api/v1/reminders", tags=["reminders"])
WRITE_ERRORS = responses(403, 404, 409, 412, 422)
State = Literal["scheduled", "fired", "done", "cancelled"]


def _sees(reads: Reads, row: dict[str, Any]) -> bool:
    principal: Principal = reads.principal
    if principal.all_teams or principal.name in (row["agent_id"], row.get("created_by")):
        return True
    if row["team_id"] is not None and principal.sees_team(row["team_id"]):
        return True
    return row["ticket_id"] is not None and bool(reads.visible([str(row["ticket_id"])]))


def _out(reads: Reads, rows: list[dict[str, Any]], resource: str) -> list[Any]:
    now = ts(reads.svc.desk.clock.now()) or ""
    shown = [{**r, "due": r["state"] in OPEN_STATES and r["due_at"] <= now} for r in rows]
    if not reads.free_text():
        shown = [{**r, "note": MASK if r["note"] else r["note"], "outcome": MASK if r["outcome"] else r["outcome"]}
                 for r in shown]
    elif shown:
        reads.text_shown({r["customer_id"] for r in shown if r["customer_id"]}, ["note", "outcome"], resource)
    return encode(s.ReminderOut, shown)


@router.post("", status_code=201, summary="Schedule a reminder or follow-up", response_model=s.CommandOut,
             responses=responses(403, 404, 409, 422))
def schedule(body: s.ReminderCreate, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """About a ticket or a customer, for an agent or a team (give at least one of each). A reminder
    about a ticket files under the ticket's requester. Answers 201 with `Location`."""
    fields = body.model_dump()  # type: ignore[attr-defined]
    if fields["ticket_id"] is not None:
        cmd.visible_ticket(fields["ticket_id"])
    elif fields["customer_id"] is not None:
        cmd.visible_customer(fields["customer_id"])
    if fields["team_id"] is not None and not cmd.principal.sees_team(fields["team_id"]):
        raise TeamNotFound(fields["team_id"])
    result = cmd.run(wf.ScheduleReminder, **fields)
    return cmd.respond(result, 201, location=f"/api/v1/reminders/{result.object_id}")


@router.get("", summary="Reminder queues: an agent's, a team's, a ticket's or a customer's",
            response_model=list[s.ReminderOut], responses=responses(403, 404, 422, 503))
def queue(
    reads: ReadsDep, response: Response,
    agent_id: Annotated[str | None, Query(max_length=64)] = None,
    team_id: UUID | None = None,
    ticket_id: UUID | None = None,
    customer_id: UUID | None = None,
    due: Annotated[bool, Query(description="Only the reminders due now.")] = False,
    state: Annotated[list[State] | None, Query(description="Default: the open ones (scheduled, fired).")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=500, description="The `next_cursor` of the previous page (opaque).")] = None,
) -> Any:
    """Earliest due first, so the due ones lead. With no filter an agent gets their own queue (theirs,
    and their teams' reminders for no one in particular); others get every reminder they may see.
    A ticket's reminders are all shown to whoever sees the ticket (404 otherwise)."""
    principal = reads.principal
    if ticket_id is not None and not reads.visible([str(ticket_id)]):
        raise TicketNotFound(ticket_id)
    unfiltered = agent_id is None and team_id is None and ticket_id is None and customer_id is None
    teams = None if principal.all_teams else tuple(sorted(str(t) for t in principal.team_ids))
    where = ReminderFilter(
        agent_id=agent_id, team_id=str(team_id) if team_id else None, ticket_id=str(ticket_id) if ticket_id else None,
        customer_id=str(customer_id) if customer_id else None, states=tuple(state or OPEN_STATES),
        due_before=reads.svc.desk.clock.now() if due else None,
        own_queue_of=principal.name if unfiltered and principal.role is Role.AGENT else None,
        teams=teams, me=principal.name, ticket_scope=ticket_id is not None,
    )
    pager = Pager(reads.request, response, limit, cursor)
    wanted = pager.offset() + limit + 1
    if teams is None or ticket_id is not None:
        rows = reads.read("reminders", lambda db: list_reminders(db, where, wanted))
    else:  # rows on tickets outside the caller's teams are read, then left out
        rows = reads.read("reminders", lambda db: list_reminders(db, where, wanted * 3))
        rows = [r for r in rows if _sees(reads, r)]
    return _out(reads, pager.page(rows), "GET /api/v1/reminders")


@router.get("/{reminder_id}", summary="One reminder", response_model=s.ReminderOut, responses=responses(403, 404, 503))
def one(reminder_id: UUID, reads: ReadsDep) -> Any:
    """One reminder the caller may see (its agent, its author, its team or its ticket); 404 otherwise."""
    row = reads.read("reminders", lambda db: get_reminder(db, str(reminder_id)))
    if row is None or not _sees(reads, row):
        raise NotFound("reminder", reminder_id)
    return _out(reads, [row], f"GET /api/v1/reminders/{reminder_id}")[0]


@router.post("/{reminder_id}/complete", summary="Mark a reminder done, with its outcome", response_model=s.CommandOut,
             responses=WRITE_ERRORS)
def complete(reminder_id: UUID, body: s.ReminderComplete, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """Done takes it out of the queue. The outcome (what the follow-up found) is personal data."""
    return cmd.respond(cmd.run(wf.CompleteReminder, reminder_id=reminder_id, **body.model_dump()))  # type: ignore[attr-defined]


@router.post("/{reminder_id}/cancel", summary="Cancel a reminder, with a reason", response_model=s.CommandOut,
             responses=WRITE_ERRORS)
def cancel(reminder_id: UUID, body: s.ReminderCancel, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """The reminder leaves the queue without being done; the reason is kept in its history."""
    return cmd.respond(cmd.run(wf.CancelReminder, reminder_id=reminder_id, **body.model_dump()))  # type: ignore[attr-defined]
