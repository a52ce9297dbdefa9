"""Property: for any sequence of commands, valid or not,

* a refused command writes nothing (the log position does not move), and
* every aggregate's live state equals the replay of its stored events, from
  scratch and from snapshots.
"""

from __future__ import annotations

import copy
import functools
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ticketflow.application import CommandResult, TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import (
    AddCollaborator, AddNote, AssignTicket, ChangePriority, ChangeTags, CloseTicket, HoldTicket, LinkTicket,
    LogInteraction, LogWork, MarkTicketOpen, MergeTicket, OpenTicket, PendTicket, PostReply, RateSatisfaction,
    RemoveCollaborator, ReopenTicket, SolveTicket, TransferTicket,
    ImportedFact, RecordImportedFacts, RemoveTicketFromTeam, UnassignTicket,
)
from ticketflow.config import Settings
from ticketflow.domain import TicketflowAggregate
from ticketflow.domain.values import Channel, Direction, InteractionKind, Priority, Role, Status
from ticketflow.errors import TicketflowError
from ticketflow.metadata import Caller
from tests.support import AGENT, Desk

IMPORTER = Caller("import:property", Role.SYSTEM, Channel.IMPORT)

AGENTS = ["li.wei", "emma.clark", "wang.fang", "ghost"]


class RecordingDesk(TicketDesk):
    """A desk that keeps a copy of each aggregate as it was right after it was saved."""

    live: dict[uuid.UUID, TicketflowAggregate]

    def _save(
        self,
        aggregate: TicketflowAggregate,
        others: Sequence[TicketflowAggregate],
        cache_after: int | None = None,
    ) -> CommandResult:
        result = super()._save(aggregate, others, cache_after)
        self.live = getattr(self, "live", {})
        for saved in (aggregate, *others):
            self.live[saved.id] = copy.deepcopy(saved)
        return result


def state(aggregate: TicketflowAggregate) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


ticket_index = st.integers(min_value=0, max_value=3)
text = st.text(alphabet=st.sampled_from("ab 中文\n\x07"), min_size=0, max_size=6)

operation = st.one_of(
    st.tuples(st.just("open"), text),
    st.tuples(st.just("assign"), ticket_index, st.sampled_from(AGENTS)),
    st.tuples(st.just("transfer"), ticket_index, st.booleans(), st.sampled_from([None, *AGENTS])),
    st.tuples(st.sampled_from(["mark_open", "pend", "hold", "solve", "reopen", "close"]), ticket_index),
    st.tuples(st.just("merge"), ticket_index, ticket_index),
    st.tuples(st.just("link"), ticket_index, ticket_index),
    st.tuples(st.just("reply"), ticket_index, st.sampled_from(list(Direction)), text),
    st.tuples(st.just("note"), ticket_index, text),
    st.tuples(st.just("call"), ticket_index, st.integers(min_value=-1, max_value=30)),
    st.tuples(st.just("priority"), ticket_index, st.sampled_from(list(Priority))),
    st.tuples(st.just("tags"), ticket_index, st.lists(st.sampled_from(["vip", "退款", "Bad Tag"]), max_size=2)),
    st.tuples(st.sampled_from(["collab_add", "collab_remove"]), ticket_index, st.sampled_from(AGENTS)),
    st.tuples(st.just("rate"), ticket_index, st.integers(min_value=0, max_value=6)),
    st.tuples(st.just("work"), ticket_index, st.integers(min_value=-5, max_value=90)),
    st.tuples(st.just("unassign"), ticket_index),
    st.tuples(st.just("remove_team"), ticket_index, text),
    # imported history: a status the source reached, then where the ticket was (team: none, one or the other)
    st.tuples(st.just("facts"), ticket_index, st.sampled_from(list(Status)), st.integers(min_value=0, max_value=2),
              st.sampled_from([None, *AGENTS])),
)


