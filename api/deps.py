"""Dependencies shared by the routers: services, the caller, commands and reads.

Routers stay thin: they validate the body, build a command and hand it to
:class:`Commands`; reads go through :class:`Reads`, which waits for
``min_position`` and applies the object-level and masking rules.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from fastapi import Depends, Header, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel

from api.idempotency import IdempotencyStore
from api.metrics import Metrics
from api.middleware import TokenBuckets, caller_scope
from api.problems import ApiProblem
from projections.readside import ReadSide
from projections.sql import Db
from projections.tickets import TicketQueries
from ticketflow.access import MASK, TICKET_TEXT_PURPOSE, Permission, Principal, Scope, refusal, route_rule
from ticketflow.application import CommandResult, TicketDesk
from ticketflow.commands import ChangeCommand, Command, RecordDataAccess
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Role
from ticketflow.errors import CustomerNotFound, NotFound, TeamNotFound, TicketNotFound
from ticketflow.whatif.jobs import WhatifJobs

R = TypeVar("R")
KEY_NAMESPACE = uuid5(NAMESPACE_URL, "https://ticketflow.dev/idempotency-keys")
_ETAG = re.compile(r'^(?:W/)?"?(\d{1,12})"?$')

#: Personal fields of the customer profile (masked unless unmasked with a purpose).
PROFILE_FIELDS = ("name", "email", "phone", "im_handle", "company", "job_title")


@dataclass
class Services:
    settings: Settings
    desk: TicketDesk
    read_side: ReadSide
    idempotency: IdempotencyStore
    metrics: Metrics
    buckets: TokenBuckets
    auth_failures: TokenBuckets  # failed authentications per client address
    whatif: WhatifJobs  # what-if jobs (their store; the worker where the automation runs)
    #: Tickets this process has seen exist (a ticket is never deleted): for a caller who sees every team,
    #: the access check of a ticket's route then needs no read of the ticket.
    known_tickets: KnownIds = field(default_factory=lambda: KnownIds())


class KnownIds:
    """A bounded set of ids (cleared when full: it only saves reads)."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self._ids: set[UUID] = set()

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def add(self, item: UUID) -> None:
        if len(self._ids) >= self.LIMIT:
            self._ids.clear()
        self._ids.add(item)


