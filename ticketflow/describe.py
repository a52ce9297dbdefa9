"""One readable line per event: what happened, for timelines and audit listings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ticketflow.domain import Customer, ReplyTemplate, Team, Ticket, TicketflowAggregate

NamesTeam = Callable[[Any], str]

_BODY_PREVIEW = 80


def _preview(text: str, limit: int = _BODY_PREVIEW) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _status(e: Any, to: str) -> str:
    reason = getattr(e, "reason", "")
    return f"status {e.from_status} -> {to}" + (f" ({reason})" if reason else "")


def describe(event: TicketflowAggregate.Event, team_name: NamesTeam = str) -> str:
    """A one-line account of ``event``; ``team_name`` turns a team id into a name. An imported fact
    ends with the source system's counters at that update (``[source reopen_count=1, ...]``)."""
    line = _describe(event, team_name)
    counters = getattr(event, "source_counters", None)
    if counters:
        line += " [source " + ", ".join(f"{name}={value}" for name, value in counters.items()) + "]"
    return line


def _describe(event: TicketflowAggregate.Event, team_name: NamesTeam) -> str:
    e: Any = event
    match event:
        case Ticket.Opened():
            team = f" for team {team_name(e.team_id)}" if e.team_id else ""
            return (
                f"opened “{_preview(e.subject)}” ({e.ticket_type}, {e.category}, priority {e.priority}, "
                f"arrived by {e.channel}) for customer {e.requester_id}{team}"
            )
        case Ticket.MarkedOpen():
            return _status(e, "open")
        case Ticket.Pended():
            return _status(e, "pending")
        case Ticket.PutOnHold():
            return _status(e, "on_hold")
        case Ticket.Solved():
            return f"status {e.from_status} -> solved" + (f": {_preview(e.resolution)}" if e.resolution else "")
        case Ticket.Reopened():
            return _status(e, "open") + " [reopened]"
        case Ticket.Closed():
            return f"status {e.from_status} -> closed"
        case Ticket.MergedInto():
            return f"status {e.from_status} -> closed: merged into ticket {e.primary_id}"
        case Ticket.DuplicateMerged():
            return f"duplicate ticket {e.duplicate_id} merged into this one"
        case Ticket.Assigned():
            was = e.previous_assignee_id or "unassigned"
            return f"assigned to {e.assignee_id} (was {was})" + (f": {e.reason}" if e.reason else "")
        case Ticket.Unassigned():
            return f"unassigned (was {e.previous_assignee_id})" + (f": {e.reason}" if e.reason else "")
        case Ticket.RemovedFromTeam():
            return f"removed from team {team_name(e.from_team_id)} (back to triage)" + (f": {e.reason}" if e.reason else "")
        case Ticket.Transferred():
            who = f", assignee {e.assignee_id}" if e.assignee_id else ", unassigned"
            source = team_name(e.from_team_id) if e.from_team_id else "no team"
            return f"transferred from {source} to {team_name(e.to_team_id)}{who}: {e.reason}"
        case Ticket.PriorityChanged():
            return f"priority {e.previous_priority} -> {e.priority}" + (f" ({e.reason})" if e.reason else "")
        case Ticket.SourceCountersRecorded():
            return "an update in the source system that changed only its counters"
        case Ticket.Recategorised():
            return f"category {e.previous_category} -> {e.category}, type {e.previous_type} -> {e.ticket_type}"
        case Ticket.TagsChanged():
            return f"tags +{e.added} -{e.removed}"
        case Ticket.CollaboratorAdded():
            return f"collaborator {e.agent_id} added"
        case Ticket.CollaboratorRemoved():
            return f"collaborator {e.agent_id} removed"
        case Ticket.Linked():
            return f"linked to ticket {e.linked_ticket_id} ({e.kind})"
        case Ticket.Interaction():
            visibility = "public" if e.public else "internal"
            extra = f", {e.duration_minutes} min" if getattr(e, "duration_minutes", 0) else ""
            sent_from = getattr(e, "template_id", None)  # replies and notes sent from a saved reply template
            template = f" from reply template {sent_from} v{e.template_version}" if sent_from else ""
            return (f"{e.kind} ({visibility}, {e.direction} via {e.channel}{extra}) by {e.author_id}{template}: "
                    f"{_preview(e.body)}")
        case Ticket.WorkLogged():
            result = f" -> {_preview(e.result, 40)}" if e.result else ""
            return f"work by {e.performer_id}, {e.minutes} min: {_preview(e.action, 60)}{result}"
        case Ticket.Rated():
            return f"satisfaction {e.score}/5" + (f": {_preview(e.comment)}" if e.comment else "")
        case Ticket.Routed():
            why = f"rule “{e.rule}”" if e.rule else ("the default team" if e.policy_version else "its team")
            where = f"routed to {team_name(e.team_id)}" + (f", {e.assignee_id} ({e.strategy})" if e.assignee_id else "")
            version = f", routing policy v{e.policy_version}" if e.policy_version else ""
            extra = (f", priority {e.priority}" if e.priority else "") + (f", tags +{e.added_tags}" if e.added_tags else "")
            return f"{where} by {why}{version}{extra}"
        case Ticket.SlaApplied():
            calendar = f", calendar v{e.calendar_version}" if e.calendar_id else ", calendar hours"
            return f"measured by SLA policy “{e.policy_name}” v{e.policy_version}{calendar}"
        case Ticket.SlaWarned():
            return f"SLA warning: {e.metric} due {e.due_at:%Y-%m-%d %H:%M} UTC (policy v{e.policy_version})"
        case Ticket.SlaBreached():
            return f"SLA breached: {e.metric} was due {e.due_at:%Y-%m-%d %H:%M} UTC (policy v{e.policy_version})"
        case Ticket.SlaFulfilled():
            return f"SLA met: {e.metric} in {e.elapsed_minutes:g} min (policy v{e.policy_version})"
        case Ticket.SurveyIssued():
            return f"satisfaction survey sent, open until {e.expires_at:%Y-%m-%d %H:%M} UTC"
        case Ticket.ResolutionRecorded():
            return f"resolution recorded ({e.category}): {_preview(e.summary)}"
        case Ticket.MailReceived():
            what = "opened the ticket" if e.interaction_id is None else "the customer's reply"
            return f"mail received in mailbox {e.mailbox} ({what}), kept as {e.raw_digest[:12]}"
        case Ticket.AttachmentReceived():
            if e.digest is None:
                return f"attachment not kept ({e.refused}): {e.content_type}, {e.size} bytes"
            return f"attachment received: {e.content_type}, {e.size} bytes, kept as {e.digest[:12]}"
        case Customer.Registered():
            return f"customer registered: {e.name} ({e.tier}, {e.preferred_language})"
        case Customer.ProfileUpdated():
            return "profile updated: " + ", ".join(sorted(e.changes))
        case Customer.LanguageChanged():
            return f"preferred language {e.previous_language} -> {e.preferred_language}"
        case Customer.TierChanged():
            return f"tier {e.previous_tier} -> {e.tier}" + (f" ({e.reason})" if e.reason else "")
        case Customer.ConsentGiven():
            return f"consent given: {e.purpose}"
        case Customer.ConsentWithdrawn():
            return f"consent withdrawn: {e.purpose}"
        case Customer.NoteAdded():
            return f"note: {_preview(e.note)}"
        case ReplyTemplate.Created():
            kind = e.kind or "reply or note"
            return f"reply template “{_preview(e.title, 60)}” ({kind}) created for team {team_name(e.team_id)}"
        case ReplyTemplate.Revised():
            return f"reply template revised: “{_preview(e.title, 60)}” ({e.kind or 'reply or note'})"
        case ReplyTemplate.Retired():
            return "reply template retired" + (f": {e.reason}" if e.reason else "")
        case Team.Formed():
            return f"team formed: {e.name}"
        case Team.Renamed():
            return f"team renamed {e.previous_name} -> {e.name}"
        case Team.MemberAdded():
            return f"member {e.agent_id} added as {e.role}" + (f", skills {', '.join(e.skills)}" if e.skills else "")
        case Team.MemberChanged():
            return f"member {e.agent_id}: role {e.previous_role} -> {e.role}, skills {e.skills}"
        case Team.MemberDeactivated():
            return f"member {e.agent_id} out of rotation" + (f" ({e.reason})" if e.reason else "")
        case Team.MemberReactivated():
            return f"member {e.agent_id} back in rotation"
    return f"{type(event).__qualname__} {event.payload()}"
