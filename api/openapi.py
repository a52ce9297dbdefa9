"""What the OpenAPI document says beyond the routes: operation ids, tag descriptions, license,
contact, and the webhook deliveries (OpenAPI 3.1 ``webhooks``).

Operation ids are one table, named as integrators call them (``assignTicket``); a route without
an entry fails app start-up (:func:`operation_id`), and ``tests/api/test_openapi_document.py``
checks they are camelCase and unique.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from fastapi.routing import APIRoute
from fastapi.utils import generate_unique_id

from api.field_docs import describe_fields
from api.routes import depends_on

LICENSE = {"name": "Apache-2.0", "identifier": "Apache-2.0"}
CONTACT = {
    "name": "ticketflow maintainers",
    "url": "https://ticketflow.dev",
    "email": "maintainers@ticketflow.dev",
}

TAGS: list[dict[str, str]] = [
    {
        "name": "tickets",
        "description": "Tickets: open, work (one POST per command), read, and their history "
        "(timeline, audit trail, diff between versions).",
    },
    {
        "name": "customers",
        "description": "Customers: register, change, list, find by email or phone, the customer 360; "
        "personal fields are masked unless unmasked with a recorded purpose.",
    },
    {"name": "teams", "description": "Teams and their members, roles, skills and assignment strategy."},
    {
        "name": "reads",
        "description": "Search, reports, the incremental event export, the access log and `me`.",
    },
    {
        "name": "policies",
        "description": "Desk-wide policy (admins): routing rules, SLA policies, business calendars.",
    },
    {
        "name": "reminders",
        "description": "Reminders and follow-ups for agents, teams, tickets and customers.",
    },
    {
        "name": "surveys",
        "description": "Satisfaction surveys answered by customers through their link token.",
    },
    {"name": "problems", "description": "The problem library: solved problems to search and suggest."},
    {
        "name": "webhooks",
        "description": "Subscriptions to events, their signed deliveries and retries (admins).",
    },
    {"name": "mailboxes", "description": "Where the desk receives mail (admins)."},
    {
        "name": "imports",
        "description": "History from another desk, recorded as imported facts at their own times "
        "(tokens granted `import`).",
    },
    {"name": "privacy", "description": "Erasure of a customer's personal data, and the erasure log."},
    {"name": "compliance", "description": "Who read whose personal data: the data-access report."},
    {
        "name": "audit",
        "description": "Verification of the event log: hashes, chains, tree roots, signatures.",
    },
    {
        "name": "reply templates",
        "description": "Saved replies (快捷回复) of a team, and their preview on a ticket.",
    },
    {
        "name": "whatif",
        "description": "What-if (假设分析): replay a past period under candidate routing rules, SLA policies or "
        "calendars, as a job, and compare with what happened (supervisors: their teams; admins: the desk).",
    },
    {"name": "operations", "description": "Liveness, readiness and Prometheus metrics."},
]

#: "METHOD /path" -> operationId.
OPERATION_IDS: dict[str, str] = {
    "POST /api/v1/whatif": "startWhatif",
    "GET /api/v1/whatif": "listWhatifs",
    "GET /api/v1/whatif/{whatif_id}": "getWhatif",
    "GET /healthz": "getHealth",
    "GET /readyz": "getReadiness",
    "GET /metrics": "getMetrics",
    "POST /api/v1/tickets": "openTicket",
    "GET /api/v1/tickets": "listTickets",
    "POST /api/v1/tickets/{ticket_id}/assign": "assignTicket",
    "POST /api/v1/tickets/{ticket_id}/unassign": "unassignTicket",
    "POST /api/v1/tickets/{ticket_id}/remove-from-team": "removeTicketFromTeam",
    "POST /api/v1/tickets/{ticket_id}/category": "recategoriseTicket",
    "POST /api/v1/tickets/{ticket_id}/transfer": "transferTicket",
    "POST /api/v1/tickets/{ticket_id}/replies": "postReply",
    "POST /api/v1/tickets/{ticket_id}/notes": "addNote",
    "POST /api/v1/tickets/{ticket_id}/interactions": "logInteraction",
    "POST /api/v1/tickets/{ticket_id}/work-entries": "logWork",
    "POST /api/v1/tickets/{ticket_id}/pend": "pendTicket",
    "POST /api/v1/tickets/{ticket_id}/hold": "holdTicket",
    "POST /api/v1/tickets/{ticket_id}/open": "markTicketOpen",
    "POST /api/v1/tickets/{ticket_id}/solve": "solveTicket",
    "POST /api/v1/tickets/{ticket_id}/close": "closeTicket",
    "POST /api/v1/tickets/{ticket_id}/reopen": "reopenTicket",
    "POST /api/v1/tickets/{ticket_id}/priority": "changeTicketPriority",
    "POST /api/v1/tickets/{ticket_id}/satisfaction": "rateTicketSatisfaction",
    "POST /api/v1/tickets/{ticket_id}/tags": "changeTicketTags",
    "POST /api/v1/tickets/{ticket_id}/merge": "mergeTicket",
    "POST /api/v1/tickets/{ticket_id}/links": "linkTicket",
    "GET /api/v1/tickets/{ticket_id}": "getTicket",
    "GET /api/v1/tickets/{ticket_id}/diff": "diffTicketVersions",
    "GET /api/v1/tickets/{ticket_id}/timeline": "getTicketTimeline",
    "GET /api/v1/tickets/{ticket_id}/audit": "getTicketAuditTrail",
    "POST /api/v1/customers": "registerCustomer",
    "GET /api/v1/customers": "listCustomers",
    "PATCH /api/v1/customers/{customer_id}": "updateCustomer",
    "GET /api/v1/customers/{customer_id}": "getCustomer",
    "GET /api/v1/customers/{customer_id}/overview": "getCustomerOverview",
    "POST /api/v1/teams": "formTeam",
    "GET /api/v1/teams": "listTeams",
    "GET /api/v1/teams/{team_id}": "getTeam",
    "POST /api/v1/teams/{team_id}/members": "addTeamMember",
    "PATCH /api/v1/teams/{team_id}/members/{agent_id}": "changeTeamMember",
    "POST /api/v1/teams/{team_id}/members/{agent_id}/deactivate": "deactivateTeamMember",
    "POST /api/v1/teams/{team_id}/members/{agent_id}/reactivate": "reactivateTeamMember",
    "GET /api/v1/search": "searchTickets",
    "GET /api/v1/reports/volume": "getVolumeReport",
    "GET /api/v1/reports/backlog": "getBacklogReport",
    "GET /api/v1/reports/response-times": "getResponseTimesReport",
    "GET /api/v1/reports/satisfaction": "getSatisfactionReport",
    "GET /api/v1/reports/sla": "getSlaComplianceReport",
    "GET /api/v1/events": "exportEvents",
    "GET /api/v1/access-log": "listDataAccesses",
    "GET /api/v1/me": "getMe",
    "GET /api/v1/routing-rules": "getRoutingRules",
    "PUT /api/v1/routing-rules": "publishRoutingRules",
    "GET /api/v1/routing-rules/history": "listRoutingRuleVersions",
    "POST /api/v1/calendars": "defineCalendar",
    "GET /api/v1/calendars": "listCalendars",
    "GET /api/v1/calendars/{calendar_id}": "getCalendar",
    "POST /api/v1/sla-policies": "defineSlaPolicy",
    "GET /api/v1/sla-policies": "listSlaPolicies",
    "GET /api/v1/sla-policies/{policy_id}": "getSlaPolicy",
    "GET /api/v1/sla-policies/{policy_id}/history": "listSlaPolicyVersions",
    "POST /api/v1/sla-policies/{policy_id}/retire": "retireSlaPolicy",
    "PUT /api/v1/teams/{team_id}/strategy": "setAssignmentStrategy",
    "POST /api/v1/reminders": "scheduleReminder",
    "GET /api/v1/reminders": "listReminders",
    "GET /api/v1/reminders/{reminder_id}": "getReminder",
    "POST /api/v1/reminders/{reminder_id}/complete": "completeReminder",
    "POST /api/v1/reminders/{reminder_id}/cancel": "cancelReminder",
    "POST /api/v1/surveys/{token}": "answerSurvey",
    "GET /api/v1/problems": "searchProblems",
    "GET /api/v1/tickets/{ticket_id}/suggestions": "suggestProblems",
    "POST /api/v1/tickets/{ticket_id}/resolution": "recordResolution",
    "POST /api/v1/webhooks": "subscribeWebhook",
    "GET /api/v1/webhooks": "listWebhooks",
    "GET /api/v1/webhooks/event-types": "listWebhookEventTypes",
    "GET /api/v1/webhooks/{webhook_id}": "getWebhook",
    "PATCH /api/v1/webhooks/{webhook_id}": "changeWebhook",
    "DELETE /api/v1/webhooks/{webhook_id}": "removeWebhook",
    "POST /api/v1/webhooks/{webhook_id}/pause": "pauseWebhook",
    "POST /api/v1/webhooks/{webhook_id}/resume": "resumeWebhook",
    "GET /api/v1/webhooks/{webhook_id}/deliveries": "listWebhookDeliveries",
    "GET /api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}": "getWebhookDelivery",
    "POST /api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry": "retryWebhookDelivery",
    "POST /api/v1/mailboxes": "addMailbox",
    "GET /api/v1/mailboxes": "listMailboxes",
    "GET /api/v1/mailboxes/{mailbox_id}": "getMailbox",
    "DELETE /api/v1/mailboxes/{mailbox_id}": "removeMailbox",
    "POST /api/v1/customers/{customer_id}/erasure": "eraseCustomer",
    "GET /api/v1/reports/erasures": "getErasureLog",
    "GET /api/v1/reports/data-access": "getDataAccessReport",
    "GET /api/v1/audit/verify": "verifyEventLog",
    "GET /api/v1/teams/{team_id}/reply-templates": "listReplyTemplates",
    "POST /api/v1/teams/{team_id}/reply-templates": "createReplyTemplate",
    "GET /api/v1/teams/{team_id}/reply-templates/{template_id}": "getReplyTemplate",
    "PUT /api/v1/teams/{team_id}/reply-templates/{template_id}": "reviseReplyTemplate",
    "POST /api/v1/teams/{team_id}/reply-templates/{template_id}/retire": "retireReplyTemplate",
    "GET /api/v1/tickets/{ticket_id}/reply-templates/{template_id}/preview": "previewReplyTemplate",
    "GET /api/v1/tickets/{ticket_id}/attachments/{digest}": "downloadAttachment",
    "POST /api/v1/imports": "importHistory",
}


def operation_id(route: APIRoute) -> str:
    """The route's operationId from :data:`OPERATION_IDS` (a KeyError names a route added without one).
    Routes outside the document (console pages) keep FastAPI's generated id."""
    if not route.include_in_schema:
        return generate_unique_id(route)
    method = min(route.methods or {"GET"})
    key = f"{method} {route.path_format}"
    try:
        return OPERATION_IDS[key]
    except KeyError:
        raise KeyError(f"{key} has no operationId in api/openapi.py OPERATION_IDS") from None


