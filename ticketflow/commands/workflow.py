"""Commands of the workflow automation: policies, routing, SLA, reminders, surveys, webhooks."""

from __future__ import annotations

import re
from datetime import time
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from ticketflow.commands.base import Body, ChangeCommand, Command, Language, Line, Name, OptionalBody, ShortText, Tag
from ticketflow.commands.ticket import TicketCommand
from ticketflow.domain.values import Channel, CustomerTier, Priority, TicketType

Metric = Literal["first_reply_time", "next_reply_time", "resolution_time"]
Strategy = Literal["round_robin", "least_loaded", "skills"]
Keyword = str


class Conditions(BaseModel):
    """Filters shared by routing rules and SLA policies; an empty list matches anything."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ticket_types: list[TicketType] = Field(default_factory=list)
    categories: list[Name] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=list)
    priorities: list[Priority] = Field(default_factory=list)
    tiers: list[CustomerTier] = Field(default_factory=list)

    def as_dict(self) -> dict[str, list[str]]:
        names = ("ticket_types", "categories", "channels", "priorities", "tiers")
        return {k: sorted(str(v) for v in getattr(self, k)) for k in names if getattr(self, k)}


class RoutingRuleSpec(Conditions):
    """One routing rule: conditions (all must hold) -> team, optionally priority and tags."""

    name: Line
    team_id: UUID
    languages: list[Language] = Field(default_factory=list, max_length=50, description='"zh" matches "zh-CN"')
    keywords: list[Line] = Field(default_factory=list, description="any of these in the subject or description")
    set_priority: Priority | None = None
    add_tags: list[Tag] = Field(default_factory=list)

    def as_rule(self) -> dict[str, object]:
        return {
            "name": self.name, "team_id": str(self.team_id), **super().as_dict(),
            "languages": sorted(self.languages), "keywords": list(self.keywords),
            "set_priority": str(self.set_priority) if self.set_priority else None,
            "add_tags": sorted(set(self.add_tags)),
        }


class PublishRoutingRules(Command):
    """Adopt or revise the desk's routing rulebook (ordered, first match wins)."""

    rules: list[RoutingRuleSpec] = Field(default_factory=list, max_length=500)
    default_team_id: UUID
    note: ShortText = ""
    expected_version: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _unique_names(self) -> PublishRoutingRules:
        names = [r.name for r in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"routing rule names must be unique: {', '.join(duplicates)}")
        return self


class SetAssignmentStrategy(ChangeCommand):
    team_id: UUID
    strategy: Strategy


class RouteTicket(TicketCommand):
    """Place a ticket by the routing rules and its team's strategy (the router issues it)."""


_HHMM = re.compile(r"^\d{2}:\d{2}$")


