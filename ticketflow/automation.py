"""Workflow commands of the desk: policies, routing, SLA, reminders, surveys, webhooks.

A mixin of :class:`~ticketflow.application.TicketDesk`, kept apart so the core command
set stays readable. Every automatic decision is an event that cites its policy and
version; the processes that issue these commands (the router, the SLA clock, the
scheduler) live in :mod:`projections.automation`, because they read the views.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID, uuid5

from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from ticketflow import metadata
from ticketflow.webhook_targets import TargetGuard
from ticketflow.commands.workflow import (
    AnswerSurvey, ApplySla, CancelReminder, ChangeWebhook, CompleteReminder, DefineCalendar, DefineSlaPolicy,
    FireReminder, IssueSurvey, PauseWebhook, PublishRoutingRules, RecordResolution, RecordSlaEvent, RetireSlaPolicy,
    RemoveWebhook, ResumeWebhook, RouteTicket, ScheduleReminder, SetAssignmentStrategy, SubscribeWebhook,
)
from ticketflow.domain import (
    ROUTING_POLICY_ID, Customer, Reminder, RoutingPolicy, ServiceCalendar, SlaPolicy, Team, Ticket,
    TicketflowAggregate, Webhook,
)
from ticketflow.domain.policy import calendar_id as calendar_id_for
from ticketflow.domain.policy import sla_policy_id
from ticketflow.domain.values import Consent, Priority, Role, Status
from ticketflow.errors import NotFound, PermissionDenied, RuleViolation, TeamNotFound, TicketNotFound, ValidationFailed
from ticketflow.metadata import Caller
from ticketflow.routing.assignment import Strategy, choose
from ticketflow.routing.rules import Rule, TicketFacts, decide
from ticketflow.sla.calendar import BusinessCalendar
from ticketflow.sla.policy import conditions_match

if TYPE_CHECKING:
    from ticketflow.application import CommandResult, TicketDesk

    _Base = TicketDesk
else:
    _Base = object

A = TypeVar("A", bound=TicketflowAggregate)

#: Desk-wide policy (routing rules, SLA policies, calendars): admins only (see ticketflow.access).
POLICY_ROLES = (Role.ADMIN, Role.SYSTEM)
#: A team's own settings (its assignment strategy): its supervisors, and admins.
TEAM_SETTING_ROLES = (Role.ADMIN, Role.SUPERVISOR, Role.SYSTEM)
SURVEY_PREFIX = "sv_"
_ESCALATION_ORDER = [Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.URGENT]


def survey_id_for(ticket_id: UUID) -> UUID:
    """A ticket has at most one survey; its id derives from the ticket's."""
    return uuid5(UUID(int=0), f"survey:{ticket_id}")


def _require(caller: Caller, roles: tuple[Role, ...], what: str) -> None:
    if caller.role not in roles:
        raise PermissionDenied(f"{caller.role.a} may not {what}")


