"""The Ticket aggregate (服务处理单): one customer request from first contact to closure.

Public methods are the rules: they validate against the current state and raise
a :class:`~ticketflow.errors.TicketflowError` or record events. The ``@event``
methods (and ``Interaction.apply``) only mutate; they re-run on every replay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import event

from ticketflow import metadata
from ticketflow.domain.base import TicketflowAggregate
from ticketflow.domain.lifecycle import Action, allowed_from, next_status
from ticketflow.domain.values import (
    Direction,
    InteractionKind,
    LinkKind,
    Priority,
    Status,
    TicketType,
)
from ticketflow.errors import InvalidTransition, RuleViolation


def _sent_without_template(state: dict[str, Any]) -> None:
    """Replies and notes recorded before v2 were not sent from a reply template."""
    state["template_id"] = None
    state["template_version"] = None


def _counted_nothing(state: dict[str, Any]) -> None:
    """Status, placement, priority and category events stored before v2 kept no source counters."""
    state["source_counters"] = None


def _counters_from_context() -> dict[str, int] | None:
    counters = metadata.current().source_counters
    return None if not counters else dict(counters)


@dataclass(frozen=True)
class SourceCounted(TicketflowAggregate.Event):
    """An event that may record a fact of imported history; v2: the source system's own counters
    at that update (e.g. ServiceNow's ``reassignment_count``, ``reopen_count``, ``sys_mod_count``),
    None when the source named none (every native command). The ticket keeps the latest."""

    source_counters: dict[str, int] | None = field(default_factory=_counters_from_context, kw_only=True)

    class_version = 2
    upcast_v1_v2 = staticmethod(_counted_nothing)

    def payload(self) -> dict[str, Any]:
        """The event's own fields; ``source_counters`` only when the source named some (omitted when
        none, so native events, their webhooks and audit entries read as before v2)."""
        found = super().payload()
        if found.get("source_counters") is None:
            found.pop("source_counters", None)
        return found

    def mutate(self, aggregate: Any) -> Any:
        aggregate = super().mutate(aggregate)
        if self.source_counters:
            aggregate.source_counters = dict(self.source_counters)
        return aggregate


class Ticket(TicketflowAggregate):
    # State added with workflow automation: defaults for tickets whose snapshots predate it.
    routed: bool = False
    #: The source system's own counters at the latest imported update that named them (None: none).
    source_counters: dict[str, int] | None = None
    placed_by_hand: bool = False  # assigned or transferred by a person: the router stands aside
    sla: dict[str, Any] | None = None
    survey: dict[str, Any] | None = None
    resolution_summary: str | None = None
    received_mail: tuple[str, ...] = ()  # identities (mail keys) of the customer's mails this ticket holds
    # The attachments kept (ciphertext digest, sniffed type, size in bytes): what may be downloaded.
    attachments: tuple[tuple[str, str, int], ...] = ()

    # ------------------------------------------------------------------ events
    @dataclass(frozen=True)
    class Opened(TicketflowAggregate.Created):
        personal_fields: ClassVar[frozenset[str]] = frozenset({"subject", "description"})
        data_subject: ClassVar[str | None] = "requester_id"

        subject: str
        description: str
        ticket_type: str
        category: str
        priority: str
        channel: str
        requester_id: UUID
        team_id: UUID | None
        tags: list[str]

    @dataclass(frozen=True)
    class MarkedOpen(SourceCounted):
        from_status: str
        reason: str

    @dataclass(frozen=True)
    class Pended(SourceCounted):
        from_status: str
        reason: str

    @dataclass(frozen=True)
    class PutOnHold(SourceCounted):
        from_status: str
        reason: str

    @dataclass(frozen=True)
    class Solved(SourceCounted):
        personal_fields: ClassVar[frozenset[str]] = frozenset({"resolution"})
        data_subject: ClassVar[str | None] = "customer_id"

        from_status: str
        resolution: str
        customer_id: UUID

    @dataclass(frozen=True)
    class Reopened(SourceCounted):
        from_status: str
        reason: str

    @dataclass(frozen=True)
    class Closed(SourceCounted):
        from_status: str

    @dataclass(frozen=True)
    class SourceCountersRecorded(SourceCounted):
        """Imported history: an update of the source that changed none of the imported fields but
        its counters (kept so the ticket ends with the source's final counters)."""

        class_version = 1

    @dataclass(frozen=True)
    class MergedInto(TicketflowAggregate.Event):
        """This ticket was a duplicate: closed, pointing at the primary ticket."""

        from_status: str
        primary_id: UUID

    @dataclass(frozen=True)
    class DuplicateMerged(TicketflowAggregate.Event):
        """A duplicate was merged into this (primary) ticket."""

        duplicate_id: UUID

    @dataclass(frozen=True)
    class Assigned(SourceCounted):
        assignee_id: str
        previous_assignee_id: str | None
        reason: str

    @dataclass(frozen=True)
    class Unassigned(SourceCounted):
        """Nobody holds the ticket any more; it stays with its team (if any)."""

        previous_assignee_id: str
        reason: str

    @dataclass(frozen=True)
    class RemovedFromTeam(SourceCounted):
        """The ticket left its team for the triage queue (no team); its assignee, if any, is kept."""

        from_team_id: UUID
        reason: str

    @dataclass(frozen=True)
    class Transferred(SourceCounted):
        to_team_id: UUID
        from_team_id: UUID | None
        assignee_id: str | None
        previous_assignee_id: str | None
        reason: str

    @dataclass(frozen=True)
    class PriorityChanged(SourceCounted):
        priority: str
        previous_priority: str
        reason: str

    @dataclass(frozen=True)
    class Recategorised(SourceCounted):
        category: str
        previous_category: str
        ticket_type: str
        previous_type: str

    @dataclass(frozen=True)
    class TagsChanged(TicketflowAggregate.Event):
        added: list[str]
        removed: list[str]

    @dataclass(frozen=True)
    class CollaboratorAdded(TicketflowAggregate.Event):
        agent_id: str

    @dataclass(frozen=True)
    class CollaboratorRemoved(TicketflowAggregate.Event):
        agent_id: str

    @dataclass(frozen=True)
    class Linked(TicketflowAggregate.Event):
        linked_ticket_id: UUID
        kind: str

    @dataclass(frozen=True)
    class WorkLogged(TicketflowAggregate.Event):
        """A service process entry (服务过程详情): what was done, by whom, how long, result."""

        personal_fields: ClassVar[frozenset[str]] = frozenset({"action", "result"})
        data_subject: ClassVar[str | None] = "customer_id"

        entry_id: UUID
        performer_id: str
        action: str
        minutes: int
        result: str
        customer_id: UUID

    @dataclass(frozen=True)
    class Rated(TicketflowAggregate.Event):
        personal_fields: ClassVar[frozenset[str]] = frozenset({"comment"})
        data_subject: ClassVar[str | None] = "customer_id"

        score: int
        comment: str
        customer_id: UUID

    @dataclass(frozen=True)
    class Routed(TicketflowAggregate.Event):
        """The router placed the ticket: which team and agent, and why (rule, policy version, strategy)."""

        team_id: UUID
        assignee_id: str | None
        previous_team_id: UUID | None
        rule: str | None  # None: no rule matched and the default team caught it (or the team was chosen at opening)
        policy_id: UUID | None
        policy_version: int | None
        strategy: str | None
        priority: str | None  # set by the rule, None when unchanged
        added_tags: list[str]

    @dataclass(frozen=True)
    class SlaApplied(TicketflowAggregate.Event):
        """An SLA policy version now measures this ticket, with the targets and calendar it had then."""

        policy_id: UUID
        policy_version: int
        policy_name: str
        targets: dict[str, dict[str, dict[str, Any]]]
        calendar: dict[str, Any] | None
        calendar_id: UUID | None
        calendar_version: int | None
        warn_at_percent: int
        escalation: dict[str, Any]

    @dataclass(frozen=True)
    class SlaWarned(TicketflowAggregate.Event):
        metric: str
        cycle: str  # when this run of the metric's clock started (next reply time runs many times)
        due_at: datetime
        policy_version: int

    @dataclass(frozen=True)
    class SlaBreached(TicketflowAggregate.Event):
        metric: str
        cycle: str
        due_at: datetime
        policy_version: int

    @dataclass(frozen=True)
    class SlaFulfilled(TicketflowAggregate.Event):
        metric: str
        cycle: str
        fulfilled_at: datetime
        elapsed_minutes: float
        policy_version: int

    @dataclass(frozen=True)
    class SurveyIssued(TicketflowAggregate.Event):
        """A satisfaction survey (满意度调查) was sent to the requester; its token is never stored."""

        survey_id: UUID
        expires_at: datetime
        customer_id: UUID

    @dataclass(frozen=True)
    class ResolutionRecorded(TicketflowAggregate.Event):
        """The agent's summary of how the problem was solved (问题库)."""

        personal_fields: ClassVar[frozenset[str]] = frozenset({"summary"})
        data_subject: ClassVar[str | None] = "customer_id"

        summary: str
        category: str
        customer_id: UUID

    @dataclass(frozen=True)
    class Interaction(TicketflowAggregate.Event):
        """Base of the interaction events: each kind of contact is its own event class."""

        kind: ClassVar[InteractionKind]
        public: ClassVar[bool] = False
        personal_fields: ClassVar[frozenset[str]] = frozenset({"body"})
        data_subject: ClassVar[str | None] = "customer_id"

        interaction_id: UUID
        direction: str
        author_id: str
        channel: str
        body: str
        customer_id: UUID

        def apply(self, aggregate: Any) -> None:
            ticket: Ticket = aggregate
            ticket.interaction_count += 1
            if self.public:
                ticket.public_reply_count += 1
            if self.kind is InteractionKind.NOTE:
                ticket.note_count += 1
            ticket.last_interaction_at = self.occurred_at

    @dataclass(frozen=True)
    class Replied(Interaction):
        """A public reply, visible to the customer; v2: the saved reply template (快捷回复) it was sent from."""

        kind: ClassVar[InteractionKind] = InteractionKind.REPLY
        public: ClassVar[bool] = True
        template_id: UUID | None = None
        template_version: int | None = None

        class_version = 2
        upcast_v1_v2 = staticmethod(_sent_without_template)

    @dataclass(frozen=True)
    class NoteAdded(Interaction):
        """An internal note, never shown to the customer; v2: the saved reply template it was written from."""

        kind: ClassVar[InteractionKind] = InteractionKind.NOTE
        template_id: UUID | None = None
        template_version: int | None = None

        class_version = 2
        upcast_v1_v2 = staticmethod(_sent_without_template)

    @dataclass(frozen=True)
    class CallLogged(Interaction):
        kind: ClassVar[InteractionKind] = InteractionKind.CALL
        duration_minutes: int = 0

    @dataclass(frozen=True)
    class EmailLogged(Interaction):
        kind: ClassVar[InteractionKind] = InteractionKind.EMAIL

    @dataclass(frozen=True)
    class ChatLogged(Interaction):
        kind: ClassVar[InteractionKind] = InteractionKind.CHAT

    @dataclass(frozen=True)
    class MeetingMinuted(Interaction):
        kind: ClassVar[InteractionKind] = InteractionKind.MEETING

    @dataclass(frozen=True)
    class MailReceived(TicketflowAggregate.Event):
        """A customer's mail opened this ticket (``interaction_id`` None) or was added to it as their
        inbound reply. ``mail_key`` is the SHA-256 of the mail's identity (its Message-ID, else mailbox
        and UID): a ticket holds each mail once. The raw message is kept outside the log, sealed under
        the customer's key, addressed by ``raw_digest`` (the SHA-256 of that ciphertext)."""

        personal_fields: ClassVar[frozenset[str]] = frozenset({"message_id"})
        data_subject: ClassVar[str | None] = "customer_id"

        mail_key: str
        message_id: str
        mailbox: str
        raw_digest: str
        interaction_id: UUID | None
        customer_id: UUID

    @dataclass(frozen=True)
    class AttachmentReceived(TicketflowAggregate.Event):
        """An attachment of the customer's mail ``mail_key`` (recorded with its ``MailReceived``). The bytes
        are kept outside the log, sealed under the customer's key and addressed by ``digest``, the SHA-256
        of that ciphertext (erasure deletes them and destroys the key); ``digest`` is None when they were
        not kept, and ``refused`` says why (e.g. larger than the limit). ``content_type`` is sniffed from
        the bytes, never the type the mail declared."""

        personal_fields: ClassVar[frozenset[str]] = frozenset({"filename"})
        data_subject: ClassVar[str | None] = "customer_id"

        mail_key: str
        digest: str | None
        filename: str
        content_type: str
        size: int
        refused: str
        interaction_id: UUID | None
        customer_id: UUID

    # ------------------------------------------------------------- creation
    @event(Opened)
    def __init__(
        self,
        subject: str,
        description: str,
        ticket_type: str,
        category: str,
        priority: str,
        channel: str,
        requester_id: UUID,
        team_id: UUID | None,
        tags: list[str],
    ) -> None:
        self.subject = subject
        self.description = description
        self.ticket_type = TicketType(ticket_type)
        self.category = category
        self.priority = Priority(priority)
        self.channel = channel
        self.requester_id = requester_id
        self.team_id = team_id
        self.assignee_id: str | None = None
        self.tags = sorted(set(tags))
        self.collaborators: list[str] = []
        self.links: list[dict[str, str]] = []
        self.status = Status.NEW
        self.solved_at: datetime | None = None
        self.closed_at: datetime | None = None
        self.merged_into: UUID | None = None
        self.merged_duplicates: list[UUID] = []
        self.reopen_count = 0
        self.interaction_count = 0
        self.public_reply_count = 0
        self.note_count = 0
        self.last_interaction_at: datetime | None = None
        self.work_minutes = 0
        self.work_entry_count = 0
        self.satisfaction: dict[str, Any] | None = None
        self.sla_marks: list[str] = []

    # ----------------------------------------------------------- lifecycle
    def mark_open(self, reason: str = "") -> None:
        self._transition(Action.MARK_OPEN)
        self._marked_open(from_status=str(self.status), reason=reason)

    def pend(self, reason: str = "") -> None:
        """Wait on the customer (the SLA clock pauses)."""
        self._transition(Action.PEND)
        self._pended(from_status=str(self.status), reason=reason)

    def hold(self, reason: str = "") -> None:
        """Wait on a third party."""
        self._transition(Action.HOLD)
        self._put_on_hold(from_status=str(self.status), reason=reason)

    def solve(self, resolution: str = "") -> None:
        self._transition(Action.SOLVE)
        self._solved(from_status=str(self.status), resolution=resolution, customer_id=self.requester_id)

    def reopen(self, reason: str) -> None:
        self._transition(Action.REOPEN)
        self._reopened(from_status=str(self.status), reason=reason)

    def close(self) -> None:  # noqa: A003 - the domain's word
        self._transition(Action.CLOSE)
        self._closed(from_status=str(self.status))

    def merge_into(self, primary: Ticket) -> None:
        """Close this ticket as a duplicate of ``primary``; its interactions stay readable."""
        if primary.id == self.id:
            raise RuleViolation(f"ticket {self.id} cannot be merged into itself")
        self._transition(Action.MERGE)
        if primary.status == Status.CLOSED:
            raise RuleViolation(
                f"cannot merge into ticket {primary.id}: it is closed; merge into an unclosed ticket"
            )
        self._merged_into(from_status=str(self.status), primary_id=primary.id)
        primary._duplicate_merged(duplicate_id=self.id)

    def _transition(self, action: Action) -> None:
        if next_status(self.status, action) is None:
            raise InvalidTransition(self.id, str(action), str(self.status), allowed_from(self.status))

    # ----------------------------------------------------- routing and triage
    def assign(self, assignee_id: str, reason: str = "", *, opens_new: bool = True) -> None:
        """Give the ticket to a member of its team. A new ticket becomes open, unless the desk keeps
        assigned tickets new until someone marks them open (``opens_new=False``: ServiceNow's way)."""
        self._refuse_if_closed("assign")
        if self.team_id is None:
            raise RuleViolation(f"ticket {self.id} has no team: transfer it to a team first")
        if assignee_id == self.assignee_id:
            raise RuleViolation(f"ticket {self.id} is already assigned to {assignee_id}")
        self._assigned(assignee_id=assignee_id, previous_assignee_id=self.assignee_id, reason=reason)
        if opens_new and self.status == Status.NEW:
            self._marked_open(from_status=str(self.status), reason="assigned")

    def transfer(
        self, to_team_id: UUID, reason: str, assignee_id: str | None = None, *, opens_new: bool = True
    ) -> None:
        """Move the ticket to another team (and optionally a member of it: then a new ticket
        opens, as when assigned), with a reason."""
        self._refuse_if_closed("transfer")
        if to_team_id == self.team_id:
            raise RuleViolation(f"ticket {self.id} is already with team {to_team_id}")
        if not reason.strip():
            raise RuleViolation("a transfer needs a reason")
        self._transferred(
            to_team_id=to_team_id,
            from_team_id=self.team_id,
            assignee_id=assignee_id,
            previous_assignee_id=self.assignee_id,
            reason=reason,
        )
        if opens_new and assignee_id is not None and self.status == Status.NEW:
            self._marked_open(from_status=str(self.status), reason="assigned")

    def unassign(self, reason: str = "") -> None:
        """Take the ticket off its assignee: it waits in its team's queue (or triage) for someone."""
        self._refuse_if_closed("unassign")
        if self.assignee_id is None:
            raise RuleViolation(f"ticket {self.id} is not assigned to anyone")
        self._unassigned(previous_assignee_id=self.assignee_id, reason=reason)

    def remove_from_team(self, reason: str) -> None:
        """Send the ticket back to triage (no team); a live desk unassigns it first."""
        self._refuse_if_closed("remove from its team")
        if self.team_id is None:
            raise RuleViolation(f"ticket {self.id} has no team")
        if not reason.strip():
            raise RuleViolation("removing a ticket from its team needs a reason")
        if self.assignee_id is not None:
            self._unassigned(previous_assignee_id=self.assignee_id, reason=reason)
        self._removed_from_team(from_team_id=self.team_id, reason=reason)

    def change_priority(self, priority: Priority, reason: str = "") -> None:
        self._refuse_if_closed("change the priority of")
        if priority == self.priority:
            raise RuleViolation(f"ticket {self.id} already has priority {priority}")
        self._priority_changed(priority=str(priority), previous_priority=str(self.priority), reason=reason)

    def recategorise(self, category: str | None = None, ticket_type: TicketType | None = None) -> None:
        self._refuse_if_closed("recategorise")
        new_category = self.category if category is None else category
        new_type = self.ticket_type if ticket_type is None else ticket_type
        if new_category == self.category and new_type == self.ticket_type:
            raise RuleViolation(f"ticket {self.id} already has category {new_category!r} and type {new_type}")
        self._recategorised(
            category=new_category,
            previous_category=self.category,
            ticket_type=str(new_type),
            previous_type=str(self.ticket_type),
        )

    def change_tags(self, add: list[str], remove: list[str]) -> None:
        self._refuse_if_closed("tag")
        added = sorted(set(add) - set(self.tags))
        removed = sorted(set(remove) & set(self.tags))
        if not added and not removed:
            raise RuleViolation(f"ticket {self.id}: the tags are already as asked")
        self._tags_changed(added=added, removed=removed)

    def add_collaborator(self, agent_id: str) -> None:
        self._refuse_if_closed("add a collaborator to")
        if agent_id in self.collaborators:
            raise RuleViolation(f"{agent_id} already collaborates on ticket {self.id}")
        self._collaborator_added(agent_id=agent_id)

    def remove_collaborator(self, agent_id: str) -> None:
        self._refuse_if_closed("remove a collaborator from")
        if agent_id not in self.collaborators:
            raise RuleViolation(f"{agent_id} does not collaborate on ticket {self.id}")
        self._collaborator_removed(agent_id=agent_id)

    def link(self, other_id: UUID, kind: LinkKind) -> None:
        """Link to another ticket; a follow-up of a closed ticket links back to it."""
        self._refuse_if_closed("link")
        if other_id == self.id:
            raise RuleViolation(f"ticket {self.id} cannot be linked to itself")
        if any(link["ticket_id"] == str(other_id) for link in self.links):
            raise RuleViolation(f"ticket {self.id} is already linked to {other_id}")
        self._linked(linked_ticket_id=other_id, kind=str(kind))

    # --------------------------------------------------------- interactions
    def record_interaction(
        self,
        kind: InteractionKind,
        interaction_id: UUID,
        direction: Direction,
        author_id: str,
        channel: str,
        body: str,
        duration_minutes: int = 0,
        template: tuple[UUID, int] | None = None,
    ) -> None:
        """Record one contact. An inbound message wakes a pending or solved ticket. ``template``: the
        reply template (id, version) an outbound reply or a note was sent from."""
        self._refuse_if_closed("add an interaction to")
        if kind is InteractionKind.NOTE and direction is not Direction.INTERNAL:
            raise RuleViolation("an internal note has direction internal")
        if kind is not InteractionKind.NOTE and direction is Direction.INTERNAL:
            raise RuleViolation(f"a {kind} is inbound or outbound, not internal")
        extra: dict[str, Any] = {"duration_minutes": duration_minutes} if kind is InteractionKind.CALL else {}
        if duration_minutes and kind is not InteractionKind.CALL:
            raise RuleViolation("only a call has a duration")
        if template is not None:
            if kind not in (InteractionKind.REPLY, InteractionKind.NOTE) or direction is Direction.INBOUND:
                raise RuleViolation("only an outbound reply or a note is sent from a reply template")
            extra = {"template_id": template[0], "template_version": template[1]}
        self.trigger_event(
            INTERACTION_EVENTS[kind],
            interaction_id=interaction_id,
            direction=str(direction),
            author_id=author_id,
            channel=channel,
            body=body,
            customer_id=self.requester_id,
            **extra,
        )
        if direction is Direction.INBOUND:
            if self.status == Status.PENDING:
                self._marked_open(from_status=str(self.status), reason="customer responded")
            elif self.status == Status.SOLVED:
                self._reopened(from_status=str(self.status), reason="customer responded")
        elif kind is InteractionKind.REPLY and self.status == Status.NEW:
            self._marked_open(from_status=str(self.status), reason="first public reply")

    def receive_mail(
        self, mail_key: str, message_id: str, mailbox: str, raw_digest: str, interaction_id: UUID | None
    ) -> None:
        """Note the mail that opened the ticket or was just recorded as the customer's reply."""
        if mail_key in self.received_mail:
            raise RuleViolation(f"ticket {self.id} already holds mail {mail_key[:12]}")
        self._mail_received(
            mail_key=mail_key,
            message_id=message_id,
            mailbox=mailbox,
            raw_digest=raw_digest,
            interaction_id=interaction_id,
            customer_id=self.requester_id,
        )

    def receive_attachment(
        self,
        mail_key: str,
        digest: str | None,
        filename: str,
        content_type: str,
        size: int,
        refused: str,
        interaction_id: UUID | None,
    ) -> None:
        """Note an attachment of a mail this ticket just received (kept when ``digest`` is given)."""
        if mail_key not in self.received_mail:
            raise RuleViolation(f"ticket {self.id} holds no mail {mail_key[:12]}")
        self._attachment_received(
            mail_key=mail_key,
            digest=digest,
            filename=filename,
            content_type=content_type,
            size=size,
            refused=refused,
            interaction_id=interaction_id,
            customer_id=self.requester_id,
        )

    @event(AttachmentReceived)
    def _attachment_received(
        self,
        mail_key: str,
        digest: str | None,
        filename: str,
        content_type: str,
        size: int,
        refused: str,
        interaction_id: UUID | None,
        customer_id: UUID,
    ) -> None:
        if digest is not None and all(a[0] != digest for a in self.attachments):
            self.attachments = (*self.attachments, (digest, content_type, size))

    def attachment(self, digest: str) -> tuple[str, str, int] | None:
        """The kept attachment with this digest: (digest, sniffed type, size), or None."""
        return next((a for a in self.attachments if a[0] == digest), None)

    @event(MailReceived)
    def _mail_received(
        self,
        mail_key: str,
        message_id: str,
        mailbox: str,
        raw_digest: str,
        interaction_id: UUID | None,
        customer_id: UUID,
    ) -> None:
        self.received_mail = (*self.received_mail, mail_key)

    def log_work(self, entry_id: UUID, performer_id: str, action: str, minutes: int, result: str) -> None:
        """Add a service process entry (服务过程详情)."""
        self._refuse_if_closed("log work on")
        if minutes < 0:
            raise RuleViolation("minutes spent cannot be negative")
        self._work_logged(
            entry_id=entry_id,
            performer_id=performer_id,
            action=action,
            minutes=minutes,
            result=result,
            customer_id=self.requester_id,
        )

    def rate(self, score: int, comment: str = "") -> None:
        """Record the customer's satisfaction (1-5) once the ticket is solved."""
        if self.status not in (Status.SOLVED, Status.CLOSED):
            raise RuleViolation(
                f"ticket {self.id} is {self.status}: satisfaction is rated once it is solved"
            )
        if self.merged_into is not None:
            raise RuleViolation(f"ticket {self.id} was merged into {self.merged_into}: rate that one")
        if not 1 <= score <= 5:
            raise RuleViolation("satisfaction score is 1 to 5")
        self._rated(score=score, comment=comment, customer_id=self.requester_id)

    # ------------------------------------------------------------ automation
    def route(
        self,
        team_id: UUID,
        assignee_id: str | None,
        rule: str | None,
        policy_id: UUID | None,
        policy_version: int | None,
        strategy: str | None,
        priority: str | None = None,
        tags: list[str] | None = None,
        *,
        opens_new: bool = True,
    ) -> None:
        """Place a new ticket (the router's decision). Manual placement always wins; a new ticket
        given to an agent opens unless ``opens_new`` is False (as :meth:`assign`)."""
        self._refuse_if_closed("route")
        if self.routed:
            raise RuleViolation(f"ticket {self.id} is already routed")
        if self.assignee_id is not None or self.placed_by_hand:
            raise RuleViolation(f"ticket {self.id} was assigned or transferred by hand: not routed")
        if self.team_id is not None and team_id != self.team_id:
            raise RuleViolation(f"ticket {self.id} was placed by hand with team {self.team_id}: not routed")
        if priority is not None and priority == self.priority:
            priority = None
        added = sorted(set(tags or ()) - set(self.tags))
        self._routed(
            team_id=team_id, assignee_id=assignee_id, previous_team_id=self.team_id, rule=rule,
            policy_id=policy_id, policy_version=policy_version, strategy=strategy, priority=priority,
            added_tags=added,
        )
        if opens_new and assignee_id is not None and self.status == Status.NEW:
            self._marked_open(from_status=str(self.status), reason="routed")

    def apply_sla(self, policy: dict[str, Any]) -> None:
        """Measure the ticket with an SLA policy version (the first one, or a newer one from now on)."""
        self._refuse_if_closed("apply an SLA policy to")
        current = self.sla
        key = ("policy_id", "policy_version", "calendar_id", "calendar_version")
        if current and all(current.get(k) == policy[k] for k in key):
            raise RuleViolation(f"ticket {self.id} is already measured by this SLA policy and calendar version")
        self._sla_applied(**policy)

    def has_sla_mark(self, kind: str, metric: str, cycle: str) -> bool:
        return f"{kind}:{metric}:{cycle}" in getattr(self, "sla_marks", ())

    def record_sla(self, kind: str, metric: str, cycle: str, moment: datetime, elapsed_minutes: float = 0.0) -> None:
        """Record an SLA warning, breach or fulfilment: once per metric run, whatever retries."""
        if self.sla is None:
            raise RuleViolation(f"ticket {self.id} has no SLA policy")
        if self.has_sla_mark(kind, metric, cycle):
            raise RuleViolation(f"ticket {self.id} already recorded {kind} of {metric} started {cycle}")
        version = int(self.sla["policy_version"])
        if kind == "warning":
            self._sla_warned(metric=metric, cycle=cycle, due_at=moment, policy_version=version)
        elif kind == "breached":
            self._sla_breached(metric=metric, cycle=cycle, due_at=moment, policy_version=version)
        elif kind == "fulfilled":
            self._sla_fulfilled(
                metric=metric, cycle=cycle, fulfilled_at=moment, elapsed_minutes=elapsed_minutes, policy_version=version
            )
        else:
            raise ValueError(kind)

    def issue_survey(self, survey_id: UUID, expires_at: datetime) -> None:
        if self.status != Status.SOLVED:
            raise RuleViolation(f"ticket {self.id} is {self.status}: a survey is sent when it is solved")
        if self.survey is not None or self.satisfaction is not None:
            raise RuleViolation(f"ticket {self.id} already has a survey or a rating")
        self._survey_issued(survey_id=survey_id, expires_at=expires_at, customer_id=self.requester_id)

    def answer_survey(self, survey_id: UUID, score: int, comment: str, now: datetime) -> None:
        """The requester's answer to the survey: once, before it expires."""
        survey = self.survey
        if survey is None or survey["survey_id"] != survey_id:
            raise RuleViolation("this survey does not belong to the ticket")
        if self.satisfaction is not None:
            raise RuleViolation("this survey was already answered")
        if now > survey["expires_at"]:
            raise RuleViolation(f"this survey expired at {survey['expires_at'].isoformat()}")
        if not 1 <= score <= 5:
            raise RuleViolation("satisfaction score is 1 to 5")
        self._rated(score=score, comment=comment, customer_id=self.requester_id)

    def record_resolution(self, summary: str) -> None:
        """Keep how the problem was solved, for the problem library."""
        if self.status not in (Status.SOLVED, Status.CLOSED) or self.merged_into is not None:
            raise RuleViolation(f"ticket {self.id} is {self.status}: a resolution is recorded once it is solved")
        if summary == self.resolution_summary:
            raise RuleViolation(f"ticket {self.id} already has this resolution summary")
        self._resolution_recorded(summary=summary, category=self.category, customer_id=self.requester_id)

    # ------------------------------------------------------ imported history
    # What another desk recorded happened: these record it as it was, without the lifecycle's
    # guards (an assignee without a team, a reopen after closed, "new" with an assignee). Each
    # returns whether it recorded anything; the caller has checked the facts' shape and times.
    def record_status(self, status: Status, reason: str = "") -> bool:
        """Imported history: the source says the ticket reached ``status``."""
        if status == self.status:
            return False
        from_status = str(self.status)
        if status == Status.NEW:
            raise RuleViolation(f"ticket {self.id} is {self.status}: a ticket never returns to new")
        if status == Status.OPEN and self.status in (Status.SOLVED, Status.CLOSED):
            self._reopened(from_status=from_status, reason=reason)
        elif status == Status.OPEN:
            self._marked_open(from_status=from_status, reason=reason)
        elif status == Status.PENDING:
            self._pended(from_status=from_status, reason=reason)
        elif status == Status.ON_HOLD:
            self._put_on_hold(from_status=from_status, reason=reason)
        elif status == Status.SOLVED:
            self._solved(from_status=from_status, resolution=reason, customer_id=self.requester_id)
        else:
            self._closed(from_status=from_status)
        return True

    def record_placement(self, team_id: UUID | None, assignee_id: str | None, reason: str = "") -> bool:
        """Imported history: the ticket is now with ``team_id`` (None: no team) and ``assignee_id``
        (None: nobody); either may be empty while the other is set."""
        recorded = False
        if team_id is not None and team_id != self.team_id:
            self._transferred(
                to_team_id=team_id, from_team_id=self.team_id, assignee_id=assignee_id,
                previous_assignee_id=self.assignee_id, reason=reason,
            )
            return True
        if assignee_id != self.assignee_id:
            if assignee_id is None:
                self._unassigned(previous_assignee_id=str(self.assignee_id), reason=reason)
            else:
                self._assigned(assignee_id=assignee_id, previous_assignee_id=self.assignee_id, reason=reason)
            recorded = True
        if team_id is None and self.team_id is not None:
            self._removed_from_team(from_team_id=self.team_id, reason=reason)
            recorded = True
        return recorded

    def record_priority(self, priority: Priority, reason: str = "") -> bool:
        if priority == self.priority:
            return False
        self._priority_changed(priority=str(priority), previous_priority=str(self.priority), reason=reason)
        return True

    def record_category(self, category: str) -> bool:
        if category == self.category:
            return False
        self._recategorised(
            category=category, previous_category=self.category,
            ticket_type=str(self.ticket_type), previous_type=str(self.ticket_type),
        )
        return True

    def record_counters(self, counters: dict[str, int]) -> bool:
        """Imported history: the source's counters at an update that changed nothing else."""
        if not counters or counters == self.source_counters:
            return False
        self._source_counters_recorded(source_counters=dict(counters))
        return True

    def record_contact(
        self, kind: InteractionKind, interaction_id: UUID, direction: Direction, author_id: str, channel: str,
        body: str,
    ) -> bool:
        """Imported history: a note or a contact, with no effect on the status (the source's own
        status rows say what happened to the ticket)."""
        extra: dict[str, Any] = {"duration_minutes": 0} if kind is InteractionKind.CALL else {}
        self.trigger_event(
            INTERACTION_EVENTS[kind], interaction_id=interaction_id, direction=str(direction),
            author_id=author_id, channel=channel, body=body, customer_id=self.requester_id, **extra,
        )
        return True

    def _refuse_if_closed(self, what: str) -> None:
        if self.status == Status.CLOSED:
            raise InvalidTransition(self.id, what, str(self.status), allowed_from(self.status))

    # ------------------------------------------------------------ mutators
    @event(SourceCountersRecorded)
    def _source_counters_recorded(self, source_counters: dict[str, int]) -> None:
        pass  # SourceCounted.mutate keeps them

    @event(MarkedOpen)
    def _marked_open(self, from_status: str, reason: str) -> None:
        self.status = Status.OPEN

    @event(Pended)
    def _pended(self, from_status: str, reason: str) -> None:
        self.status = Status.PENDING

    @event(PutOnHold)
    def _put_on_hold(self, from_status: str, reason: str) -> None:
        self.status = Status.ON_HOLD

    @event(Solved)
    def _solved(self, from_status: str, resolution: str, customer_id: UUID) -> None:
        self.status = Status.SOLVED
        self.solved_at = self.updated_at

    @event(Reopened)
    def _reopened(self, from_status: str, reason: str) -> None:
        self.status = Status.OPEN
        self.reopen_count += 1
        self.solved_at = None
        self.closed_at = None  # only imported history reopens a closed ticket

    @event(Closed)
    def _closed(self, from_status: str) -> None:
        self.status = Status.CLOSED
        self.closed_at = self.updated_at

    @event(MergedInto)
    def _merged_into(self, from_status: str, primary_id: UUID) -> None:
        self.status = Status.CLOSED
        self.merged_into = primary_id
        self.closed_at = self.updated_at
        self.links.append({"ticket_id": str(primary_id), "kind": str(LinkKind.DUPLICATE_OF)})

    @event(DuplicateMerged)
    def _duplicate_merged(self, duplicate_id: UUID) -> None:
        self.merged_duplicates.append(duplicate_id)

    @event(Assigned)
    def _assigned(self, assignee_id: str, previous_assignee_id: str | None, reason: str) -> None:
        self.assignee_id = assignee_id
        self.placed_by_hand = True

    @event(Transferred)
    def _transferred(
        self,
        to_team_id: UUID,
        from_team_id: UUID | None,
        assignee_id: str | None,
        previous_assignee_id: str | None,
        reason: str,
    ) -> None:
        self.team_id = to_team_id
        self.assignee_id = assignee_id
        self.placed_by_hand = True

    @event(Unassigned)
    def _unassigned(self, previous_assignee_id: str, reason: str) -> None:
        self.assignee_id = None
        self.placed_by_hand = True

    @event(RemovedFromTeam)
    def _removed_from_team(self, from_team_id: UUID, reason: str) -> None:
        self.team_id = None
        self.placed_by_hand = True

    @event(PriorityChanged)
    def _priority_changed(self, priority: str, previous_priority: str, reason: str) -> None:
        self.priority = Priority(priority)

    @event(Recategorised)
    def _recategorised(
        self, category: str, previous_category: str, ticket_type: str, previous_type: str
    ) -> None:
        self.category = category
        self.ticket_type = TicketType(ticket_type)

    @event(TagsChanged)
    def _tags_changed(self, added: list[str], removed: list[str]) -> None:
        self.tags = sorted((set(self.tags) | set(added)) - set(removed))

    @event(CollaboratorAdded)
    def _collaborator_added(self, agent_id: str) -> None:
        self.collaborators.append(agent_id)

    @event(CollaboratorRemoved)
    def _collaborator_removed(self, agent_id: str) -> None:
        self.collaborators.remove(agent_id)

    @event(Linked)
    def _linked(self, linked_ticket_id: UUID, kind: str) -> None:
        self.links.append({"ticket_id": str(linked_ticket_id), "kind": kind})

    @event(WorkLogged)
    def _work_logged(
        self, entry_id: UUID, performer_id: str, action: str, minutes: int, result: str, customer_id: UUID
    ) -> None:
        self.work_minutes += minutes
        self.work_entry_count += 1

    @event(Rated)
    def _rated(self, score: int, comment: str, customer_id: UUID) -> None:
        self.satisfaction = {"score": score, "comment": comment}


    @event(Routed)
    def _routed(
        self,
        team_id: UUID,
        assignee_id: str | None,
        previous_team_id: UUID | None,
        rule: str | None,
        policy_id: UUID | None,
        policy_version: int | None,
        strategy: str | None,
        priority: str | None,
        added_tags: list[str],
    ) -> None:
        self.routed = True
        self.team_id = team_id
        self.assignee_id = assignee_id
        if priority is not None:
            self.priority = Priority(priority)
        self.tags = sorted(set(self.tags) | set(added_tags))

    @event(SlaApplied)
    def _sla_applied(
        self,
        policy_id: UUID,
        policy_version: int,
        policy_name: str,
        targets: dict[str, dict[str, dict[str, Any]]],
        calendar: dict[str, Any] | None,
        calendar_id: UUID | None,
        calendar_version: int | None,
        warn_at_percent: int,
        escalation: dict[str, Any],
    ) -> None:
        self.sla = {
            "policy_id": policy_id, "policy_version": policy_version, "policy_name": policy_name,
            "targets": targets, "calendar": calendar, "calendar_id": calendar_id,
            "calendar_version": calendar_version, "warn_at_percent": warn_at_percent, "escalation": escalation,
        }

    @event(SlaWarned)
    def _sla_warned(self, metric: str, cycle: str, due_at: datetime, policy_version: int) -> None:
        self._mark_sla(f"warning:{metric}:{cycle}")

    @event(SlaBreached)
    def _sla_breached(self, metric: str, cycle: str, due_at: datetime, policy_version: int) -> None:
        self._mark_sla(f"breached:{metric}:{cycle}")

    @event(SlaFulfilled)
    def _sla_fulfilled(
        self, metric: str, cycle: str, fulfilled_at: datetime, elapsed_minutes: float, policy_version: int
    ) -> None:
        self._mark_sla(f"fulfilled:{metric}:{cycle}")

    def _mark_sla(self, mark: str) -> None:
        marks: list[str] = self.__dict__.setdefault("sla_marks", [])
        marks.append(mark)

    @event(SurveyIssued)
    def _survey_issued(self, survey_id: UUID, expires_at: datetime, customer_id: UUID) -> None:
        self.survey = {"survey_id": survey_id, "expires_at": expires_at}

    @event(ResolutionRecorded)
    def _resolution_recorded(self, summary: str, category: str, customer_id: UUID) -> None:
        self.resolution_summary = summary


INTERACTION_EVENTS: dict[InteractionKind, type[Ticket.Interaction]] = {
    cls.kind: cls
    for cls in (
        Ticket.Replied,
        Ticket.NoteAdded,
        Ticket.CallLogged,
        Ticket.EmailLogged,
        Ticket.ChatLogged,
        Ticket.MeetingMinuted,
    )
}
