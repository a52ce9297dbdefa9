"""Who in the team takes the ticket: round-robin, least-loaded or skills-based.

Pure functions over the team's agents in rotation (active members), so the router can
replay a decision exactly. Ties always break by agent id, for determinism.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum


class Strategy(StrEnum):
    ROUND_ROBIN = "round_robin"
    LEAST_LOADED = "least_loaded"
    SKILLS = "skills"


def round_robin(agents: Sequence[str], last_assigned: str | None) -> str | None:
    """The agent after the last one assigned, in id order (wrapping round)."""
    ordered = sorted(agents)
    if not ordered:
        return None
    if last_assigned is None:
        return ordered[0]
    later = [a for a in ordered if a > last_assigned]
    return later[0] if later else ordered[0]


def least_loaded(agents: Sequence[str], open_tickets: Mapping[str, int]) -> str | None:
    """The agent with the fewest open tickets."""
    if not agents:
        return None
    return min(sorted(agents), key=lambda a: open_tickets.get(a, 0))


def skills_based(
    skills: Mapping[str, frozenset[str] | set[str]], wanted: set[str], open_tickets: Mapping[str, int]
) -> str | None:
    """The agent with most of the wanted skills (category, language...), then the least loaded."""
    if not skills:
        return None
    folded = {w.casefold() for w in wanted}

    def rank(agent: str) -> tuple[int, int, str]:
        overlap = len({s.casefold() for s in skills[agent]} & folded)
        return (-overlap, open_tickets.get(agent, 0), agent)

    return min(skills, key=rank)


def choose(
    strategy: Strategy,
    members: Mapping[str, Mapping[str, object]],
    *,
    last_assigned: str | None = None,
    open_tickets: Mapping[str, int] | None = None,
    wanted_skills: set[str] | None = None,
) -> str | None:
    """Pick an agent among the active members (``{agent: {"active": bool, "skills": [...]}}``)."""
    active = {agent: m for agent, m in members.items() if m.get("active")}
    loads = open_tickets if open_tickets is not None else {}  # a lazy mapping is empty until asked
    if strategy is Strategy.ROUND_ROBIN:
        return round_robin(list(active), last_assigned)
    if strategy is Strategy.LEAST_LOADED:
        return least_loaded(list(active), loads)
    skills = {agent: frozenset(str(s) for s in m.get("skills", ()) or ()) for agent, m in active.items()}  # type: ignore[union-attr]
    return skills_based(skills, wanted_skills or set(), loads)
