"""The Team aggregate: the directory routing and assignment draw on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.domain import event

from ticketflow.domain.base import TicketflowAggregate
from ticketflow.domain.values import MemberRole
from ticketflow.errors import RuleViolation


class Team(TicketflowAggregate):
    #: How new tickets are given to members: round_robin, least_loaded or skills.
    strategy: str = "round_robin"

    @dataclass(frozen=True)
    class Formed(TicketflowAggregate.Created):
        name: str
        description: str

    @dataclass(frozen=True)
    class Renamed(TicketflowAggregate.Event):
        name: str
        previous_name: str

    @dataclass(frozen=True)
    class MemberAdded(TicketflowAggregate.Event):
        agent_id: str
        role: str
        skills: list[str]

    @dataclass(frozen=True)
    class MemberChanged(TicketflowAggregate.Event):
        agent_id: str
        role: str
        skills: list[str]
        previous_role: str
        previous_skills: list[str]

    @dataclass(frozen=True)
    class MemberDeactivated(TicketflowAggregate.Event):
        """Out of rotation (on leave, left the team): keeps the history, takes no new work."""

        agent_id: str
        reason: str

    @dataclass(frozen=True)
    class MemberReactivated(TicketflowAggregate.Event):
        agent_id: str

    @dataclass(frozen=True)
    class StrategyChosen(TicketflowAggregate.Event):
        strategy: str
        previous_strategy: str

    @event(Formed)
    def __init__(self, name: str, description: str) -> None:
        self.name = name
        self.description = description
        self.members: dict[str, dict[str, Any]] = {}

    def is_active_member(self, agent_id: str) -> bool:
        member = self.members.get(agent_id)
        return member is not None and bool(member["active"])

    def active_members(self) -> list[str]:
        return sorted(agent for agent, member in self.members.items() if member["active"])

    def rename(self, name: str) -> None:
        if name == self.name:
            raise RuleViolation(f"team {self.id} is already named {name!r}")
        self._renamed(name=name, previous_name=self.name)

    def add_member(self, agent_id: str, role: MemberRole, skills: list[str]) -> None:
        if agent_id in self.members:
            raise RuleViolation(f"{agent_id} is already a member of team {self.name!r}")
        self._member_added(agent_id=agent_id, role=str(role), skills=sorted(set(skills)))

    def change_member(self, agent_id: str, role: MemberRole | None, skills: list[str] | None) -> None:
        member = self._member(agent_id)
        new_role = str(role) if role is not None else member["role"]
        new_skills = sorted(set(skills)) if skills is not None else member["skills"]
        if new_role == member["role"] and new_skills == member["skills"]:
            raise RuleViolation(f"{agent_id} already has role {new_role} and these skills")
        self._member_changed(
            agent_id=agent_id,
            role=new_role,
            skills=new_skills,
            previous_role=member["role"],
            previous_skills=list(member["skills"]),
        )

    def deactivate_member(self, agent_id: str, reason: str = "") -> None:
        if not self._member(agent_id)["active"]:
            raise RuleViolation(f"{agent_id} is already inactive in team {self.name!r}")
        self._member_deactivated(agent_id=agent_id, reason=reason)

    def reactivate_member(self, agent_id: str) -> None:
        if self._member(agent_id)["active"]:
            raise RuleViolation(f"{agent_id} is already active in team {self.name!r}")
        self._member_reactivated(agent_id=agent_id)

    def choose_strategy(self, strategy: str) -> None:
        if strategy == self.strategy:
            raise RuleViolation(f"team {self.name!r} already assigns by {strategy}")
        self._strategy_chosen(strategy=strategy, previous_strategy=self.strategy)

    @event(StrategyChosen)
    def _strategy_chosen(self, strategy: str, previous_strategy: str) -> None:
        self.strategy = strategy

    def _member(self, agent_id: str) -> dict[str, Any]:
        try:
            return self.members[agent_id]
        except KeyError:
            raise RuleViolation(f"{agent_id} is not a member of team {self.name!r}") from None

    @event(Renamed)
    def _renamed(self, name: str, previous_name: str) -> None:
        self.name = name

    @event(MemberAdded)
    def _member_added(self, agent_id: str, role: str, skills: list[str]) -> None:
        self.members[agent_id] = {"role": role, "skills": list(skills), "active": True}

    @event(MemberChanged)
    def _member_changed(
        self, agent_id: str, role: str, skills: list[str], previous_role: str, previous_skills: list[str]
    ) -> None:
        self.members[agent_id].update(role=role, skills=list(skills))

    @event(MemberDeactivated)
    def _member_deactivated(self, agent_id: str, reason: str) -> None:
        self.members[agent_id]["active"] = False

    @event(MemberReactivated)
    def _member_reactivated(self, agent_id: str) -> None:
        self.members[agent_id]["active"] = True
