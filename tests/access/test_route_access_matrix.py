"""Every route the app serves x every role x own/other team, against the one table of route rules.

The table (:data:`ticketflow.access.ROUTES`) says what each route needs; this test asks the running
app and compares. A route added without a rule fails here, and so does a rule left without a route.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from fastapi import FastAPI
from fastapi.routing import _IncludedRouter
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from api.docs import DOCS_STATIC
from tests.access.conftest import Desk
from ticketflow.access import CONSOLE_ROUTES, ROUTES, Principal, Scope, route_rule

ROLES = ["admin", "agent_a", "supervisor_a", "auditor", "compliance", "integration", "integration_a"]


#: The console's own static files (our CSS and JavaScript): public, no access rule.
CONSOLE_STATIC = "/static"


def served_routes(app: FastAPI, console: bool = False) -> Iterator[tuple[str, str]]:
    """(METHOD, path) of every API route (``console``: of every console page), routers and plain routes alike."""
    for method, path in _all_routes(app):
        if (f"{method} {path}" in CONSOLE_ROUTES) == console:
            yield method, path


def _all_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    for route in app.routes:
        if isinstance(route, _IncludedRouter):
            for context in route.effective_route_contexts():
                for method in sorted(context.methods):
                    yield method, context.path
        elif isinstance(route, Route):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    yield method, route.path
        elif isinstance(route, Mount) and route.path == DOCS_STATIC and isinstance(route.app, StaticFiles):
            # The assets of /docs and /redoc (Swagger UI, ReDoc): public static files, served by
            # StaticFiles without the authorize dependency, so no access rule; tests/api/test_docs_offline.py
            # fetches them. Only this one mount is let through.
            continue
        elif isinstance(route, Mount) and route.path == CONSOLE_STATIC and isinstance(route.app, StaticFiles):
            continue  # the console's stylesheet and script (tests/console fetches them)
        else:  # a kind of route this test does not know how to walk: make that visible
            raise AssertionError(f"unknown route kind {type(route).__name__}")


def test_every_route_has_exactly_one_rule_and_every_rule_a_route(desk: Desk) -> None:
    served = {f"{method} {path}" for method, path in _all_routes(desk.app)}
    rules = {**ROUTES, **CONSOLE_ROUTES}
    assert not set(ROUTES) & set(CONSOLE_ROUTES), "a path is both an API route and a console page"
    assert sorted(served - set(rules)) == [], "routes without an access rule in ticketflow/access.py"
    assert sorted(set(rules) - served) == [], "access rules for routes the app does not serve"


def _path(template: str, other: bool, desk: Desk) -> str:
    side = desk.other if other else desk.own
    values = {**side, "webhook_id": desk.webhook, "delivery_id": str(uuid4()), "policy_id": desk.sla_policy,
              "calendar_id": desk.calendar, "mailbox_id": str(uuid4()), "token": "sv_not-a-survey-token",
              "digest": "0" * 64, "whatif_id": str(uuid4())}
    return template.format(**values)


def _expected(principal: Principal, method: str, template: str, other: bool) -> str:
    rule = route_rule(method, template)
    assert rule is not None
    if rule.public:
        return "pass"
    if rule.permission is not None and not principal.may(rule.permission):
        return "403"
    if rule.scope is Scope.DESK and not principal.all_teams:
        return "403"
    if other and rule.scope in (Scope.TICKET, Scope.CUSTOMER, Scope.TEAM, Scope.REMINDER) and not principal.all_teams:
        return "404"
    return "pass"


def _observed(status: int) -> str:
    return {401: "401", 403: "403", 404: "404"}.get(status, "pass")


#: Routes whose path names an object the setup does not create: a 404 there is not a refusal.
NAMES_MISSING_OBJECTS = {"GET /api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}",
                         "POST /api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry",
                         "POST /api/v1/surveys/{token}",
                         "GET /api/v1/mailboxes/{mailbox_id}", "DELETE /api/v1/mailboxes/{mailbox_id}",
                         "DELETE /api/v1/webhooks/{webhook_id}",
                         "GET /api/v1/tickets/{ticket_id}/attachments/{digest}",
                         "GET /api/v1/whatif/{whatif_id}"}
#: Routes whose content is ticket text: a role that sees ticket text masked is refused the content
#: itself (403 naming it), after the route's own rule let it in.
REFUSES_MASKED_TEXT = {"GET /api/v1/tickets/{ticket_id}/attachments/{digest}"}
#: Routes that would destroy the setup's object for every route after them: they get a missing one.
DESTRUCTIVE = {"DELETE /api/v1/webhooks/{webhook_id}"}


@pytest.mark.parametrize("role", ROLES)
def test_each_route_answers_each_role_as_its_rule_says_for_own_and_other_teams(desk: Desk, role: str) -> None:
    principal = desk.principal(role)
    wrong: list[str] = []
    for method, template in served_routes(desk.app):
        key = f"{method} {template}"
        for other in (False, True):
            expected = _expected(principal, method, template, other)
            body: Any = {} if method in ("POST", "PUT", "PATCH") else None
            path = template.format(webhook_id=uuid4()) if key in DESTRUCTIVE else _path(template, other, desk)
            response = desk.client.request(method, path, json=body, headers=desk.headers(role))
            observed = _observed(response.status_code)
            if observed == "404" and expected == "pass" and key in NAMES_MISSING_OBJECTS:
                continue
            if (observed == "403" and expected == "pass" and key in REFUSES_MASKED_TEXT
                    and "attachments are ticket text" in response.text):
                continue
            if observed != expected:
                side = "other team" if other else "own team"
                wrong.append(f"{key} ({side}): expected {expected}, got {response.status_code} {response.text[:120]}")
    assert not wrong, "\n".join(wrong)


def test_without_a_token_only_public_routes_answer(desk: Desk) -> None:
    for method, template in served_routes(desk.app):
        rule = route_rule(method, template)
        assert rule is not None
        response = desk.client.request(method, _path(template, False, desk), json={} if method != "GET" else None)
        if rule.public:
            assert response.status_code not in (401, 403), f"{method} {template}"
        else:
            assert response.status_code == 401, f"{method} {template}: {response.status_code}"


def test_a_reminder_or_ticket_id_that_does_not_parse_is_a_validation_error_not_a_crash(desk: Desk) -> None:
    for path in ("/api/v1/tickets/not-a-uuid", "/api/v1/customers/not-a-uuid", "/api/v1/reminders/not-a-uuid"):
        assert desk.client.get(path, headers=desk.headers("agent_a")).status_code == 422



#: Routes that name a team in their path but are readable desk-wide (the team directory).
DIRECTORY_READS = {"GET /api/v1/teams/{team_id}"}
#: Writes with no object in the path whose body names the team, ticket or agent: the application
#: checks those against the caller's teams (tests/access/test_authorization_findings.py; the import batch's
#: teams, per case: tests/importing/test_http_import.py).
BODY_SCOPED_WRITES = {"POST /api/v1/tickets", "POST /api/v1/customers", "POST /api/v1/reminders", "POST /api/v1/imports",
                      "POST /api/v1/whatif"}  # the what-if's team (tests/whatif/test_whatif_api.py)


def test_a_route_that_names_a_scoped_object_in_its_path_declares_that_scope() -> None:
    by_param = {"{ticket_id}": Scope.TICKET, "{customer_id}": Scope.CUSTOMER, "{team_id}": Scope.TEAM,
                "{reminder_id}": Scope.REMINDER}
    for key, rule in ROUTES.items():
        method, path = key.split(" ", 1)
        if rule.public or rule.scope is Scope.DESK or key in DIRECTORY_READS:
            continue
        named = [scope for param, scope in by_param.items() if param in path]
        if named:
            assert rule.scope is named[0], f"{key} names {named[0]} but declares {rule.scope}"
        elif method != "GET" and rule.permission is not None:
            assert key in BODY_SCOPED_WRITES, f"{key} writes with no object in its path: make it desk-wide or scope it"
