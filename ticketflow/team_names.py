"""A team named by its id, its name, or one half of a bilingual name: the one rule every face uses.

``技术支持 Technical Support`` answers to its id, to ``技术支持 Technical Support`` (exactly, else in any
case), and to ``技术支持`` or ``Technical Support`` (the part before or after a space), when only one
team does. Used by the CLI's ``--team`` options (``ticketflow team``, ``token create``, ``policy
strategy``, ``whatif``), the what-if's candidate file and ``POST /api/v1/whatif``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from uuid import UUID


def teams_named(teams: Mapping[UUID, str], value: str) -> list[UUID]:
    """The teams answering to ``value`` at the first rule any answers to (exact; any case; a half); [] none.

    An id is not looked at here (the caller tries ``UUID(value)`` first)."""
    text = value.strip()
    wanted = text.casefold()
    rules: tuple[Callable[[str], bool], ...] = (
        lambda name: name == text,
        lambda name: name.casefold() == wanted,
        lambda name: name.casefold().startswith(wanted + " ") or name.casefold().endswith(" " + wanted),
    )
    for matches in rules:
        named = [team for team, name in teams.items() if matches(name)]
        if named:
            return named
    return []
