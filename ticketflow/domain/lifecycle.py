"""The ticket lifecycle as an explicit table: status -> action -> next status.

Anything not in the table is refused. ``closed`` is final: a follow-up ticket
links back to a closed one instead of reopening it.
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType
from typing import Mapping

from ticketflow.domain.values import Status


class Action(StrEnum):
    MARK_OPEN = "mark_open"  # work starts or resumes
    PEND = "pend"  # wait on the customer
    HOLD = "hold"  # wait on a third party
    SOLVE = "solve"
    REOPEN = "reopen"
    CLOSE = "close"
    MERGE = "merge"  # close as a duplicate of another ticket


_UNSOLVED_EXITS = {Action.SOLVE: Status.SOLVED, Action.MERGE: Status.CLOSED}

TRANSITIONS: Mapping[Status, Mapping[Action, Status]] = MappingProxyType(
    {
        Status.NEW: {
            Action.MARK_OPEN: Status.OPEN,
            Action.PEND: Status.PENDING,
            Action.HOLD: Status.ON_HOLD,
            **_UNSOLVED_EXITS,
        },
        Status.OPEN: {Action.PEND: Status.PENDING, Action.HOLD: Status.ON_HOLD, **_UNSOLVED_EXITS},
        Status.PENDING: {
            Action.MARK_OPEN: Status.OPEN,
            Action.HOLD: Status.ON_HOLD,
            **_UNSOLVED_EXITS,
        },
        Status.ON_HOLD: {
            Action.MARK_OPEN: Status.OPEN,
            Action.PEND: Status.PENDING,
            **_UNSOLVED_EXITS,
        },
        Status.SOLVED: {Action.REOPEN: Status.OPEN, Action.CLOSE: Status.CLOSED},
        Status.CLOSED: {},
    }
)


def next_status(status: Status, action: Action) -> Status | None:
    """The status ``action`` leads to from ``status``, or None if the table forbids it."""
    return TRANSITIONS[status].get(action)


def allowed_from(status: Status) -> list[str]:
    """Human-readable list of what may happen next, e.g. ``['solve -> solved', ...]``."""
    return [f"{action} -> {target}" for action, target in TRANSITIONS[status].items()]
