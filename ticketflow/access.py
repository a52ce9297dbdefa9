"""Who may do what: roles, permissions, team scope, and the rule for every route.

The HTTP layer (and the console) ask these questions; the answers live here so the
CLI, the API and any later interface apply the same rules. :data:`ROUTES` is the one
table of route rules: every route an app serves must have an entry (a test walks
``app.routes`` and fails on a route without one).

Decisions (README "Access rules" says the same):

* Desk-wide policy — routing rules, SLA policies, business calendars, webhooks, forming
  teams — is for admins only. Routing rules are one ordered list for the whole desk (the
  first match wins), so a rule written by one team's supervisor could capture another
  team's new tickets; a supervisor manages their own teams (members, assignment strategy).
* An agent's or supervisor's token is bound to one team member (``agent_id``). Its teams
  are read from the directory at each request: the teams where that person is an active
  member (for a supervisor: where their member role is supervisor or lead). Leaving a team
  removes access at once. What they write is authored by that ``agent_id``.
* An integration token carries a list of permissions (default: open tickets, register
  customers, read the export) and optionally teams; it is never more than an agent.
* Staff may see and change a customer who has a ticket in one of their teams, or whom they
  registered themselves; roles that see every team see every customer.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller


class Permission(StrEnum):
    TICKETS_READ = "tickets:read"
    TICKETS_OPEN = "tickets:open"
    TICKETS_MESSAGE = "tickets:message"  # post the customer's inbound messages on a ticket
    TICKETS_WRITE = "tickets:write"  # work tickets: assign, reply, note, pend, solve ...
    CUSTOMERS_READ = "customers:read"
    CUSTOMERS_REGISTER = "customers:register"
    CUSTOMERS_WRITE = "customers:write"
    TEAMS_READ = "teams:read"
    TEAMS_WRITE = "teams:write"
    REPORTS_READ = "reports:read"
    AUDIT_READ = "audit:read"
    EVENTS_READ = "events:read"
    PII_UNMASK = "pii:unmask"  # with a stated purpose; every such read is recorded
    # Ticket text (subjects, descriptions, messages) unmasked for a token that does not work tickets
    # (a CRM sync): every such read is recorded; customers' names and emails stay masked.
    TICKETS_TEXT = "tickets:text"
    ACCESS_LOG_READ = "access-log:read"
    IMPORT = "import"  # record history: occurred_at in ticket commands (the events are marked imported)
    POLICIES_READ = "policies:read"  # routing rules, SLA policies, business calendars
    POLICIES_WRITE = "policies:write"
    REMINDERS_READ = "reminders:read"
    REMINDERS_WRITE = "reminders:write"
    WEBHOOKS_MANAGE = "webhooks:manage"
    MAILBOXES_MANAGE = "mailboxes:manage"  # where the desk receives mail (admins)
    PII_ERASE = "pii:erase"  # the right to erasure (compliance)
    METRICS_READ = "metrics:read"  # Prometheus scraping
    ACCOUNTS_MANAGE = "accounts:manage"  # console accounts: create, reset passwords, disable
    # What-if: replay a past period under candidate policies (supervisors: their teams; admins: the desk)
    WHATIF_RUN = "whatif:run"


#: What each permission lets a token do, as the end of "a ... token may not ..." (a 403's detail).
DOING: dict[Permission, str] = {
    Permission.TICKETS_READ: "read tickets",
    Permission.TICKETS_OPEN: "open tickets",
    Permission.TICKETS_MESSAGE: "post customers' messages on tickets",
    Permission.TICKETS_WRITE: "work tickets",
    Permission.CUSTOMERS_READ: "read customers",
    Permission.CUSTOMERS_REGISTER: "register customers",
    Permission.CUSTOMERS_WRITE: "change customers",
    Permission.TEAMS_READ: "read teams",
    Permission.TEAMS_WRITE: "change teams",
    Permission.REPORTS_READ: "read reports",
    Permission.AUDIT_READ: "read the audit trail",
    Permission.EVENTS_READ: "read the event log",
    Permission.PII_UNMASK: "unmask personal data",
    Permission.TICKETS_TEXT: "read ticket text unmasked",
    Permission.ACCESS_LOG_READ: "read the access log",
    Permission.IMPORT: "import history",
    Permission.POLICIES_READ: "read routing rules, SLA policies or calendars",
    Permission.POLICIES_WRITE: "change routing rules, SLA policies or calendars",
    Permission.REMINDERS_READ: "read reminders",
    Permission.REMINDERS_WRITE: "set or change reminders",
    Permission.WEBHOOKS_MANAGE: "manage webhooks",
    Permission.MAILBOXES_MANAGE: "manage mailboxes",
    Permission.PII_ERASE: "erase personal data",
    Permission.METRICS_READ: "read metrics",
    Permission.ACCOUNTS_MANAGE: "manage console accounts",
    Permission.WHATIF_RUN: "run what-if replays (supervisors may, for their own teams; admins may, desk-wide)",
}


def refusal(role_a: str, permission: Permission) -> str:
    """The detail of a 403 for a token whose role lacks ``permission``: "an auditor token may not run what-if ..."."""
    return f"{role_a} token may not {DOING.get(permission, permission.value.replace(':', ' '))}"


P = Permission
_READ_ALL = {
    P.TICKETS_READ, P.CUSTOMERS_READ, P.TEAMS_READ, P.REPORTS_READ, P.AUDIT_READ, P.EVENTS_READ, P.POLICIES_READ,
}
_WORK = {
    P.TICKETS_READ, P.TICKETS_OPEN, P.TICKETS_MESSAGE, P.TICKETS_WRITE, P.CUSTOMERS_READ, P.CUSTOMERS_REGISTER,
    P.CUSTOMERS_WRITE, P.TEAMS_READ, P.REPORTS_READ, P.AUDIT_READ, P.PII_UNMASK, P.POLICIES_READ, P.REMINDERS_READ,
    P.REMINDERS_WRITE,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.AGENT: frozenset(_WORK),
    Role.SUPERVISOR: frozenset({*_WORK, P.TEAMS_WRITE, P.EVENTS_READ, P.WHATIF_RUN}),
    Role.ADMIN: frozenset(Permission),
    Role.AUDITOR: frozenset(_READ_ALL),
    Role.COMPLIANCE: frozenset({*_READ_ALL, P.PII_UNMASK, P.ACCESS_LOG_READ, P.PII_ERASE}),
    # What an integration token may be granted; each token carries its own subset.
    Role.INTEGRATION: frozenset({
        P.TICKETS_READ, P.TICKETS_OPEN, P.TICKETS_MESSAGE, P.TICKETS_WRITE, P.CUSTOMERS_READ, P.CUSTOMERS_REGISTER,
        P.CUSTOMERS_WRITE, P.EVENTS_READ, P.METRICS_READ, P.IMPORT, P.TICKETS_TEXT,
    }),
    Role.CUSTOMER: frozenset(),
    Role.SYSTEM: frozenset(Permission),
}

#: An integration token issued without a list of permissions: a mail or IM gateway that opens
#: tickets for (new) customers, and a BI export.
INTEGRATION_DEFAULT = frozenset({P.TICKETS_OPEN, P.CUSTOMERS_REGISTER, P.EVENTS_READ})

#: Roles whose scope is every team (the others see only their teams).
ALL_TEAMS = frozenset({Role.ADMIN, Role.AUDITOR, Role.COMPLIANCE, Role.SYSTEM})

#: Roles a token may be issued for.
TOKEN_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR, Role.COMPLIANCE, Role.INTEGRATION)

#: Roles whose token is bound to a team member (``agent_id``); their teams come from the directory.
PERSON_ROLES = frozenset({Role.AGENT, Role.SUPERVISOR})

#: The member roles (inside a team) that make a supervisor token reach that team.
SUPERVISING_MEMBER_ROLES = frozenset({"supervisor", "lead"})

MASK = "***"
#: The purpose recorded for a read of ticket text shown because of the ``tickets:text`` scope alone.
TICKET_TEXT_PURPOSE = "tickets:text scope"


def granted(role: Role, requested: Iterable[Permission | str] | None) -> frozenset[Permission]:
    """The permissions a token of ``role`` carries (integration tokens: the requested subset)."""
    if role is not Role.INTEGRATION:
        return ROLE_PERMISSIONS[role]
    if requested is None:
        return INTEGRATION_DEFAULT
    return frozenset(Permission(p) for p in requested)


@dataclass(frozen=True)
class Principal:
    """The holder of a token (or a signed-in person), as the API sees them.

    ``name`` is the actor recorded on what they write: the bound ``agent_id`` for agents and
    supervisors, the token's name for the others."""

    token_id: UUID
    name: str
    role: Role
    team_ids: frozenset[UUID] = field(default_factory=frozenset)
    agent_id: str | None = None
    granted: frozenset[Permission] | None = None  # None: the role's permissions

    @property
    def permissions(self) -> frozenset[Permission]:
        return self.granted if self.granted is not None else ROLE_PERMISSIONS[self.role]

    def may(self, permission: Permission) -> bool:
        return permission in self.permissions

    @property
    def all_teams(self) -> bool:
        return self.role in ALL_TEAMS or (self.role is Role.INTEGRATION and not self.team_ids)

    def sees_team(self, team_id: UUID | str | None) -> bool:
        """Object-level rule: a ticket is visible when its team is in the holder's scope."""
        if self.all_teams:
            return True
        if team_id is None:
            return self.role is Role.SUPERVISOR  # team-less tickets wait in the supervisors' triage
        return UUID(str(team_id)) in self.team_ids

    def caller(self, via: Channel = Channel.API, correlation_id: str | None = None) -> Caller:
        return Caller(
            self.name, self.role, via, correlation_id,
            permissions=_permission_names(self.permissions),
            team_ids=None if self.all_teams else self.team_ids,
            triage=self.sees_team(None),
        )


