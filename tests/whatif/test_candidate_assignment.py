"""The candidate's ``assignment`` (a team's strategy) and ``rotation`` (members in or out of it) sections:
validated as the desk validates the same changes; restating what was in force changes nothing; changing
one team's strategy, or taking one agent out of rotation, re-assigns exactly the tickets computed here
independently (a replay that copied the recorded decisions would report none).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.whatif.desks import TEAMS, LiveDesk, Program, programs
from tests.whatif.test_identity import EXAMPLES, PERIOD, live_desk
from ticketflow.domain import Ticket
from ticketflow.errors import ValidationFailed
from ticketflow.whatif import build_candidate, run_whatif

SUPPORT = "技术支持"


def routings(world: LiveDesk) -> list[tuple[str, str, str | None]]:
    """Each ticket's placement as the live router recorded it, in the order it was made: (ticket, team, agent)."""
    names = {team_id: name for name, team_id in world.teams.items()}
    placed = []
    for n, ticket_id in enumerate(world.tickets):
        assert ticket_id is not None
        routed = next((e for e in world.desk.history(ticket_id) if isinstance(e, Ticket.Routed)), None)
        if routed is not None:
            placed.append((routed.occurred_at, n, str(ticket_id), names[routed.team_id], routed.assignee_id))
    return [(ticket, team, agent) for _, _, ticket, team, agent in sorted(placed)]


def round_robin_changes(world: LiveDesk, team: str, agents: list[str]) -> dict[str, tuple[str | None, str]]:
    """Ticket -> (recorded agent, candidate agent) for each ticket of ``team`` whose agent a round-robin over
    ``agents`` changes: the k-th ticket the router places in the team goes to the k-th agent in id order, wrapping
    round (the candidate changes nothing else the router reads, so the same tickets reach the team in the same order)."""
    ordered = sorted(agents)
    changes = {}
    placed = [(ticket, agent) for ticket, in_team, agent in routings(world) if in_team == team]
    for k, (ticket, recorded) in enumerate(placed):
        chosen = ordered[k % len(ordered)]
        if chosen != recorded:
            changes[ticket] = (recorded, chosen)
    return changes


def reported_changes(report: dict[str, Any]) -> dict[str, tuple[str | None, str]]:
    changed = report["routing"]["changed"]
    assert all(c["recorded"]["team"] == c["candidate"]["team"] for c in changed)  # only agents change
    return {c["ticket"]: (c["recorded"]["agent"], c["candidate"]["agent"]) for c in changed}


def assert_only_agents_change(report: dict[str, Any], expected: dict[str, tuple[str | None, str]]) -> None:
    assert reported_changes(report) == expected
    moves = Counter[str]()
    for was, now in expected.values():
        moves[was or "(unassigned)"] -= 1
        moves[now] += 1
    assert {
        row["agent"]: row["difference"] for row in report["routing"]["per_agent"] if row["difference"]
    } == {agent: n for agent, n in moves.items() if n}
    assert report["newly_breaching"] == report["no_longer_breaching"] == []  # no SLA decision reads the agent
    assert report["escalations"]["recorded"] == report["escalations"]["candidate"]
    assert report["fidelity"]["differing"] == []


def restated(world: LiveDesk, program: Program) -> dict[str, Any]:
    """A candidate that says what was in force: each team's strategy, every member in rotation."""
    return {
        "assignment": [
            {"team_id": team, "strategy": strategy}
            for team, strategy in zip(TEAMS, program.strategies, strict=True)
        ],
        "rotation": [
            {"team_id": str(world.teams[team]), "agent_id": agent, "active": True}
            for team, agents in TEAMS.items()
            for agent in agents
        ],
    }


def assert_restating_what_was_in_force_changes_nothing(world: LiveDesk, program: Program) -> None:
    report = run_whatif(world.desk, PERIOD, restated(world, program))
    assert report["routing"]["changed"] == []
    assert all(row["difference"] == 0 for row in report["routing"]["per_agent"])
    assert report["newly_breaching"] == report["no_longer_breaching"] == []
    assert report["fidelity"]["differing"] == []
    assert report["candidate"]["assignment"] == [
        {"team": t, "strategy": s} for t, s in sorted(zip(TEAMS, program.strategies, strict=True))
    ]


