"""A ticket's timeline for the console: every event of the ticket, read from its own history
(the write side, so nothing a view left out or lags on is missing), each with who did it, when,
through which channel, and the details that matter — the rule and policy version behind every
routing and SLA decision included."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from api.console import labels
from ticketflow.access import MASK
from ticketflow.domain import Ticket


@dataclass
class Entry:
    kind: str  # the event's name: Replied, NoteAdded, Routed ...
    label: str  # translated: "replied"
    occurred_at: datetime
    actor: str
    via: str
    version: int
    body: str | None = None  # replies, notes, logged contacts, resolutions
    public: bool = False
    inbound: bool = False
    details: list[tuple[str, str]] = field(default_factory=list)  # (translated name, value)
    imported: bool = False
    ticket_ref: str | None = None  # a linked or merged ticket (shown as a link)
    download: str | None = None  # an attachment kept from the customer's mail: where to download it


def entries(events: list[Any], _: Callable[[str], str], show_text: bool, team_name: Callable[[Any], str],
            when: Callable[[Any], str]) -> list[Entry]:
    """The timeline, oldest first. ``show_text``: bodies are shown (else masked)."""
    out = []
    for event in events:
        name = type(event).__qualname__.split(".")[-1]
        if name in ("Snapshot",):
            continue
        actor = event.actor_id
        if str(getattr(event, "actor_role", "")) == "customer":
            actor = _("Customer")
        elif actor in labels.SYSTEM_ACTOR:
            actor = _(labels.SYSTEM_ACTOR[actor])
        entry = Entry(kind=name, label=_(labels.EVENT.get(name, name)), occurred_at=event.occurred_at,
                      actor=actor, via=_(labels.CHANNEL.get(str(event.via), str(event.via))),
                      version=event.originator_version, imported=bool(getattr(event, "imported", False)))
        details = entry.details

        def text(value: str) -> str:
            return value if show_text else MASK

        if isinstance(event, Ticket.Interaction):
            entry.body = text(event.body)
            entry.public = bool(event.public)
            entry.inbound = event.direction == "inbound"
            if entry.inbound:
                entry.label = _("wrote")
            details.append((_("Channel"), _(labels.CHANNEL.get(event.channel, event.channel))))
        elif isinstance(event, Ticket.Opened):
            details += [(_("Subject"), text(event.subject)), (_("Priority"), _(labels.PRIORITY.get(event.priority, event.priority))),
                        (_("Type"), _(labels.TICKET_TYPE.get(event.ticket_type, event.ticket_type))),
                        (_("Category"), event.category), (_("Channel"), _(labels.CHANNEL.get(event.channel, event.channel)))]
            if event.team_id:
                details.append((_("Team"), team_name(event.team_id)))
            entry.body = text(event.description) if event.description else None
        elif isinstance(event, Ticket.AttachmentReceived):
            details += [(_("File"), text(event.filename)), (_("Type"), event.content_type),
                        (_("Size"), f"{event.size:,} B")]
            if event.refused:
                details.append((_("Not kept"), event.refused))
            elif event.digest and show_text:  # its bytes are ticket text: no link for a role that sees it masked
                entry.download = f"/tickets/{event.originator_id}/attachments/{event.digest}"
        elif isinstance(event, Ticket.Solved):
            entry.body = text(event.resolution) if event.resolution else None
        elif isinstance(event, (Ticket.MarkedOpen, Ticket.Pended, Ticket.PutOnHold, Ticket.Reopened)):
            if event.reason:
                details.append((_("Reason"), _(labels.SYSTEM_REASON[event.reason]) if event.reason in labels.SYSTEM_REASON
                                else event.reason))
        elif isinstance(event, Ticket.Assigned):
            details.append((_("Assignee"), event.assignee_id))
            if event.previous_assignee_id:
                details.append((_("Before"), event.previous_assignee_id))
            if event.reason:
                details.append((_("Reason"), event.reason))
        elif isinstance(event, Ticket.Unassigned):
            details.append((_("Before"), event.previous_assignee_id))
            if event.reason:
                details.append((_("Reason"), event.reason))
        elif isinstance(event, Ticket.RemovedFromTeam):
            details.append((_("Before"), team_name(event.from_team_id)))
            if event.reason:
                details.append((_("Reason"), event.reason))
        elif isinstance(event, Ticket.Transferred):
            details += [(_("Team"), team_name(event.to_team_id)), (_("Before"), team_name(event.from_team_id))]
            if event.assignee_id:
                details.append((_("Assignee"), event.assignee_id))
            details.append((_("Reason"), event.reason))
        elif isinstance(event, Ticket.PriorityChanged):
            details += [(_("Priority"), _(labels.PRIORITY.get(event.priority, event.priority))),
                        (_("Before"), _(labels.PRIORITY.get(event.previous_priority, event.previous_priority)))]
            if event.reason:
                details.append((_("Reason"), event.reason))
        elif isinstance(event, Ticket.Recategorised):
            details += [(_("Category"), f"{event.previous_category} → {event.category}"),
                        (_("Type"), (f"{_(labels.TICKET_TYPE.get(event.previous_type, event.previous_type))} → "
                                     f"{_(labels.TICKET_TYPE.get(event.ticket_type, event.ticket_type))}"))]
        elif isinstance(event, Ticket.TagsChanged):
            if event.added:
                details.append((_("Added"), ", ".join(event.added)))
            if event.removed:
                details.append((_("Removed"), ", ".join(event.removed)))
        elif isinstance(event, Ticket.Linked):
            entry.ticket_ref = str(event.linked_ticket_id)
            details.append((_("Link"), _(labels.LINK_KIND.get(event.kind, event.kind))))
        elif isinstance(event, (Ticket.MergedInto,)):
            entry.ticket_ref = str(event.primary_id)
        elif isinstance(event, Ticket.DuplicateMerged):
            entry.ticket_ref = str(event.duplicate_id)
        elif isinstance(event, Ticket.WorkLogged):
            entry.body = text(f"{event.action}\n{event.result}".strip())
            details += [(_("By"), event.performer_id), (_("Minutes"), str(event.minutes))]
        elif isinstance(event, Ticket.Rated):
            details.append((_("Score"), f"{event.score} / 5"))
            entry.body = text(event.comment) if event.comment else None
        elif isinstance(event, Ticket.Routed):
            details.append((_("Team"), team_name(event.team_id)))
            if event.assignee_id:
                details.append((_("Assignee"), event.assignee_id))
            details.append((_("Rule"), event.rule or _("none matched: the default team")))
            if event.policy_version is not None:
                details.append((_("Rule set version"), str(event.policy_version)))
            if event.strategy:
                details.append((_("Assignment strategy"), _(labels.STRATEGY.get(event.strategy, event.strategy))))
        elif isinstance(event, Ticket.SlaApplied):
            details += [(_("Service standard"), event.policy_name), (_("Version"), str(event.policy_version))]
            if event.calendar_version is not None:
                details.append((_("Business calendar version"), str(event.calendar_version)))
        elif isinstance(event, (Ticket.SlaWarned, Ticket.SlaBreached)):
            details += [(_("Metric"), _(labels.METRIC.get(event.metric, event.metric))), (_("Due"), when(event.due_at)),
                        (_("Service standard version"), str(event.policy_version))]
        elif isinstance(event, Ticket.SlaFulfilled):
            details += [(_("Metric"), _(labels.METRIC.get(event.metric, event.metric))),
                        (_("Service standard version"), str(event.policy_version))]
        elif isinstance(event, Ticket.ResolutionRecorded):
            entry.body = text(event.summary)
        out.append(entry)
    return out