def services_of(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


async def services(request: Request) -> Services:
    return services_of(request)


ServicesDep = Annotated[Services, Depends(services)]


bearer = HTTPBearer(auto_error=False, description="A token from `ticketflow token create`.")


def authenticate(request: Request, svc: Services) -> Principal:
    """The caller of this request (once per request). Failed attempts are throttled per client
    address: past the burst, that address gets 429 until its bucket refills."""
    # The dict behind request.state (Starlette's State keeps its attributes in the scope's "state"), read
    # directly: getattr(request.state, ...) builds a State and raises and catches an AttributeError for
    # each name not set yet, twice per command.
    state: dict[str, Any] = request.scope.setdefault("state", {})
    known: Principal | None = state.get("principal")
    if known is not None:
        return known
    refused: ApiProblem | None = state.get("auth_refused")
    if refused is not None:
        raise refused  # judged once per request (the middleware may have asked first)
    try:
        return _authenticate(request, svc)
    except ApiProblem as problem:
        state["auth_refused"] = problem
        raise


def _authenticate(request: Request, svc: Services) -> Principal:
    challenge = {"WWW-Authenticate": 'Bearer realm="ticketflow"'}
    address = request.client.host if request.client else ""
    if (wait := svc.auth_failures.wait(address)) > 0:
        retry = str(max(1, math.ceil(wait)))
        raise ApiProblem(429, "too_many_failed_logins",
                         f"too many failed authentications from this address; retry after {retry} s", {"Retry-After": retry})
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    principal = svc.desk.authenticate(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
    if principal is None:
        if scheme or token:
            svc.auth_failures.take(address)  # a missing header is not a guess; a wrong token is
            raise ApiProblem(401, "unauthenticated", "the token is unknown, revoked or malformed", challenge)
        raise ApiProblem(401, "unauthenticated", "send Authorization: Bearer <token>", challenge)
    request.state.principal = principal
    request.scope.setdefault("state", {})["role"] = str(principal.role)
    return principal


async def current_principal(
    request: Request, svc: ServicesDep, _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    return authenticate(request, svc)


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def authorize(request: Request) -> Principal | None:
    """Every route's access rule, from the one table (:data:`ticketflow.access.ROUTES`): the
    permission (else 403), then the object its path names (another team's: 404)."""
    return authorize_now(request)


def authorize_now(request: Request) -> Principal | None:
    """:func:`authorize`'s check, callable from a worker thread (it may read the ticket's team)."""
    svc = services_of(request)
    route = request.scope.get("route")
    path = route.path if route is not None and hasattr(route, "path") else request.url.path  # the URL only if unrouted
    rule = route_rule(request.method, path)
    if rule is None:
        raise ApiProblem(500, "no_access_rule", f"{request.method} {path} has no access rule")
    if rule.public or (rule.open_setting and getattr(svc.settings, rule.open_setting)):
        return None
    principal = authenticate(request, svc)
    if rule.permission is not None and not principal.may(rule.permission):
        raise ApiProblem(403, "forbidden", refusal(principal.role.a, rule.permission))
    check_scope(svc, principal, rule.scope, request.path_params)
    return principal


def _uuid(value: Any) -> UUID | None:
    try:
        return UUID(str(value))
    except ValueError:
        return None  # the route's own validation answers 422


def check_scope(svc: Services, principal: Principal, scope: Scope, params: dict[str, Any]) -> None:
    if scope is Scope.DESK:
        if not principal.all_teams:
            raise ApiProblem(403, "forbidden", f"desk-wide settings are for admins, not a team-scoped {principal.role}")
    elif scope is Scope.TICKET and (ticket_id := _uuid(params.get("ticket_id"))) is not None:
        if principal.all_teams and ticket_id in svc.known_tickets:
            return  # it exists (tickets are never deleted), and its team, whichever, is in scope
        if not principal.sees_team(svc.desk.ticket_team(ticket_id)):
            raise TicketNotFound(ticket_id)
        svc.known_tickets.add(ticket_id)
    elif scope is Scope.CUSTOMER and (customer_id := _uuid(params.get("customer_id"))) is not None:
        if not customer_visible(svc, principal, customer_id):
            raise CustomerNotFound(customer_id)
    elif scope is Scope.TEAM and (team_id := _uuid(params.get("team_id"))) is not None:
        if not principal.sees_team(team_id):
            raise TeamNotFound(team_id)
    elif (scope is Scope.REMINDER and (reminder_id := _uuid(params.get("reminder_id"))) is not None
          and not reminder_visible(svc, principal, reminder_id)):
        raise NotFound("reminder", reminder_id)


def reminder_visible(svc: Services, principal: Principal, reminder_id: UUID) -> bool:
    """A reminder is seen by its agent, whoever scheduled it, its team, and whoever sees its ticket
    (judged by the write side); raises NotFound when there is no such reminder."""
    desk = svc.desk
    reminder = desk.get_reminder(reminder_id)
    if principal.all_teams or principal.name in (reminder.agent_id, desk.history(reminder_id)[0].actor_id):
        return True
    if reminder.team_id is not None and principal.sees_team(reminder.team_id):
        return True
    return reminder.ticket_id is not None and principal.sees_team(desk.ticket_team(reminder.ticket_id))


def customer_visible(svc: Services, principal: Principal, customer_id: UUID) -> bool:
    """Staff see a customer who has a ticket in one of their teams, or whom they registered;
    roles that see every team see every customer."""
    if principal.all_teams:
        return True
    if svc.desk.customer_registrar(customer_id) == principal.name:
        return True
    rows = svc.read_side.read("tickets", lambda db: TicketQueries.teams_of_customer(db, str(customer_id)))
    for ticket_id, team_id in rows:
        if principal.sees_team(team_id) and principal.sees_team(svc.desk.ticket_team(UUID(ticket_id))):
            return True  # judged again by the write side: a lagging view never widens the scope
    return False



def parse_if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    match = _ETAG.match(value.strip())
    if not match or int(match.group(1)) < 1:
        raise ApiProblem(400, "bad_if_match", f"If-Match must be a version ETag such as \"3\", not {value!r}")
    return int(match.group(1))


class Commands:
    """Runs one command for the caller and shapes the response (ETag, position, Location)."""

    def __init__(self, request: Request, svc: Services, principal: Principal, expected_version: int | None,
                 command_id: UUID, correlation_id: str, via: Channel = Channel.API) -> None:
        self.request, self.svc, self.principal = request, svc, principal
        self.expected_version, self.command_id, self.correlation_id = expected_version, command_id, correlation_id
        self.via = via  # what the events record the command came through (the console: Channel.CONSOLE)

    def visible_ticket(self, ticket_id: UUID) -> None:
        """404 unless the ticket exists and is in the caller's team scope."""
        if not self.principal.sees_team(self.svc.desk.ticket_team(ticket_id)):
            raise TicketNotFound(ticket_id)

    def visible_customer(self, customer_id: UUID) -> None:
        """404 unless the customer exists and is in the caller's scope (see :func:`customer_visible`):
        nobody reaches another team's customer by opening a ticket or a reminder about them."""
        if not customer_visible(self.svc, self.principal, customer_id):
            raise CustomerNotFound(customer_id)

    def run(self, command_type: type[Command], **fields: Any) -> CommandResult:
        extra: dict[str, Any] = {"command_id": self.command_id}
        if issubclass(command_type, ChangeCommand):
            extra["expected_version"] = self.expected_version
        command = command_type(**fields, **extra)
        caller = self.principal.caller(self.via, self.correlation_id)  # history (occurred_at) only via /imports
        try:
            result = self.svc.desk.handle(command, caller)
        except Exception:
            self.svc.metrics.command(command_type.__name__, "refused")
            raise
        self.svc.metrics.command(command_type.__name__, "replayed" if result.replayed else "applied")
        return result

    def respond(self, result: CommandResult, status: int = 200, location: str | None = None,
                represent: Callable[[Reads], dict[str, Any]] | None = None) -> JSONResponse:
        """``{id, version, position, events, replayed}``; or, when the client sends ``Prefer:
        return=representation`` (RFC 7240) and the route has one, the object as its GET answers it, read
        from the views once they reached the write (``Preference-Applied`` says so)."""
        headers = {"ETag": f'"{result.version}"', "Vary": "Prefer"}
        if result.position is not None:
            headers["X-Log-Position"] = str(result.position)
        if location:
            headers["Location"] = location
        body: dict[str, Any] = {"id": str(result.object_id), "version": result.version, "position": result.position,
                                "events": list(result.events), "replayed": result.replayed}
        if represent is not None and wants_representation(self.request.headers.get("prefer")):
            purpose = (self.request.headers.get("x-access-purpose") or "").strip()[:200] or None
            body = represent(Reads(self.request, self.svc, self.principal, result.position, purpose, self.via))
            headers["Preference-Applied"] = "return=representation"
        return JSONResponse(body, status_code=status, headers=headers)


def wants_representation(prefer: str | None) -> bool:
    """Whether a ``Prefer`` header (RFC 7240: comma-separated preferences, parameters after ``;``)
    asks for ``return=representation``."""
    for preference in (prefer or "").split(","):
        name, _, value = preference.split(";", 1)[0].strip().partition("=")
        if name.strip().lower() == "return" and value.strip().strip('"').lower() == "representation":
            return True
    return False


async def commands(request: Request) -> Commands:
    """The command runner of a write route, once the route's access rule (:func:`authorize`) let the
    caller through. Its headers (``If-Match``, ``Idempotency-Key``,
    ``X-Correlation-Id``) and the bearer scheme are read here, not declared as parameters: FastAPI
    would solve and validate each on every request (a fifth of a command's request-path CPU);
    api.openapi.document_command_headers documents them on every route that depends on this."""
    return commands_now(request)


def commands_now(request: Request) -> Commands:
    """:func:`commands`' work, callable from a worker thread: api.command_routes runs it in the same
    thread hop as the endpoint."""
    headers = request.headers
    if_match, idempotency_key = headers.get("if-match"), headers.get("idempotency-key")
    x_correlation_id = headers.get("x-correlation-id")
    # Only POSTs are replayed from the key store, so only they take their command id from the key.
    keyed = idempotency_key and request.method == "POST"
    command_id = uuid5(KEY_NAMESPACE, f"{caller_scope(request)}:{idempotency_key}") if keyed else uuid4()
    correlation_id = (x_correlation_id or request.state.request_id)[:100]
    svc = services_of(request)  # the services and the caller without dependencies of their own to solve
    # The route's access rule, checked here rather than by a dependency of its own (api.app serves the
    # routes that depend on this one without one): one dependency fewer for FastAPI to solve per command.
    principal = authorize_now(request) or authenticate(request, svc)
    return Commands(request, svc, principal, parse_if_match(if_match), command_id, correlation_id)


CommandsDep = Annotated[Commands, Depends(commands)]


class Reads:
    """Reads from the views: waits for ``min_position``, scopes by team, masks personal data."""

    def __init__(self, request: Request, svc: Services, principal: Principal, min_position: int | None,
                 purpose: str | None, via: Channel = Channel.API) -> None:
        self.request, self.svc, self.principal = request, svc, principal
        self.min_position, self.purpose = min_position, purpose
        self._waited = False
        self.via = via  # what a recorded personal-data read says it came through

    def read(self, view: str, query: Callable[[Db], R]) -> R:
        if self.min_position and not self._waited:
            end = self.svc.desk.log_position()
            if self.min_position > end:
                raise ApiProblem(422, "position_beyond_log", f"min_position {self.min_position} is beyond the end of the log ({end})")
            if not self.svc.read_side.wait(self.min_position, self.svc.settings.read_wait_seconds):
                raise ApiProblem(
                    503, "view_behind",
                    f"the views did not reach position {self.min_position} within {self.svc.settings.read_wait_seconds:g} s",
                    {"Retry-After": "1"},
                )
            self._waited = True
        return self.svc.read_side.read(view, query)

    @property
    def unmasks(self) -> bool:
        return self.purpose is not None and self.principal.may(Permission.PII_UNMASK)

    def check_purpose(self) -> None:
        if self.purpose is not None and not (self.principal.may(Permission.PII_UNMASK) or self.text_scope):
            raise ApiProblem(403, "forbidden", f"{self.principal.role.a} token may not unmask personal data")

    def record_access(self, customer_id: UUID, fields: list[str], resource: str) -> None:
        purpose = self.purpose or (TICKET_TEXT_PURPOSE if self.text_scope else None)
        assert purpose is not None
        command = RecordDataAccess(
            customer_id=customer_id, fields=fields, purpose=purpose,
            request_id=self.request.state.request_id, resource=resource,
        )
        self.svc.desk.record_data_access(command, self.principal.caller(self.via, self.request.state.request_id))

    def profile(self, row: dict[str, Any], resource: str) -> dict[str, Any]:
        """A customer profile row, masked unless unmasked with a purpose (and then recorded)."""
        self.check_purpose()
        present = [f for f in PROFILE_FIELDS if row.get(f) is not None]
        if self.unmasks:
            if present:
                self.record_access(UUID(row["customer_id"]), present, resource)
            return {**row, "masked": []}
        return {**row, **{f: MASK for f in present}, "masked": present}

    @property
    def works_tickets(self) -> bool:
        return self.principal.may(Permission.TICKETS_WRITE) and self.principal.role is not Role.INTEGRATION

    @property
    def text_scope(self) -> bool:
        """A token granted ``tickets:text`` that does not work tickets (a CRM sync): it reads ticket
        text unmasked, and every such read is recorded (with its stated purpose, or the scope's)."""
        return self.principal.may(Permission.TICKETS_TEXT) and not self.works_tickets

    def free_text(self) -> bool:
        """Whether ticket text (subjects, bodies) is shown: to the desk's working roles, with a purpose,
        or to a token granted ``tickets:text``."""
        return self.works_tickets or self.unmasks or self.text_scope

    def text_shown(self, customer_ids: set[str], fields: list[str], resource: str) -> None:
        """Record the customers whose ticket text was shown because of a stated purpose or the
        ``tickets:text`` scope."""
        if self.works_tickets or not (self.unmasks or self.text_scope):
            return
        for customer_id in sorted(customer_ids):
            self.record_access(UUID(customer_id), fields, resource)

    def visible(self, ticket_ids: list[str]) -> set[str]:
        """The tickets among ``ticket_ids`` in the caller's scope, judged by the write side (a lagging
        or rebuilding view never makes another team's ticket visible)."""
        if self.principal.all_teams:
            return set(ticket_ids)
        shown = set()
        for ticket_id in set(ticket_ids):
            try:
                team = self.svc.desk.ticket_team(UUID(ticket_id))
            except (TicketNotFound, ValueError):
                continue
            if self.principal.sees_team(team):
                shown.add(ticket_id)
        return shown

    def ticket_row(self, ticket_id: str) -> dict[str, Any]:
        row = self.read("tickets", lambda db: TicketQueries.get(db, ticket_id))
        if row is None or not self.principal.sees_team(row["team_id"]):
            raise TicketNotFound(ticket_id)
        return row


async def reads(
    request: Request,
    min_position: Annotated[int | None, Query(ge=0, description="Wait (bounded) until the views reached this log position.")] = None,
    x_min_position: Annotated[int | None, Header(ge=0)] = None,
    x_access_purpose: Annotated[str | None, Header(max_length=200, description="Why personal data must be shown; the read is recorded.")] = None,
) -> Reads:
    """The reader of a read route. The caller comes from the token itself (:func:`authenticate`), not
    from a ``Depends(bearer)`` FastAPI would solve on every request; api.openapi.document_read_security
    documents the bearer scheme on every route that depends on this."""
    purpose = x_access_purpose.strip() if x_access_purpose and x_access_purpose.strip() else None
    svc = services_of(request)
    return Reads(request, svc, authenticate(request, svc), min_position if min_position is not None else x_min_position, purpose)


ReadsDep = Annotated[Reads, Depends(reads)]


def encode(model: type[BaseModel], rows: list[dict[str, Any]]) -> list[Any]:
    return [jsonable_encoder(model.model_validate(r)) for r in rows]

