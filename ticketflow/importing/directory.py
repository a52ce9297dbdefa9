"""The directory an import needs before its tickets: teams, their members, requesters.

Source logs name teams and people but never register them; the importer forms
every team, adds every person seen working for it, and registers the requesters,
each at the first time the log shows them, so nobody is assigned before joining.
Every command id derives from what it creates, so a re-run recognises them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from uuid import NAMESPACE_URL, UUID, uuid5

from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller

#: Namespace of import command ids: the same source row always gives the same command id.
IMPORT_NAMESPACE = uuid5(NAMESPACE_URL, "https://ticketflow.dev/import")

_NOT_NAME = re.compile(r"[^\w.@:\-]+")
_READABLE = re.compile(r"[^\W_]")


def command_id(*parts: object) -> UUID:
    """A deterministic command id from its parts, e.g. (format, case id, row index, step)."""
    return uuid5(IMPORT_NAMESPACE, "|".join(str(part) for part in parts))


@lru_cache(maxsize=65_536)  # called for every row's person, team and category: few distinct values
def as_name(raw: str) -> str | None:
    """A source value as a ticketflow name (agent ids, categories).

    Names allow letters of any script, digits and ``._@:-``: every run of other
    characters becomes ``_`` (``Hwei Ling`` -> ``Hwei_Ling``, ``Value 1`` -> ``Value_1``).
    None when no letter or digit is left (``- -``, the logs' "nobody").
    """
    name = _NOT_NAME.sub("_", raw.strip()).strip("_")[:64]
    return name if _READABLE.search(name) else None


def system_caller(source: str, correlation_id: str | None = None) -> Caller:
    """The importer itself: it forms teams, registers requesters, and acts when no person did."""
    return Caller(f"import:{source}", Role.SYSTEM, Channel.IMPORT, correlation_id)


def person_caller(resource: str, source: str, correlation_id: str | None = None) -> Caller:
    """The original person of a row, as an agent, or the importer when the row names nobody."""
    agent = as_name(resource)
    if agent is None:
        return system_caller(source, correlation_id)
    return Caller(agent, Role.AGENT, Channel.IMPORT, correlation_id)


@dataclass
class TeamEntry:
    name: str
    since: datetime
    members: dict[str, datetime] = field(default_factory=dict)  # agent id -> first seen


@dataclass
class CustomerEntry:
    key: str
    name: str
    company: str | None
    language: str
    since: datetime


@dataclass
class Directory:
    """Teams, members and requesters seen in the imported cases, each with its first time."""

    teams: dict[str, TeamEntry] = field(default_factory=dict)
    customers: dict[str, CustomerEntry] = field(default_factory=dict)

    def see_team(self, name: str, at: datetime, member: str | None = None) -> None:
        team = self.teams.get(name)
        if team is None:
            team = self.teams[name] = TeamEntry(name, at)
        team.since = min(team.since, at)
        if member is not None:
            team.members[member] = min(team.members.get(member, at), at)

    def see_customer(self, key: str, name: str, at: datetime, *, company: str | None, language: str) -> None:
        customer = self.customers.get(key)
        if customer is None:
            self.customers[key] = CustomerEntry(key, name, company, language, at)
        else:
            customer.since = min(customer.since, at)

    @property
    def member_count(self) -> int:
        return sum(len(team.members) for team in self.teams.values())


@dataclass(frozen=True)
class DirectoryIds:
    """The ids the desk gave the directory: team name -> team id, requester key -> customer id."""

    teams: dict[str, UUID]
    customers: dict[str, UUID]
