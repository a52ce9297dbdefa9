"""/api/v1/teams/{team_id}/reply-templates: a team's saved reply templates (快捷回复); one filled in for a ticket.

A team's supervisors (and admins) write its templates; whoever reads the team reads them; another
team's templates are not found. The reply composer previews a template for a ticket
(``/tickets/{ticket_id}/reply-templates/{template_id}/preview``), then posts the reply or note
(``/tickets/{ticket_id}/replies`` or ``/notes``) with ``template_id``: the server fills the placeholders
left in the body and the reply records the template and its version. The customer's name is never
in a preview unless the caller states a purpose (``X-Access-Purpose``), which is recorded.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from api import schemas as s
from api.pagination import PagerDep
from api.deps import CommandsDep, PrincipalDep, Reads, ReadsDep, ServicesDep, encode
from api.problems import responses
from projections.reply_templates import team_templates
from ticketflow import commands as c
from ticketflow.domain import ReplyTemplate, Team
from ticketflow.domain.reply_template import PERSONAL_PLACEHOLDERS, PLACEHOLDERS
from ticketflow.errors import NotFound
from ticketflow.reply_templates import RenderedTemplate

router = APIRouter(prefix="/api/v1", tags=["reply templates"])
BASE = "/teams/{team_id}/reply-templates"
READ_ERRORS = responses(403, 404, 422)
WRITE_ERRORS = responses(403, 404, 409, 412, 422)
Version = Annotated[int | None, Query(ge=1, le=2**31, description="A past version (default: the latest).")]


def _in_team(template: ReplyTemplate, team_id: UUID) -> ReplyTemplate:
    if template.team_id != team_id:
        raise NotFound("reply template", template.id)  # the path names another team: nothing here
    return template


@router.get(BASE, summary="A team's reply templates (快捷回复)", response_model=list[s.ReplyTemplateOut],
            responses=responses(403, 404, 422, 503))
def list_templates(pager: PagerDep, team_id: UUID, reads: ReadsDep, include_retired: bool = False) -> Any:
    """The team's templates by title, from the reply templates view (pass `min_position` to read your own
    write); retired ones only with `include_retired=true`."""
    reads.svc.desk._require_exists(Team, team_id)
    rows = reads.read("reply_templates", lambda db: team_templates(db, str(team_id), include_retired))
    return pager.page(encode(s.ReplyTemplateOut, rows))


@router.post(BASE, status_code=201, summary="Create a reply template for the team", response_model=s.CommandOut,
             responses=WRITE_ERRORS)
def create(team_id: UUID, body: s.ReplyTemplateCreate, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """A supervisor of the team or an admin. The body may use `{{customer.name}}`, `{{ticket.reference}}`,
    `{{ticket.subject}}`, `{{agent.name}}` and `{{team.name}}`; any other placeholder is refused (422, naming it).
    `kind`: `reply`, `note`, or null for either."""
    result = cmd.run(c.CreateReplyTemplate, team_id=team_id, **body.model_dump())
    return cmd.respond(result, 201, location=f"/api/v1/teams/{team_id}/reply-templates/{result.object_id}")


@router.get(BASE + "/{template_id}", summary="One reply template (or a past version) and its history",
            response_model=s.ReplyTemplateDetailOut, responses=READ_ERRORS)
def get_template(team_id: UUID, template_id: UUID, svc: ServicesDep, principal: PrincipalDep,
                 version: Version = None) -> JSONResponse:
    """From the template's own events; `ETag` is the version shown. `history` lists every version: who,
    when, through what, and its content."""
    caller = principal.caller()
    template = _in_team(svc.desk.reply_template(template_id, caller, version), team_id)
    history = [
        {"version": e.originator_version, "event_type": type(e).__qualname__, "occurred_at": e.occurred_at,
         "actor_id": e.actor_id, "actor_role": e.actor_role, "via": e.via, "imported": e.imported,
         "note": str(getattr(e, "reason", "")), "content": jsonable_encoder(e.payload())}
        for e in svc.desk.reply_template_history(template_id, caller)
    ]
    body = s.ReplyTemplateDetailOut.model_validate({
        "template_id": template.id, "team_id": template.team_id, "title": template.title, "body": template.body,
        "kind": template.kind, "version": template.version, "retired": template.retired,
        "updated_at": template.updated_at, "placeholders": PLACEHOLDERS, "history": history,
    }).model_dump(mode="json")
    return JSONResponse(body, headers={"ETag": f'"{template.version}"'})


@router.put(BASE + "/{template_id}", summary="Revise a reply template (a new version)", response_model=s.CommandOut,
            responses=WRITE_ERRORS)
def revise(team_id: UUID, template_id: UUID, body: s.ReplyTemplatePut, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """The whole new title, body and kind. Send `If-Match` with the version you edited: 412 when someone
    revised it since. The same content writes nothing (no new version); a retired template is not revised (409)."""
    _in_team(cmd.svc.desk.reply_template(template_id, cmd.principal.caller()), team_id)
    return cmd.respond(cmd.run(c.ReviseReplyTemplate, template_id=template_id, **body.model_dump()))


@router.post(BASE + "/{template_id}/retire", summary="Retire a reply template", response_model=s.CommandOut,
             responses=WRITE_ERRORS)
def retire(team_id: UUID, template_id: UUID, body: s.ReplyTemplateRetire, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """It is no longer listed nor used; its history and the replies sent from it stay."""
    _in_team(cmd.svc.desk.reply_template(template_id, cmd.principal.caller()), team_id)
    return cmd.respond(cmd.run(c.RetireReplyTemplate, template_id=template_id, **body.model_dump()))


def render_for(reads: Reads, ticket_id: UUID, template_id: UUID, version: int | None = None) -> RenderedTemplate:
    """The template filled in for a ticket as this reader may see it (the API's preview and the console's
    composer): the customer's name only for a reader who may unmask and stated a purpose (the read is
    recorded), the subject only where ticket text is shown; what stays unfilled the server fills on sending."""
    reads.check_purpose()
    keep = set() if reads.unmasks else set(PERSONAL_PLACEHOLDERS)
    if not reads.free_text():
        keep.add("ticket.subject")  # ticket text, masked for this reader
    caller = reads.principal.caller(reads.via, reads.request.state.request_id)
    rendered = reads.svc.desk.render_reply_template(ticket_id, template_id, caller, version=version, keep=keep)
    resource = f"GET /api/v1/tickets/{ticket_id}/reply-templates/{template_id}/preview"
    if "ticket.subject" in rendered.filled:
        reads.text_shown({str(rendered.customer_id)}, ["subject"], resource)
    if set(rendered.filled) & PERSONAL_PLACEHOLDERS:
        reads.record_access(rendered.customer_id, ["name"], resource)
    return rendered


@router.get("/tickets/{ticket_id}/reply-templates/{template_id}/preview", tags=["tickets"],
            summary="A reply template filled in for a ticket (the reply composer)",
            response_model=s.RenderedTemplateOut, responses=responses(403, 404, 409, 422))
def preview(ticket_id: UUID, template_id: UUID, reads: ReadsDep, version: Version = None) -> Any:
    """The template of the ticket's team, filled in for this ticket and the caller as its author. The
    customer's name is personal data: `{{customer.name}}` stays in the body (listed in `unfilled`) and is
    filled by the server when the reply is posted with `template_id`. A caller who may unmask personal
    data and sends `X-Access-Purpose` gets it filled here, and that read is recorded in the access log."""
    rendered = render_for(reads, ticket_id, template_id, version)
    return s.RenderedTemplateOut.model_validate(rendered, from_attributes=True).model_dump(mode="json")
