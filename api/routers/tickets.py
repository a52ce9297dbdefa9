"""/api/v1/tickets: open and work tickets; queues, timeline and audit trail.

(No ``from __future__ import annotations`` here: the command routes are built in a
loop and FastAPI reads their annotations as real classes.)
"""

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import JSONResponse

from api import schemas as s
from api.asof import AsOfDep, ListAsOfDep
from api.command_routes import CommandRoute
from api.deps import CommandsDep, Reads, ReadsDep, encode
from api.pagination import PagerDep, link_headers, position_cursor, position_page
from api.problems import ApiProblem, responses
from projections.asof import diff as version_diff
from projections.asof import ticket_row
from projections.audit import audit_trail
from projections.sql import loads
from projections.tickets import SORTS, TicketFilter, TicketQueries
from projections.timeline import ticket_timeline
from projections.workflow import sla_clocks
from ticketflow import commands as c
from ticketflow.access import MASK
from ticketflow.commands.access import RecordDataAccess
from ticketflow.domain.customer import ERASED
from ticketflow.domain.values import Channel, Priority, Status, TicketType
from ticketflow.errors import PermissionDenied, TicketNotFound
from ticketflow.timetravel import latest_version

# Its command routes (open, the command loop, merge, links) skip FastAPI's dependency solving
# (api.command_routes); its reads are served as any APIRoute.
router = APIRouter(prefix="/api/v1/tickets", tags=["tickets"], route_class=CommandRoute)
WRITE_ERRORS = responses(403, 404, 409, 412, 422)

TICKET_TEXT_FIELDS = {"subject", "description", "resolution", "satisfaction_comment"}
PROFILE_CHANGE_FIELDS = {"name", "email", "phone", "im_handle", "company", "job_title"}


@router.post("", status_code=201, summary="Open a ticket", response_model=s.CommandOut,
             responses=responses(403, 404, 409, 422))
