"""What the replay holds: the period's steps wait on disk in business-time order (personal fields
sealed as in the store), and a ticket done with is let go, its outcomes counted."""

from __future__ import annotations

import dataclasses
import os
import random
from datetime import timedelta
from typing import Any

import pytest

from tests.whatif.desks import START
from tests.whatif.test_identity import FIXED, PERIOD, live_desk
from ticketflow.domain import Ticket
from ticketflow.privacy.mapper import SEALED
from ticketflow.whatif import replay as replay_module
from ticketflow.whatif.reading import OPENED
from ticketflow.whatif.replay import Move, Scenario, Timeline, is_decision, read_history, replay
from ticketflow.whatif.report import signature


def unread(event: Any) -> list[str]:
    """The personal fields of an event that the what-if does not read (:data:`ticketflow.whatif.reading.OPENED`)."""
    return [] if type(event) in OPENED else [n for n in type(event).personal_fields if getattr(event, n)]


def without_unread(event: Any) -> Any:
    """The event with each personal field the what-if does not read left out (shown as ``-``)."""
    return dataclasses.replace(event, **dict.fromkeys(unread(event), "-"))


@pytest.mark.parametrize("spill_after", [0, 7, 100_000])
def test_the_timeline_gives_back_each_step_once_in_business_time_order_as_the_store_has_it(
    spill_after: int,
) -> None:
    with live_desk(FIXED) as world:
        # The first three tickets are opened in the period; the others' events come as load moves.
        history = read_history(world.desk, PERIOD.since, START + timedelta(minutes=100), spill_after)
        assert history.timeline.spilled == (spill_after < history.timeline.size)
        items = list(history.timeline)
        inside = [t for t in world.tickets[:3] if t is not None]
        assert set(history.tickets) == set(inside)
        keys = []
        steps: dict[object, list[object]] = {t: [] for t in inside}
        for item in items:
            if isinstance(item, Move):
                keys.append((item.at, item.position, 0))
            else:
                ticket_id, step = item
                keys.append((step.event.occurred_at, step.position, 1))
                steps[ticket_id].append(step.event)
        assert keys == sorted(keys)
        assert any(isinstance(item, Move) for item in items)
        for ticket_id in inside:
            logged = [e for e in world.desk.history(ticket_id) if not is_decision(e)]
            assert signature(map(without_unread, steps[ticket_id])) == signature(map(without_unread, logged))
            assert len(logged) == history.tickets[ticket_id].steps
            for event in steps[ticket_id]:  # the personal fields the what-if does not read: still sealed
                assert all(SEALED in getattr(event, name) for name in unread(event))
        # The ticket's subject (a personal field the routing reads) was kept sealed, and opened again as it came back.
        assert steps[inside[0]][0].subject == "发票金额不对"  # type: ignore[attr-defined]
        assert any(unread(e) for e in steps[inside[0]]), "a reply's body, read by nothing, stays sealed"
        with pytest.raises(ValueError, match="read once"):
            list(history.timeline)


def test_a_timeline_spilled_to_disk_replays_to_the_recorded_decisions() -> None:
    with live_desk(FIXED) as world:
        history = read_history(world.desk, PERIOD.since, PERIOD.until, spill_after=0)
        assert history.timeline.spilled
        recorded = Scenario("recorded", history, None)
        replay(history, [recorded])
        for ticket_id, replayed in recorded.tickets.items():
            logged = [e for e in world.desk.history(ticket_id) if is_decision(e)]
            assert signature(replayed.decisions) == signature(logged)


def test_a_ticket_done_with_is_let_go_and_its_sla_runs_and_escalations_stay_counted() -> None:
    with live_desk(FIXED) as world:
        history = read_history(world.desk, PERIOD.since, PERIOD.until)
        recorded = Scenario("recorded", history, None)
        replay(history, [recorded])
        released = [r for r in recorded.tickets.values() if r.released]
        assert released  # the closed ticket at least
        for replayed in recorded.tickets.values():
            assert replayed.complete
            assert replayed.released == (replayed.next_due is None)
            runs: dict[tuple[str, str], str] = {}
            for event in replayed.decisions:  # live tickets keep their decisions (fidelity compares them)
                if type(event).__name__ == "SlaBreached":
                    runs[(event.metric, event.cycle)] = "breached"  # type: ignore[attr-defined]
                elif type(event).__name__ == "SlaFulfilled":
                    runs.setdefault((event.metric, event.cycle), "met")  # type: ignore[attr-defined]
            assert replayed.runs == runs
            assert replayed.escalations == sum(
                type(e).__name__ in ("PriorityChanged", "Transferred") for e in replayed.decisions
            )
        assert sum(r.escalations for r in recorded.tickets.values()) > 0


def _items_as_values(timeline: Timeline) -> list[tuple[object, ...]]:
    """The timeline's items, in the order it gives them back, as plain comparable values."""
    out: list[tuple[object, ...]] = []
    for item in timeline:
        if isinstance(item, Move):
            out.append(("move", item.at, item.position, item.agent, item.delta, item.team))
        else:
            ticket_id, step = item
            out.append(
                (
                    "step",
                    ticket_id,
                    step.position,
                    step.snapshot,
                    step.tier,
                    step.language,
                    getattr(step.event, "subject", None),
                    *signature([step.event]),
                )
            )
    return out


@pytest.mark.parametrize(("spill_after", "block"), [(0, 512), (3, 2), (7, 512), (40, 3)])
def test_a_timeline_spilled_in_sorted_runs_gives_the_same_items_in_the_same_order_as_one_held(
    spill_after: int, block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(replay_module, "_BLOCK", block)  # runs read back over several blocks
    with live_desk(FIXED) as world:
        desk = world.desk
        added: list[tuple[str, object]] = []
        for notification in desk.recorder.select_notifications(1, 10_000):
            event = desk.mapper.to_domain_event(notification)
            if isinstance(event, Ticket.Event):
                added.append(
                    ("step", (notification, event, notification.id, notification.id % 3, "gold", "zh"))
                )
                added.append(("move", Move(event.occurred_at, notification.id, "agent", +1)))
                added.append(("move", Move(event.occurred_at, notification.id, "other", -1)))
        random.Random(16).shuffle(added)  # added out of business-time order, with ties on time and position
        timelines = [Timeline(desk.mapper.to_domain_event, n) for n in (len(added), spill_after)]
        for timeline in timelines:
            for kind, args in added:
                if kind == "move":
                    timeline.add_move(args)  # type: ignore[arg-type]
                else:
                    timeline.add_step(*args)  # type: ignore[misc]
        held, spilled = timelines
        assert not held.spilled and spilled.spilled and len(spilled._runs) > 1
        expected = _items_as_values(held)
        assert _items_as_values(spilled) == expected
        positions = [args.position if isinstance(args, Move) else args[2] for _, args in added]  # type: ignore[index]
        assert positions != [
            v[2] for v in expected
        ]  # they were added out of order: the runs had sorting to do
        assert "发票金额不对" in [v[6] for v in expected if v[0] == "step"]  # a sealed subject, opened again


def test_a_spilled_timeline_has_no_name_on_disk_even_while_it_is_read() -> None:
    with live_desk(FIXED) as world:
        history = read_history(world.desk, PERIOD.since, PERIOD.until, spill_after=5)
        path = history.timeline._path
        assert history.timeline.spilled and path
        assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))
        items = iter(history.timeline)
        next(items)
        assert not os.path.exists(os.path.dirname(path))
        assert sum(1 for _ in items) == history.timeline.size - 1