@functools.lru_cache(maxsize=256)
def _permission_names(permissions: frozenset[Permission]) -> frozenset[str]:
    """A permission set as the names a :class:`Caller` carries (one set per role or grant: asked for
    every command, so worked out once)."""
    return frozenset(str(p) for p in permissions)


# ------------------------------------------------------------------ route rules
class Scope(StrEnum):
    """Which object a route's path names, and so which object-level rule applies."""

    NONE = "none"  # no object in the path (lists are filtered by team in the handler)
    DESK = "desk"  # desk-wide: only a caller whose scope is every team (else 403)
    TICKET = "ticket"  # {ticket_id}: the ticket's team must be in scope (else 404)
    CUSTOMER = "customer"  # {customer_id}: a customer with a ticket in scope, or registered by the caller (else 404)
    TEAM = "team"  # {team_id}: one of the caller's teams (else 404)
    REMINDER = "reminder"  # {reminder_id}: its agent, its author, its team or its ticket (the handler, else 404)


@dataclass(frozen=True)
class RouteRule:
    permission: Permission | None  # None with ``signed_in=False``: no token needed
    scope: Scope = Scope.NONE
    signed_in: bool = True
    open_setting: str | None = None  # a Settings flag that, when true, makes the route public

    @property
    def public(self) -> bool:
        return self.permission is None and not self.signed_in