def assert_taking_an_agent_out_of_rotation_moves_exactly_their_share(world: LiveDesk, agent: str) -> int:
    """The team assigns round-robin; the candidate takes ``agent`` out: the number of tickets re-assigned."""
    candidate = {
        "rotation": [{"team_id": SUPPORT, "agent_id": agent, "active": False, "reason": "休假 on leave"}]
    }
    report = run_whatif(world.desk, PERIOD, candidate)
    expected = round_robin_changes(world, SUPPORT, [a for a in TEAMS[SUPPORT] if a != agent])
    assert_only_agents_change(report, expected)
    assert all(now != agent for _, now in expected.values())
    assert report["candidate"]["rotation"] == [{"team": SUPPORT, "agent": agent, "active": False}]
    return len(expected)


# ------------------------------------------------------------------ identity and the converse
@EXAMPLES
@given(programs())
def test_a_candidate_restating_the_strategies_and_rotation_in_force_changes_nothing(program: Program) -> None:
    with live_desk(program) as world:
        assert_restating_what_was_in_force_changes_nothing(world, program)


@EXAMPLES
@given(programs(), st.sampled_from(["least_loaded", "skills"]))
def test_one_teams_changed_strategy_reassigns_exactly_the_tickets_it_should(
    program: Program, strategy: str
) -> None:
    program = replace(program, strategies=(strategy, program.strategies[1]))
    with live_desk(program) as world:
        report = run_whatif(
            world.desk, PERIOD, {"assignment": [{"team_id": SUPPORT, "strategy": "round_robin"}]}
        )
        assert_only_agents_change(report, round_robin_changes(world, SUPPORT, TEAMS[SUPPORT]))
        assert report["candidate"]["assignment"] == [{"team": SUPPORT, "strategy": "round_robin"}]


@EXAMPLES
@given(programs(), st.sampled_from(TEAMS[SUPPORT]))
def test_one_agent_out_of_rotation_reassigns_exactly_the_tickets_it_should(
    program: Program, agent: str
) -> None:
    program = replace(program, strategies=("round_robin", program.strategies[1]))
    with live_desk(program) as world:
        assert_taking_an_agent_out_of_rotation_moves_exactly_their_share(world, agent)


