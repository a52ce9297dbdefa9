"""Which permission each command needs: the application checks it for every caller that
carries permissions (API tokens, console sessions), whatever face the command came through.

The desk's own callers (automation, import, the CLI operator) carry none and are checked
by the role rules inside each command instead.
"""

from __future__ import annotations

from ticketflow import commands as c
from ticketflow.access import Permission as P
from ticketflow.commands import workflow as wf
from ticketflow.commands.access import IssueToken, RecordDataAccess, RevokeToken
from ticketflow.commands.accounts import CreateAccount, DisableAccount, EnableAccount, SetPassword
from ticketflow.commands.mailbox import AddMailbox, RemoveMailbox
from ticketflow.commands.privacy import EraseCustomer
from ticketflow.domain.values import Direction

_BY_TYPE: dict[type[c.Command], P | None] = {
    c.OpenTicket: P.TICKETS_OPEN,
    c.RecordImportedFacts: P.IMPORT,  # imported history: facts, not commands (an admin or a token granted import)
    c.RegisterCustomer: P.CUSTOMERS_REGISTER,
    c.FormTeam: P.TEAMS_WRITE,
    c.CreateReplyTemplate: P.TEAMS_WRITE,  # a team's own reply templates: its supervisors, and admins
    wf.SetAssignmentStrategy: P.TEAMS_WRITE,
    wf.PublishRoutingRules: P.POLICIES_WRITE,
    wf.DefineCalendar: P.POLICIES_WRITE,
    wf.DefineSlaPolicy: P.POLICIES_WRITE,
    wf.RetireSlaPolicy: P.POLICIES_WRITE,
    wf.ScheduleReminder: P.REMINDERS_WRITE,
    wf.SubscribeWebhook: P.WEBHOOKS_MANAGE,
    AddMailbox: P.MAILBOXES_MANAGE,
    RemoveMailbox: P.MAILBOXES_MANAGE,
    wf.AnswerSurvey: None,  # the survey token is the customer's credential
    EraseCustomer: P.PII_ERASE,
    IssueToken: None,  # admins only (the command checks the role)
    RevokeToken: None,
    RecordDataAccess: None,  # any read of personal data is recorded, whoever reads
    CreateAccount: None,  # admins only (the application checks the role)
    SetPassword: None,  # admins reset; the holder changes their own
    DisableAccount: None,
    EnableAccount: None,
}

_BY_BASE: tuple[tuple[type[c.Command], P], ...] = (
    (c.TicketCommand, P.TICKETS_WRITE),
    (c.CustomerCommand, P.CUSTOMERS_WRITE),
    (c.TeamCommand, P.TEAMS_WRITE),
    (c.ReplyTemplateCommand, P.TEAMS_WRITE),
    (wf.ReminderCommand, P.REMINDERS_WRITE),
    (wf.WebhookCommand, P.WEBHOOKS_MANAGE),
)


def required_permission(command: c.Command) -> P | None:
    """The permission ``command`` needs; a customer's inbound message needs only ``tickets:message``."""
    if isinstance(command, c.PostReply) and command.direction is Direction.INBOUND:
        return P.TICKETS_MESSAGE
    kind = type(command)
    if kind in _BY_TYPE:
        return _BY_TYPE[kind]
    for base, permission in _BY_BASE:
        if isinstance(command, base):
            return permission
    raise LookupError(f"no permission rule for {kind.__name__}")  # a new command must be given one