PUBLIC = RouteRule(None, signed_in=False)
SIGNED_IN = RouteRule(None)


def _r(permission: Permission, scope: Scope = Scope.NONE) -> RouteRule:
    return RouteRule(permission, scope)


_TICKET_COMMANDS = ("assign", "unassign", "remove-from-team", "category", "transfer", "notes", "interactions", "work-entries", "pend", "hold", "open", "solve",
                    "close", "reopen", "priority", "satisfaction", "merge", "resolution", "tags", "links")

#: Every route of the HTTP app, "METHOD /path" -> its rule. A route missing here answers 500
#: (and the route x role x team test fails); an entry without a route fails that test too.
ROUTES: dict[str, RouteRule] = {
    # operations and documentation
    "GET /healthz": PUBLIC,
    "GET /readyz": PUBLIC,
    "GET /metrics": RouteRule(P.METRICS_READ, open_setting="metrics_public"),
    "GET /openapi.json": PUBLIC,
    "GET /docs": PUBLIC,
    "GET /docs/oauth2-redirect": PUBLIC,
    "GET /redoc": PUBLIC,
    "GET /api/v1/me": SIGNED_IN,
    # tickets
    "POST /api/v1/tickets": _r(P.TICKETS_OPEN),  # the team in the body is checked by the application
    **{f"POST /api/v1/tickets/{{ticket_id}}/{name}": _r(P.TICKETS_WRITE, Scope.TICKET) for name in _TICKET_COMMANDS},
    "POST /api/v1/tickets/{ticket_id}/replies": _r(P.TICKETS_MESSAGE, Scope.TICKET),  # outbound: tickets:write
    "GET /api/v1/tickets": _r(P.TICKETS_READ),
    "POST /api/v1/imports": _r(P.IMPORT),  # history at its own times; the teams named are checked per case
    "GET /api/v1/tickets/{ticket_id}": _r(P.TICKETS_READ, Scope.TICKET),
    "GET /api/v1/tickets/{ticket_id}/timeline": _r(P.TICKETS_READ, Scope.TICKET),
    "GET /api/v1/tickets/{ticket_id}/attachments/{digest}": _r(P.TICKETS_READ, Scope.TICKET),
    "GET /api/v1/tickets/{ticket_id}/suggestions": _r(P.TICKETS_READ, Scope.TICKET),
    "GET /api/v1/tickets/{ticket_id}/diff": _r(P.AUDIT_READ, Scope.TICKET),
    "GET /api/v1/tickets/{ticket_id}/audit": _r(P.AUDIT_READ, Scope.TICKET),
    "GET /api/v1/search": _r(P.TICKETS_READ),
    "GET /api/v1/problems": _r(P.TICKETS_READ),
    # customers
    "POST /api/v1/customers": _r(P.CUSTOMERS_REGISTER),
    "GET /api/v1/customers": _r(P.CUSTOMERS_READ),  # found by email; the customer scope is judged on the match
    "PATCH /api/v1/customers/{customer_id}": _r(P.CUSTOMERS_WRITE, Scope.CUSTOMER),
    "GET /api/v1/customers/{customer_id}": _r(P.CUSTOMERS_READ, Scope.CUSTOMER),
    "GET /api/v1/customers/{customer_id}/overview": _r(P.CUSTOMERS_READ, Scope.CUSTOMER),
    "POST /api/v1/customers/{customer_id}/erasure": _r(P.PII_ERASE, Scope.CUSTOMER),
    # teams
    "POST /api/v1/teams": _r(P.TEAMS_WRITE, Scope.DESK),
    "GET /api/v1/teams": _r(P.TEAMS_READ),
    "GET /api/v1/teams/{team_id}": _r(P.TEAMS_READ),
    "POST /api/v1/teams/{team_id}/members": _r(P.TEAMS_WRITE, Scope.TEAM),
    "PATCH /api/v1/teams/{team_id}/members/{agent_id}": _r(P.TEAMS_WRITE, Scope.TEAM),
    "POST /api/v1/teams/{team_id}/members/{agent_id}/deactivate": _r(P.TEAMS_WRITE, Scope.TEAM),
    "POST /api/v1/teams/{team_id}/members/{agent_id}/reactivate": _r(P.TEAMS_WRITE, Scope.TEAM),
    "PUT /api/v1/teams/{team_id}/strategy": _r(P.TEAMS_WRITE, Scope.TEAM),
    # saved reply templates (快捷回复): the team's supervisors write, its people read, others: 404
    "GET /api/v1/teams/{team_id}/reply-templates": _r(P.TEAMS_READ, Scope.TEAM),
    "POST /api/v1/teams/{team_id}/reply-templates": _r(P.TEAMS_WRITE, Scope.TEAM),
    "GET /api/v1/teams/{team_id}/reply-templates/{template_id}": _r(P.TEAMS_READ, Scope.TEAM),
    "PUT /api/v1/teams/{team_id}/reply-templates/{template_id}": _r(P.TEAMS_WRITE, Scope.TEAM),
    "POST /api/v1/teams/{team_id}/reply-templates/{template_id}/retire": _r(P.TEAMS_WRITE, Scope.TEAM),
    # filled in for a ticket of the template's team, to send as a reply or note
    "GET /api/v1/tickets/{ticket_id}/reply-templates/{template_id}/preview": _r(P.TICKETS_WRITE, Scope.TICKET),
    # desk-wide policy
    "GET /api/v1/routing-rules": _r(P.POLICIES_READ),
    "PUT /api/v1/routing-rules": _r(P.POLICIES_WRITE, Scope.DESK),
    "GET /api/v1/routing-rules/history": _r(P.POLICIES_READ),
    "POST /api/v1/calendars": _r(P.POLICIES_WRITE, Scope.DESK),
    "GET /api/v1/calendars": _r(P.POLICIES_READ),
    "GET /api/v1/calendars/{calendar_id}": _r(P.POLICIES_READ),
    "POST /api/v1/sla-policies": _r(P.POLICIES_WRITE, Scope.DESK),
    "GET /api/v1/sla-policies": _r(P.POLICIES_READ),
    "GET /api/v1/sla-policies/{policy_id}": _r(P.POLICIES_READ),
    "GET /api/v1/sla-policies/{policy_id}/history": _r(P.POLICIES_READ),
    "POST /api/v1/sla-policies/{policy_id}/retire": _r(P.POLICIES_WRITE, Scope.DESK),
    # reminders
    "POST /api/v1/reminders": _r(P.REMINDERS_WRITE),  # agent, team and ticket in the body: the application
    "GET /api/v1/reminders": _r(P.REMINDERS_READ),
    "GET /api/v1/reminders/{reminder_id}": _r(P.REMINDERS_READ, Scope.REMINDER),
    "POST /api/v1/reminders/{reminder_id}/complete": _r(P.REMINDERS_WRITE, Scope.REMINDER),
    "POST /api/v1/reminders/{reminder_id}/cancel": _r(P.REMINDERS_WRITE, Scope.REMINDER),
    # surveys: the survey token in the path is the customer's credential
    "POST /api/v1/surveys/{token}": PUBLIC,
    # webhooks
    **{f"{method} /api/v1/webhooks{path}": _r(P.WEBHOOKS_MANAGE, Scope.DESK) for method, path in [
        ("POST", ""), ("GET", ""), ("GET", "/event-types"), ("GET", "/{webhook_id}"), ("PATCH", "/{webhook_id}"),
        ("DELETE", "/{webhook_id}"), ("POST", "/{webhook_id}/pause"), ("POST", "/{webhook_id}/resume"), ("GET", "/{webhook_id}/deliveries"),
        ("GET", "/{webhook_id}/deliveries/{delivery_id}"), ("POST", "/{webhook_id}/deliveries/{delivery_id}/retry"),
    ]},
    # mailboxes: where the desk receives mail
    **{f"{method} /api/v1/mailboxes{path}": _r(P.MAILBOXES_MANAGE, Scope.DESK) for method, path in [
        ("POST", ""), ("GET", ""), ("GET", "/{mailbox_id}"), ("DELETE", "/{mailbox_id}"),
    ]},
    # reports, export, audit, compliance
    **{f"GET /api/v1/reports/{name}": _r(P.REPORTS_READ)
       for name in ("volume", "backlog", "response-times", "satisfaction", "sla")},
    "GET /api/v1/reports/erasures": _r(P.ACCESS_LOG_READ),
    "GET /api/v1/reports/data-access": _r(P.ACCESS_LOG_READ),
    "GET /api/v1/events": _r(P.EVENTS_READ),
    "GET /api/v1/access-log": _r(P.ACCESS_LOG_READ),
    "GET /api/v1/audit/verify": _r(P.AUDIT_READ, Scope.DESK),  # its problems name streams of every team
    # what-if jobs: the team in the body must be one of a supervisor's (none: all theirs); desk-wide: admins.
    # A job is shown to whom it covers (the handler: another team's job is 404)
    "POST /api/v1/whatif": _r(P.WHATIF_RUN),
    "GET /api/v1/whatif": _r(P.WHATIF_RUN),
    "GET /api/v1/whatif/{whatif_id}": _r(P.WHATIF_RUN),
}


