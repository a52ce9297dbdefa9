"""Ordered routing rules: the first rule whose conditions all hold decides the team.

A condition left empty matches anything. Keywords match anywhere in the subject or
description, case-insensitively and after Unicode normalisation, so a Chinese keyword
("发票") matches text without spaces. A default team catches what no rule matches.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from ticketflow.errors import ValidationFailed

CONDITIONS = ("ticket_types", "categories", "channels", "priorities", "tiers", "languages")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


@dataclass(frozen=True)
class TicketFacts:
    """What routing may look at."""

    ticket_type: str
    category: str
    channel: str
    priority: str
    text: str  # subject and description
    tier: str | None = None
    language: str | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    team_id: UUID
    ticket_types: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    priorities: frozenset[str] = frozenset()
    tiers: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()  # "zh" matches "zh-CN"
    keywords: tuple[str, ...] = ()
    set_priority: str | None = None
    add_tags: tuple[str, ...] = field(default=())

    def matches(self, facts: TicketFacts) -> bool:
        checks = (
            (self.ticket_types, facts.ticket_type),
            (self.categories, facts.category),
            (self.channels, facts.channel),
            (self.priorities, facts.priority),
            (self.tiers, facts.tier),
        )
        if any(allowed and value not in allowed for allowed, value in checks):
            return False
        if self.languages:
            language = (facts.language or "").lower()
            if not any(language == l.lower() or language.startswith(l.lower() + "-") for l in self.languages):
                return False
        if self.keywords:
            text = _fold(facts.text)
            if not any(_fold(k) in text for k in self.keywords):
                return False
        return True

    def to_dict(self) -> dict[str, Any]:
        """The rule as stored in events (JSON types only)."""
        return {
            "name": self.name,
            "team_id": str(self.team_id),
            **{c: sorted(getattr(self, c)) for c in CONDITIONS},
            "keywords": list(self.keywords),
            "set_priority": self.set_priority,
            "add_tags": list(self.add_tags),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Rule:
        unknown = set(data) - {"name", "team_id", "keywords", "set_priority", "add_tags", *CONDITIONS}
        if unknown:
            raise ValidationFailed(f"unknown routing rule field(s): {', '.join(sorted(unknown))}")
        try:
            return cls(
                name=str(data["name"]),
                team_id=UUID(str(data["team_id"])),
                **{c: frozenset(str(v) for v in data.get(c, ())) for c in CONDITIONS},
                keywords=tuple(str(k) for k in data.get("keywords", ()) if str(k).strip()),
                set_priority=data.get("set_priority"),
                add_tags=tuple(str(t) for t in data.get("add_tags", ())),
            )
        except (KeyError, ValueError) as exc:
            raise ValidationFailed(f"routing rule {data.get('name', '?')!r} is incomplete or malformed: {exc}") from None


@dataclass(frozen=True)
class Decision:
    """Where a ticket goes, and why."""

    team_id: UUID
    rule: str | None  # None: no rule matched, the default team caught it
    set_priority: str | None = None
    add_tags: tuple[str, ...] = ()


def decide(rules: Sequence[Rule], default_team_id: UUID, facts: TicketFacts) -> Decision:
    for rule in rules:
        if rule.matches(facts):
            return Decision(rule.team_id, rule.name, rule.set_priority, rule.add_tags)
    return Decision(default_team_id, None)


def check_rules(rules: Iterable[Rule]) -> list[Rule]:
    """Refuse duplicate rule names (decisions cite the rule by name)."""
    result = list(rules)
    names = [r.name for r in result]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValidationFailed(f"routing rule names must be unique: {', '.join(duplicates)}")
    return result
