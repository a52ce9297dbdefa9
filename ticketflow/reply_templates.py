"""Saved reply templates (快捷回复): writing them, reading them, filling one for a ticket.

A mixin of :class:`~ticketflow.application.TicketDesk`. A template belongs to one team: its
supervisors (and admins) create, revise and retire it; everyone working the team's tickets reads
and uses it; other teams' staff never see it (not found).

**The customer's name is personal data.** It is never filled into what a caller is *shown* unless
they state a purpose, like any unmasked read: :meth:`render_reply_template` leaves
``{{customer.name}}`` in the text (``unfilled``) and the HTTP layer fills it only for a caller who
may unmask and sends ``X-Access-Purpose`` (recording the read). A reply or note *sent* from a
template keeps its placeholders until the server fills them in the same transaction that records it
(so the agent's browser never needs the name); filling the name there needs ``pii:unmask`` and
writes a ``DataAccess.Recorded`` (field ``name``) beside the reply, because the sender and their team
then read the name in the ticket's timeline. The reply event records the template's id and version.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID, uuid5

from ticketflow.access import Permission
from ticketflow.commands.base import Command
from ticketflow.commands.reply_template import CreateReplyTemplate, RetireReplyTemplate, ReviseReplyTemplate
from ticketflow.domain import (
    Customer,
    DataAccess,
    ReplyTemplate,
    StaffAccount,
    Team,
    Ticket,
    TicketflowAggregate,
)
from ticketflow.domain.reply_template import (
    PERSONAL_PLACEHOLDERS,
    ReplyKind,
    check_placeholders,
    fill,
    placeholders_in,
)
from ticketflow.domain.values import Role
from ticketflow.errors import (
    NotFound,
    PermissionDenied,
    RuleViolation,
    TeamNotFound,
    TicketNotFound,
    ValidationFailed,
)
from ticketflow.metadata import Caller

if TYPE_CHECKING:
    from ticketflow.application import CommandResult

A = TypeVar("A", bound=TicketflowAggregate)

#: Who writes a team's templates: its supervisors (their token reaches only the teams they supervise), admins.
WRITER_ROLES = (Role.ADMIN, Role.SUPERVISOR, Role.SYSTEM)
MAX_BODY = 20_000


@dataclass(frozen=True)
class RenderedTemplate:
    """A template filled for one ticket and caller, as the reply composer shows it."""

    template_id: UUID
    version: int
    ticket_id: UUID
    customer_id: UUID  # the ticket's requester (whose name ``{{customer.name}}`` is)
    kind: str | None
    title: str
    body: str  # filled, except the placeholders in ``unfilled``
    filled: tuple[str, ...]
    unfilled: tuple[str, ...]  # left as written: the server fills them when the reply or note is sent


class ReplyTemplateCommands:
    """Reply templates' commands and reads (see the module docstring)."""

    if TYPE_CHECKING:  # what the mixin uses of TicketDesk (declared here: no import circle)
        def _peek(self, cls: type[A], object_id: UUID) -> A: ...
        def _load(self, cls: type[A], object_id: UUID, version: int | None = None) -> A: ...
        def _require_exists(self, cls: type[TicketflowAggregate], object_id: UUID) -> None: ...
        def _create(
            self, cls: type[A], cmd: Command, caller: Caller, build: Callable[[UUID], A]) -> CommandResult: ...
        def _change(self, cls: type[A], object_id: UUID, cmd: Command, caller: Caller,
                    act: Callable[[A], Iterable[TicketflowAggregate] | None]) -> CommandResult: ...
        def history(self, object_id: UUID) -> list[TicketflowAggregate.Event]: ...
        def find_account(self, username: str) -> StaffAccount | None: ...
        def list_accounts(self) -> list[StaffAccount]: ...

    # ---------------------------------------------------------------- commands
    def create_reply_template(self, cmd: CreateReplyTemplate, caller: Caller) -> CommandResult:
        _may_write(caller, cmd.team_id, TeamNotFound(cmd.team_id))

        def build(template_id: UUID) -> ReplyTemplate:
            self._require_exists(Team, cmd.team_id)
            return ReplyTemplate.write(template_id, cmd.team_id, cmd.title, cmd.body, cmd.kind)

        return self._create(ReplyTemplate, cmd, caller, build)

    def revise_reply_template(self, cmd: ReviseReplyTemplate, caller: Caller) -> CommandResult:
        team_id = self._peek(ReplyTemplate, cmd.template_id).team_id  # a template never changes team
        _may_write(caller, team_id, NotFound("reply template", cmd.template_id))
        return self._change(
            ReplyTemplate, cmd.template_id, cmd, caller, lambda t: t.revise(cmd.title, cmd.body, cmd.kind))

    def retire_reply_template(self, cmd: RetireReplyTemplate, caller: Caller) -> CommandResult:
        team_id = self._peek(ReplyTemplate, cmd.template_id).team_id
        _may_write(caller, team_id, NotFound("reply template", cmd.template_id))
        return self._change(ReplyTemplate, cmd.template_id, cmd, caller, lambda t: t.retire(cmd.reason))

    # ------------------------------------------------------------------- reads
    def reply_template(self, template_id: UUID, caller: Caller, version: int | None = None) -> ReplyTemplate:
        """One template (or one of its past versions), if its team is one of the caller's (else NotFound)."""
        template = self._load(ReplyTemplate, template_id, version)
        if not caller.sees_team(template.team_id):
            raise NotFound("reply template", template_id)
        if version is not None and template.version != version:
            raise NotFound("reply template version", f"{template_id} v{version}")
        return template

    def reply_template_history(self, template_id: UUID, caller: Caller) -> list[TicketflowAggregate.Event]:
        """Every version of a template, in order: who changed it, when, and its content then."""
        self.reply_template(template_id, caller)
        return self.history(template_id)

    def render_reply_template(
        self, ticket_id: UUID, template_id: UUID, caller: Caller, *, version: int | None = None,
        keep: Collection[str] = PERSONAL_PLACEHOLDERS,
    ) -> RenderedTemplate:
        """The template filled for the ticket and the caller (as its author). The placeholders in ``keep``
        stay in the text (by default the customer's name: see the module docstring)."""
        ticket = self._ticket_in_scope(ticket_id, caller)
        template = self._usable_template(ticket, template_id, caller)
        if version is not None and version != template.version:
            template = self.reply_template(template_id, caller, version)
        named = placeholders_in(template.body)
        filled = tuple(name for name in named if name not in keep)
        body = fill(template.body, self._placeholder_values(ticket, caller.actor_id, filled), keep)
        unfilled = tuple(name for name in named if name in keep)
        return RenderedTemplate(template.id, template.version, ticket.id, ticket.requester_id, template.kind,
                                template.title, body, filled, unfilled)

    # ---------------------------------------------------------------- sending
    def _fill_for_sending(
        self, ticket: Ticket, kind: ReplyKind, template_id: UUID, version: int | None, body: str, author: str,
        caller: Caller, interaction_id: UUID,
    ) -> tuple[str, tuple[UUID, int], list[TicketflowAggregate]]:
        """A reply's or note's body with its placeholders filled, the template (id, version) it records, and
        the record of the customer's name read (when the body names it), saved with the reply."""
        template = self._usable_template(ticket, template_id, caller)
        used = template.check_use(kind, version)
        check_placeholders(body)
        needed = set(placeholders_in(body))
        personal = sorted(needed & PERSONAL_PLACEHOLDERS)
        if personal and not caller.may(Permission.PII_UNMASK):
            raise PermissionDenied(f"{caller.role.a} may not fill in the customer's personal data ({personal[0]})")
        text = fill(body, self._placeholder_values(ticket, author, needed))
        if len(text) > MAX_BODY:
            raise ValidationFailed(f"the filled-in body is {len(text)} characters; at most {MAX_BODY}")
        records: list[TicketflowAggregate] = []
        if personal:
            records.append(DataAccess._create(
                DataAccess.Recorded, id=uuid5(interaction_id, "data-access"), customer_id=ticket.requester_id,
                fields=["name"], purpose=f"{kind} sent from reply template {template.id} v{used}",
                request_id=caller.correlation_id or str(interaction_id), resource=f"ticket {ticket.id} {kind}",
            ))
        return text, (template.id, used), records

    # ---------------------------------------------------------------- plumbing
    def _ticket_in_scope(self, ticket_id: UUID, caller: Caller) -> Ticket:
        ticket = self._peek(Ticket, ticket_id)
        if not caller.sees_team(ticket.team_id):
            raise TicketNotFound(ticket_id)
        return ticket

    def _usable_template(self, ticket: Ticket, template_id: UUID, caller: Caller) -> ReplyTemplate:
        """The template, if it is one of the ticket's team's and not retired."""
        template = self._peek(ReplyTemplate, template_id)
        if not caller.sees_team(template.team_id):
            raise NotFound("reply template", template_id)  # another team's template does not exist for this caller
        if template.team_id != ticket.team_id:
            raise RuleViolation(f"reply template {template_id} is team {template.team_id}'s; ticket {ticket.id} is"
                                f" {'in team ' + str(ticket.team_id) if ticket.team_id else 'in no team'}")
        if template.retired:
            raise RuleViolation(f"reply template {template_id} is retired: it is no longer used")
        return template

    def _placeholder_values(self, ticket: Ticket, author: str, names: Collection[str]) -> dict[str, str]:
        """The values of ``names`` for the ticket (each read only when named)."""
        values: dict[str, str] = {}
        for name in names:
            if name == "customer.name":
                values[name] = self._peek(Customer, ticket.requester_id).name
            elif name == "ticket.reference":
                values[name] = f"#{str(ticket.id)[:8]}"
            elif name == "ticket.subject":
                values[name] = ticket.subject
            elif name == "agent.name":
                values[name] = self._display_name(author)
            elif name == "team.name":
                values[name] = self._peek(Team, ticket.team_id).name if ticket.team_id else ""
        return values

    def _display_name(self, person: str) -> str:
        """How colleagues see a person on what they write: their console account's display name, else their id."""
        account = self.find_account(person)
        if account is None or account.agent_id not in (None, person):
            account = next((a for a in self.list_accounts() if a.agent_id == person), None)
        return account.display_name if account is not None else person


def _may_write(caller: Caller, team_id: UUID, missing: NotFound) -> None:
    """A team's templates are written by its supervisors and admins; another team's are not found."""
    if not caller.sees_team(team_id):
        raise missing
    if caller.role not in WRITER_ROLES:
        raise PermissionDenied(f"{caller.role.a} may not write reply templates; a supervisor of the team may")
