"""The two scenarios replayed at once in two processes (this one and a forked one) give the same
report, byte for byte, as replayed one after the other in one process; so does a timeline spilled to
disk, read by both and left nowhere behind."""

from __future__ import annotations

import os

import pytest

from tests.whatif.desks import Sla, routing_rules, sla_policy
from tests.whatif.test_identity import FIXED, PERIOD, live_desk
from ticketflow.config import Settings
from ticketflow.whatif import build_candidate, run_whatif, to_json
from ticketflow.whatif.replay import Scenario, can_fork, known_keys_only, read_history, replay, replay_apart

pytestmark = pytest.mark.skipif(not can_fork(), reason="this system cannot fork")


def candidate_of(world) -> dict:  # type: ignore[no-untyped-def, type-arg]
    """Another first-reply target on the business calendar, and other routing rules."""
    sla = Sla({**FIXED.sla.minutes, "first_reply_time": 600}, True, 70, True, True)
    return {
        "sla_policies": [sla_policy(sla, world.calendar_id, world.teams["账务"])],
        "routing": routing_rules(world.teams),
    }


def test_the_report_is_byte_identical_replayed_in_two_processes_or_one(
    shared_store_settings: Settings,
) -> None:
    with live_desk(FIXED, shared_store_settings) as world:
        candidate = candidate_of(world)
        told: list[tuple[int, int]] = []
        apart = run_whatif(
            world.desk, PERIOD, candidate, processes=2, progress=lambda d, t: told.append((d, t))
        )
        together = run_whatif(world.desk, PERIOD, candidate, processes=1)
        assert to_json(apart) == to_json(together)
        assert together["no_longer_breaching"] != [] and together["fidelity"]["differing"] == []
        total = len(world.tickets)
        assert told[0] == (0, total) and told[-1] == (total, total)
        assert [done for done, _ in told] == sorted(done for done, _ in told)


def test_a_spilled_timeline_is_read_by_both_processes_and_no_file_is_left() -> None:
    with live_desk(FIXED) as world:
        teams = {
            i: t.name
            for i, t in read_history(world.desk, PERIOD.since, PERIOD.until)
            .policies.snapshots[-1]
            .teams.items()
        }
        outcomes = []
        for apart in (False, True):
            history = read_history(world.desk, PERIOD.since, PERIOD.until, spill_after=0)
            assert history.timeline.spilled
            path = history.timeline._path
            final = history.policies.snapshots[-1].teams
            candidate = build_candidate(
                candidate_of(world), teams, {i: set(t.members) for i, t in final.items()}
            )
            recorded, proposed = (
                Scenario("recorded", history, None),
                Scenario("candidate", history, candidate),
            )
            if apart:
                replay_apart(history, recorded, proposed, in_child=lambda: known_keys_only(world.desk))
            else:
                replay(history, [recorded, proposed])
            assert not os.path.exists(path) and not os.path.exists(os.path.dirname(path))
            outcomes.append(
                (
                    {
                        i: [(type(e).__name__, e.occurred_at) for e in r.decisions]
                        for i, r in recorded.tickets.items()
                    },
                    {i: r.outcome() for i, r in proposed.tickets.items()},
                )
            )
        assert outcomes[0] == outcomes[1]
        assert any(o[0] for o in outcomes[1][1].values())  # the candidate decided SLA runs


def test_a_failure_in_the_other_process_is_raised_here() -> None:
    with live_desk(FIXED) as world:
        history = read_history(world.desk, PERIOD.since, PERIOD.until)

        def fail() -> None:
            raise OSError("no more room")

        recorded, proposed = Scenario("recorded", history, None), Scenario("candidate", history, None)
        with pytest.raises(
            RuntimeError, match="candidate scenario's replay failed in its process: OSError: no more room"
        ):
            replay_apart(history, recorded, proposed, in_child=fail)


def test_the_childs_answer_is_read_through_a_descriptor_numbered_above_1023() -> None:
    """A server holding many connections hands out descriptors past select()'s 1024 limit."""
    import resource

    from ticketflow.whatif.replay import _drain

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    high = 1500
    if hard != resource.RLIM_INFINITY and hard <= high:
        pytest.skip(f"the descriptor limit ({hard}) is below {high + 1}")
    if soft != resource.RLIM_INFINITY and soft <= high:
        resource.setrlimit(resource.RLIMIT_NOFILE, (high + 1, hard))
    read_end, write_end = os.pipe()
    try:
        os.dup2(read_end, high)
        os.write(write_end, b"the report")
        received = bytearray()
        assert _drain(high, received, 1.0) is False  # all there is so far; the child has not closed its end
        os.close(write_end)
        write_end = -1
        assert _drain(high, received, 1.0) is True
        assert bytes(received) == b"the report"
    finally:
        for fd in (read_end, write_end, high):
            if fd >= 0:
                os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