#: The console's actions on a ticket (each a form POST to /tickets/{ticket_id}/<action>).
CONSOLE_TICKET_ACTIONS = ("reply", "note", "assign", "unassign", "remove-from-team", "category", "transfer", "pend", "hold", "open", "solve", "close", "reopen",
                          "priority", "tags", "link", "merge")

#: Every page and form of the web console (``api/console``), "METHOD /path" -> its rule: the same
#: permissions and object scopes as the API routes that do the same thing. Signed in by a session
#: (an account's password), not a token.
CONSOLE_ROUTES: dict[str, RouteRule] = {
    "GET /": SIGNED_IN,
    "GET /signin": PUBLIC,
    "POST /signin": PUBLIC,
    "POST /signout": SIGNED_IN,
    "GET /language": PUBLIC,  # sets the language cookie only
    "GET /account": SIGNED_IN,
    "POST /account/password": SIGNED_IN,
    "GET /queues": _r(P.TICKETS_READ),
    "GET /queues/updates": _r(P.TICKETS_READ),  # server-sent events: the log position, as it moves
    "GET /tickets/{ticket_id}": _r(P.TICKETS_READ, Scope.TICKET),
    # an attachment of the customer's mail: ticket text (a role that sees it masked is refused the bytes)
    "GET /tickets/{ticket_id}/attachments/{digest}": _r(P.TICKETS_READ, Scope.TICKET),
    "GET /customers/{customer_id}": _r(P.CUSTOMERS_READ, Scope.CUSTOMER),
    "POST /customers/{customer_id}/reveal": _r(P.PII_UNMASK, Scope.CUSTOMER),  # with a purpose, recorded
    "GET /search": _r(P.TICKETS_READ),
    "GET /dashboard": _r(P.REPORTS_READ),
    "GET /dashboard/{chart}.csv": _r(P.REPORTS_READ),
    "GET /vendor/plotly.min.js": PUBLIC,  # the charting library, from the plotly wheel
    **{f"POST /tickets/{{ticket_id}}/{action}": _r(P.TICKETS_WRITE, Scope.TICKET) for action in CONSOLE_TICKET_ACTIONS},
    # auditor: a record's history as of any instant, its proof, verification, exports
    "GET /audit": _r(P.AUDIT_READ),
    "POST /audit/verify": _r(P.AUDIT_READ, Scope.DESK),  # the whole log names every team's streams
    "GET /audit/export.zip": _r(P.AUDIT_READ, Scope.DESK),
    **{f"GET /audit/{kind}s/{{{kind}_id}}": _r(P.AUDIT_READ, Scope(kind)) for kind in ("ticket", "customer")},
    # verifying or exporting one record builds the whole log's tree: the roles that see every team
    **{f"{method} /audit/{kind}s/{{{kind}_id}}{path}": _r(P.AUDIT_READ, Scope.DESK)
       for kind in ("ticket", "customer") for method, path in (("POST", "/verify"), ("GET", "/export.zip"))},
    # compliance: who saw personal data, erasures, retention (the access log's readers); SLA compliance
    **{f"GET /compliance/{name}{ext}": _r(P.ACCESS_LOG_READ)
       for name in ("access-log", "erasures") for ext in ("", ".csv")},
    "GET /compliance/retention": _r(P.ACCESS_LOG_READ),
    "GET /compliance/sla": _r(P.REPORTS_READ),
    "GET /compliance/sla.csv": _r(P.REPORTS_READ),
    # admin: teams and members (a supervisor: their own teams), desk-wide policy with its versions
    "GET /admin/teams": _r(P.TEAMS_WRITE),  # lists the caller's teams
    "POST /admin/teams": _r(P.TEAMS_WRITE, Scope.DESK),
    "GET /admin/teams/{team_id}": _r(P.TEAMS_WRITE, Scope.TEAM),
    **{f"POST /admin/teams/{{team_id}}{path}": _r(P.TEAMS_WRITE, Scope.TEAM) for path in (
        "/members", "/members/{agent_id}", "/members/{agent_id}/deactivate", "/members/{agent_id}/reactivate", "/strategy",
        "/templates", "/templates/{template_id}", "/templates/{template_id}/retire")},
    "GET /admin/teams/{team_id}/templates": _r(P.TEAMS_WRITE, Scope.TEAM),  # saved replies (快捷回复)
    **{f"GET /admin/{path}": _r(P.POLICIES_READ) for path in (
        "routing", "sla", "sla/{policy_id}", "calendars", "calendars/{calendar_id}")},
    **{f"POST /admin/{path}": _r(P.POLICIES_WRITE, Scope.DESK) for path in (
        "routing", "sla", "sla/{policy_id}/retire", "calendars")},
    "GET /admin/accounts": _r(P.ACCOUNTS_MANAGE, Scope.DESK),
    "POST /admin/accounts": _r(P.ACCOUNTS_MANAGE, Scope.DESK),
    "POST /admin/accounts/{account_id}/password": _r(P.ACCOUNTS_MANAGE, Scope.DESK),
    "POST /admin/accounts/{account_id}/disable": _r(P.ACCOUNTS_MANAGE, Scope.DESK),
    "POST /admin/accounts/{account_id}/enable": _r(P.ACCOUNTS_MANAGE, Scope.DESK),
    # webhooks: the rules of /api/v1/webhooks
    **{f"{method} /admin/webhooks{path}": _r(P.WEBHOOKS_MANAGE, Scope.DESK) for method, path in [
        ("GET", ""), ("POST", ""), ("GET", "/{webhook_id}"), ("POST", "/{webhook_id}/pause"),
        ("POST", "/{webhook_id}/resume"), ("POST", "/{webhook_id}/deliveries/{delivery_id}/retry"),
    ]},
    # API tokens: the application lets only admins issue and revoke them (no API route does); a token
    # is a credential like an account, so the same admin-only permission as accounts
    "GET /admin/tokens": _r(P.ACCOUNTS_MANAGE, Scope.DESK),
    "POST /admin/tokens": _r(P.ACCOUNTS_MANAGE, Scope.DESK),
    "POST /admin/tokens/{token_id}/revoke": _r(P.ACCOUNTS_MANAGE, Scope.DESK),
    # what-if (假设分析): the rules of /api/v1/whatif (a job another team's supervisor may not see: 404)
    "GET /whatif": _r(P.WHATIF_RUN),
    "POST /whatif": _r(P.WHATIF_RUN),
    "GET /whatif/{whatif_id}": _r(P.WHATIF_RUN),
}


def route_rule(method: str, path: str) -> RouteRule | None:
    return ROUTES.get(f"{method.upper()} {path}")