def open_ticket(body: s.TicketCreate, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """Open a ticket for a customer. Answers 201 with `Location`, `ETag` and `X-Log-Position`.

    Any existing customer may be the requester (a returning customer calls whichever team); the
    ticket then brings the customer into the team's scope, and the open is recorded with its actor."""
    fields = body.model_dump()
    fields["requester_id"] = fields.pop("customer_id")  # the body says customer_id, as every response does
    result = cmd.run(c.OpenTicket, **fields)
    cmd.svc.known_tickets.add(result.object_id)  # its next commands' scope check needs no read (api.deps.check_scope)
    return cmd.respond(result, 201, location=f"/api/v1/tickets/{result.object_id}", represent=_represent(result.object_id))


def _command_route(path: str, body_model: Any, command: type[c.TicketCommand], summary: str, doc: str) -> None:
    def endpoint(ticket_id: UUID, body: body_model, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
        # The ticket's scope (404 for another team's) was checked by the route's rule (api.deps.authorize),
        # and the command checks it again on the ticket it loads: no third read here.
        return cmd.respond(cmd.run(command, ticket_id=ticket_id, **body.model_dump()), represent=_represent(ticket_id))

    endpoint.__name__ = path.strip("/").replace("-", "_") or "command"
    endpoint.__doc__ = doc + " Send `If-Match` to refuse a stale write (412); `Idempotency-Key` to retry safely."
    router.post("/{ticket_id}" + path, summary=summary, response_model=s.CommandOut, responses=WRITE_ERRORS)(endpoint)


for _path, _body, _command, _summary, _doc in [
    ("/assign", s.AssignBody, c.AssignTicket, "Assign to a team member", "Give the ticket to an active member of its team; a new ticket becomes open."),
    ("/unassign", s.UnassignBody, c.UnassignTicket, "Clear the assignee", "Nobody holds the ticket: it waits in its team's queue (or triage) for someone."),
    ("/remove-from-team", s.RemoveFromTeamBody, c.RemoveTicketFromTeam, "Back to triage (no team)", "The ticket leaves its team for the triage queue, unassigned, with a reason."),
    ("/category", s.CategoryBody, c.RecategoriseTicket, "Change the category or type", "A new category, ticket type, or both."),
    ("/transfer", s.TransferBody, c.TransferTicket, "Transfer to another team", "Move the ticket to another team (and optionally one of its members), with a reason."),
    ("/replies", s.ReplyBody, c.PostReply, "Post a public reply", "A reply visible to the customer (outbound), or the customer's message (inbound)."),
    ("/notes", s.NoteBody, c.AddNote, "Add an internal note", "A note the customer never sees."),
    ("/interactions", s.InteractionBody, c.LogInteraction, "Log a call, email, chat or meeting", "Record a contact that happened elsewhere."),
    ("/work-entries", s.WorkEntryBody, c.LogWork, "Log a service process entry", "What was done, by whom, how long, with what result (服务过程详情)."),
    ("/pend", s.PendBody, c.PendTicket, "Wait on the customer", "Status pending: the SLA clock pauses until the customer answers."),
    ("/hold", s.HoldBody, c.HoldTicket, "Wait on a third party", "Status on_hold."),
    ("/open", s.OpenBody, c.MarkTicketOpen, "Mark open", "Work starts or resumes."),
    ("/solve", s.SolveBody, c.SolveTicket, "Solve", "Status solved, with the resolution."),
    ("/close", s.CloseBody, c.CloseTicket, "Close", "Closed is final; a follow-up ticket links back."),
    ("/reopen", s.ReopenBody, c.ReopenTicket, "Reopen a solved ticket", "Back to open, with a reason."),
    ("/priority", s.PriorityBody, c.ChangePriority, "Change the priority", "low, normal, high or urgent."),
    ("/satisfaction", s.SatisfactionBody, c.RateSatisfaction, "Record the satisfaction rating", "1-5 and a comment, once solved (满意度)."),
    ("/tags", s.TagsBody, c.ChangeTags, "Add and remove tags", "Tags to add and to remove (letters of any script, digits, `.`, `:`, `-`, `_`; stored lower-case)."),
]:
    _command_route(_path, _body, _command, _summary, _doc)


@router.post("/{ticket_id}/merge", summary="Merge this duplicate into another ticket", response_model=s.CommandOut,
             responses=WRITE_ERRORS)
def merge(ticket_id: UUID, body: s.MergeBody, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """Close this ticket as a duplicate of `into_ticket_id`; its interactions stay readable."""
    # (this ticket's scope: the route's rule, api.deps.authorize)
    cmd.visible_ticket(body.into_ticket_id)  # type: ignore[attr-defined]
    return cmd.respond(cmd.run(c.MergeTicket, ticket_id=ticket_id, **body.model_dump()), represent=_represent(ticket_id))


@router.post("/{ticket_id}/links", summary="Link this ticket to another ticket", response_model=s.CommandOut,
             responses=WRITE_ERRORS)
def link(ticket_id: UUID, body: s.LinkBody, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """Record that this ticket is `related` to, or a `follow_up_of`, `other_ticket_id` (a duplicate is
    merged, not linked); both tickets must be in the caller's teams. The link shows in the ticket's
    audit trail (`/audit`, `/diff`). Send `If-Match` to refuse a stale write (412); `Idempotency-Key`
    to retry safely."""
    # (this ticket's scope: the route's rule, api.deps.authorize)
    cmd.visible_ticket(body.other_ticket_id)  # type: ignore[attr-defined]
    return cmd.respond(cmd.run(c.LinkTicket, ticket_id=ticket_id, **body.model_dump()), represent=_represent(ticket_id))


def _sla_out(clocks: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The ticket's SLA clocks as last measured, with the time left until each target."""
    out = []
    for clock in clocks:
        due = datetime.fromisoformat(clock["due_at"]) if clock["due_at"] else None
        out.append({**clock, "business_hours": bool(clock["business_hours"]),
                    "remaining_seconds": round((due - now).total_seconds()) if due else None})
    return out


def ticket_out(reads: Any, row: dict[str, Any]) -> dict[str, Any]:
    """A tickets-view row as shown to the caller: tags decoded, the subject masked unless shown."""
    out = {**row, "tags": loads(row["tags"]), "imported": bool(row["imported"])}
    if row.get("source_counters"):
        out["source_counters"] = loads(row["source_counters"])
    if not reads.free_text():
        out["subject"] = MASK
    return out


@router.get("", summary="Queues: list tickets with filters, sort and cursor pagination", response_model=s.TicketPage,
            responses=responses(400, 403, 422, 503))
def list_tickets(
    reads: ReadsDep, response: Response,
    at: ListAsOfDep,
    status: Annotated[list[Status] | None, Query()] = None,
    team_id: UUID | None = None,
    assignee_id: str | None = None,
    unassigned: bool = False,
    priority: Annotated[list[Priority] | None, Query()] = None,
    ticket_type: TicketType | None = None,
    category: str | None = None,
    channel: Channel | None = None,
    tag: Annotated[str | None, Query(max_length=40, description="Tickets carrying this tag.")] = None,
    customer_id: UUID | None = None,
    updated_since: datetime | None = None,
    sort: Annotated[
        str | None,
        Query(pattern="^(" + "|".join(SORTS).replace("-", r"\-") + ")$",
              description="created_at (default: oldest first), -created_at, updated_at (default with updated_since), -updated_at, priority"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Any:
    """Oldest first by default; by last update when `updated_since` is given (that order uses its index).
    Only tickets of the caller's teams are listed. With `as_of`, the filters apply to the tickets as they
    were then (on `as_of_basis`: recorded or business time); a ticket is listed if it was in the caller's
    teams then and is in them now. When the log holds nothing by then on that basis, `note` (and the
    `X-As-Of-Note` header) says so and from when it does."""
    sort = sort or ("updated_at" if updated_since is not None else "created_at")
    principal = reads.principal
    scope = None if principal.all_teams else tuple(sorted(str(t) for t in principal.team_ids))
    teamless = not principal.all_teams and principal.sees_team(None)
    where = TicketFilter(
        status=tuple(x.value for x in status or ()), team_id=str(team_id) if team_id else None,
        assignee_id=assignee_id, unassigned=unassigned, priority=tuple(p.value for p in priority or ()),
        ticket_type=ticket_type.value if ticket_type else None, category=category,
        channel=channel.value if channel else None, tag=tag.strip().lower() if tag else None,
        customer_id=str(customer_id) if customer_id else None, updated_since=updated_since, teams=scope,
        include_teamless=teamless,
    )
    try:
        if at.as_of is None:
            page = reads.read("tickets", lambda db: TicketQueries.queue(db, where, sort, limit, cursor))
        else:
            page = at.read(reads.svc.desk, "tickets", lambda db: TicketQueries.queue(db, where, sort, limit, cursor))
    except ValueError as exc:
        raise ApiProblem(400, "bad_cursor", str(exc)) from None
    rows = page.rows
    if at.as_of is not None and not principal.all_teams:
        shown = reads.visible([r["ticket_id"] for r in rows])  # scope judged now, too
        rows = [r for r in rows if r["ticket_id"] in shown]
    if reads.free_text():
        reads.text_shown({r["customer_id"] for r in rows if r["customer_id"]}, ["subject"], "GET /api/v1/tickets")
    link_headers(reads.request, response, page.next_cursor)
    answer: dict[str, Any] = {"items": [ticket_out(reads, r) for r in rows], "next_cursor": page.next_cursor}
    if at.note is not None:
        answer["note"] = at.note
    return answer


@router.get("/{ticket_id}", summary="A ticket's current state (or its state at a version or instant)",
            response_model=s.TicketOut, responses=responses(403, 404, 422, 503))
def get_ticket(ticket_id: UUID, reads: ReadsDep, at: AsOfDep) -> JSONResponse:
    """From the tickets view; pass `min_position` (from `X-Log-Position`) to read your own write.

    With `version` or `as_of`, from the ticket's events up to that version (the nearest snapshot, then
    the events after it), in the same body; `sla` is then empty (SLA clocks are kept for now only).
    Team scope is judged by the ticket's team now."""
    if at.requested:
        return _ticket_as_of(ticket_id, reads, at)
    body = ticket_representation(reads, ticket_id)
    return JSONResponse(body, headers={"ETag": f'"{body["version"]}"'})


def ticket_representation(reads: Any, ticket_id: UUID) -> dict[str, Any]:
    """The ticket as ``GET /tickets/{id}`` answers it (and a write, with ``Prefer: return=representation``)."""
    row = reads.ticket_row(str(ticket_id))
    reads.text_shown({row["customer_id"]}, ["subject"], f"GET /api/v1/tickets/{ticket_id}")
    clocks = reads.read("workflow", lambda db: sla_clocks(db, str(ticket_id)))
    sla = _sla_out(clocks, reads.svc.desk.clock.now())
    body: dict[str, Any] = s.TicketOut.model_validate({**ticket_out(reads, row), "sla": sla}).model_dump(mode="json")
    return body


def _represent(ticket_id: UUID) -> Any:
    return lambda reads: ticket_representation(reads, ticket_id)


def _ticket_as_of(ticket_id: UUID, reads: Any, at: Any) -> JSONResponse:
    desk = reads.svc.desk
    if not reads.principal.sees_team(desk.ticket_team(ticket_id)):
        raise TicketNotFound(ticket_id)
    ticket = desk.get_ticket(ticket_id, at.resolve(desk, ticket_id, TicketNotFound))
    row = ticket_row(desk, ticket)
    reads.text_shown({row["customer_id"]}, ["subject"], f"GET /api/v1/tickets/{ticket_id}")
    body = s.TicketOut.model_validate({**ticket_out(reads, row), "sla": []}).model_dump(mode="json")
    return JSONResponse(body, headers={"ETag": f'"{row["version"]}"'})


@router.get("/{ticket_id}/diff", summary="What changed between two versions: field, old, new, and the event",
            response_model=list[s.FieldChangeOut], responses=responses(403, 404, 422))
def diff(
    pager: PagerDep, ticket_id: UUID, reads: ReadsDep,
    from_version: Annotated[int, Query(ge=0, le=2**31 - 1, description="0: from before the ticket existed")] = 0,
    to_version: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Default: the latest version")] = None,
) -> Any:
    """Each field change made by the events after `from_version` up to `to_version`, in order, with the
    event that made it (the audit trail's change rules). Personal values are masked as in the audit trail."""
    desk = reads.svc.desk
    if not reads.principal.sees_team(desk.ticket_team(ticket_id)):
        raise TicketNotFound(ticket_id)
    last = latest_version(desk, ticket_id)
    to_version = last if to_version is None else to_version
    if to_version > last or from_version > to_version:
        raise ApiProblem(422, "bad_version_range",
                         f"the ticket has versions 1..{last}; asked for {from_version}..{to_version}")
    changes = version_diff(desk, ticket_id, from_version, to_version)
    if changes:
        customer = str(desk.get_ticket(ticket_id, 1).requester_id)  # the requester never changes
        reads.text_shown({customer}, sorted(TICKET_TEXT_FIELDS), f"GET /api/v1/tickets/{ticket_id}/diff")
    masked = mask_audit(reads, {"changes": changes, "summary": "", "event_type": "", "imported": 0})["changes"]
    return pager.page(encode(s.FieldChangeOut, masked))


@router.get("/{ticket_id}/timeline", summary="Every interaction and service-process entry, in order",
            response_model=list[s.TimelineEntryOut], responses=responses(403, 404, 503))
def timeline(pager: PagerDep, ticket_id: UUID, reads: ReadsDep) -> Any:
    """Replies, notes, calls and process entries (assignments, status changes) in the order they happened.
    Bodies are masked unless the caller works the ticket, states a purpose or holds `tickets:text` (then
    recorded). Attachments of the customer's mail are entries too (`entry_type` attachment, the file name
    as the body), with what the desk found them to be and where to download them. Paged with `limit` and
    `cursor`."""
    ticket = reads.ticket_row(str(ticket_id))
    rows = reads.read("timeline", lambda db: ticket_timeline(db, str(ticket_id)))
    if rows:
        reads.text_shown({ticket["customer_id"]}, ["body", "result"], f"GET /api/v1/tickets/{ticket_id}/timeline")
    if not reads.free_text():
        rows = [{**r, "body": MASK, "result": MASK if r["result"] else r["result"]} for r in rows]
    if any(r["entry_type"] == "attachment" for r in rows):
        received = {e.originator_version: e for e in reads.svc.desk.ticket_attachments(ticket_id)}
        rows = [{**r, "attachment": _attachment_out(ticket_id, received.get(r["version"]))} for r in rows]
    return pager.page(encode(s.TimelineEntryOut, [{**r, "public": bool(r["public"])} for r in rows]))


def _attachment_out(ticket_id: UUID, event: Any) -> dict[str, Any] | None:
    if event is None:
        return None
    href = f"/api/v1/tickets/{ticket_id}/attachments/{event.digest}" if event.digest else None
    return {"digest": event.digest, "content_type": event.content_type, "size": event.size,
            "refused": event.refused, "href": href}


#: Types served as themselves; anything else (whatever was sniffed) goes out as opaque bytes.
SERVED_TYPES = {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/bmp", "image/tiff", "image/webp",
                "application/zip", "application/gzip", "text/plain", "audio/ogg", "audio/mpeg", "audio/wav",
                "video/mp4"}


@router.get("/{ticket_id}/attachments/{digest}", summary="Download an attachment of the customer's mail",
            response_class=Response, responses={**responses(403, 404, 503), 200: {
                "content": {"application/octet-stream": {}}, "description": "The attachment's bytes"}})
def download_attachment(
    ticket_id: UUID, digest: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")], reads: ReadsDep,
) -> Response:
    """Under the ticket's access rules: its team's agents and managers (and a stated purpose) get the bytes,
    always as a download (`Content-Disposition: attachment`, `X-Content-Type-Options: nosniff`), and every
    download is recorded in the access log; roles that see ticket text masked get 403."""
    return attachment_download(reads, ticket_id, digest, f"GET /api/v1/tickets/{ticket_id}/attachments/{digest}")


def attachment_download(reads: Reads, ticket_id: UUID, digest: str, resource: str) -> Response:
    """An attachment of the ticket's mail as a download, the read recorded in the access log (the API's
    route and the console's serve it alike: the same rules, the same headers)."""
    ticket = reads.ticket_row(str(ticket_id))
    if not reads.free_text():
        raise PermissionDenied("attachments are ticket text: this role sees it masked (state a purpose)")
    found = reads.svc.desk.ticket_attachment(ticket_id, digest)
    reads.svc.desk.record_data_access(
        RecordDataAccess(customer_id=UUID(ticket["customer_id"]), fields=["attachment"],
                         purpose=reads.purpose or "ticket work: attachment download",
                         request_id=reads.request.state.request_id, resource=resource),
        reads.principal.caller(reads.via, reads.request.state.request_id),
    )
    media_type = found.content_type if found.content_type in SERVED_TYPES else "application/octet-stream"
    name = found.filename if found.filename and found.filename != ERASED else f"attachment-{digest[:12]}"
    fallback = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "_" for ch in name)[:100]
    return Response(found.data, media_type=media_type, headers={
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    })


@router.get("/{ticket_id}/audit", summary="The ticket's audit trail: who, when, via what, old -> new",
            response_model=list[s.AuditEntryOut], responses=responses(403, 404, 503))
def audit(
    ticket_id: UUID, reads: ReadsDep, response: Response,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    cursor: Annotated[str | None, Query(max_length=500, description="The `next_cursor` of the previous page (opaque).")] = None,
    after_position: Annotated[int | None, Query(ge=0, le=2**62, deprecated=True, description="Deprecated: use `cursor`.")] = None,
) -> Any:
    """Personal values in changes and summaries are masked unless the caller works the ticket.
    In log order; follow `Link: rel="next"`."""
    ticket = reads.ticket_row(str(ticket_id))
    start = position_cursor(cursor, after_position)
    rows = reads.read("audit", lambda db: audit_trail(db, object_id=str(ticket_id), after_position=start, limit=limit + 1))
    rows = position_page(reads.request, response, rows, limit)
    if rows:
        reads.text_shown({ticket["customer_id"]}, sorted(TICKET_TEXT_FIELDS), f"GET /api/v1/tickets/{ticket_id}/audit")
    return encode(s.AuditEntryOut, [mask_audit(reads, r) for r in rows])


def masked_fields(reads: Any) -> set[str]:
    """The audited fields whose values this reader sees masked: personal fields without a stated
    purpose, ticket text unless the reader works the ticket's team."""
    hidden = set(PROFILE_CHANGE_FIELDS) if not reads.unmasks else set()
    if not reads.free_text():
        hidden |= TICKET_TEXT_FIELDS
    return hidden


def mask_audit(reads: Any, row: dict[str, Any]) -> dict[str, Any]:
    hidden = masked_fields(reads)
    changes = [
        {**change, "old": MASK if change["old"] is not None else None, "new": MASK if change["new"] is not None else None}
        if change["field"] in hidden else change
        for change in row["changes"]
    ]
    summary = row["summary"] if reads.free_text() and not (hidden & {ch["field"] for ch in row["changes"]}) else f"{row['event_type']} (details masked)"
    return {**row, "changes": changes, "summary": summary, "imported": bool(row["imported"])}