class AutomationCommands(_Base):
    """The workflow half of the desk's commands (see the module docstring)."""

    # ------------------------------------------------------------ policies
    def publish_routing_rules(self, cmd: PublishRoutingRules, caller: Caller) -> CommandResult:
        _require(caller, POLICY_ROLES, "change the routing rules")
        for team_id in {cmd.default_team_id, *(r.team_id for r in cmd.rules)}:
            self._require_exists(Team, team_id)
        rules = [r.as_rule() for r in cmd.rules]
        return self._define(
            RoutingPolicy, ROUTING_POLICY_ID, cmd, caller,
            lambda i: RoutingPolicy._create(
                RoutingPolicy.Adopted, id=i, rules=rules, default_team_id=cmd.default_team_id, note=cmd.note
            ),
            lambda p: p.revise(rules, cmd.default_team_id, cmd.note),
        )

    def define_calendar(self, cmd: DefineCalendar, caller: Caller) -> CommandResult:
        _require(caller, POLICY_ROLES, "change business calendars")
        fields = calendar_fields(cmd)
        return self._define(
            ServiceCalendar, calendar_id_for(cmd.name), cmd, caller,
            lambda i: ServiceCalendar._create(ServiceCalendar.Defined, id=i, **fields),
            lambda c: c.revise(**fields),
        )

    def define_sla_policy(self, cmd: DefineSlaPolicy, caller: Caller) -> CommandResult:
        _require(caller, POLICY_ROLES, "change SLA policies")
        if cmd.calendar_id is not None:
            self._peek(ServiceCalendar, cmd.calendar_id)
        if cmd.escalation.team_id is not None:
            self._require_exists(Team, cmd.escalation.team_id)
        fields = sla_policy_fields(cmd)
        return self._define(
            SlaPolicy, sla_policy_id(cmd.name), cmd, caller,
            lambda i: SlaPolicy._create(SlaPolicy.Defined, id=i, **fields),
            lambda p: p.revise(**fields),
        )

    def retire_sla_policy(self, cmd: RetireSlaPolicy, caller: Caller) -> CommandResult:
        _require(caller, POLICY_ROLES, "retire SLA policies")
        return self._change(SlaPolicy, cmd.policy_id, cmd, caller, lambda p: p.retire(cmd.reason))

    def set_assignment_strategy(self, cmd: SetAssignmentStrategy, caller: Caller) -> CommandResult:
        _require(caller, TEAM_SETTING_ROLES, "change a team's assignment strategy")
        if not caller.sees_team(cmd.team_id):
            raise TeamNotFound(cmd.team_id)
        return self._change(Team, cmd.team_id, cmd, caller, lambda t: t.choose_strategy(cmd.strategy))

    def routing_policy(self, version: int | None = None) -> RoutingPolicy | None:
        try:
            return self._load(RoutingPolicy, ROUTING_POLICY_ID, version)
        except NotFound:
            return None

    def get_sla_policy(self, policy_id: UUID, version: int | None = None) -> SlaPolicy:
        return self._load(SlaPolicy, policy_id, version)

    def get_calendar(self, calendar_id: UUID, version: int | None = None) -> ServiceCalendar:
        return self._load(ServiceCalendar, calendar_id, version)

    def sla_policies(self) -> list[SlaPolicy]:
        """Every SLA policy (retired ones too), in matching order."""
        snapshot = self._sla_snapshot()
        if snapshot is not None:
            return list(snapshot.policies)
        return self._read_sla_policies()

    def _read_sla_policies(self) -> list[SlaPolicy]:
        policies = [self._peek(SlaPolicy, i) for i in self._ids_of(SlaPolicy)]
        return sorted(policies, key=lambda p: (p.position, p.name))

    def _sla_snapshot(self) -> _SlaSnapshot | None:
        """The SLA policies and calendars as the log holds them now, read again only when one of them
        changed: the SLA clock asks for them for every ticket it measures, and they rarely change.

        A change is found by its event's topic among the events recorded since the last look (one
        indexed query over the new events). None while the current batch holds an unsaved policy
        or calendar: then they are read afresh, as the batch's commands left them."""
        # The desk's batch (imported here: ticketflow.application imports this module).
        from ticketflow.application import _BATCH

        batch = _BATCH.get()
        if batch is not None and any(issubclass(kind, SlaPolicy | ServiceCalendar) for kind in batch.kinds):
            return None
        pinned = _PINNED_SNAPSHOT.get()
        if pinned is not None:
            return pinned
        lock: threading.Lock = self.__dict__.setdefault("_sla_snapshot_lock", threading.Lock())
        with lock:
            snapshot: _SlaSnapshot | None = self.__dict__.get("_sla_snapshot_cache")
            top = self.log_position()
            if snapshot is not None and top > snapshot.position:
                changed = self.recorder.select_notifications(snapshot.position + 1, 1, stop=top, topics=_SLA_TOPICS)
                snapshot = None if changed else _SlaSnapshot(top, snapshot.policies, snapshot.calendars)
            if snapshot is None:  # read after noting the position: a change after it is seen next time
                snapshot = _SlaSnapshot(top, tuple(self._read_sla_policies()), {})
            self.__dict__["_sla_snapshot_cache"] = snapshot
            return snapshot

    @contextmanager
    def pinned_sla_snapshot(self) -> Iterator[None]:
        """Read the SLA policies and calendars once for a run of looks (the SLA clock's pass over the
        tickets due): inside, every look of this thread takes them as they were at the start instead of
        asking the log, ticket after ticket, whether one changed (two queries a ticket). A change made
        meanwhile is seen by the next run, as if this run had happened a moment earlier."""
        token = _PINNED_SNAPSHOT.set(self._sla_snapshot())
        try:
            yield
        finally:
            _PINNED_SNAPSHOT.reset(token)

    def calendars(self) -> list[ServiceCalendar]:
        return sorted((self._peek(ServiceCalendar, i) for i in self._ids_of(ServiceCalendar)), key=lambda c: c.name)

    def webhooks(self) -> list[Webhook]:
        """Every subscription, paused ones too; removed ones are gone."""
        hooks = (self._peek(Webhook, i) for i in self._ids_of(Webhook))
        return sorted((w for w in hooks if not getattr(w, "removed", False)), key=lambda w: w.name)

    def webhook_removed(self, webhook_id: UUID) -> bool:
        """Whether the subscription was removed, read from the log (the sender asks before each POST)."""
        return bool(getattr(self._peek(Webhook, webhook_id), "removed", False))

    def webhook_scopes(self, webhook_id: UUID) -> list[str]:
        """What the subscription was granted (``tickets:text``), read from the log."""
        return list(getattr(self._peek(Webhook, webhook_id), "scopes", []))

    # ------------------------------------------------------------- routing
    def route_ticket(
        self,
        cmd: RouteTicket,
        caller: Caller,
        open_tickets: Mapping[str, int] | None = None,
        last_assigned: Mapping[UUID, str] | None = None,
    ) -> CommandResult:
        """Place a ticket: the rules choose the team (unless it came with one), the team's
        strategy the agent. ``open_tickets`` (per agent) and ``last_assigned`` (per team)
        come from the tickets view, read by the router."""
        _require(caller, (Role.SYSTEM, Role.ADMIN), "run the router")

        def act(ticket: Ticket) -> None:
            policy = self._peek_or_none(RoutingPolicy, ROUTING_POLICY_ID)
            if policy is None:  # a desk without routing rules dispatches by hand
                raise RuleViolation("there is no routing policy yet: publish routing rules first")
            if ticket.created_at < policy.created_at:
                raise RuleViolation(f"ticket {ticket.id} was opened before the routing rules were adopted")
            customer = self._peek(Customer, ticket.requester_id)
            team_id = ticket.team_id if ticket.team_id is not None else placement_team(
                policy, ticket, customer.tier, customer.preferred_language)[0]
            route_by_policy(
                ticket, policy, self._peek(Team, team_id), customer.tier, customer.preferred_language,
                last_assigned=(last_assigned or {}).get(team_id),
                open_tickets=open_tickets if open_tickets is not None else {},  # the router's is lazy: empty until asked
                opens_new=self.settings.assign_opens_new,
            )

        return self._change(Ticket, cmd.ticket_id, cmd, caller, act)

    # ----------------------------------------------------------------- SLA
    def apply_sla(self, cmd: ApplySla, caller: Caller) -> CommandResult:
        """Measure the ticket with the first active SLA policy matching it now."""
        _require(caller, (Role.SYSTEM, Role.ADMIN), "apply SLA policies")

        def act(ticket: Ticket) -> None:
            policy = self.matching_sla_policy(ticket)
            if policy is None:
                raise RuleViolation(f"no SLA policy matches ticket {ticket.id}")
            ticket.apply_sla(self.sla_terms(policy))

        return self._change(Ticket, cmd.ticket_id, cmd, caller, act)

    def matching_sla_policy(self, ticket: Ticket) -> SlaPolicy | None:
        return first_matching_sla_policy(self.sla_policies(), ticket, self._peek(Customer, ticket.requester_id).tier)

    def matching_sla_terms(self, ticket: Ticket) -> dict[str, Any] | None:
        """The terms :meth:`apply_sla` would apply to the ticket now (None: no policy matches it), from
        one look at the policies (the SLA clock asks this for every changed ticket)."""
        snapshot = self._sla_snapshot()
        if snapshot is None:
            policy = self.matching_sla_policy(ticket)
            return self.sla_terms(policy) if policy is not None else None
        if not snapshot.policies:
            return None  # nothing to match: the customer (their tier) need not be loaded
        policy = first_matching_sla_policy(snapshot.policies, ticket, self._peek(Customer, ticket.requester_id).tier)
        if policy is None:
            return None
        return sla_terms_of(policy, self._snapshot_calendar(snapshot, policy.calendar_id))

    def peek_ticket(self, ticket_id: UUID) -> Ticket:
        """A ticket for a read-only look (the SLA clock's): the cached aggregate, not a copy. Never mutate it."""
        return self._peek(Ticket, ticket_id)

    def ticket_events_after(
        self, ticket_id: UUID, version: int, current: int
    ) -> tuple[list[Ticket.Event], list[Ticket.Event]]:
        """A ticket's events after ``version``, as :meth:`history` would give them: those stored, and those
        the current batch holds, not saved yet. ``current`` is the ticket's version as the caller loaded
        it: when nothing stored is newer than ``version``, the store is not asked."""
        from ticketflow.application import _BATCH  # (ticketflow.application imports this module)

        batch = _BATCH.get()
        pending: list[Ticket.Event] = []
        if batch is not None and ticket_id in batch.aggregates:
            pending = [e for e in batch.events_of(ticket_id) if e.originator_version > version]
        newest_stored = pending[0].originator_version - 1 if pending else current
        if newest_stored <= version:
            return [], pending
        stored: list[Ticket.Event] = list(self.events.get(ticket_id, gt=version))
        return stored, pending

    @staticmethod
    def sla_terms_key(terms: Mapping[str, Any]) -> tuple[Any, ...]:
        """What identifies the terms a ticket is measured by: the policy and calendar versions."""
        return (terms["policy_id"], terms["policy_version"], terms["calendar_id"], terms["calendar_version"])

    def sla_terms(self, policy: SlaPolicy) -> dict[str, Any]:
        if policy.calendar_id is None:
            return sla_terms_of(policy, None)
        snapshot = self._sla_snapshot()
        if snapshot is None:
            return sla_terms_of(policy, self._peek(ServiceCalendar, policy.calendar_id))
        return sla_terms_of(policy, self._snapshot_calendar(snapshot, policy.calendar_id))

    def _snapshot_calendar(self, snapshot: _SlaSnapshot, calendar_id: UUID | None) -> ServiceCalendar | None:
        if calendar_id is None:
            return None
        calendar = snapshot.calendars.get(calendar_id)
        if calendar is None:
            calendar = snapshot.calendars[calendar_id] = self._peek(ServiceCalendar, calendar_id)
        return calendar

    def record_sla_event(self, cmd: RecordSlaEvent, caller: Caller) -> CommandResult:
        """An SLA warning, breach or fulfilment, once per metric run; a breach escalates."""
        _require(caller, (Role.SYSTEM, Role.ADMIN), "record SLA events")

        def act(ticket: Ticket) -> None:
            ticket.record_sla(cmd.kind, cmd.metric, cmd.cycle, cmd.moment, cmd.elapsed_minutes)
            if cmd.kind == "breached":
                escalate_breach(ticket, cmd.metric)

        return self._change(Ticket, cmd.ticket_id, cmd, caller, act)

    # ----------------------------------------------------------- reminders
    def schedule_reminder(self, cmd: ScheduleReminder, caller: Caller) -> CommandResult:
        self._staff_only(caller, "schedule a reminder")
        customer_id = cmd.customer_id
        if cmd.team_id is not None and not caller.sees_team(cmd.team_id):
            raise TeamNotFound(cmd.team_id)
        if cmd.agent_id is not None and cmd.agent_id != caller.actor_id and caller.team_ids is not None:
            # Into another person's queue: only someone who works in one of their teams.
            if not set(self.membership.teams_of(cmd.agent_id)) & set(caller.team_ids):
                raise PermissionDenied(f"{cmd.agent_id} is not in any of your teams: you may not fill their queue")
        if cmd.ticket_id is not None:
            ticket = self._peek(Ticket, cmd.ticket_id)
            if not caller.sees_team(ticket.team_id):
                raise TicketNotFound(cmd.ticket_id)
            if customer_id is not None and customer_id != ticket.requester_id:
                raise RuleViolation(f"customer {customer_id} is not the requester of ticket {ticket.id}")
            customer_id = ticket.requester_id
        elif customer_id is not None:
            self._require_exists(Customer, customer_id)
        if cmd.team_id is not None:
            team = self._peek(Team, cmd.team_id)
            if cmd.agent_id is not None and cmd.agent_id not in team.members:
                raise RuleViolation(f"{cmd.agent_id} is not a member of team {team.name!r}")
        return self._create(
            Reminder, cmd, caller,
            lambda i: Reminder._create(
                Reminder.Scheduled, id=i, kind=cmd.kind, ticket_id=cmd.ticket_id, customer_id=customer_id,
                agent_id=cmd.agent_id, team_id=cmd.team_id, due_at=cmd.due_at, note=cmd.note,
            ),
        )

    def fire_reminder(self, cmd: FireReminder, caller: Caller) -> CommandResult:
        _require(caller, (Role.SYSTEM, Role.ADMIN), "fire reminders")

        def act(reminder: Reminder) -> None:
            if reminder.due_at > self.clock.now():
                raise RuleViolation(f"reminder {reminder.id} is due at {reminder.due_at.isoformat()}, not yet")
            reminder.fire()

        return self._change(Reminder, cmd.reminder_id, cmd, caller, act)

    def complete_reminder(self, cmd: CompleteReminder, caller: Caller) -> CommandResult:
        self._staff_only(caller, "complete a reminder")
        return self._change(Reminder, cmd.reminder_id, cmd, caller, lambda r: r.complete(cmd.outcome))

    def cancel_reminder(self, cmd: CancelReminder, caller: Caller) -> CommandResult:
        self._staff_only(caller, "cancel a reminder")
        return self._change(Reminder, cmd.reminder_id, cmd, caller, lambda r: r.cancel(cmd.reason))

    def get_reminder(self, reminder_id: UUID) -> Reminder:
        return self._load(Reminder, reminder_id)

    # ------------------------------------------------------------- surveys
    def issue_survey(self, cmd: IssueSurvey, caller: Caller) -> tuple[CommandResult, str | None]:
        """Send a survey for a solved ticket; returns the token (None when the customer has not
        consented to surveys, or when this was a retry). The token itself is never stored."""
        _require(caller, (Role.SYSTEM, Role.ADMIN, Role.SUPERVISOR, Role.AGENT), "send surveys")
        survey_id = survey_id_for(cmd.ticket_id)

        def act(ticket: Ticket) -> None:
            if not self.consents_to_surveys(ticket.requester_id):
                raise RuleViolation(f"customer {ticket.requester_id} has not consented to surveys")
            ticket.issue_survey(survey_id, self.clock.now() + timedelta(days=self.settings.survey_days))

        result = self._change(Ticket, cmd.ticket_id, cmd, caller, act)
        return result, self.survey_token(cmd.ticket_id, survey_id)

    def consents_to_surveys(self, customer_id: UUID) -> bool:
        """Whether the customer consented to surveys (:meth:`issue_survey` refuses otherwise): the scheduler
        asks first, so a solved ticket of a customer who did not consent costs a cached read, not a refused
        command (a load of the ticket, the refusal, and a reload from the store to decide again)."""
        return str(Consent.SURVEYS) in self._peek(Customer, customer_id).consents

    def survey_token(self, ticket_id: UUID, survey_id: UUID) -> str:
        mac = hmac.new(self.settings.secret_key_bytes(), f"survey:{ticket_id}:{survey_id}".encode(), hashlib.sha256)
        return f"{SURVEY_PREFIX}{ticket_id.hex}{survey_id.hex}_{mac.hexdigest()[:32]}"

    def answer_survey(self, cmd: AnswerSurvey, caller: Caller) -> CommandResult:
        """Record the answer to a survey, authenticated by its token alone."""
        ticket_id, survey_id = self._read_survey_token(cmd.token)

        def act(ticket: Ticket) -> None:
            ticket.answer_survey(survey_id, cmd.score, cmd.comment, self.clock.now())

        requester = str(self._peek(Ticket, ticket_id).requester_id)
        as_customer = Caller(requester, Role.CUSTOMER, caller.via, caller.correlation_id)
        return self._change(Ticket, ticket_id, cmd, as_customer, act)

    def _read_survey_token(self, token: str) -> tuple[UUID, UUID]:
        body, _, _mac = token.removeprefix(SURVEY_PREFIX).partition("_")
        try:
            ticket_id, survey_id = UUID(hex=body[:32]), UUID(hex=body[32:])
        except ValueError:
            raise ValidationFailed("this survey link is not valid") from None
        expected = self.survey_token(ticket_id, survey_id).encode()
        if not token.startswith(SURVEY_PREFIX) or not hmac.compare_digest(token.encode(), expected):
            raise ValidationFailed("this survey link is not valid")
        return ticket_id, survey_id

    # ------------------------------------------------------ problem library
    def record_resolution(self, cmd: RecordResolution, caller: Caller) -> CommandResult:
        self._staff_only(caller, "record a resolution")
        return self._change(Ticket, cmd.ticket_id, cmd, caller, lambda t: t.record_resolution(cmd.summary))

    # ------------------------------------------------------------ webhooks
    def subscribe_webhook(self, cmd: SubscribeWebhook, caller: Caller) -> tuple[CommandResult, str]:
        """Subscribe; returns the signing secret (derived, never stored: ask again with the same key)."""
        _require(caller, (Role.ADMIN, Role.SYSTEM), "manage webhooks")
        self.webhook_targets.check_url(cmd.url)
        result = self._create(
            Webhook, cmd, caller,
            lambda i: Webhook._create(Webhook.Subscribed, id=i, name=cmd.name, url=cmd.url, event_types=list(cmd.event_types),
                                      scopes=list(cmd.scopes)),
        )
        return result, self.webhook_secret(result.object_id)

    @property
    def webhook_targets(self) -> TargetGuard:
        """Where webhooks may post (``TICKETFLOW_WEBHOOK_ALLOWED_TARGETS``)."""
        return TargetGuard.from_setting(self.settings.webhook_allowed_targets)

    def webhook_secret(self, webhook_id: UUID) -> str:
        return hmac.new(self.settings.secret_key_bytes(), f"webhook:{webhook_id}".encode(), hashlib.sha256).hexdigest()

    def change_webhook(self, cmd: ChangeWebhook, caller: Caller) -> CommandResult:
        _require(caller, (Role.ADMIN, Role.SYSTEM), "manage webhooks")
        self.webhook_targets.check_url(cmd.url)
        return self._change(Webhook, cmd.webhook_id, cmd, caller, lambda w: w.change(cmd.url, list(cmd.event_types)))

    def pause_webhook(self, cmd: PauseWebhook, caller: Caller) -> CommandResult:
        _require(caller, (Role.ADMIN, Role.SYSTEM), "manage webhooks")
        return self._change(Webhook, cmd.webhook_id, cmd, caller, lambda w: w.pause(cmd.reason))

    def resume_webhook(self, cmd: ResumeWebhook, caller: Caller) -> CommandResult:
        _require(caller, (Role.ADMIN, Role.SYSTEM), "manage webhooks")
        return self._change(Webhook, cmd.webhook_id, cmd, caller, lambda w: w.resume())

    def remove_webhook(self, cmd: RemoveWebhook, caller: Caller) -> CommandResult:
        """Once this returns, the sender posts nothing more to the subscription (it asks the log first)."""
        _require(caller, (Role.ADMIN, Role.SYSTEM), "manage webhooks")
        return self._change(Webhook, cmd.webhook_id, cmd, caller, lambda w: w.remove(cmd.reason))

    # ------------------------------------------------------------ plumbing
    def _define(
        self,
        cls: type[A],
        object_id: UUID,
        cmd: Any,
        caller: Caller,
        create: Callable[[UUID], A],
        revise: Callable[[A], None],
    ) -> CommandResult:
        """Create a named object, or revise it when it exists (a new version)."""
        for _ in range(3):
            try:
                return self._change(cls, object_id, cmd, caller, revise)
            except NotFound:
                if cmd.expected_version is not None:
                    raise
            with metadata.recording(self._context(cmd, caller)):
                aggregate = create(object_id)
                try:
                    return self._save(aggregate, ())
                except IntegrityError:
                    continue  # created at the same moment by someone else: revise theirs
        raise RuleViolation(f"{cls.__name__} {object_id} is being changed by others; try again")

    def _peek_or_none(self, cls: type[A], object_id: UUID) -> A | None:
        try:
            return self._peek(cls, object_id)
        except NotFound:
            return None

    def _ids_of(self, cls: type[TicketflowAggregate]) -> list[UUID]:
        """Ids of every object of a (rarely created) kind, found by its creation events in the log."""
        index: dict[str, Any] = self.__dict__.setdefault("_kind_index", {})
        entry = index.setdefault(cls.__name__, {"position": 0, "ids": []})
        created = [f"{c.__module__}:{c.__qualname__}" for c in _created_events(cls)]
        top = self.recorder.max_notification_id() or 0
        while entry["position"] < top:
            page = self.recorder.select_notifications(entry["position"] + 1, 500, stop=top, topics=created)
            for notification in page:
                if notification.originator_id not in entry["ids"]:
                    entry["ids"].append(notification.originator_id)
            entry["position"] = page[-1].id if len(page) == 500 else top
        return list(entry["ids"])