#: The body of a delivery; the event is in the shape of ``GET /api/v1/events`` (``EventOut``).
DELIVERY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["delivery_id", "webhook_id", "event"],
    "properties": {
        "delivery_id": {
            "type": "string",
            "format": "uuid",
            "description": "The same on every retry of this event to this webhook.",
        },
        "webhook_id": {"type": "string", "format": "uuid", "description": "The subscription delivered to."},
        "event": {"$ref": "#/components/schemas/EventOut"},
    },
}


def describe(spec: dict[str, Any]) -> dict[str, Any]:
    """Add field descriptions (api/field_docs.py), license, contact, tag descriptions and the webhook delivery."""
    describe_fields(spec)
    spec["info"]["license"] = LICENSE
    spec["info"]["contact"] = CONTACT
    spec["tags"] = TAGS
    spec["webhooks"] = {
        "ticketflowEvent": {
            "post": {
                "operationId": "receiveTicketflowEvent",
                "summary": "One event delivered to a subscribed URL",
                "description": (
                    "A signed POST per event a subscription wants (`POST /api/v1/webhooks`). Headers: "
                    "`X-Ticketflow-Delivery` (the delivery id, the same on every retry: drop duplicates by it), "
                    "`X-Ticketflow-Event`, `X-Ticketflow-Attempt`, `X-Ticketflow-Timestamp`, "
                    "`X-Ticketflow-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, '<t>.<raw body>')>`, and the "
                    "Standard Webhooks `webhook-id`, `webhook-timestamp`, `webhook-signature`. Personal fields are "
                    "`***` unless the subscription was granted `tickets:text` (ticket text only). Answer 2xx; "
                    "anything else is retried with backoff (about 10 s doubling to 1 h, 12 attempts)."
                ),
                "tags": ["webhooks"],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": DELIVERY_SCHEMA,
                            "example": {
                                "delivery_id": "c6f1f7b2-4f0c-5b8e-8d0a-1d2f3e4a5b6c",
                                "webhook_id": "0b8e5a52-3f4e-5d55-9a43-6b0b4b1f7c1e",
                                "event": {
                                    "position": 1207,
                                    "object_id": "5f0c2a9e-1f7b-4c1e-9d51-0a3c5b7e9f11",
                                    "object_type": "ticket",
                                    "version": 1,
                                    "event_type": "Ticket.Opened",
                                    "occurred_at": "2026-03-02T09:00:00+00:00",
                                    "recorded_at": "2026-03-02T09:00:00+00:00",
                                    "actor_id": "mail-gateway",
                                    "actor_role": "integration",
                                    "via": "email",
                                    "correlation_id": None,
                                    "imported": False,
                                    "payload": {"subject": "***", "priority": "normal"},
                                },
                            },
                        }
                    },
                },
                "responses": {
                    "2XX": {"description": "Delivered: never sent again."},
                    "default": {"description": "Not delivered: retried with backoff."},
                },
            },
        },
    }
    return spec


