"""Saved reply templates (快捷回复): a team's canned replies and internal notes, with placeholders.

A template belongs to exactly one team (an admin writes them for any team; there are no desk-wide
templates, so every template has one owner: that team's supervisors). Each change is a new version
and every version stays readable from the template's events.

Placeholders are ``{{name}}`` (spaces inside the braces allowed), one of :data:`PLACEHOLDERS`. A body
naming any other is refused when it is written, with the unknown name in the error. They are filled
for one ticket when a reply or note is sent from the template; ``{{customer.name}}`` is the customer's
personal data (see :data:`PERSONAL_PLACEHOLDERS`).
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID

from eventsourcing.domain import event

from ticketflow.domain.base import TicketflowAggregate
from ticketflow.errors import RuleViolation, ValidationFailed

#: Every placeholder a template body may use, and what it is filled with.
PLACEHOLDERS: dict[str, str] = {
    "customer.name": "the requester's name (personal data)",
    "ticket.reference": "the ticket's short reference, e.g. #6457ba06",
    "ticket.subject": "the ticket's subject",
    "agent.name": "the name of whoever sends the reply or note",
    "team.name": "the name of the ticket's team",
}
#: Placeholders holding the customer's personal data: filled only where such a read is allowed and recorded.
PERSONAL_PLACEHOLDERS = frozenset({"customer.name"})

_PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}")


class ReplyKind(StrEnum):
    """What a template is written for (a template without a kind serves both)."""

    REPLY = "reply"  # a public reply to the customer
    NOTE = "note"  # an internal note


def placeholders_in(text: str) -> list[str]:
    """The placeholder names ``text`` uses, in order of first use."""
    return list(dict.fromkeys(match.group(1) for match in _PLACEHOLDER.finditer(text)))


def check_placeholders(text: str) -> None:
    """Refuse a text naming a placeholder that does not exist (the error names it)."""
    unknown = [name for name in placeholders_in(text) if name not in PLACEHOLDERS]
    if unknown:
        known = ", ".join(f"{{{{{name}}}}}" for name in PLACEHOLDERS)
        names = ", ".join(f"{{{{{name}}}}}" for name in unknown)
        raise ValidationFailed(f"unknown placeholder {names} in the body; a template may use {known}")


def fill(text: str, values: Mapping[str, str], keep: Container[str] = ()) -> str:
    """``text`` with each placeholder replaced by its value; those in ``keep`` or without a value stay as written."""
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return match.group(0) if name in keep or name not in values else values[name]

    return _PLACEHOLDER.sub(value, text)


class ReplyTemplate(TicketflowAggregate):
    @dataclass(frozen=True)
    class Created(TicketflowAggregate.Created):
        team_id: UUID
        title: str
        body: str
        kind: str | None  # "reply", "note", or None: either

    @dataclass(frozen=True)
    class Revised(TicketflowAggregate.Event):
        title: str
        body: str
        kind: str | None

    @dataclass(frozen=True)
    class Retired(TicketflowAggregate.Event):
        reason: str

    @event(Created)
    def __init__(self, team_id: UUID, title: str, body: str, kind: str | None) -> None:
        self.team_id = team_id
        self.title = title
        self.body = body
        self.kind = kind
        self.retired = False

    @classmethod
    def write(
        cls, template_id: UUID, team_id: UUID, title: str, body: str, kind: ReplyKind | None
    ) -> ReplyTemplate:
        """A new template, once its body's placeholders are known ones."""
        check_placeholders(body)
        return cls._create(cls.Created, id=template_id, team_id=team_id, title=title, body=body,
                           kind=None if kind is None else str(kind))

    def revise(self, title: str, body: str, kind: ReplyKind | None) -> None:
        if self.retired:
            raise RuleViolation(f"reply template {self.id} is retired")
        check_placeholders(body)
        new_kind = None if kind is None else str(kind)
        if (title, body, new_kind) == (self.title, self.body, self.kind):
            return  # unchanged: no new version
        self._revised(title=title, body=body, kind=new_kind)

    def retire(self, reason: str) -> None:
        if self.retired:
            raise RuleViolation(f"reply template {self.id} is already retired")
        self._retired(reason=reason)

    def check_use(self, kind: ReplyKind, version: int | None) -> int:
        """The version a reply or note of ``kind`` is sent from (default: the latest); refuses a retired
        template, one written for the other kind, and a version it never had."""
        if self.retired:
            raise RuleViolation(f"reply template {self.id} is retired: it is no longer used")
        if self.kind is not None and self.kind != kind:
            raise RuleViolation(f"reply template {self.id} is for a {self.kind}, not a {kind}")
        if version is not None and not 1 <= version <= self.version:
            raise RuleViolation(f"reply template {self.id} has no version {version} (latest: {self.version})")
        return self.version if version is None else version

    @event(Revised)
    def _revised(self, title: str, body: str, kind: str | None) -> None:
        self.title = title
        self.body = body
        self.kind = kind

    @event(Retired)
    def _retired(self, reason: str) -> None:
        self.retired = True
