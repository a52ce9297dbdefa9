"""The ticket page: its state, SLA clocks, the timeline of everything that happened (with the rule
or policy version behind each decision), the reply / note composer, every action on the ticket,
and solved problems like it (问题库). Each action is a form POST guarded by the version the page
showed (a stale write is refused and said so) and runs the same command the API runs."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from api.console import timeline
from api.console.errors import Refusal, refusal
from api.console.labels import N_
from api.console.page import Page, PageDep, whole_number
from api.routers.reply_templates import render_for
from api.routers.tickets import attachment_download, ticket_out
from projections.directory import list_teams
from projections.problems import suggestions
from projections.reply_templates import team_templates
from projections.workflow import sla_clocks
from ticketflow import commands as c
from ticketflow.domain.lifecycle import TRANSITIONS
from ticketflow.domain.values import Channel, Direction, LinkKind, Priority, Status
from ticketflow.errors import TicketflowError, TicketNotFound

router = APIRouter()

#: Channels a reply can go out on (the ticket's own, when it is one of them).
REPLY_CHANNELS = {Channel.EMAIL, Channel.CHAT, Channel.IM, Channel.WEB_FORM, Channel.PHONE}
DONE = {
    "reply": N_("Reply sent."), "note": N_("Note added."), "assign": N_("Assigned."), "transfer": N_("Transferred."),
    "unassign": N_("Unassigned: the ticket waits in its team's queue."),
    "remove-from-team": N_("Removed from its team: the ticket is back in triage."), "category": N_("Category changed."),
    "pend": N_("Now waiting on the customer."), "hold": N_("Put on hold."), "open": N_("Marked open."),
    "solve": N_("Solved."), "close": N_("Closed."), "reopen": N_("Reopened."), "priority": N_("Priority changed."),
    "tags": N_("Tags changed."), "link": N_("Linked."), "merge": N_("Merged."),
}


def _ticket_context(page: Page, ticket_id: UUID, min_position: int | None) -> dict[str, Any]:
    reads = page.reads(min_position=min_position)
    row = reads.ticket_row(str(ticket_id))
    show_text = reads.free_text()
    desk = page.svc.desk
    clocks = reads.read("workflow", lambda db: sla_clocks(db, str(ticket_id)))
    entries = timeline.entries(desk.history(ticket_id), page.gettext, show_text, page.team_name, page.fmt.when)
    teams = reads.read("directory", list_teams)
    team = next((t for t in teams if t["team_id"] == row["team_id"]), None)
    members = sorted(a for a, m in (team["members"] if team else {}).items() if m.get("active"))
    similar = []
    if show_text:
        similar = reads.read("problems", lambda db: suggestions(db, str(ticket_id), row["subject"], row["category"], limit=5))
        shown = reads.visible([s["ticket_id"] for s in similar])
        similar = [s for s in similar if s["ticket_id"] in shown]
    links = [e for e in entries if e.kind == "Linked"]
    templates = reads.read("reply_templates", lambda db: team_templates(db, row["team_id"])) \
        if reads.works_tickets and row["team_id"] else []
    return {
        "ticket": ticket_out(reads, row), "templates": templates, "drafted": None,
        "clocks": clocks, "entries": list(reversed(entries)), "members": members,
        "teams": [(t["team_id"], t["name"]) for t in teams], "similar": similar, "links": links,
        "priorities": [p.value for p in Priority], "link_kinds": [LinkKind.RELATED.value, LinkKind.FOLLOW_UP_OF.value],
        "writes": reads.works_tickets, "now": desk.clock.now(),
        "allowed": {action.value for action in TRANSITIONS[Status(row["status"])]},
    }


@router.get("/tickets/{ticket_id}", response_class=HTMLResponse)
def ticket_page(ticket_id: UUID, request: Request, page: PageDep) -> HTMLResponse:
    at = request.query_params.get("at")
    min_position = whole_number(at)
    context = _ticket_context(page, ticket_id, min_position)
    done = request.query_params.get("done")
    if done in DONE:
        page.notices.append(page._(DONE[done]))
    form_errors: dict[str, Any] = {}
    if chosen := request.query_params.get("template"):  # a saved reply (快捷回复) put into the composer
        try:
            context["drafted"] = render_for(page.reads(), ticket_id, UUID(chosen))
        except ValueError:
            form_errors["template"] = Refusal(422, page._("Choose a saved reply from the list."), "", {})
        except TicketflowError as exc:
            form_errors["template"] = refusal(exc, page.gettext)
    return page.render("ticket.html", status=form_errors["template"].status if form_errors else 200,
                       form_errors=form_errors, form_values={}, refused=None, **context)


@router.get("/tickets/{ticket_id}/attachments/{digest}")
def ticket_attachment(
    ticket_id: UUID, digest: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")], page: PageDep,
) -> Response:
    """An attachment of the customer's mail, linked from the timeline: the API's rules (a role that sees ticket
    text masked is refused, every download is in the access log), as a download that is never rendered."""
    return attachment_download(page.reads(), ticket_id, digest, f"GET /tickets/{ticket_id}/attachments/{digest}")


def ticket_reference(page: Page, text: str) -> UUID:
    """A ticket named by its id or by the first characters of it (as pages show it), in the caller's scope."""
    text = text.strip().lstrip("#").lower()
    try:
        return UUID(text)
    except ValueError:
        pass
    if len(text) < 6 or any(ch not in "0123456789abcdef-" for ch in text):
        raise ValidationError.from_exception_data("ticket", [{"type": "uuid_parsing", "loc": ("ticket",), "input": text,
                                                              "ctx": {"error": "not a ticket reference"}}])
    rows = page.reads().read("tickets", lambda db: db.all(
        "SELECT ticket_id, team_id FROM {p}tf_tickets WHERE ticket_id LIKE ? ORDER BY ticket_id LIMIT 2", (text + "%",)))
    assert page.principal is not None
    rows = [r for r in rows if page.principal.sees_team(r["team_id"])]
    if len(rows) != 1:
        raise TicketNotFound(text)
    return UUID(rows[0]["ticket_id"])