@dataclass(frozen=True)
class _SlaSnapshot:
    """The SLA policies (in matching order) and the calendars read, as of a log position."""

    position: int
    policies: tuple[SlaPolicy, ...]
    calendars: dict[UUID, ServiceCalendar]


#: The snapshot pinned by :meth:`AutomationCommands.pinned_sla_snapshot` in this context (thread), if any.
_PINNED_SNAPSHOT: ContextVar[_SlaSnapshot | None] = ContextVar("ticketflow_pinned_sla_snapshot", default=None)


def _event_topics(*classes: type[TicketflowAggregate]) -> list[str]:
    return [
        get_topic(v) for cls in classes for v in (getattr(cls, name) for name in dir(cls))
        if isinstance(v, type) and issubclass(v, TicketflowAggregate.Event)
    ]


#: Every event that changes an SLA policy or a calendar.
_SLA_TOPICS = _event_topics(SlaPolicy, ServiceCalendar)


def _created_events(cls: type[TicketflowAggregate]) -> list[type[TicketflowAggregate.Event]]:
    return [
        v for v in vars(cls).values()
        if isinstance(v, type) and issubclass(v, TicketflowAggregate.Created)
    ]


def calendar_from_spec(spec: Mapping[str, Any] | None) -> BusinessCalendar:
    """The calendar an SLA decision recorded (None: around the clock)."""
    from datetime import date, time

    if spec is None:
        return BusinessCalendar.always_open()

    def parse(value: str) -> time:
        return time.max if value == "24:00" else time.fromisoformat(value)

    try:
        return BusinessCalendar(
            timezone=spec["timezone"],
            weekly={int(d): tuple((parse(a), parse(b)) for a, b in iv) for d, iv in spec["weekly"].items()},
            holidays=frozenset(date.fromisoformat(d) for d in spec["holidays"]),
            workdays={date.fromisoformat(d): int(w) for d, w in spec["workdays"].items()},
        )
    except ValueError as exc:
        raise ValidationFailed(f"calendar is not valid: {exc}") from None


