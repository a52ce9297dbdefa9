"""Display labels of the desk's values (statuses, priorities, channels, events ...), marked for
translation with ``N_`` and translated when shown (``gettext(label)``). One place per value, so
the zh-CN catalog and ``../shared/GLOSSARY-zh.md`` can be checked against it."""

from __future__ import annotations


def N_(text: str) -> str:  # noqa: N802 - the gettext convention: mark for extraction, translate later
    return text


STATUS = {
    "new": N_("New"), "open": N_("Open"), "pending": N_("Pending"), "on_hold": N_("On hold"),
    "solved": N_("Solved"), "closed": N_("Closed"),
}
PRIORITY = {"low": N_("Low"), "normal": N_("Normal"), "high": N_("High"), "urgent": N_("Urgent")}
TICKET_TYPE = {
    "inquiry": N_("Inquiry"), "complaint": N_("Complaint"), "suggestion": N_("Suggestion"),
    "incident": N_("Incident"), "service_request": N_("Service request"),
}
CHANNEL = {
    "email": N_("Email"), "phone": N_("Phone"), "web_form": N_("Web form"), "chat": N_("Chat"),
    "im": N_("IM (WeChat etc.)"), "api": N_("API"), "walk_in": N_("Walk-in"), "cli": N_("Command line"), "console": N_("Web console"),
    "system": N_("Automation"), "import": N_("Import"),
}
ROLE = {
    "agent": N_("Agent"), "supervisor": N_("Supervisor"), "admin": N_("Admin"), "auditor": N_("Auditor"),
    "compliance": N_("Compliance reviewer"), "integration": N_("Integration"), "customer": N_("Customer"),
    "system": N_("System"),
}
METRIC = {
    "first_reply_time": N_("First reply time"), "next_reply_time": N_("Next reply time"),
    "resolution_time": N_("Resolution time"),
}
STRATEGY = {"round_robin": N_("Round robin"), "least_loaded": N_("Least loaded"), "skills": N_("By skills")}
#: Reasons the desk itself gives for a status change (anything else was typed by a person).
SYSTEM_REASON = {"assigned": N_("assigned"), "customer responded": N_("the customer responded"),
                 "first public reply": N_("first public reply"), "routed": N_("routed")}
#: Actors that are not people.
SYSTEM_ACTOR = {"automation": N_("Automation"), "system": N_("System")}
SLA_STATE = {
    "active": N_("Running"), "paused": N_("Paused"), "fulfilled": N_("Fulfilled"), "breached": N_("Breached"),
}
QUEUE = {
    "mine": N_("My tickets"), "team": N_("My teams' tickets"), "unassigned": N_("Unassigned"),
    "due_soon": N_("SLA due soon"), "breached": N_("SLA breached"), "pending": N_("Waiting on customer"),
    "all": N_("All open tickets"),
}
SORT = {
    "created_at": N_("Oldest first"), "-created_at": N_("Newest first"), "-updated_at": N_("Recently updated"),
    "updated_at": N_("Least recently updated"), "priority": N_("Most urgent first"),
}
#: What each ticket event is called on the timeline.
EVENT = {
    "Opened": N_("opened the ticket"), "MarkedOpen": N_("marked it open"), "Pended": N_("set it to wait on the customer"),
    "PutOnHold": N_("put it on hold"), "Solved": N_("solved it"), "Reopened": N_("reopened it"),
    "Closed": N_("closed it"), "MergedInto": N_("merged it into another ticket"),
    "DuplicateMerged": N_("merged a duplicate into it"), "Assigned": N_("assigned it"),
    "Transferred": N_("transferred it to another team"), "Unassigned": N_("unassigned it"),
    "RemovedFromTeam": N_("removed it from its team (back to triage)"), "PriorityChanged": N_("changed the priority"),
    "Recategorised": N_("changed the category"), "TagsChanged": N_("changed the tags"),
    "CollaboratorAdded": N_("added a collaborator"), "CollaboratorRemoved": N_("removed a collaborator"),
    "Linked": N_("linked a ticket"), "WorkLogged": N_("logged service work"), "Rated": N_("rated the service"),
    "Routed": N_("routed it"), "SlaApplied": N_("applied a service standard"), "SlaWarned": N_("SLA warning"),
    "SlaBreached": N_("SLA breached"), "SlaFulfilled": N_("SLA target met"), "SurveyIssued": N_("sent a satisfaction survey"),
    "ResolutionRecorded": N_("recorded the resolution in the problem library"),
    "MailReceived": N_("received the customer's mail"),
    "AttachmentReceived": N_("received an attachment"),
    "Replied": N_("replied"), "NoteAdded": N_("added an internal note"), "CallLogged": N_("logged a call"),
    "EmailLogged": N_("logged an email"), "ChatLogged": N_("logged a chat"), "MeetingMinuted": N_("logged a meeting"),
}
LINK_KIND = {"related": N_("related"), "follow_up_of": N_("follow-up of"), "duplicate_of": N_("duplicate of")}
CONSENT = {"service": N_("Handling their requests"), "marketing": N_("Marketing"),
           "surveys": N_("Satisfaction surveys and follow-up visits"), "analytics": N_("Analytics")}
