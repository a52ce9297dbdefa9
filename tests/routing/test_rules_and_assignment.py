"""Routing rules (first match wins, CJK keywords, default team) and assignment strategies."""

from __future__ import annotations

from uuid import uuid4

import pytest

from ticketflow.errors import ValidationFailed
from ticketflow.routing.assignment import Strategy, choose, least_loaded, round_robin, skills_based
from ticketflow.routing.rules import Rule, TicketFacts, check_rules, decide

BILLING, TECH, VIP, DEFAULT = uuid4(), uuid4(), uuid4(), uuid4()

RULES = check_rules([
    Rule("vip first", VIP, tiers=frozenset({"vip"}), set_priority="high", add_tags=("vip",)),
    Rule("invoices", BILLING, keywords=("发票", "invoice", "refund")),
    Rule("chinese incidents", TECH, ticket_types=frozenset({"incident"}), languages=frozenset({"zh"})),
])


def facts(**overrides: str | None) -> TicketFacts:
    base: dict[str, str | None] = {
        "ticket_type": "inquiry", "category": "general", "channel": "email", "priority": "normal",
        "text": "Question", "tier": "standard", "language": "en-GB",
    }
    base.update(overrides)
    return TicketFacts(**base)  # type: ignore[arg-type]


def test_the_first_matching_rule_wins_and_says_which_it_was() -> None:
    decision = decide(RULES, DEFAULT, facts(tier="vip", text="发票金额不对"))
    assert (decision.team_id, decision.rule, decision.set_priority, decision.add_tags) == (VIP, "vip first", "high", ("vip",))


def test_chinese_keywords_match_text_without_spaces_and_case_is_ignored() -> None:
    assert decide(RULES, DEFAULT, facts(text="请问发票什么时候开")).team_id == BILLING
    assert decide(RULES, DEFAULT, facts(text="Where is my REFUND?")).team_id == BILLING


def test_languages_match_by_prefix_and_all_conditions_must_hold() -> None:
    assert decide(RULES, DEFAULT, facts(ticket_type="incident", language="zh-CN")).team_id == TECH
    assert decide(RULES, DEFAULT, facts(ticket_type="incident", language="en-GB")).team_id == DEFAULT
    assert decide(RULES, DEFAULT, facts(ticket_type="inquiry", language="zh-CN")).team_id == DEFAULT


def test_the_default_team_catches_the_rest() -> None:
    decision = decide(RULES, DEFAULT, facts())
    assert (decision.team_id, decision.rule) == (DEFAULT, None)


def test_rules_round_trip_through_their_stored_form_and_bad_rules_are_refused() -> None:
    assert [Rule.from_dict(r.to_dict()) for r in RULES] == RULES
    with pytest.raises(ValidationFailed, match="unknown routing rule field"):
        Rule.from_dict({"name": "x", "team_id": str(TECH), "colour": ["red"]})
    with pytest.raises(ValidationFailed, match="incomplete or malformed"):
        Rule.from_dict({"name": "x"})
    with pytest.raises(ValidationFailed, match="unique"):
        check_rules([RULES[0], RULES[0]])


def test_round_robin_cycles_through_agents_in_order() -> None:
    agents = ["li.wei", "emma.clark", "chen.jie"]
    picks, last = [], None
    for _ in range(4):
        last = round_robin(agents, last)
        picks.append(last)
    assert picks == ["chen.jie", "emma.clark", "li.wei", "chen.jie"]
    assert round_robin([], None) is None
    assert round_robin(agents, "gone.agent") == "li.wei"  # the last one left the rotation


def test_least_loaded_takes_the_fewest_open_tickets_ties_by_id() -> None:
    assert least_loaded(["a", "b", "c"], {"a": 3, "b": 1, "c": 1}) == "b"
    assert least_loaded(["a", "b"], {}) == "a"


def test_skills_based_prefers_matching_skills_then_load() -> None:
    skills = {"li.wei": {"network", "中文"}, "emma.clark": {"network"}, "omar": {"billing"}}
    assert skills_based(skills, {"network", "中文"}, {}) == "li.wei"
    assert skills_based(skills, {"network"}, {"li.wei": 5, "emma.clark": 1}) == "emma.clark"
    assert skills_based(skills, {"unknown"}, {"li.wei": 1, "emma.clark": 2, "omar": 0}) == "omar"


def test_only_active_members_are_chosen() -> None:
    members = {
        "li.wei": {"active": False, "skills": ["network"]},
        "emma.clark": {"active": True, "skills": []},
    }
    for strategy in Strategy:
        assert choose(strategy, members, wanted_skills={"network"}) == "emma.clark"
    assert choose(Strategy.ROUND_ROBIN, {"x": {"active": False}}) is None