def _header(name: str, description: str | None) -> dict[str, Any]:
    """An optional string header, as FastAPI documents ``Annotated[str | None, Header(...)] = None``."""
    schema: dict[str, Any] = {"anyOf": [{"type": "string"}, {"type": "null"}], "title": name}
    parameter: dict[str, Any] = {"in": "header", "name": name.lower(), "required": False, "schema": schema}
    if description is not None:
        schema["description"] = parameter["description"] = description
    return parameter


#: The headers every write route reads (api.deps.commands reads them from the request itself).
COMMAND_HEADERS = (
    _header("If-Match", 'Expected version, e.g. "3" (412 when stale).'),
    _header("Idempotency-Key", "Makes a POST safe to retry (kept 24 h)."),
    _header("X-Correlation-Id", None),
)
BEARER_SCHEME = "HTTPBearer"  # the scheme api.deps.bearer declares (its class name, FastAPI's default)


def _api_routes(routes: Iterable[Any], prefix: str) -> Iterable[tuple[str, APIRoute]]:
    """Every API route with the prefix it is served under (FastAPI keeps an included router whole)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            extra = str(getattr(getattr(route, "include_context", None), "prefix", "") or "")
            yield from _api_routes(inner.routes, prefix + extra)
        elif isinstance(route, APIRoute):
            yield prefix, route


def document_command_headers(spec: dict[str, Any], routes: Iterable[Any], commands: Callable[..., Any]) -> dict[str, Any]:
    """Document the command headers and the bearer scheme on each operation whose route depends on
    ``commands`` (after its own header parameters, where FastAPI would list a dependency's)."""
    for prefix, route in _api_routes(routes, ""):
        if not route.include_in_schema or not depends_on(route.dependant, commands):
            continue
        for method in route.methods or ():
            operation = spec["paths"].get(prefix + route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            operation.setdefault("parameters", []).extend(copy.deepcopy(list(COMMAND_HEADERS)))
            security = operation.setdefault("security", [])
            if {BEARER_SCHEME: []} not in security:
                security.append({BEARER_SCHEME: []})
    return spec


def document_read_security(
    spec: dict[str, Any], routes: Iterable[Any], reads: Callable[..., Any]
) -> dict[str, Any]:
    """Document the bearer scheme on each operation whose route depends on ``reads`` (which takes the
    caller from the token itself), where FastAPI puts an operation's ``security``: after its operationId."""
    for prefix, route in _api_routes(routes, ""):
        if not route.include_in_schema or not depends_on(route.dependant, reads):
            continue
        for method in route.methods or ():
            operation = spec["paths"].get(prefix + route.path_format, {}).get(method.lower())
            if operation is None or "security" in operation:
                continue
            keys = list(operation)
            at = max(
                (i + 1 for i, key in enumerate(keys) if key in ("operationId", "deprecated")),
                default=len(keys),
            )
            rest = {key: operation.pop(key) for key in keys[at:]}
            operation["security"] = [{BEARER_SCHEME: []}]
            operation.update(rest)
    return spec