TIER = {"vip": N_("VIP"), "standard": N_("Standard"), "basic": N_("Basic")}
PROFILE_FIELD = {"name": N_("Name"), "email": N_("Email"), "phone": N_("Phone"), "im_handle": N_("IM handle"),
                 "company": N_("Company"), "job_title": N_("Job title")}
INTERACTION = {"reply": N_("Reply"), "note": N_("Internal note"), "call": N_("Call"), "email": N_("Email"),
               "chat": N_("Chat"), "meeting": N_("Meeting"), "work": N_("Service work")}
#: What each customer event is called in a customer's history.
CUSTOMER_EVENT = {
    "Registered": N_("registered the customer"), "ProfileUpdated": N_("updated the profile"),
    "LanguageChanged": N_("changed the preferred language"), "TierChanged": N_("changed the tier"),
    "ConsentGiven": N_("recorded a consent"), "ConsentWithdrawn": N_("recorded a withdrawn consent"),
    "NoteAdded": N_("added a note on the customer"), "ErasureRequested": N_("requested erasure"),
    "Erased": N_("erased the personal data"),
}
#: The fields a record's history shows (the audit trail's names).
AUDIT_FIELD = {
    "subject": N_("Subject"), "description": N_("Description"), "ticket_type": N_("Type"), "category": N_("Category"),
    "priority": N_("Priority"), "channel": N_("Channel"), "tags": N_("Tags"), "requester_id": N_("Customer"),
    "team_id": N_("Team"), "status": N_("Status"), "assignee_id": N_("Assignee"), "merged_into": N_("Merged into"),
    "collaborators": N_("Collaborators"), "links": N_("Links"), "sla_policy": N_("Service standard"),
    "satisfaction": N_("Satisfaction"), "satisfaction_comment": N_("Satisfaction comment"),
    "resolution": N_("Resolution"), "name": N_("Name"), "email": N_("Email"), "phone": N_("Phone"),
    "im_handle": N_("IM handle"), "company": N_("Company"), "job_title": N_("Job title"),
    "preferred_language": N_("Preferred language"), "tier": N_("Tier"), "consents": N_("Consents"),
}
MEMBER_ROLE = {"agent": N_("Agent"), "lead": N_("Team lead"), "supervisor": N_("Supervisor")}
#: What each placeholder of a saved reply (快捷回复) is filled with.
PLACEHOLDER = {
    "customer.name": N_("the customer's name (filled in when sent)"), "ticket.reference": N_("the ticket's reference"),
    "ticket.subject": N_("the ticket's subject"), "agent.name": N_("the name of whoever sends it"),
    "team.name": N_("the team's name"),
}
REPLY_KIND = {"reply": N_("Public reply"), "note": N_("Internal note")}
#: What a permission lets a token do (the admin's token form and list).
PERMISSION = {
    "tickets:read": N_("Read tickets"), "tickets:open": N_("Open new tickets"),
    "tickets:message": N_("Post customers' messages on tickets"), "tickets:write": N_("Work tickets (reply, assign, solve …)"),
    "customers:read": N_("Read customers"), "customers:register": N_("Register customers"),
    "customers:write": N_("Change customers"), "events:read": N_("Read the event export"),
    "metrics:read": N_("Read metrics (Prometheus)"),
    "tickets:text": N_("Read ticket text unmasked (every read is recorded)"),
}
WEBHOOK_STATE = {"active": N_("Active"), "paused": N_("Paused")}
#: A webhook delivery's state ("retrying": pending after a failed attempt).
DELIVERY_STATE = {"pending": N_("Waiting to send"), "retrying": N_("Retrying"), "delivered": N_("Delivered"),
                  "failed": N_("Failed"), "dropped": N_("Dropped (webhook removed)")}
#: The kinds of object whose events a webhook may subscribe to.
EVENT_GROUP = {
    "Ticket": N_("Tickets"), "Customer": N_("Customers"), "Team": N_("Teams"), "Reminder": N_("Reminders"),
    "RoutingPolicy": N_("Routing rules"), "ServiceCalendar": N_("Business calendars"),
    "SlaPolicy": N_("Service standards"), "StaffAccount": N_("Staff accounts"),
}
