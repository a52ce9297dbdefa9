"""The automation loop on a fake clock: routing, SLA clocks, surveys, follow-ups, auto-close, reminders.

Nothing sleeps: the clock moves when a test moves it, and each pass is ``settle()``:
views catch up, the automation does what is due, until nothing is left to do.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from projections.automation import Automation
from projections.readside import ReadSide
from projections.workflow import due_work, failed_work, sla_clocks, sla_compliance
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import (
    AssignTicket, DeactivateTeamMember, GiveConsent, OpenTicket, PendTicket, PostReply, SolveTicket,
)
from ticketflow.commands.workflow import DefineCalendar, DefineSlaPolicy, PublishRoutingRules, ScheduleReminder
from ticketflow.config import Settings
from ticketflow.domain import Reminder, Ticket
from ticketflow.domain.values import Consent, Direction, Status
from tests.support import ADMIN, AGENT, Desk

MONDAY_9_SHANGHAI = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Asia/Shanghai


class World:
    def __init__(self, desk: TicketDesk, clock: FakeClock) -> None:
        self.desk, self.clock = desk, clock
        self.setup = Desk(desk)
        self.read_side = ReadSide(desk)
        self.automation = Automation(desk, self.read_side)

    def settle(self) -> None:
        for _ in range(20):
            self.read_side.catch_up()
            if sum(self.automation.run_once().values()) == 0:
                return
        raise AssertionError("automation did not settle")

    def open(self, subject: str = "无法登录", team: bool = False) -> UUID:
        return self.desk.open_ticket(
            OpenTicket(subject=subject, requester_id=self.setup.customer_id, team_id=self.setup.team_id if team else None),
            self.setup.customer_caller,
        ).object_id

    def events(self, ticket_id: UUID, cls: type) -> list:
        return [e for e in self.desk.history(ticket_id) if isinstance(e, cls)]



def publish_rules(w: World) -> None:
    w.desk.publish_routing_rules(PublishRoutingRules.model_validate({
        "rules": [{"name": "invoices", "team_id": w.setup.other_team_id, "keywords": ["发票"]}],
        "default_team_id": w.setup.team_id,
    }), ADMIN)


def define_sla(w: World, first_reply_minutes: int = 60, **extra: object) -> None:
    calendar = w.desk.define_calendar(DefineCalendar(
        name="上海", timezone="Asia/Shanghai", weekly={str(d): [("09:00", "18:00")] for d in range(5)},
        holidays=["2026-03-03"],
    ), ADMIN)
    w.desk.define_sla_policy(DefineSlaPolicy.model_validate({
        "name": "standard", "position": 1, "calendar_id": calendar.object_id,
        "targets": {p: {"first_reply_time": {"minutes": first_reply_minutes},
                        "resolution_time": {"minutes": 8 * 60}} for p in ("low", "normal", "high", "urgent")},
        **extra,
    }), ADMIN)


def test_new_tickets_are_routed_by_rule_and_round_robin_inside_the_team(world: World) -> None:
    publish_rules(world)
    tickets = [world.open("登录失败") for _ in range(4)] + [world.open("发票抬头错了")]
    world.settle()
    assignees = [world.desk.get_ticket(t).assignee_id for t in tickets]
    assert assignees[:4] == ["emma.clark", "li.wei", "emma.clark", "li.wei"]
    assert world.desk.get_ticket(tickets[4]).team_id == world.setup.other_team_id
    assert all(len(world.events(t, Ticket.Routed)) == 1 for t in tickets)


def test_a_desk_without_routing_rules_leaves_new_tickets_to_dispatch_by_hand_without_a_command_each(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_router(*_: object, **__: object) -> None:
        raise AssertionError("the router ran a command on a desk without routing rules")

    monkeypatch.setattr(world.desk, "route_ticket", no_router)
    tickets = [world.open("登录失败") for _ in range(3)]
    world.settle()
    assert all(world.desk.get_ticket(t).assignee_id is None for t in tickets)
    assert all(world.events(t, Ticket.Routed) == [] for t in tickets)
    assert world.read_side.read("workflow", failed_work) == []  # not set aside: done
    assert world.read_side.read("workflow", lambda db: due_work(db, "route", "9999")) == []


def test_an_agent_on_leave_gets_no_new_tickets(world: World) -> None:
    publish_rules(world)
    world.desk.deactivate_team_member(DeactivateTeamMember(team_id=world.setup.team_id, agent_id="emma.clark", reason="年假"), ADMIN)
    tickets = [world.open() for _ in range(3)]
    world.settle()
    assert {world.desk.get_ticket(t).assignee_id for t in tickets} == {"li.wei"}


def test_a_ticket_assigned_by_hand_before_the_router_runs_keeps_its_agent(world: World) -> None:
    publish_rules(world)
    ticket_id = world.open(team=True)
    world.desk.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="emma.clark"), AGENT)
    world.settle()
    assert world.desk.get_ticket(ticket_id).assignee_id == "emma.clark"
    assert world.events(ticket_id, Ticket.Routed) == []


def test_a_ticket_opened_by_another_process_is_routed(shared_store_settings: Settings) -> None:
    clock = FakeClock(MONDAY_9_SHANGHAI)
    router_desk = TicketDesk(shared_store_settings, clock=clock)
    api_desk = TicketDesk(shared_store_settings, clock=clock)
    try:
        setup = Desk(api_desk)
        publish = PublishRoutingRules(rules=[], default_team_id=setup.team_id)
        api_desk.publish_routing_rules(publish, ADMIN)
        ticket_id = setup.open()
        read_side = ReadSide(router_desk)
        automation = Automation(router_desk, read_side)
        read_side.catch_up()
        assert automation.run_once()["routed"] == 1
        assert api_desk.get_ticket(ticket_id).assignee_id == "emma.clark"
        read_side.close()
    finally:
        router_desk.close()
        api_desk.close()


def test_routing_the_same_ticket_twice_after_a_crash_writes_nothing_more(world: World) -> None:
    publish_rules(world)
    ticket_id = world.open()
    world.read_side.catch_up()
    stale = world.read_side.read("workflow", lambda db: db.all("SELECT * FROM {p}tf_work WHERE kind = 'route'"))
    world.settle()
    version = world.desk.get_ticket(ticket_id).version
    world.automation._act(stale[0], lambda: world.automation.route())  # the crashed pass, done again
    from ticketflow.commands.workflow import RouteTicket
    from projections.automation import SYSTEM, command_id
    result = world.desk.route_ticket(RouteTicket(ticket_id=ticket_id, command_id=command_id("route", ticket_id)), SYSTEM)
    assert result.replayed and world.desk.get_ticket(ticket_id).version == version


def test_first_reply_warning_and_breach_are_recorded_once_in_business_hours(world: World) -> None:
    define_sla(world, first_reply_minutes=60, escalation={"raise_priority": True})
    ticket_id = world.open(team=True)
    world.settle()
    assert world.desk.get_ticket(ticket_id).sla["policy_name"] == "standard"
    world.clock.advance(timedelta(minutes=47))
    world.settle()
    assert len(world.events(ticket_id, Ticket.SlaWarned)) == 0
    world.clock.advance(timedelta(minutes=2))  # 49 minutes > 80% of 60
    world.settle()
    assert len(world.events(ticket_id, Ticket.SlaWarned)) == 1
    world.clock.advance(timedelta(minutes=30))
    world.settle()
    world.settle()
    breached = world.events(ticket_id, Ticket.SlaBreached)
    assert [(b.metric, b.due_at) for b in breached] == [("first_reply_time", MONDAY_9_SHANGHAI + timedelta(hours=1))]
    assert world.desk.get_ticket(ticket_id).priority == "high"  # escalated
    assert len(world.events(ticket_id, Ticket.SlaWarned)) == 1


def test_the_clock_stops_overnight_and_on_holidays(world: World) -> None:
    define_sla(world, first_reply_minutes=120)
    world.clock.set(datetime(2026, 3, 2, 9, 30, tzinfo=UTC))  # 17:30 Monday in Shanghai
    ticket_id = world.open(team=True)
    world.settle()
    # 30 minutes on Monday; Tuesday is a holiday; the remaining 90 minutes run on Wednesday from 09:00
    clocks = world.read_side.read("workflow", lambda db: sla_clocks(db, str(ticket_id)))
    first = next(c for c in clocks if c["metric"] == "first_reply_time")
    assert first["due_at"].startswith("2026-03-04T02:30")  # 10:30 Wednesday in Shanghai
    world.clock.set(datetime(2026, 3, 4, 2, 29, tzinfo=UTC))
    world.settle()
    assert world.events(ticket_id, Ticket.SlaBreached) == []


def test_a_reply_in_time_is_fulfilled_once_and_counts_toward_compliance(world: World) -> None:
    define_sla(world)
    ticket_id = world.open(team=True)
    world.settle()
    world.clock.advance(timedelta(minutes=20))
    world.desk.post_reply(PostReply(ticket_id=ticket_id, body="正在处理", direction=Direction.OUTBOUND), AGENT)
    world.settle()
    world.settle()
    fulfilled = world.events(ticket_id, Ticket.SlaFulfilled)
    assert [(f.metric, f.elapsed_minutes) for f in fulfilled] == [("first_reply_time", 20.0)]
    report = world.read_side.read("workflow", lambda db: sla_compliance(db, "month"))
    assert [(r["metric"], r["fulfilled"], r["breached"], r["compliance"]) for r in report] == [
        ("first_reply_time", 1, 0, 1.0)
    ]


def test_pending_on_the_customer_pauses_the_clock(world: World) -> None:
    define_sla(world, first_reply_minutes=60)
    ticket_id = world.open(team=True)
    world.desk.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
    world.settle()
    world.clock.advance(timedelta(minutes=30))
    world.desk.pend_ticket(PendTicket(ticket_id=ticket_id, reason="等客户截图"), AGENT)
    world.clock.advance(timedelta(hours=3))
    world.settle()
    assert world.events(ticket_id, Ticket.SlaBreached) == []


def test_a_revised_policy_measures_the_ticket_from_its_next_update(world: World) -> None:
    define_sla(world, first_reply_minutes=60)
    ticket_id = world.open(team=True)
    world.settle()
    define_sla(world, first_reply_minutes=30)
    world.clock.advance(timedelta(minutes=40))
    world.settle()
    assert world.events(ticket_id, Ticket.SlaBreached) == []  # still measured by version 1
    world.desk.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
    world.settle()
    applied = world.events(ticket_id, Ticket.SlaApplied)
    assert [a.policy_version for a in applied] == [1, 2]
    assert [b.policy_version for b in world.events(ticket_id, Ticket.SlaBreached)] == [2]
    # an as-of replay sees the version in force then
    assert world.desk.get_ticket(ticket_id, version=applied[0].originator_version).sla["policy_version"] == 1


def test_solving_sends_a_survey_schedules_a_follow_up_and_closes_after_quiet_days(world: World) -> None:
    world.desk.give_consent(GiveConsent(customer_id=world.setup.customer_id, purpose=Consent.SURVEYS),
                            world.setup.customer_caller)
    ticket_id = world.open(team=True)
    world.desk.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
    world.desk.solve_ticket(SolveTicket(ticket_id=ticket_id), AGENT)
    world.settle()
    assert len(world.events(ticket_id, Ticket.SurveyIssued)) == 1
    world.clock.advance(timedelta(days=3, minutes=1))
    world.settle()
    follow_ups = world.read_side.read("workflow", lambda db: db.all(
        "SELECT object_id FROM {p}tf_work WHERE kind = 'reminder'"))
    assert len(follow_ups) == 1
    reminder = world.desk.get_reminder(UUID(follow_ups[0]["object_id"]))
    assert (reminder.kind, reminder.agent_id, reminder.state) == ("follow_up", "li.wei", "fired")
    world.clock.advance(timedelta(days=4))
    world.settle()
    closed = world.desk.get_ticket(ticket_id)
    assert (closed.status, world.events(ticket_id, Ticket.Closed)[0].actor_id) == ("closed", "automation")


def test_a_customer_answer_on_a_solved_ticket_stops_the_auto_close(world: World) -> None:
    ticket_id = world.open(team=True)
    world.desk.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
    world.desk.solve_ticket(SolveTicket(ticket_id=ticket_id), AGENT)
    world.settle()
    world.clock.advance(timedelta(days=5))
    world.desk.post_reply(PostReply(ticket_id=ticket_id, body="还是不行", direction=Direction.INBOUND),
                          world.setup.customer_caller)
    world.clock.advance(timedelta(days=5))
    world.settle()
    assert world.desk.get_ticket(ticket_id).status == "open"
    assert world.events(ticket_id, Ticket.Closed) == []


def test_a_reminder_fires_when_due(world: World) -> None:
    ticket_id = world.open(team=True)
    due = world.clock.now() + timedelta(hours=2)
    result = world.desk.schedule_reminder(ScheduleReminder(ticket_id=ticket_id, agent_id="li.wei",
                                                           team_id=world.setup.team_id, due_at=due, note="回电"), AGENT)
    world.settle()
    assert world.desk.get_reminder(result.object_id).state == "scheduled"
    world.clock.advance(timedelta(hours=2))
    world.settle()
    assert world.desk.get_reminder(result.object_id).state == "fired"
    assert len([e for e in world.desk.history(result.object_id) if isinstance(e, Reminder.Fired)]) == 1


def test_least_loaded_counts_open_tickets_from_the_tickets_view(world: World) -> None:
    from ticketflow.commands.workflow import SetAssignmentStrategy

    publish_rules(world)
    for _ in range(2):  # li.wei already has two open tickets
        held = world.open(team=True)
        world.desk.assign_ticket(AssignTicket(ticket_id=held, assignee_id="li.wei"), AGENT)
    world.settle()
    world.desk.set_assignment_strategy(SetAssignmentStrategy(team_id=world.setup.team_id, strategy="least_loaded"), ADMIN)
    tickets = [world.open() for _ in range(3)]
    world.settle()
    # 0 vs 2, then 1 vs 2, then a 2-2 tie broken by agent id: each decision saw the previous one
    assert [world.desk.get_ticket(t).assignee_id for t in tickets] == ["emma.clark", "emma.clark", "emma.clark"]
    routed = world.events(tickets[0], Ticket.Routed)[0]
    assert (routed.strategy, routed.assignee_id) == ("least_loaded", "emma.clark")


def test_skills_based_assignment_prefers_the_agent_with_the_category_skill(world: World) -> None:
    from ticketflow.commands import ChangeTeamMember
    from ticketflow.commands.workflow import SetAssignmentStrategy

    publish_rules(world)
    world.desk.change_team_member(ChangeTeamMember(team_id=world.setup.team_id, agent_id="li.wei", skills=["network"]), ADMIN)
    world.desk.set_assignment_strategy(SetAssignmentStrategy(team_id=world.setup.team_id, strategy="skills"), ADMIN)
    ticket_id = world.desk.open_ticket(OpenTicket(subject="网络断开", category="network", requester_id=world.setup.customer_id),
                                       world.setup.customer_caller).object_id
    world.settle()
    assert world.desk.get_ticket(ticket_id).assignee_id == "li.wei"


def test_a_rulebook_change_mid_stream_routes_later_tickets_by_the_new_version(world: World) -> None:
    publish_rules(world)
    first = world.open("发票问题")
    world.settle()
    world.desk.publish_routing_rules(PublishRoutingRules(rules=[], default_team_id=world.setup.team_id, note="billing merged"), ADMIN)
    second = world.open("发票问题")
    world.settle()
    one, two = world.events(first, Ticket.Routed)[0], world.events(second, Ticket.Routed)[0]
    assert (one.rule, one.policy_version, one.team_id) == ("invoices", 1, world.setup.other_team_id)
    assert (two.rule, two.policy_version, two.team_id) == (None, 2, world.setup.team_id)


def test_a_breach_moves_the_ticket_to_the_supervisors_queue(world: World) -> None:
    define_sla(world, first_reply_minutes=60, escalation={"team_id": str(world.setup.other_team_id)})
    ticket_id = world.open(team=True)
    world.settle()
    world.clock.advance(timedelta(minutes=61))
    world.settle()
    ticket = world.desk.get_ticket(ticket_id)
    (transfer,) = [e for e in world.desk.history(ticket_id) if e.__class__.__name__ == "Transferred"]
    assert ticket.team_id == world.setup.other_team_id
    assert transfer.reason.startswith("SLA breach: first_reply_time (standard v1)")


def test_a_breach_and_the_survey_link_reach_the_subscribed_webhook(world: World) -> None:
    from ticketflow.commands.workflow import SubscribeWebhook
    from tests.outbox.receiver import Receiver

    receiver = Receiver(lambda webhook_id: world.desk.webhook_secret(UUID(webhook_id)), world.clock)
    try:
        world.desk.subscribe_webhook(SubscribeWebhook(
            name="crm", url=receiver.url, event_types=["Ticket.SlaBreached", "Ticket.SurveyIssued"]), ADMIN)
        world.desk.give_consent(GiveConsent(customer_id=world.setup.customer_id, purpose=Consent.SURVEYS),
                                world.setup.customer_caller)
        define_sla(world, first_reply_minutes=60)
        late = world.open(team=True)
        world.settle()
        world.clock.advance(timedelta(minutes=61))
        world.settle()
        solved = world.open(team=True)
        world.desk.solve_ticket(SolveTicket(ticket_id=solved), AGENT)
        world.settle()
        world.settle()  # the outbox view enqueues what the last pass wrote; this pass sends it
        got = {(r.event_type, r.body["event"]["object_id"]) for r in receiver.received}
        assert ("Ticket.SlaBreached", str(late)) in got and ("Ticket.SurveyIssued", str(solved)) in got
        assert all(r.signature_ok for r in receiver.received)
        survey = next(r for r in receiver.received if r.event_type == "Ticket.SurveyIssued")
        assert survey.body["event"]["payload"]["survey_token"].startswith("sv_")
    finally:
        receiver.stop()


def test_a_row_that_fails_unexpectedly_is_set_aside_and_the_rest_goes_on(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from projections.workflow import failed_work

    publish_rules(world)
    first, second = world.open(), world.open()
    real = world.desk.route_ticket

    def flaky(cmd, caller, **kwargs):  # type: ignore[no-untyped-def]
        if cmd.ticket_id == first:
            raise KeyError("a bug")
        return real(cmd, caller, **kwargs)

    monkeypatch.setattr(world.desk, "route_ticket", flaky)
    world.settle()
    assert world.desk.get_ticket(second).assignee_id is not None
    assert [r["object_id"] for r in world.read_side.read("workflow", failed_work)] == [str(first)]


def test_a_first_reply_met_in_time_stays_met_under_a_stricter_policy_or_priority(world: World) -> None:
    from ticketflow.commands import AddNote, ChangePriority
    from ticketflow.domain.values import Priority

    define_sla(world, first_reply_minutes=60)
    ticket_id = world.open(team=True)
    world.settle()
    world.clock.advance(timedelta(minutes=30))
    world.desk.post_reply(PostReply(ticket_id=ticket_id, body="您好", direction=Direction.OUTBOUND), AGENT)
    world.settle()
    define_sla(world, first_reply_minutes=10)  # stricter from now on
    world.desk.add_note(AddNote(ticket_id=ticket_id, body="checked"), AGENT)
    world.desk.change_priority(ChangePriority(ticket_id=ticket_id, priority=Priority.URGENT), AGENT)
    world.settle()
    assert [e.metric for e in world.events(ticket_id, Ticket.SlaBreached)] == []
    assert [e.metric for e in world.events(ticket_id, Ticket.SlaWarned)] == []
    assert [a.policy_version for a in world.events(ticket_id, Ticket.SlaApplied)] == [1, 2]


def test_a_priority_set_by_a_routing_rule_sets_the_sla_targets(world: World) -> None:
    world.desk.publish_routing_rules(PublishRoutingRules.model_validate({
        "rules": [{"name": "outage", "team_id": world.setup.team_id, "keywords": ["宕机"], "set_priority": "urgent"}],
        "default_team_id": world.setup.team_id,
    }), ADMIN)
    calendar_free = {p: {"first_reply_time": {"minutes": m, "business_hours": False}}
                     for p, m in (("low", 480), ("normal", 240), ("high", 60), ("urgent", 15))}
    world.desk.define_sla_policy(DefineSlaPolicy.model_validate({"name": "p", "position": 0, "targets": calendar_free}), ADMIN)
    ticket_id = world.open("服务器宕机")
    world.settle()
    clocks = world.read_side.read("workflow", lambda db: sla_clocks(db, str(ticket_id)))
    assert [(c["metric"], c["target_minutes"]) for c in clocks] == [("first_reply_time", 15.0)]


def test_an_imported_ticket_is_not_routed_or_measured_when_it_is_touched_later(world: World) -> None:
    from ticketflow.commands import AddNote
    from ticketflow.domain.values import Channel as Ch
    from ticketflow.metadata import Caller as C

    define_sla(world, first_reply_minutes=60, escalation={"raise_priority": True})
    publish_rules(world)
    importer = C("bpic", ADMIN.role, Ch.IMPORT)
    ticket_id = world.desk.open_ticket(OpenTicket(
        subject="old incident", requester_id=world.setup.customer_id, team_id=world.setup.team_id,
        occurred_at=world.clock.now() - timedelta(days=30)), importer).object_id
    world.settle()
    world.desk.add_note(AddNote(ticket_id=ticket_id, body="looked at it today"), AGENT)
    world.settle()
    names = [type(e).__name__ for e in world.desk.history(ticket_id)]
    assert names == ["Opened", "NoteAdded"]


def test_a_ticket_transferred_by_hand_before_the_router_acts_is_left_alone(desk: TicketDesk, setup: Desk) -> None:
    from ticketflow.commands import TransferTicket
    from ticketflow.commands.workflow import RouteTicket
    from ticketflow.errors import RuleViolation
    from projections.automation import SYSTEM

    desk.publish_routing_rules(PublishRoutingRules(rules=[], default_team_id=setup.team_id), ADMIN)
    ticket_id = desk.open_ticket(OpenTicket(subject="x", requester_id=setup.customer_id), setup.customer_caller).object_id
    desk.transfer_ticket(TransferTicket(ticket_id=ticket_id, team_id=setup.other_team_id, reason="账务问题"), AGENT)
    with pytest.raises(RuleViolation, match="by hand"):
        desk.route_ticket(RouteTicket(ticket_id=ticket_id), SYSTEM)


def test_a_desk_that_keeps_assigned_tickets_new_leaves_a_routed_ticket_new(clock: FakeClock) -> None:
    from projections.automation import SYSTEM
    from ticketflow.commands.workflow import RouteTicket

    desk = TicketDesk(Settings(database_url="memory://", assign_opens_new=False), clock=clock)
    try:
        setup = Desk(desk)
        desk.publish_routing_rules(PublishRoutingRules(rules=[], default_team_id=setup.team_id), ADMIN)
        ticket_id = desk.open_ticket(OpenTicket(subject="无法登录", requester_id=setup.customer_id), setup.customer_caller).object_id
        result = desk.route_ticket(RouteTicket(ticket_id=ticket_id), SYSTEM)
        assert result.events == ("Ticket.Routed",)
        ticket = desk.get_ticket(ticket_id)
        assert (ticket.status, ticket.team_id, ticket.assignee_id is not None) == (Status.NEW, setup.team_id, True)
    finally:
        desk.close()


def test_a_calendar_revision_measures_open_tickets_from_their_next_update(world: World) -> None:
    from ticketflow.commands import AddNote

    define_sla(world)
    ticket_id = world.open(team=True)
    world.settle()
    world.desk.define_calendar(DefineCalendar(
        name="上海", timezone="Asia/Shanghai", weekly={str(d): [("09:00", "18:00")] for d in range(5)},
        holidays=["2026-03-03", "2026-03-04"],
    ), ADMIN)
    world.desk.add_note(AddNote(ticket_id=ticket_id, body="still looking"), AGENT)
    world.settle()
    applied = world.events(ticket_id, Ticket.SlaApplied)
    assert [(a.policy_version, a.calendar_version) for a in applied] == [(1, 1), (1, 2)]


def test_after_the_automation_worked_every_view_equals_a_rebuild_and_a_rebuilt_desk_repeats_nothing(world: World) -> None:
    from tests.projections.support import dump_all

    publish_rules(world)
    define_sla(world)
    tickets = [world.open("登录失败"), world.open("发票抬头错了"), world.open("网络中断")]
    world.settle()
    world.desk.post_reply(PostReply(ticket_id=tickets[0], body="您好，已处理"), AGENT)
    world.desk.solve_ticket(SolveTicket(ticket_id=tickets[0], resolution="重置密码"), AGENT)
    world.clock.advance(timedelta(days=2))
    world.settle()  # SLA clocks measured, survey and follow-up work done, some rows done, some due later
    live = dump_all(world.read_side)
    written = world.desk.log_position()
    for name in list(world.read_side.stores):
        world.read_side.rebuild(name)
    assert dump_all(world.read_side) == live  # every column of every view is a function of the log
    assert sum(world.automation.run_once().values()) == 0  # nothing already done is done again
    assert world.desk.log_position() == written


def test_a_workflow_view_built_by_an_older_version_is_rebuilt_with_the_automations_marks_kept(world: World) -> None:
    """A new version of the view drops and rebuilds its tables, not the automation's marks: the rebuilt rows
    still to do are those the live desk had, and nothing already done is done again."""
    publish_rules(world)
    define_sla(world)
    tickets = [world.open("登录失败"), world.open("网络中断")]
    world.settle()
    world.desk.solve_ticket(SolveTicket(ticket_id=tickets[0], resolution="重置密码"), AGENT)
    world.clock.advance(timedelta(days=2))
    world.settle()

    def to_do(db: Any) -> Any:
        return db.all("SELECT kind, object_id, todo_at FROM {p}tf_work WHERE todo_at IS NOT NULL ORDER BY 1, 2")

    live = world.read_side.read("workflow", to_do)
    marks = world.read_side.read("workflow", lambda db: db.all("SELECT * FROM {p}tf_work_marks ORDER BY 1, 2"))
    assert marks and len(live) < len(world.read_side.read("workflow", lambda db: db.all("SELECT * FROM {p}tf_work")))
    store = world.read_side.stores["workflow"]
    store.write(lambda db: db.execute("UPDATE {p}tf_view_versions SET version = 1 WHERE view = 'workflow'"))
    written = world.desk.log_position()
    world.read_side.rebuild("workflow")
    assert store.stored_version() == store.view.version
    assert world.read_side.read("workflow", lambda db: db.all("SELECT * FROM {p}tf_work_marks ORDER BY 1, 2")) == marks
    assert world.read_side.read("workflow", to_do) == live
    assert sum(world.automation.run_once().values()) == 0
    assert world.desk.log_position() == written