class DefineCalendar(Command):
    """Define or revise a business-hours calendar (by name)."""

    name: Line
    timezone: str = Field(min_length=1, max_length=64, examples=["Asia/Shanghai"])
    weekly: dict[Literal["0", "1", "2", "3", "4", "5", "6"], list[tuple[str, str]]] = Field(
        description='weekday ("0" Monday .. "6" Sunday) -> opening intervals [["09:00", "18:00"]]',
        examples=[{"0": [["09:00", "12:00"], ["13:00", "18:00"]]}],
    )
    holidays: list[str] = Field(default_factory=list, description="ISO dates the desk is closed", max_length=2000)
    workdays: dict[str, int] = Field(
        default_factory=dict, description="make-up working days (调休): ISO date -> weekday whose hours apply"
    )
    expected_version: int | None = Field(default=None, ge=1)

    @field_validator("weekly")
    @classmethod
    def _times(cls, weekly: dict[str, list[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
        for day, intervals in weekly.items():
            for start, end in intervals:
                for value in (start, end):
                    if not _HHMM.match(value) or not _valid_time(value):
                        raise ValueError(f"weekday {day}: {value!r} is not a time HH:MM")
        return weekly


def _valid_time(value: str) -> bool:
    if value == "24:00":
        return True
    try:
        time.fromisoformat(value)
    except ValueError:
        return False
    return True


class Target(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    minutes: int = Field(ge=1, le=366 * 24 * 60)
    business_hours: bool = True


class Escalation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    raise_priority: bool = False
    team_id: UUID | None = Field(default=None, description="move breached tickets to this (supervisor) team")


class DefineSlaPolicy(Command):
    """Define or revise an SLA policy (by name)."""

    name: Line
    position: int = Field(ge=0, le=10_000, description="policies are tried in position order, first match wins")
    conditions: Conditions = Field(default_factory=Conditions)
    targets: dict[Priority, dict[Metric, Target]]
    calendar_id: UUID | None = Field(default=None, description="business hours; none means calendar hours only")
    warn_at_percent: int = Field(default=80, ge=1, le=99)
    escalation: Escalation = Field(default_factory=Escalation)
    expected_version: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _has_targets(self) -> DefineSlaPolicy:
        if not any(self.targets.values()):
            raise ValueError("an SLA policy needs at least one target")
        return self


class RetireSlaPolicy(ChangeCommand):
    policy_id: UUID
    reason: Line


class ApplySla(TicketCommand):
    """Measure a ticket with the SLA policy that matches it now (the SLA clock issues it)."""


class RecordSlaEvent(TicketCommand):
    """Record an SLA warning, breach or fulfilment (the SLA clock issues it)."""

    kind: Literal["warning", "breached", "fulfilled"]
    metric: Metric
    cycle: str
    moment: AwareDatetime
    elapsed_minutes: float = 0.0


class ScheduleReminder(Command):
    """A reminder (提醒) or follow-up (回访) on a ticket or a customer, for an agent or a team."""

    kind: Literal["reminder", "follow_up"] = "reminder"
    ticket_id: UUID | None = None
    customer_id: UUID | None = None
    agent_id: Name | None = None
    team_id: UUID | None = None
    due_at: AwareDatetime
    note: OptionalBody = ""

    @model_validator(mode="after")
    def _targets(self) -> ScheduleReminder:
        if self.ticket_id is None and self.customer_id is None:
            raise ValueError("a reminder is about a ticket or a customer: give ticket_id or customer_id")
        if self.agent_id is None and self.team_id is None:
            raise ValueError("a reminder is for an agent or a team: give agent_id or team_id")
        return self


class ReminderCommand(ChangeCommand):
    reminder_id: UUID


class FireReminder(ReminderCommand):
    pass


class CompleteReminder(ReminderCommand):
    outcome: OptionalBody = ""


class CancelReminder(ReminderCommand):
    reason: Line


class IssueSurvey(TicketCommand):
    """Send the requester a satisfaction survey (issued when a ticket is solved)."""


class AnswerSurvey(Command):
    """The requester's answer, authenticated by the survey token alone."""

    token: str = Field(min_length=10, max_length=200)
    score: int = Field(ge=1, le=5)
    comment: OptionalBody = ""


class RecordResolution(TicketCommand):
    """The resolution summary of a solved ticket, kept in the problem library (问题库)."""

    summary: Body


class SubscribeWebhook(Command):
    name: Line
    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2000, examples=["https://example.com/hooks/ticketflow"])
    event_types: list[str] = Field(
        min_length=1, max_length=200, examples=[["Ticket.Opened", "Ticket.SlaBreached"]],
        description='event types such as "Ticket.Opened"; "*" for every event',
    )
    scopes: list[Literal["tickets:text"]] = Field(
        default_factory=list, max_length=1, examples=[["tickets:text"]],
        description='"tickets:text": payloads carry ticket text (subjects, messages) unmasked, each delivery'
                    " recorded in the access log; customers' names and emails stay masked",
    )


class WebhookCommand(ChangeCommand):
    webhook_id: UUID


class ChangeWebhook(WebhookCommand):
    url: str = Field(pattern=r"^https?://[^\s]+$", max_length=2000)
    event_types: list[str] = Field(min_length=1, max_length=200)


class PauseWebhook(WebhookCommand):
    reason: ShortText = ""


class ResumeWebhook(WebhookCommand):
    pass


class RemoveWebhook(WebhookCommand):
    """Delete a subscription: nothing is delivered to it after this, pending deliveries are dropped."""

    reason: ShortText = ""
