"""The workflow commands on the desk: policies are versioned, decisions cite them, guards hold."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import GiveConsent, OpenTicket, SolveTicket
from ticketflow.commands.workflow import (
    AnswerSurvey, ApplySla, DefineCalendar, DefineSlaPolicy, IssueSurvey, PublishRoutingRules, RecordResolution,
    RecordSlaEvent, RetireSlaPolicy, RouteTicket, SetAssignmentStrategy, SubscribeWebhook,
)
from ticketflow.domain import Ticket
from ticketflow.domain.values import Channel, Role
from ticketflow.errors import PermissionDenied, RuleViolation, ValidationFailed
from ticketflow.metadata import Caller
from tests.support import ADMIN, AGENT, Desk

SYSTEM = Caller("automation", Role.SYSTEM, Channel.SYSTEM)


def publish(desk: TicketDesk, setup: Desk, **extra: object) -> None:
    desk.publish_routing_rules(
        PublishRoutingRules.model_validate({
            "rules": [{"name": "发票到财务", "team_id": setup.other_team_id, "keywords": ["发票"], "set_priority": "high"}],
            "default_team_id": setup.team_id,
            **extra,
        }),
        ADMIN,
    )


def open_unplaced(setup: Desk, subject: str) -> object:
    return setup.app.open_ticket(OpenTicket(subject=subject, requester_id=setup.customer_id), setup.customer_caller).object_id


def test_a_chinese_keyword_rule_routes_the_ticket_and_the_decision_cites_rule_and_version(desk: TicketDesk, setup: Desk) -> None:
    publish(desk, setup)
    ticket_id = open_unplaced(setup, "请重开发票")
    desk.route_ticket(RouteTicket(ticket_id=ticket_id), SYSTEM)
    ticket = desk.get_ticket(ticket_id)
    routed = [e for e in desk.history(ticket_id) if isinstance(e, Ticket.Routed)][0]
    assert (ticket.team_id, ticket.assignee_id, ticket.priority) == (setup.other_team_id, "wang.fang", "high")
    assert (routed.rule, routed.policy_version, routed.strategy) == ("发票到财务", 1, "round_robin")
    assert ticket.status == "open"


def test_no_matching_rule_goes_to_the_default_team_and_routing_twice_is_refused(desk: TicketDesk, setup: Desk) -> None:
    publish(desk, setup)
    ticket_id = open_unplaced(setup, "cannot log in")
    desk.route_ticket(RouteTicket(ticket_id=ticket_id), SYSTEM)
    assert desk.get_ticket(ticket_id).team_id == setup.team_id
    with pytest.raises(RuleViolation, match="already routed"):
        desk.route_ticket(RouteTicket(ticket_id=ticket_id), SYSTEM)


def test_round_robin_follows_the_last_assigned_and_least_loaded_uses_the_given_loads(desk: TicketDesk, setup: Desk) -> None:
    publish(desk, setup)
    first = open_unplaced(setup, "a")
    desk.route_ticket(RouteTicket(ticket_id=first), SYSTEM, last_assigned={setup.team_id: "emma.clark"})
    assert desk.get_ticket(first).assignee_id == "li.wei"
    desk.set_assignment_strategy(SetAssignmentStrategy(team_id=setup.team_id, strategy="least_loaded"), ADMIN)
    second = open_unplaced(setup, "b")
    desk.route_ticket(RouteTicket(ticket_id=second), SYSTEM, open_tickets={"li.wei": 3, "emma.clark": 1})
    assert desk.get_ticket(second).assignee_id == "emma.clark"


def test_a_hand_assignment_wins_over_the_router(desk: TicketDesk, setup: Desk) -> None:
    from ticketflow.commands import AssignTicket

    publish(desk, setup)
    ticket_id = setup.open()
    desk.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="emma.clark"), AGENT)
    with pytest.raises(RuleViolation, match="assigned or transferred by hand"):
        desk.route_ticket(RouteTicket(ticket_id=ticket_id), SYSTEM)


def test_routing_rules_are_versioned_and_an_old_version_stays_readable(desk: TicketDesk, setup: Desk) -> None:
    publish(desk, setup)
    desk.publish_routing_rules(PublishRoutingRules(rules=[], default_team_id=setup.other_team_id, note="all to billing"), ADMIN)
    assert desk.routing_policy().version == 2
    assert desk.routing_policy(version=1).rules[0]["name"] == "发票到财务"
    with pytest.raises(PermissionDenied):
        desk.publish_routing_rules(PublishRoutingRules(rules=[], default_team_id=setup.team_id), AGENT)


def define_policy(desk: TicketDesk, minutes: int = 60, **extra: object) -> None:
    calendar = desk.define_calendar(
        DefineCalendar(name="上海工作日", timezone="Asia/Shanghai", weekly={str(d): [("09:00", "18:00")] for d in range(5)},
                       holidays=["2026-10-01"]),
        ADMIN,
    )
    desk.define_sla_policy(
        DefineSlaPolicy.model_validate({
            "name": "standard", "position": 10, "calendar_id": calendar.object_id,
            "targets": {p: {"first_reply_time": {"minutes": minutes}, "resolution_time": {"minutes": 24 * 60}}
                        for p in ("low", "normal", "high", "urgent")},
            "escalation": {"raise_priority": True},
            **extra,
        }),
        ADMIN,
    )


def test_apply_sla_records_the_policy_version_targets_and_calendar(desk: TicketDesk, setup: Desk) -> None:
    define_policy(desk)
    ticket_id = setup.open()
    desk.apply_sla(ApplySla(ticket_id=ticket_id), SYSTEM)
    sla = desk.get_ticket(ticket_id).sla
    assert sla["policy_name"] == "standard" and sla["policy_version"] == 1
    assert sla["calendar"]["timezone"] == "Asia/Shanghai" and sla["calendar"]["holidays"] == ["2026-10-01"]
    with pytest.raises(RuleViolation, match="already measured"):
        desk.apply_sla(ApplySla(ticket_id=ticket_id), SYSTEM)
    define_policy(desk, minutes=30)  # a revision: version 2 applies from the ticket's next update
    desk.apply_sla(ApplySla(ticket_id=ticket_id), SYSTEM)
    assert desk.get_ticket(ticket_id).sla["policy_version"] == 2


def test_the_sla_terms_a_ticket_would_get_follow_every_policy_and_calendar_change(desk: TicketDesk, setup: Desk) -> None:
    # The policies are kept between looks (the SLA clock asks for every ticket): each change must still show.
    ticket = desk.get_ticket(setup.open())
    assert desk.matching_sla_terms(ticket) is None
    define_policy(desk)
    terms = desk.matching_sla_terms(ticket)
    assert terms is not None and (terms["policy_version"], terms["calendar_version"]) == (1, 1)
    desk.define_calendar(
        DefineCalendar(name="上海工作日", timezone="Asia/Shanghai", weekly={str(d): [("08:00", "20:00")] for d in range(6)}),
        ADMIN,
    )
    terms = desk.matching_sla_terms(ticket)
    assert terms is not None and terms["calendar_version"] == 2 and terms["calendar"]["weekly"]["5"] == [["08:00", "20:00"]]
    define_policy(desk, minutes=30)
    terms = desk.matching_sla_terms(ticket)
    assert terms is not None and terms["policy_version"] == 2
    assert terms["targets"]["normal"]["first_reply_time"]["minutes"] == 30
    desk.retire_sla_policy(RetireSlaPolicy(policy_id=terms["policy_id"], reason="replaced"), ADMIN)
    assert desk.matching_sla_terms(ticket) is None and desk.sla_policies()[0].retired


def test_inside_a_batch_the_sla_terms_follow_a_policy_revised_earlier_in_the_batch(desk: TicketDesk, setup: Desk) -> None:
    define_policy(desk)
    ticket = desk.get_ticket(setup.open())
    assert desk.matching_sla_terms(ticket)["policy_version"] == 1  # type: ignore[index]
    with desk.batch():
        define_policy(desk, minutes=30)  # not stored until the block ends
        assert desk.matching_sla_terms(ticket)["policy_version"] == 2  # type: ignore[index]
        assert [p.version for p in desk.sla_policies()] == [2]
    assert desk.matching_sla_terms(ticket)["policy_version"] == 2  # type: ignore[index]


def test_a_pinned_run_of_looks_takes_the_policies_as_they_were_at_its_start(desk: TicketDesk, setup: Desk) -> None:
    # The SLA clock pins the policies for a pass: a change made meanwhile is seen by the next pass.
    define_policy(desk)
    ticket = desk.get_ticket(setup.open())
    with desk.pinned_sla_snapshot():
        define_policy(desk, minutes=30)
        assert desk.matching_sla_terms(ticket)["policy_version"] == 1  # type: ignore[index]
        assert [p.version for p in desk.sla_policies()] == [1]
    assert desk.matching_sla_terms(ticket)["policy_version"] == 2  # type: ignore[index]


def test_a_pin_holds_only_in_its_own_thread(desk: TicketDesk, setup: Desk) -> None:
    define_policy(desk)
    ticket = desk.get_ticket(setup.open())
    seen: list[int] = []
    with desk.pinned_sla_snapshot():
        define_policy(desk, minutes=30)
        other = threading.Thread(target=lambda: seen.append(desk.matching_sla_terms(ticket)["policy_version"]))  # type: ignore[index]
        other.start()
        other.join()
    assert seen == [2]


def test_an_sla_breach_is_recorded_once_and_escalates_the_priority(desk: TicketDesk, setup: Desk, clock: FakeClock) -> None:
    define_policy(desk)
    ticket_id = setup.open()
    desk.apply_sla(ApplySla(ticket_id=ticket_id), SYSTEM)
    breach = RecordSlaEvent(ticket_id=ticket_id, kind="breached", metric="first_reply_time", cycle="c1", moment=clock.now())
    desk.record_sla_event(breach, SYSTEM)
    assert desk.get_ticket(ticket_id).priority == "high"
    with pytest.raises(RuleViolation, match="already recorded"):
        desk.record_sla_event(breach.model_copy(update={"command_id": breach.command_id.__class__(int=7)}), SYSTEM)


def test_a_survey_is_answered_once_by_its_token_and_refused_when_late(desk: TicketDesk, setup: Desk, clock: FakeClock) -> None:
    from ticketflow.domain.values import Consent

    desk.give_consent(GiveConsent(customer_id=setup.customer_id, purpose=Consent.SURVEYS), setup.customer_caller)
    ticket_id = setup.open()
    desk.solve_ticket(SolveTicket(ticket_id=ticket_id, resolution="重置了密码"), AGENT)
    _, token = desk.issue_survey(IssueSurvey(ticket_id=ticket_id), SYSTEM)
    assert token is not None
    with pytest.raises(ValidationFailed, match="not valid"):
        desk.answer_survey(AnswerSurvey(token=token[:-1] + ("1" if token.endswith("0") else "0"), score=5), SYSTEM)
    desk.answer_survey(AnswerSurvey(token=token, score=4, comment="很快"), SYSTEM)
    assert desk.get_ticket(ticket_id).satisfaction == {"score": 4, "comment": "很快"}
    with pytest.raises(RuleViolation, match="already answered"):
        desk.answer_survey(AnswerSurvey(token=token, score=1), SYSTEM)
    other = setup.open()
    desk.solve_ticket(SolveTicket(ticket_id=other), AGENT)
    _, late = desk.issue_survey(IssueSurvey(ticket_id=other), SYSTEM)
    clock.advance(timedelta(days=15))
    with pytest.raises(RuleViolation, match="expired"):
        desk.answer_survey(AnswerSurvey(token=late, score=3), SYSTEM)


def test_no_survey_without_the_customers_consent(desk: TicketDesk, setup: Desk) -> None:
    ticket_id = setup.open()
    desk.solve_ticket(SolveTicket(ticket_id=ticket_id), AGENT)
    with pytest.raises(RuleViolation, match="consented"):
        desk.issue_survey(IssueSurvey(ticket_id=ticket_id), SYSTEM)


def test_a_resolution_summary_is_kept_for_solved_tickets_only(desk: TicketDesk, setup: Desk) -> None:
    ticket_id = setup.open()
    with pytest.raises(RuleViolation):
        desk.record_resolution(RecordResolution(ticket_id=ticket_id, summary="清除缓存后可登录"), AGENT)
    desk.solve_ticket(SolveTicket(ticket_id=ticket_id), AGENT)
    desk.record_resolution(RecordResolution(ticket_id=ticket_id, summary="清除缓存后可登录"), AGENT)
    assert desk.get_ticket(ticket_id).resolution_summary == "清除缓存后可登录"


def test_a_webhook_secret_is_derived_not_stored(desk: TicketDesk) -> None:
    result, secret = desk.subscribe_webhook(
        SubscribeWebhook(name="crm", url="http://127.0.0.1:9/hook", event_types=["Ticket.Opened"]), ADMIN
    )
    assert secret == desk.webhook_secret(result.object_id)
    assert all(secret not in repr(e) for e in desk.history(result.object_id))


def test_a_survey_token_with_foreign_characters_is_refused_not_a_crash(desk: TicketDesk) -> None:
    with pytest.raises(ValidationFailed, match="not valid"):
        desk.answer_survey(AnswerSurvey(token="sv_" + "0" * 64 + "_é" * 4, score=5), SYSTEM)