# ------------------------------------------------------------------ validated as the desk validates
TEAM_IDS = {uuid4(): SUPPORT, uuid4(): "账务"}
MEMBERS = {team_id: set(TEAMS[name]) for team_id, name in TEAM_IDS.items()}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"assignment": [{"team_id": SUPPORT, "strategy": "fastest"}]},
            "assignment[0]: strategy: Input should be",
        ),
        (
            {"assignment": [{"team_id": "无此团队", "strategy": "skills"}]},
            "assignment[0].team_id: no team is called",
        ),
        ({"assignment": [{"strategy": "skills"}]}, "assignment[0].team_id: give the team"),
        ({"assignment": [{"team_id": str(uuid4()), "strategy": "skills"}]}, "does not exist"),
        (
            {
                "assignment": [
                    {"team_id": SUPPORT, "strategy": "skills"},
                    {"team_id": SUPPORT, "strategy": "round_robin"},
                ]
            },
            "assignment[1].team_id: team '技术支持' is given twice",
        ),
        (
            {"assignment": [{"team_id": SUPPORT, "strategy": "skills", "expected_version": 3}]},
            "assignment[0].expected_version",
        ),
        ({"assignment": {"team_id": SUPPORT}}, "assignment: expected a list"),
        ({"rotation": [{"team_id": SUPPORT, "agent_id": "li.wei"}]}, "rotation[0].active: give true"),
        (
            {"rotation": [{"team_id": SUPPORT, "agent_id": "wang.fang", "active": False}]},
            "rotation[0].agent_id: wang.fang is not a member of team '技术支持'",
        ),
        ({"rotation": [{"team_id": SUPPORT, "agent_id": "", "active": False}]}, "rotation[0]: agent_id:"),
        (
            {"rotation": [{"team_id": SUPPORT, "agent_id": "li.wei", "active": True, "reason": "回来了"}]},
            "rotation[0]: reason: Extra inputs are not permitted",
        ),
        (
            {"rotation": [{"team_id": SUPPORT, "agent_id": "li.wei", "active": False}] * 2},
            "rotation[1].agent_id: li.wei in team '技术支持' is given twice",
        ),
    ],
)
def test_a_bad_assignment_or_rotation_section_is_refused_naming_the_field(
    data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        build_candidate(data, TEAM_IDS, MEMBERS)
    assert message in str(refused.value)


def test_the_sections_name_teams_by_name_or_id_and_say_what_they_change() -> None:
    support = next(i for i, n in TEAM_IDS.items() if n == SUPPORT)
    candidate = build_candidate(
        {
            "assignment": [{"team_id": "账务", "strategy": "least_loaded"}],
            "rotation": [
                {"team_id": str(support), "agent_id": "li.wei", "active": False, "reason": "休假"},
                {"team_id": SUPPORT, "agent_id": "chen.jie", "active": True},
            ],
        },
        TEAM_IDS,
        MEMBERS,
    )
    billing = next(i for i, n in TEAM_IDS.items() if n == "账务")
    assert candidate.strategies == {billing: "least_loaded"}
    assert candidate.rotation == {support: {"li.wei": False, "chen.jie": True}}
    assert candidate.describe()["rotation"] == [
        {"team": SUPPORT, "agent": "chen.jie", "active": True},
        {"team": SUPPORT, "agent": "li.wei", "active": False},
    ]


def test_an_overlaid_team_is_a_copy_and_the_team_in_force_stays_as_it_was() -> None:
    from ticketflow import metadata
    from ticketflow.domain import Team
    from ticketflow.domain.values import MemberRole
    from ticketflow.whatif.candidate import BEGINNING

    with metadata.recording(metadata.RecordingContext("test", "system", "system", "test", "test", BEGINNING)):
        team = Team(name=SUPPORT, description="")
        for agent in TEAMS[SUPPORT]:
            team.add_member(agent, MemberRole.AGENT, [])
    team.collect_events()
    candidate = build_candidate(
        {
            "assignment": [{"team_id": str(team.id), "strategy": "skills"}],
            "rotation": [{"team_id": str(team.id), "agent_id": "li.wei", "active": False}],
        },
        {team.id: SUPPORT},
        {team.id: set(TEAMS[SUPPORT])},
    )
    other = UUID(int=1)
    teams = {team.id: team, other: team}
    overlaid = candidate.overlay_teams(teams)
    assert overlaid[team.id].strategy == "skills" and overlaid[team.id].active_members() == [
        "chen.jie",
        "emma.clark",
    ]
    assert overlaid[other] is team  # a team the candidate does not name is the one in force
    assert team.strategy == "round_robin" and team.active_members() == sorted(TEAMS[SUPPORT])
    assert candidate.overlay_teams(teams)[team.id] is overlaid[team.id]  # made once per team version


@pytest.mark.parametrize("name", ["rotation.toml", "shanghai-9-18.toml"])
def test_the_readmes_candidate_files_are_valid_for_the_demo_desk(name: str) -> None:
    from pathlib import Path

    from ticketflow.simulation import AGENTS
    from ticketflow.simulation import TEAMS as DEMO_TEAMS
    from ticketflow.whatif import read_candidate_file

    data = read_candidate_file(Path(__file__).parents[2] / "docs" / "whatif" / name)
    ids = {key: uuid4() for key in DEMO_TEAMS}
    candidate = build_candidate(
        data,
        {ids[k]: team[0] for k, team in DEMO_TEAMS.items()},
        {ids[k]: set(AGENTS[k]) for k in DEMO_TEAMS},
    )
    assert candidate.describe() != build_candidate({}, {}).describe()  # the file changes something
