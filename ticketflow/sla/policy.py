"""Matching a ticket against a policy's conditions (SLA policies; routing rules use the same filters)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def conditions_match(conditions: Mapping[str, Sequence[str]], facts: Mapping[str, str | None]) -> bool:
    """True when every non-empty condition lists the ticket's value (an empty one matches anything)."""
    return all(not allowed or facts.get(name) in allowed for name, allowed in conditions.items())