# ------------------------------------------------------------------ decisions
# Pure functions of the aggregates they are given: the desk calls them on what it loaded,
# the what-if replay (ticketflow.whatif) on what it rebuilt in memory, so both decide alike.


def placement_team(
    policy: RoutingPolicy, ticket: Ticket, tier: str | None, language: str | None
) -> tuple[UUID, str | None, int | None, str | None, list[str]]:
    """The team the rules choose for a ticket: (team, rule, policy version, priority to set, tags to add)."""
    facts = TicketFacts(
        ticket_type=str(ticket.ticket_type), category=ticket.category, channel=ticket.channel,
        priority=str(ticket.priority), text=f"{ticket.subject}\n{ticket.description}", tier=tier, language=language,
    )
    decision = decide([Rule.from_dict(r) for r in policy.rules], policy.default_team_id, facts)
    return decision.team_id, decision.rule or None, policy.version, decision.set_priority, list(decision.add_tags)


def route_by_policy(
    ticket: Ticket,
    policy: RoutingPolicy,
    team: Team,
    tier: str | None,
    language: str,
    *,
    last_assigned: str | None,
    open_tickets: Mapping[str, int],
    opens_new: bool = True,
) -> None:
    """Place a ticket: the rules choose the team (unless it came with one), the team's strategy the agent."""
    rule_name: str | None = None
    policy_version: int | None = None
    set_priority: str | None = None
    tags: list[str] = []
    if ticket.team_id is None:
        _, rule_name, policy_version, set_priority, tags = placement_team(policy, ticket, tier, language)
    assignee = choose(
        Strategy(team.strategy), team.members, last_assigned=last_assigned, open_tickets=open_tickets,
        wanted_skills={ticket.category, language, language.split("-")[0]},
    )
    ticket.route(
        team.id, assignee, rule_name, ROUTING_POLICY_ID if policy_version else None, policy_version,
        team.strategy if assignee else None, set_priority, tags, opens_new=opens_new,
    )


