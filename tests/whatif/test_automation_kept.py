"""Auto-closes, follow-ups (回访) and reminders fired, recorded vs candidate, side by side; and the SLA
clocks' last look is the latest ticket event, not a policy defined long after the tickets."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest

from tests.whatif.desks import ADMIN, START, LiveDesk, Sla, Step, routing_rules, sla_policy
from tests.whatif.test_identity import FIXED, PERIOD, live_desk
from ticketflow.commands.workflow import DefineSlaPolicy, ScheduleReminder
from ticketflow.domain import Reminder, Ticket
from ticketflow.whatif import run_whatif, to_json
from ticketflow.whatif.replay import AUTOMATION, can_fork

# Ticket 0 (发票, routed to 账务) solved at minute 710; then the desk's automation runs for 8 more days.
SOLVED_EARLY = replace(FIXED, steps=[*FIXED.steps, Step(710, 0, "solve", 4)])


def _later(world: LiveDesk) -> None:
    ticket = world.tickets[2]
    assert ticket is not None
    staff = ADMIN
    world.desk.schedule_reminder(
        ScheduleReminder(
            ticket_id=ticket, agent_id="emma.clark", due_at=START + timedelta(days=1), note="回电"
        ),
        staff,
    )
    for days in (1, 4, 8):
        world.at(START + timedelta(days=days, hours=1), lambda: None)


def _recorded_counts(world: LiveDesk) -> tuple[int, Counter[str], Counter[str]]:
    closes, follow_ups, fired = 0, Counter[str](), Counter[str]()
    for notification in world.desk.recorder.select_notifications(1, 10**6):
        event = world.desk.mapper.to_domain_event(notification)
        if isinstance(event, Ticket.Closed) and event.actor_id == AUTOMATION:
            closes += 1
        elif isinstance(event, Reminder.Scheduled) and event.kind == "follow_up":
            follow_ups[event.agent_id or "(unassigned)"] += 1
        elif isinstance(event, Reminder.Fired):
            fired[event.agent_id or "(unassigned)"] += 1
    return closes, follow_ups, fired


def test_auto_closes_follow_ups_and_reminders_follow_the_ticket_to_its_candidate_team() -> None:
    with live_desk(SOLVED_EARLY) as world:
        _later(world)
        closes, follow_ups, fired = _recorded_counts(world)
        assert closes >= 1 and follow_ups and fired  # the desk did each of them
        rules = routing_rules(world.teams)
        rules["rules"][0]["team_id"] = str(world.teams["技术支持"])  # 发票 to technical support
        # ... and a breach no longer transfers the ticket to 账务 (the same policy, without that escalation)
        candidate = {"routing": rules, "sla_policies": [sla_policy(FIXED.sla, world.calendar_id, None)]}
        report = run_whatif(world.desk, PERIOD, candidate, processes=1)
        kept = report["automation"]
        assert kept["auto_closes"]["recorded"] == kept["auto_closes"]["candidate"] == closes
        recorded_teams = {r["team"]: r["recorded"] for r in kept["auto_closes"]["per_team"]}
        candidate_teams = {r["team"]: r["candidate"] for r in kept["auto_closes"]["per_team"]}
        assert recorded_teams.get("账务", 0) >= 1
        assert candidate_teams.get("账务", 0) == 0  # ticket 0 would have been 技术支持's
        assert sum(candidate_teams.values()) == closes
        agents = {r["agent"]: r["recorded"] for r in kept["follow_ups"]["per_agent"] if r["recorded"]}
        assert agents == dict(follow_ups)
        assert {
            r["agent"]: r["recorded"] for r in kept["reminders_fired"]["per_agent"] if r["recorded"]
        } == dict(fired)
        assert (
            kept["reminders_fired"]["candidate"] == kept["reminders_fired"]["recorded"] == sum(fired.values())
        )
        moved = {r["team"]: (r["recorded"], r["candidate"]) for r in kept["follow_ups"]["per_team"]}
        assert moved["账务"][1] < moved["账务"][0] and moved["技术支持"][1] > moved["技术支持"][0]
        by_agent = {r["agent"]: (r["recorded"], r["candidate"]) for r in kept["follow_ups"]["per_agent"]}
        assert by_agent["liu.yang"] == (1, 0)  # ticket 0's follow-up goes to whoever holds it in 技术支持
        assert any("Auto-closes" in line for line in report["semantics"])
        if can_fork():
            assert to_json(run_whatif(world.desk, PERIOD, candidate, processes=2)) == to_json(report)


def test_a_policy_defined_long_after_the_tickets_does_not_stretch_their_clocks() -> None:
    with live_desk(FIXED) as world:
        before = run_whatif(world.desk, PERIOD, {}, processes=1)
        world.clock.set(START + timedelta(days=400))
        sla = Sla(
            {"first_reply_time": 5, "next_reply_time": 5, "resolution_time": 5}, False, 70, False, False
        )
        policy = sla_policy(sla, None, None)
        policy["name"] = "later"
        world.desk.define_sla_policy(DefineSlaPolicy.model_validate(policy), ADMIN)
        after = run_whatif(world.desk, PERIOD, {}, processes=1)
    assert after["as_of"] == before["as_of"]
    assert after["as_of"] < (START + timedelta(days=30)).isoformat()
    for key in ("sla", "sla_totals", "newly_breaching", "no_longer_breaching", "routing", "automation"):
        assert after[key] == before[key], key


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
