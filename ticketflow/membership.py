"""Who is in which team now, read from the team events in the log (the write side).

Tokens and accounts of agents and supervisors are bound to a person; their teams are
looked up here at every request, so leaving a team removes access at once. The index
follows the log incrementally: one indexed query for the team-membership events written
since the last look (usually none).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID

from ticketflow.domain.team import Team

_EVENTS = (Team.MemberAdded, Team.MemberChanged, Team.MemberDeactivated, Team.MemberReactivated)
TOPICS = [f"{cls.__module__}:{cls.__qualname__}" for cls in _EVENTS]
PAGE = 500


class Membership:
    def __init__(self, select: Callable[[int, int], list[Any]], decode: Callable[[Any], Any]) -> None:
        """``select(start, limit)`` returns the team-membership notifications from ``start`` on."""
        self._select, self._decode = select, decode
        self._position = 0
        self._members: dict[UUID, dict[str, tuple[str, bool]]] = {}  # team -> agent -> (member role, active)
        self._lock = threading.Lock()

    def teams_of(self, agent_id: str) -> dict[UUID, str]:
        """The teams where ``agent_id`` is an active member, with their member role there."""
        with self._lock:
            self._catch_up()
            found = ((team_id, members.get(agent_id)) for team_id, members in self._members.items())
            return {team_id: entry[0] for team_id, entry in found if entry is not None and entry[1]}

    def known(self, agent_id: str) -> bool:
        """Whether ``agent_id`` is or was a member of any team."""
        with self._lock:
            self._catch_up()
            return any(agent_id in members for members in self._members.values())

    def _catch_up(self) -> None:
        while True:
            page = self._select(self._position + 1, PAGE)
            for notification in page:
                self._apply(self._decode(notification))
                self._position = notification.id
            if len(page) < PAGE:
                return

    def _apply(self, event: Any) -> None:
        members = self._members.setdefault(event.originator_id, {})
        role, active = members.get(event.agent_id, ("agent", False))
        if isinstance(event, (Team.MemberAdded, Team.MemberChanged)):
            members[event.agent_id] = (event.role, True if isinstance(event, Team.MemberAdded) else active)
        elif isinstance(event, Team.MemberDeactivated):
            members[event.agent_id] = (role, False)
        elif isinstance(event, Team.MemberReactivated):
            members[event.agent_id] = (role, True)