def sla_facts(ticket: Ticket, tier: str | None) -> dict[str, str | None]:
    return {
        "ticket_types": str(ticket.ticket_type), "categories": ticket.category, "channels": ticket.channel,
        "priorities": str(ticket.priority), "tiers": tier,
    }


def first_matching_sla_policy(policies: Iterable[SlaPolicy], ticket: Ticket, tier: str | None) -> SlaPolicy | None:
    """The first active policy (in matching order) whose conditions hold for the ticket now."""
    facts = sla_facts(ticket, tier)
    for policy in sorted(policies, key=lambda p: (p.position, p.name)):
        if not policy.retired and conditions_match(policy.conditions, facts):
            return policy
    return None


def sla_terms_of(policy: SlaPolicy, calendar: ServiceCalendar | None) -> dict[str, Any]:
    """What an SLA decision records: the policy version, its targets and its calendar."""
    return {
        "policy_id": policy.id, "policy_version": policy.version, "policy_name": policy.name,
        "targets": policy.targets, "calendar": calendar.spec() if calendar else None,
        "calendar_id": calendar.id if calendar else None,
        "calendar_version": calendar.version if calendar else None,
        "warn_at_percent": policy.warn_at_percent, "escalation": policy.escalation,
    }


def escalate_breach(ticket: Ticket, metric: str) -> None:
    """What a breach does by its policy: raise the priority a step, move the ticket to a team."""
    if ticket.status == Status.CLOSED:
        return
    assert ticket.sla is not None
    escalation = ticket.sla["escalation"]
    why = f"SLA breach: {metric} ({ticket.sla['policy_name']} v{ticket.sla['policy_version']})"
    if escalation.get("raise_priority") and ticket.priority != Priority.URGENT:
        higher = _ESCALATION_ORDER[_ESCALATION_ORDER.index(Priority(ticket.priority)) + 1]
        ticket.change_priority(higher, why)
    team_id = escalation.get("team_id")
    if team_id and UUID(str(team_id)) != ticket.team_id:
        ticket.transfer(UUID(str(team_id)), why)


