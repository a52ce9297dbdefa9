"""Workflow policies, event-sourced: the routing rulebook, SLA policies and business calendars.

Each revision is a new version of its aggregate, so an auditor can ask which version
applied to a ticket at the time: routing and SLA decisions on a ticket cite the policy
id and version they used, and carry what they decided with (the targets and the
calendar), so a replay never depends on today's policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from ticketflow.domain.base import TicketflowAggregate
from ticketflow.errors import RuleViolation

#: The desk has one routing rulebook; its id is fixed.
ROUTING_POLICY_ID = uuid5(NAMESPACE_URL, "https://ticketflow.dev/routing-policy")


class RoutingPolicy(TicketflowAggregate):
    """Ordered routing rules (first match wins) and the default team that catches the rest."""

    @dataclass(frozen=True)
    class Adopted(TicketflowAggregate.Created):
        rules: list[dict[str, Any]]
        default_team_id: UUID
        note: str

    @dataclass(frozen=True)
    class Revised(TicketflowAggregate.Event):
        rules: list[dict[str, Any]]
        default_team_id: UUID
        note: str

    @event(Adopted)
    def __init__(self, rules: list[dict[str, Any]], default_team_id: UUID, note: str) -> None:
        self.rules = list(rules)
        self.default_team_id = default_team_id
        self.note = note

    def revise(self, rules: list[dict[str, Any]], default_team_id: UUID, note: str) -> None:
        if rules == self.rules and default_team_id == self.default_team_id:
            return  # defining what is already in force changes nothing (no new version)
        self._revised(rules=list(rules), default_team_id=default_team_id, note=note)

    @event(Revised)
    def _revised(self, rules: list[dict[str, Any]], default_team_id: UUID, note: str) -> None:
        self.rules = list(rules)
        self.default_team_id = default_team_id
        self.note = note


class ServiceCalendar(TicketflowAggregate):
    """Business hours: a timezone, weekly opening hours, holidays and make-up working days (调休).

    ``weekly`` maps a weekday (``"0"`` Monday .. ``"6"`` Sunday) to ``[["09:00", "18:00"], ...]``;
    ``holidays`` lists ISO dates; ``workdays`` maps an ISO date to the weekday whose hours apply.
    """

    @dataclass(frozen=True)
    class Defined(TicketflowAggregate.Created):
        name: str
        timezone: str
        weekly: dict[str, list[list[str]]]
        holidays: list[str]
        workdays: dict[str, int]

    @dataclass(frozen=True)
    class Revised(TicketflowAggregate.Event):
        name: str
        timezone: str
        weekly: dict[str, list[list[str]]]
        holidays: list[str]
        workdays: dict[str, int]

    @event(Defined)
    def __init__(
        self, name: str, timezone: str, weekly: dict[str, list[list[str]]], holidays: list[str], workdays: dict[str, int]
    ) -> None:
        self._set(name, timezone, weekly, holidays, workdays)

    def spec(self) -> dict[str, Any]:
        """The calendar as plain data (what an SLA decision records)."""
        return {
            "timezone": self.timezone, "weekly": self.weekly, "holidays": self.holidays, "workdays": self.workdays,
        }

    def revise(
        self, name: str, timezone: str, weekly: dict[str, list[list[str]]], holidays: list[str], workdays: dict[str, int]
    ) -> None:
        if (name, timezone, weekly, holidays, workdays) == (
            self.name, self.timezone, self.weekly, self.holidays, self.workdays,
        ):
            return  # unchanged: no new version
        self._revised(name=name, timezone=timezone, weekly=weekly, holidays=holidays, workdays=workdays)

    @event(Revised)
    def _revised(
        self, name: str, timezone: str, weekly: dict[str, list[list[str]]], holidays: list[str], workdays: dict[str, int]
    ) -> None:
        self._set(name, timezone, weekly, holidays, workdays)

    def _set(
        self, name: str, timezone: str, weekly: dict[str, list[list[str]]], holidays: list[str], workdays: dict[str, int]
    ) -> None:
        self.name = name
        self.timezone = timezone
        self.weekly = {k: [list(i) for i in v] for k, v in weekly.items()}
        self.holidays = sorted(holidays)
        self.workdays = dict(sorted(workdays.items()))


class SlaPolicy(TicketflowAggregate):
    """A service standard: which tickets it covers and, per priority, its targets.

    ``conditions`` holds the same filters as routing rules (ticket types, categories,
    channels, priorities, tiers); ``targets`` maps a priority to
    ``{metric: {"minutes": int, "business_hours": bool}}``; ``escalation`` says what a
    breach does: ``{"raise_priority": bool, "team_id": str | None}`` (notifications go to the
    webhooks subscribed to ``Ticket.SlaBreached``).
    Policies are matched in ``position`` order, first match wins (Zendesk-style).
    """

    @dataclass(frozen=True)
    class Defined(TicketflowAggregate.Created):
        name: str
        position: int
        conditions: dict[str, list[str]]
        targets: dict[str, dict[str, dict[str, Any]]]
        calendar_id: UUID | None
        warn_at_percent: int
        escalation: dict[str, Any]

    @dataclass(frozen=True)
    class Revised(TicketflowAggregate.Event):
        name: str
        position: int
        conditions: dict[str, list[str]]
        targets: dict[str, dict[str, dict[str, Any]]]
        calendar_id: UUID | None
        warn_at_percent: int
        escalation: dict[str, Any]

    @dataclass(frozen=True)
    class Retired(TicketflowAggregate.Event):
        reason: str

    @event(Defined)
    def __init__(
        self,
        name: str,
        position: int,
        conditions: dict[str, list[str]],
        targets: dict[str, dict[str, dict[str, Any]]],
        calendar_id: UUID | None,
        warn_at_percent: int,
        escalation: dict[str, Any],
    ) -> None:
        self.retired = False
        self._set(name, position, conditions, targets, calendar_id, warn_at_percent, escalation)

    def revise(self, **fields: Any) -> None:
        if self.retired:
            raise RuleViolation(f"SLA policy {self.name!r} is retired")
        if fields == self.definition():
            return  # unchanged: no new version
        self._revised(**fields)

    def retire(self, reason: str) -> None:
        if self.retired:
            raise RuleViolation(f"SLA policy {self.name!r} is already retired")
        self._retired(reason=reason)

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name, "position": self.position, "conditions": self.conditions, "targets": self.targets,
            "calendar_id": self.calendar_id, "warn_at_percent": self.warn_at_percent, "escalation": self.escalation,
        }

    @event(Revised)
    def _revised(
        self,
        name: str,
        position: int,
        conditions: dict[str, list[str]],
        targets: dict[str, dict[str, dict[str, Any]]],
        calendar_id: UUID | None,
        warn_at_percent: int,
        escalation: dict[str, Any],
    ) -> None:
        self._set(name, position, conditions, targets, calendar_id, warn_at_percent, escalation)

    @event(Retired)
    def _retired(self, reason: str) -> None:
        self.retired = True

    def _set(
        self,
        name: str,
        position: int,
        conditions: dict[str, list[str]],
        targets: dict[str, dict[str, dict[str, Any]]],
        calendar_id: UUID | None,
        warn_at_percent: int,
        escalation: dict[str, Any],
    ) -> None:
        self.name = name
        self.position = position
        self.conditions = {k: list(v) for k, v in conditions.items()}
        self.targets = {p: {m: dict(t) for m, t in ts.items()} for p, ts in targets.items()}
        self.calendar_id = calendar_id
        self.warn_at_percent = warn_at_percent
        self.escalation = dict(escalation)


def sla_policy_id(name: str) -> UUID:
    """SLA policies are named; the id derives from the name so a name is never defined twice."""
    return uuid5(NAMESPACE_URL, f"https://ticketflow.dev/sla-policy/{name.casefold()}")


def calendar_id(name: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"https://ticketflow.dev/calendar/{name.casefold()}")
