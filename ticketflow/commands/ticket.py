"""Commands on tickets: imperative, one per thing a desk does to a ticket."""

from __future__ import annotations

from uuid import UUID

from pydantic import Field, model_validator

from ticketflow.commands.base import Body, ChangeCommand, Command, Line, Name, OptionalBody, ShortText, Tag
from ticketflow.domain.values import (
    CUSTOMER_CHANNELS,
    Channel,
    Direction,
    InteractionKind,
    LinkKind,
    Priority,
    TicketType,
)

TEMPLATE_ID = ("The saved reply template (快捷回复) the body was written from: its placeholders left in the body, "
               "e.g. {{customer.name}}, are filled on the server, and the reply records the template and version.")
TEMPLATE_VERSION = "The template version the body was written from (default: its latest)."


class OpenTicket(Command):
    subject: Line
    description: OptionalBody = ""
    ticket_type: TicketType = TicketType.INQUIRY
    category: Name = "general"
    priority: Priority = Priority.NORMAL
    channel: Channel = Channel.WEB_FORM
    requester_id: UUID
    team_id: UUID | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _customer_channel(self) -> OpenTicket:
        if self.channel not in CUSTOMER_CHANNELS:
            allowed = ", ".join(sorted(CUSTOMER_CHANNELS))
            raise ValueError(f"channel {self.channel} is not a way customers reach the desk ({allowed})")
        return self


class TicketCommand(ChangeCommand):
    ticket_id: UUID


class MarkTicketOpen(TicketCommand):
    reason: ShortText = ""


class PendTicket(TicketCommand):
    reason: ShortText = ""


class HoldTicket(TicketCommand):
    reason: ShortText = ""


class SolveTicket(TicketCommand):
    resolution: OptionalBody = ""


class ReopenTicket(TicketCommand):
    reason: Line


class CloseTicket(TicketCommand):
    pass


class MergeTicket(TicketCommand):
    """Merge ``ticket_id`` (the duplicate) into ``into_ticket_id`` (the primary)."""

    into_ticket_id: UUID


class AssignTicket(TicketCommand):
    assignee_id: Name
    reason: ShortText = ""


class UnassignTicket(TicketCommand):
    """Clear the assignee: the ticket waits in its team's queue (or triage) for someone."""

    reason: ShortText = ""


class RemoveTicketFromTeam(TicketCommand):
    """Send the ticket back to triage (no team); it is unassigned too."""

    reason: Line


class TransferTicket(TicketCommand):
    team_id: UUID
    assignee_id: Name | None = None
    reason: Line


class ChangePriority(TicketCommand):
    priority: Priority
    reason: ShortText = ""


class RecategoriseTicket(TicketCommand):
    category: Name | None = None
    ticket_type: TicketType | None = None

    @model_validator(mode="after")
    def _something(self) -> RecategoriseTicket:
        if self.category is None and self.ticket_type is None:
            raise ValueError("give a category, a ticket_type or both")
        return self


class ChangeTags(TicketCommand):
    add: list[Tag] = Field(default_factory=list, max_length=20)
    remove: list[Tag] = Field(default_factory=list, max_length=20)


class AddCollaborator(TicketCommand):
    agent_id: Name


class RemoveCollaborator(TicketCommand):
    agent_id: Name


class LinkTicket(TicketCommand):
    other_ticket_id: UUID
    kind: LinkKind = LinkKind.RELATED

    @model_validator(mode="after")
    def _not_duplicate(self) -> LinkTicket:
        if self.kind is LinkKind.DUPLICATE_OF:
            raise ValueError("mark a duplicate by merging it, not by linking")
        return self


class PostReply(TicketCommand):
    """A public reply: outbound from an agent, inbound when the customer writes."""

    body: Body
    direction: Direction = Direction.OUTBOUND
    channel: Channel = Channel.EMAIL
    author_id: Name | None = None  # defaults to the caller
    template_id: UUID | None = Field(default=None, description=TEMPLATE_ID)
    template_version: int | None = Field(default=None, ge=1, description=TEMPLATE_VERSION)

    @model_validator(mode="after")
    def _not_internal(self) -> PostReply:
        if self.direction is Direction.INTERNAL:
            raise ValueError("a public reply is inbound or outbound; use a note for internal text")
        if self.template_id is not None and self.direction is Direction.INBOUND:
            raise ValueError("a customer's inbound message is not sent from a reply template")
        return self


class AddNote(TicketCommand):
    """An internal note, never shown to the customer."""

    body: Body
    author_id: Name | None = None
    template_id: UUID | None = Field(default=None, description=TEMPLATE_ID)
    template_version: int | None = Field(default=None, ge=1, description=TEMPLATE_VERSION)


class LogInteraction(TicketCommand):
    """A contact that happened elsewhere: a phone call, an email, a chat, a meeting."""

    kind: InteractionKind
    body: Body
    direction: Direction
    channel: Channel | None = None  # defaults from the kind
    author_id: Name | None = None
    duration_minutes: int = Field(default=0, ge=0, le=24 * 60)

    @model_validator(mode="after")
    def _external_kind(self) -> LogInteraction:
        if self.kind in (InteractionKind.REPLY, InteractionKind.NOTE):
            raise ValueError(f"a {self.kind} is posted with its own command, not logged")
        if self.direction is Direction.INTERNAL:
            raise ValueError(f"a {self.kind} is inbound or outbound")
        return self


class LogWork(TicketCommand):
    """A service process entry (服务过程详情)."""

    action: Body
    minutes: int = Field(ge=0, le=24 * 60)
    result: OptionalBody = ""
    performer_id: Name | None = None


class RateSatisfaction(TicketCommand):
    score: int = Field(ge=1, le=5)
    comment: OptionalBody = ""
