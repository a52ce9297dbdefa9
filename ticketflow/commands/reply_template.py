"""Commands on saved reply templates (快捷回复): a team's supervisors (and admins) write them."""

from __future__ import annotations

from uuid import UUID

from ticketflow.commands.base import Body, ChangeCommand, Command, Line, ShortText
from ticketflow.domain.reply_template import ReplyKind


class CreateReplyTemplate(Command):
    """A new template for one team. The body may use the placeholders ``{{customer.name}}``,
    ``{{ticket.reference}}``, ``{{ticket.subject}}``, ``{{agent.name}}`` and ``{{team.name}}``."""

    team_id: UUID
    title: Line
    body: Body
    kind: ReplyKind | None = None  # reply, note, or None: either


class ReplyTemplateCommand(ChangeCommand):
    template_id: UUID


class ReviseReplyTemplate(ReplyTemplateCommand):
    """The template's new title, body and kind (a new version; the same content writes nothing)."""

    title: Line
    body: Body
    kind: ReplyKind | None = None


class RetireReplyTemplate(ReplyTemplateCommand):
    """The template is no longer offered nor used; its history stays readable."""

    reason: ShortText = ""