def sla_policy_fields(cmd: DefineSlaPolicy) -> dict[str, Any]:
    """An SLA policy definition as its events store it."""
    return {
        "name": cmd.name,
        "position": cmd.position,
        "conditions": cmd.conditions.as_dict(),
        "targets": {
            str(p): {m: t.model_dump() for m, t in sorted(ts.items())} for p, ts in sorted(cmd.targets.items())
        },
        "calendar_id": cmd.calendar_id,
        "warn_at_percent": cmd.warn_at_percent,
        "escalation": {
            "raise_priority": cmd.escalation.raise_priority,
            "team_id": str(cmd.escalation.team_id) if cmd.escalation.team_id else None,
        },
    }


def calendar_fields(cmd: DefineCalendar) -> dict[str, Any]:
    """A calendar definition as its events store it (checked: a calendar that cannot run is refused)."""
    weekly = {day: [list(i) for i in intervals] for day, intervals in sorted(cmd.weekly.items())}
    holidays = sorted(set(cmd.holidays))
    workdays = dict(sorted(cmd.workdays.items()))
    calendar_from_spec({"timezone": cmd.timezone, "weekly": weekly, "holidays": holidays, "workdays": workdays})
    return {"name": cmd.name, "timezone": cmd.timezone, "weekly": weekly, "holidays": holidays, "workdays": workdays}