def build(op: tuple[Any, ...], tickets: list[uuid.UUID], setup: Desk) -> Any:
    name = op[0]
    if name == "open":
        return OpenTicket(subject=op[1], requester_id=setup.customer_id, team_id=setup.team_id)
    if not tickets:
        return None
    t = tickets[op[1] % len(tickets)]
    match name:
        case "assign":
            return AssignTicket(ticket_id=t, assignee_id=op[2])
        case "transfer":
            return TransferTicket(
                ticket_id=t, team_id=setup.other_team_id if op[2] else setup.team_id, assignee_id=op[3], reason="r"
            )
        case "mark_open":
            return MarkTicketOpen(ticket_id=t)
        case "pend":
            return PendTicket(ticket_id=t)
        case "hold":
            return HoldTicket(ticket_id=t)
        case "solve":
            return SolveTicket(ticket_id=t)
        case "reopen":
            return ReopenTicket(ticket_id=t, reason="again")
        case "close":
            return CloseTicket(ticket_id=t)
        case "merge":
            return MergeTicket(ticket_id=t, into_ticket_id=tickets[op[2] % len(tickets)])
        case "link":
            return LinkTicket(ticket_id=t, other_ticket_id=tickets[op[2] % len(tickets)])
        case "reply":
            return PostReply(ticket_id=t, direction=op[2], body=op[3])
        case "note":
            return AddNote(ticket_id=t, body=op[2])
        case "call":
            return LogInteraction(
                ticket_id=t, kind=InteractionKind.CALL, direction=Direction.OUTBOUND, body="call", duration_minutes=op[2]
            )
        case "priority":
            return ChangePriority(ticket_id=t, priority=op[2])
        case "tags":
            return ChangeTags(ticket_id=t, add=op[2], remove=op[2][:1])
        case "collab_add":
            return AddCollaborator(ticket_id=t, agent_id=op[2])
        case "collab_remove":
            return RemoveCollaborator(ticket_id=t, agent_id=op[2])
        case "rate":
            return RateSatisfaction(ticket_id=t, score=op[2])
        case "work":
            return LogWork(ticket_id=t, action="排查", minutes=op[2])
        case "unassign":
            return UnassignTicket(ticket_id=t)
        case "remove_team":
            return RemoveTicketFromTeam(ticket_id=t, reason=op[2])
        case "facts":
            now = setup.app.clock.now()
            team = [None, setup.team_id, setup.other_team_id][op[3]]
            return RecordImportedFacts(ticket_id=t, facts=[
                ImportedFact(fact_id=uuid.uuid4(), kind="status", status=op[2], occurred_at=now),
                ImportedFact(fact_id=uuid.uuid4(), kind="placement", team_id=team, assignee_id=op[4], occurred_at=now),
            ])
    raise AssertionError(name)


def run_and_check(desk: RecordingDesk, clock: FakeClock, ops: list[tuple[Any, ...]]) -> None:
    setup = Desk(desk)
    tickets: list[uuid.UUID] = []
    for op in [("open", "第一张工单"), ("open", "second ticket"), *ops]:
        clock.advance(timedelta(minutes=5))
        before = desk.log_position()
        try:
            command = build(op, tickets, setup)
            if command is None:
                continue
            result = desk.handle(command, IMPORTER if isinstance(command, RecordImportedFacts) else AGENT)
        except (TicketflowError, ValidationError):
            assert desk.log_position() == before, f"refused {op} wrote events"
            continue
        # a command that succeeds writes; imported facts that change nothing write nothing
        assert desk.log_position() > before or (isinstance(command, RecordImportedFacts) and not result.events)
        if op[0] == "open":
            tickets.append(result.object_id)

    for object_id, live in desk.live.items():
        events = list(desk.events.get(object_id))
        from_scratch = functools.reduce(lambda agg, event: event.mutate(agg), events, None)
        assert state(from_scratch) == state(live), f"replay of {object_id} differs from its live state"
        assert state(desk.repository.get(object_id)) == state(live), f"snapshot load of {object_id} differs"
        assert desk.snapshots is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(operation, min_size=1, max_size=40))
def test_state_equals_replay_and_refusals_write_nothing_in_memory(ops: list[tuple[Any, ...]]) -> None:
    clock = FakeClock()
    desk = RecordingDesk(Settings(database_url="memory://", snapshot_interval=3, aggregate_cache_size=0), clock=clock)
    run_and_check(desk, clock, ops)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=30))
def test_state_equals_replay_and_refusals_write_nothing_on_sqlite(tmp_path_factory: Any, ops: list[tuple[Any, ...]]) -> None:
    clock = FakeClock()
    data_dir = tmp_path_factory.mktemp("prop")
    desk = RecordingDesk(Settings(data_dir=data_dir, snapshot_interval=3, aggregate_cache_size=0), clock=clock)
    try:
        run_and_check(desk, clock, ops)
    finally:
        desk.close()