def _command(page: Page, action: str, ticket_id: UUID, form: Any) -> tuple[type[c.Command], dict[str, Any]]:
    """The command an action's form asks for (the same commands the API's routes run)."""
    def get(name: str) -> str:
        return str(form.get(name) or "")

    template: dict[str, Any] = {}
    if get("template_id"):  # written from a saved reply: the server fills what the page left unfilled
        template = {"template_id": get("template_id"), "template_version": get("template_version") or None}
    if action == "reply":
        row = page.reads().ticket_row(str(ticket_id))
        channel = Channel(row["channel"]) if row["channel"] in {ch.value for ch in REPLY_CHANNELS} else Channel.EMAIL
        return c.PostReply, {"body": get("body"), "direction": Direction.OUTBOUND, "channel": channel, **template}
    if action == "note":
        return c.AddNote, {"body": get("body"), **template}
    if action == "assign":
        return c.AssignTicket, {"assignee_id": get("assignee_id"), "reason": get("reason")}
    if action == "unassign":
        return c.UnassignTicket, {"reason": get("reason")}
    if action == "remove-from-team":
        return c.RemoveTicketFromTeam, {"reason": get("reason")}
    if action == "category":
        return c.RecategoriseTicket, {"category": get("category") or None, "ticket_type": get("ticket_type") or None}
    if action == "transfer":
        fields: dict[str, Any] = {"team_id": get("team_id"), "reason": get("reason")}
        if get("assignee_id"):
            fields["assignee_id"] = get("assignee_id")
        return c.TransferTicket, fields
    if action in ("pend", "hold", "open"):
        kind = {"pend": c.PendTicket, "hold": c.HoldTicket, "open": c.MarkTicketOpen}[action]
        return kind, {"reason": get("reason")}
    if action == "solve":
        return c.SolveTicket, {"resolution": get("resolution")}
    if action == "close":
        return c.CloseTicket, {}
    if action == "reopen":
        return c.ReopenTicket, {"reason": get("reason")}
    if action == "priority":
        return c.ChangePriority, {"priority": get("priority"), "reason": get("reason")}
    if action == "tags":
        add = [t for t in get("add").replace("，", ",").replace(",", " ").split() if t]
        return c.ChangeTags, {"add": add, "remove": [str(t) for t in form.getlist("remove")]}
    if action == "link":
        return c.LinkTicket, {"other_ticket_id": ticket_reference(page, get("ticket")), "kind": get("kind") or "related"}
    if action == "merge":
        return c.MergeTicket, {"into_ticket_id": ticket_reference(page, get("ticket"))}
    raise TicketNotFound(ticket_id)


def _action(action: str) -> Any:
    async def handle(ticket_id: UUID, request: Request, page: PageDep) -> Response:
        form = await request.form()
        page.return_to = f"/tickets/{ticket_id}"
        version = str(form.get("version") or "")
        expected = whole_number(version, 1, 2**31 - 1)
        try:
            command, fields = _command(page, action, ticket_id, form)
            commands = page.commands(expected)
            for key in ("other_ticket_id", "into_ticket_id"):
                if key in fields:
                    commands.visible_ticket(fields[key])  # the other ticket must be in the caller's teams too
            if expected is None:  # every form carries the version it showed: without it, a stale write would pass
                raise ValidationError.from_exception_data("form", [{"type": "missing", "loc": ("version",), "input": version}])
            result = commands.run(command, ticket_id=ticket_id, **fields)
        except (ValidationError, TicketflowError) as exc:
            refused = refusal(exc, page.gettext)
            if refused.status == 404 and not isinstance(exc, ValidationError) and action not in ("link", "merge"):
                raise
            context = _ticket_context(page, ticket_id, None)
            values = {k: str(v) for k, v in form.items() if k not in ("csrf_token",)}
            return page.render("ticket.html", status=refused.status, refused=refused, form_errors={action: refused},
                               form_values={action: values}, **context)
        at = f"&at={result.position}" if result.position else ""
        assert page.principal is not None
        if not page.principal.sees_team(page.svc.desk.ticket_team(ticket_id)):
            return page.redirect(f"/queues?done={action}")  # transferred out of the caller's teams
        return page.redirect(f"/tickets/{ticket_id}?done={action}{at}")

    handle.__name__ = f"ticket_{action.replace('-', '_')}"
    return handle


for _name in DONE:
    router.post(f"/tickets/{{ticket_id}}/{_name}")(_action(_name))
