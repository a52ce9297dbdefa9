"""The lifecycle table is the whole truth: every pair in it works, every other pair is refused."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from ticketflow.commands import (
    AssignTicket, CloseTicket, Command, HoldTicket, MarkTicketOpen, MergeTicket, PendTicket, ReopenTicket,
    SolveTicket,
)
from ticketflow.domain.lifecycle import TRANSITIONS, Action, allowed_from
from ticketflow.domain.values import Status
from ticketflow.errors import InvalidTransition
from tests.support import AGENT, Desk

ROUTE_TO: dict[Status, list[Callable[[uuid.UUID], Command]]] = {
    Status.NEW: [],
    Status.OPEN: [lambda t: AssignTicket(ticket_id=t, assignee_id="li.wei")],
    Status.PENDING: [lambda t: PendTicket(ticket_id=t)],
    Status.ON_HOLD: [lambda t: HoldTicket(ticket_id=t)],
    Status.SOLVED: [lambda t: SolveTicket(ticket_id=t)],
    Status.CLOSED: [lambda t: SolveTicket(ticket_id=t), lambda t: CloseTicket(ticket_id=t)],
}


def ticket_in(setup: Desk, status: Status) -> uuid.UUID:
    ticket_id = setup.open()
    for build in ROUTE_TO[status]:
        setup.app.handle(build(ticket_id), AGENT)
    assert setup.app.get_ticket(ticket_id).status is status
    return ticket_id


def command_for(action: Action, ticket_id: uuid.UUID, setup: Desk) -> Command:
    match action:
        case Action.MARK_OPEN:
            return MarkTicketOpen(ticket_id=ticket_id)
        case Action.PEND:
            return PendTicket(ticket_id=ticket_id)
        case Action.HOLD:
            return HoldTicket(ticket_id=ticket_id)
        case Action.SOLVE:
            return SolveTicket(ticket_id=ticket_id)
        case Action.REOPEN:
            return ReopenTicket(ticket_id=ticket_id, reason="not fixed")
        case Action.CLOSE:
            return CloseTicket(ticket_id=ticket_id)
        case Action.MERGE:
            return MergeTicket(ticket_id=ticket_id, into_ticket_id=setup.open("primary"))
    raise AssertionError(action)


ALL_PAIRS = [(status, action) for status in Status for action in Action]
ALLOWED = [(s, a) for s, a in ALL_PAIRS if a in TRANSITIONS[s]]
REFUSED = [(s, a) for s, a in ALL_PAIRS if a not in TRANSITIONS[s]]


@pytest.mark.parametrize(("status", "action"), ALLOWED, ids=[f"{s}-{a}" for s, a in ALLOWED])
def test_every_transition_in_the_table_is_allowed(setup: Desk, status: Status, action: Action) -> None:
    ticket_id = ticket_in(setup, status)
    setup.app.handle(command_for(action, ticket_id, setup), AGENT)
    assert setup.app.get_ticket(ticket_id).status is TRANSITIONS[status][action]


@pytest.mark.parametrize(("status", "action"), REFUSED, ids=[f"{s}-{a}" for s, a in REFUSED])
def test_every_transition_not_in_the_table_is_refused_and_writes_nothing(
    setup: Desk, status: Status, action: Action
) -> None:
    ticket_id = ticket_in(setup, status)
    command = command_for(action, ticket_id, setup)
    before = setup.app.log_position()
    version = setup.app.get_ticket(ticket_id).version

    with pytest.raises(InvalidTransition) as refused:
        setup.app.handle(command, AGENT)

    assert setup.app.log_position() == before
    assert setup.app.get_ticket(ticket_id).version == version
    message = str(refused.value)
    assert f"it is {status}" in message
    for allowed in allowed_from(status):
        assert allowed in message


def test_closed_is_final_and_says_so(setup: Desk) -> None:
    ticket_id = ticket_in(setup, Status.CLOSED)
    with pytest.raises(InvalidTransition, match="the status is final"):
        setup.app.handle(ReopenTicket(ticket_id=ticket_id, reason="again"), AGENT)


def test_the_table_has_one_final_status_and_every_other_can_reach_closed() -> None:
    finals = [s for s, actions in TRANSITIONS.items() if not actions]
    assert finals == [Status.CLOSED]
    for start in Status:
        seen, frontier = {start}, [start]
        while frontier:
            for target in TRANSITIONS[frontier.pop()].values():
                if target not in seen:
                    seen.add(target)
                    frontier.append(target)
        assert Status.CLOSED in seen
