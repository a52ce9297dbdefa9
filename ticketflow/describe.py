"""One readable line per event: what happened, for timelines and audit listings."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from ticketflow.domain import Customer, ReplyTemplate, Team, Ticket, TicketflowAggregate

NamesTeam = Callable[[Any], str]
Describer = Callable[[Any, NamesTeam], str]

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


def _ticket_opened(e: Any, team_name: NamesTeam) -> str:
    team = f" for team {team_name(e.team_id)}" if e.team_id else ""
    return (
        f"opened “{_preview(e.subject)}” ({e.ticket_type}, {e.category}, priority {e.priority}, "
        f"arrived by {e.channel}) for customer {e.requester_id}{team}"
    )


def _ticket_marked_open(e: Any, team_name: NamesTeam) -> str:
    return _status(e, "open")


def _ticket_pended(e: Any, team_name: NamesTeam) -> str:
    return _status(e, "pending")


def _ticket_put_on_hold(e: Any, team_name: NamesTeam) -> str:
    return _status(e, "on_hold")


def _ticket_solved(e: Any, team_name: NamesTeam) -> str:
    return f"status {e.from_status} -> solved" + (f": {_preview(e.resolution)}" if e.resolution else "")


def _ticket_reopened(e: Any, team_name: NamesTeam) -> str:
    return _status(e, "open") + " [reopened]"


def _ticket_closed(e: Any, team_name: NamesTeam) -> str:
    return f"status {e.from_status} -> closed"


def _ticket_merged_into(e: Any, team_name: NamesTeam) -> str:
    return f"status {e.from_status} -> closed: merged into ticket {e.primary_id}"


def _ticket_duplicate_merged(e: Any, team_name: NamesTeam) -> str:
    return f"duplicate ticket {e.duplicate_id} merged into this one"


def _ticket_assigned(e: Any, team_name: NamesTeam) -> str:
    was = e.previous_assignee_id or "unassigned"
    return f"assigned to {e.assignee_id} (was {was})" + (f": {e.reason}" if e.reason else "")


def _ticket_unassigned(e: Any, team_name: NamesTeam) -> str:
    return f"unassigned (was {e.previous_assignee_id})" + (f": {e.reason}" if e.reason else "")


def _ticket_removed_from_team(e: Any, team_name: NamesTeam) -> str:
    return f"removed from team {team_name(e.from_team_id)} (back to triage)" + (f": {e.reason}" if e.reason else "")


def _ticket_transferred(e: Any, team_name: NamesTeam) -> str:
    who = f", assignee {e.assignee_id}" if e.assignee_id else ", unassigned"
    source = team_name(e.from_team_id) if e.from_team_id else "no team"
    return f"transferred from {source} to {team_name(e.to_team_id)}{who}: {e.reason}"


def _ticket_priority_changed(e: Any, team_name: NamesTeam) -> str:
    return f"priority {e.previous_priority} -> {e.priority}" + (f" ({e.reason})" if e.reason else "")


def _ticket_source_counters_recorded(e: Any, team_name: NamesTeam) -> str:
    return "an update in the source system that changed only its counters"


def _ticket_recategorised(e: Any, team_name: NamesTeam) -> str:
    return f"category {e.previous_category} -> {e.category}, type {e.previous_type} -> {e.ticket_type}"


def _ticket_tags_changed(e: Any, team_name: NamesTeam) -> str:
    return f"tags +{e.added} -{e.removed}"


def _ticket_collaborator_added(e: Any, team_name: NamesTeam) -> str:
    return f"collaborator {e.agent_id} added"


def _ticket_collaborator_removed(e: Any, team_name: NamesTeam) -> str:
    return f"collaborator {e.agent_id} removed"


def _ticket_linked(e: Any, team_name: NamesTeam) -> str:
    return f"linked to ticket {e.linked_ticket_id} ({e.kind})"


def _ticket_interaction(e: Any, team_name: NamesTeam) -> str:
    visibility = "public" if e.public else "internal"
    extra = f", {e.duration_minutes} min" if getattr(e, "duration_minutes", 0) else ""
    sent_from = getattr(e, "template_id", None)  # replies and notes sent from a saved reply template
    template = f" from reply template {sent_from} v{e.template_version}" if sent_from else ""
    return (f"{e.kind} ({visibility}, {e.direction} via {e.channel}{extra}) by {e.author_id}{template}: "
            f"{_preview(e.body)}")


def _ticket_work_logged(e: Any, team_name: NamesTeam) -> str:
    result = f" -> {_preview(e.result, 40)}" if e.result else ""
    return f"work by {e.performer_id}, {e.minutes} min: {_preview(e.action, 60)}{result}"


def _ticket_rated(e: Any, team_name: NamesTeam) -> str:
    return f"satisfaction {e.score}/5" + (f": {_preview(e.comment)}" if e.comment else "")


def _ticket_routed(e: Any, team_name: NamesTeam) -> str:
    why = f"rule “{e.rule}”" if e.rule else ("the default team" if e.policy_version else "its team")
    where = f"routed to {team_name(e.team_id)}" + (f", {e.assignee_id} ({e.strategy})" if e.assignee_id else "")
    version = f", routing policy v{e.policy_version}" if e.policy_version else ""
    extra = (f", priority {e.priority}" if e.priority else "") + (f", tags +{e.added_tags}" if e.added_tags else "")
    return f"{where} by {why}{version}{extra}"


def _ticket_sla_applied(e: Any, team_name: NamesTeam) -> str:
    calendar = f", calendar v{e.calendar_version}" if e.calendar_id else ", calendar hours"
    return f"measured by SLA policy “{e.policy_name}” v{e.policy_version}{calendar}"


def _ticket_sla_warned(e: Any, team_name: NamesTeam) -> str:
    return f"SLA warning: {e.metric} due {e.due_at:%Y-%m-%d %H:%M} UTC (policy v{e.policy_version})"


def _ticket_sla_breached(e: Any, team_name: NamesTeam) -> str:
    return f"SLA breached: {e.metric} was due {e.due_at:%Y-%m-%d %H:%M} UTC (policy v{e.policy_version})"


def _ticket_sla_fulfilled(e: Any, team_name: NamesTeam) -> str:
    return f"SLA met: {e.metric} in {e.elapsed_minutes:g} min (policy v{e.policy_version})"


def _ticket_survey_issued(e: Any, team_name: NamesTeam) -> str:
    return f"satisfaction survey sent, open until {e.expires_at:%Y-%m-%d %H:%M} UTC"


def _ticket_resolution_recorded(e: Any, team_name: NamesTeam) -> str:
    return f"resolution recorded ({e.category}): {_preview(e.summary)}"


def _ticket_mail_received(e: Any, team_name: NamesTeam) -> str:
    what = "opened the ticket" if e.interaction_id is None else "the customer's reply"
    return f"mail received in mailbox {e.mailbox} ({what}), kept as {e.raw_digest[:12]}"


def _ticket_attachment_received(e: Any, team_name: NamesTeam) -> str:
    if e.digest is None:
        return f"attachment not kept ({e.refused}): {e.content_type}, {e.size} bytes"
    return f"attachment received: {e.content_type}, {e.size} bytes, kept as {e.digest[:12]}"


def _customer_registered(e: Any, team_name: NamesTeam) -> str:
    return f"customer registered: {e.name} ({e.tier}, {e.preferred_language})"


def _customer_profile_updated(e: Any, team_name: NamesTeam) -> str:
    return "profile updated: " + ", ".join(sorted(e.changes))


def _customer_language_changed(e: Any, team_name: NamesTeam) -> str:
    return f"preferred language {e.previous_language} -> {e.preferred_language}"


def _customer_tier_changed(e: Any, team_name: NamesTeam) -> str:
    return f"tier {e.previous_tier} -> {e.tier}" + (f" ({e.reason})" if e.reason else "")


def _customer_consent_given(e: Any, team_name: NamesTeam) -> str:
    return f"consent given: {e.purpose}"


def _customer_consent_withdrawn(e: Any, team_name: NamesTeam) -> str:
    return f"consent withdrawn: {e.purpose}"


def _customer_note_added(e: Any, team_name: NamesTeam) -> str:
    return f"note: {_preview(e.note)}"


def _reply_template_created(e: Any, team_name: NamesTeam) -> str:
    kind = e.kind or "reply or note"
    return f"reply template “{_preview(e.title, 60)}” ({kind}) created for team {team_name(e.team_id)}"


def _reply_template_revised(e: Any, team_name: NamesTeam) -> str:
    return f"reply template revised: “{_preview(e.title, 60)}” ({e.kind or 'reply or note'})"


def _reply_template_retired(e: Any, team_name: NamesTeam) -> str:
    return "reply template retired" + (f": {e.reason}" if e.reason else "")


def _team_formed(e: Any, team_name: NamesTeam) -> str:
    return f"team formed: {e.name}"


def _team_renamed(e: Any, team_name: NamesTeam) -> str:
    return f"team renamed {e.previous_name} -> {e.name}"


def _team_member_added(e: Any, team_name: NamesTeam) -> str:
    return f"member {e.agent_id} added as {e.role}" + (f", skills {', '.join(e.skills)}" if e.skills else "")


def _team_member_changed(e: Any, team_name: NamesTeam) -> str:
    return f"member {e.agent_id}: role {e.previous_role} -> {e.role}, skills {e.skills}"


def _team_member_deactivated(e: Any, team_name: NamesTeam) -> str:
    return f"member {e.agent_id} out of rotation" + (f" ({e.reason})" if e.reason else "")


def _team_member_reactivated(e: Any, team_name: NamesTeam) -> str:
    return f"member {e.agent_id} back in rotation"


#: What each event class reads as, in the order a class is matched against them: an event takes the
#: first entry its class is a subclass of (the decoded classes derive from the declared ones).
_CASES: tuple[tuple[type, Describer], ...] = (
    (Ticket.Opened, _ticket_opened),
    (Ticket.MarkedOpen, _ticket_marked_open),
    (Ticket.Pended, _ticket_pended),
    (Ticket.PutOnHold, _ticket_put_on_hold),
    (Ticket.Solved, _ticket_solved),
    (Ticket.Reopened, _ticket_reopened),
    (Ticket.Closed, _ticket_closed),
    (Ticket.MergedInto, _ticket_merged_into),
    (Ticket.DuplicateMerged, _ticket_duplicate_merged),
    (Ticket.Assigned, _ticket_assigned),
    (Ticket.Unassigned, _ticket_unassigned),
    (Ticket.RemovedFromTeam, _ticket_removed_from_team),
    (Ticket.Transferred, _ticket_transferred),
    (Ticket.PriorityChanged, _ticket_priority_changed),
    (Ticket.SourceCountersRecorded, _ticket_source_counters_recorded),
    (Ticket.Recategorised, _ticket_recategorised),
    (Ticket.TagsChanged, _ticket_tags_changed),
    (Ticket.CollaboratorAdded, _ticket_collaborator_added),
    (Ticket.CollaboratorRemoved, _ticket_collaborator_removed),
    (Ticket.Linked, _ticket_linked),
    (Ticket.Interaction, _ticket_interaction),
    (Ticket.WorkLogged, _ticket_work_logged),
    (Ticket.Rated, _ticket_rated),
    (Ticket.Routed, _ticket_routed),
    (Ticket.SlaApplied, _ticket_sla_applied),
    (Ticket.SlaWarned, _ticket_sla_warned),
    (Ticket.SlaBreached, _ticket_sla_breached),
    (Ticket.SlaFulfilled, _ticket_sla_fulfilled),
    (Ticket.SurveyIssued, _ticket_survey_issued),
    (Ticket.ResolutionRecorded, _ticket_resolution_recorded),
    (Ticket.MailReceived, _ticket_mail_received),
    (Ticket.AttachmentReceived, _ticket_attachment_received),
    (Customer.Registered, _customer_registered),
    (Customer.ProfileUpdated, _customer_profile_updated),
    (Customer.LanguageChanged, _customer_language_changed),
    (Customer.TierChanged, _customer_tier_changed),
    (Customer.ConsentGiven, _customer_consent_given),
    (Customer.ConsentWithdrawn, _customer_consent_withdrawn),
    (Customer.NoteAdded, _customer_note_added),
    (ReplyTemplate.Created, _reply_template_created),
    (ReplyTemplate.Revised, _reply_template_revised),
    (ReplyTemplate.Retired, _reply_template_retired),
    (Team.Formed, _team_formed),
    (Team.Renamed, _team_renamed),
    (Team.MemberAdded, _team_member_added),
    (Team.MemberChanged, _team_member_changed),
    (Team.MemberDeactivated, _team_member_deactivated),
    (Team.MemberReactivated, _team_member_reactivated),
)


@cache
def _describer(event_class: type) -> Describer | None:
    """The entry of ``event_class`` (see _CASES), found once per class rather than by trying each case
    of a list for every event (an audit rebuild describes every event of the log)."""
    return next((describe for cls, describe in _CASES if issubclass(event_class, cls)), None)


def _describe(event: TicketflowAggregate.Event, team_name: NamesTeam) -> str:
    describer = _describer(type(event))
    if describer is None:
        return f"{type(event).__qualname__} {event.payload()}"
    return describer(event, team_name)
