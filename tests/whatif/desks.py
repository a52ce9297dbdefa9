"""Generated desks whose history is written live, with the automation running on an injected clock.

A *program* is the desk's policies and a list of timed steps (customers open tickets and
write, agents reply, pend, solve, reopen, close, assign, change priorities). The driver runs it
on a fake clock the way a live desk with an always-on automation would: before each step, the
automation looks at every ticket whose SLA warning or breach falls due before it (the clock is
set to that instant), then the step runs and the automation makes its pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

from projections.automation import Automation
from projections.readside import ReadSide
from projections.sql import ts
from projections.workflow import due_work
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import (
    AddTeamMember,
    AssignTicket,
    ChangePriority,
    CloseTicket,
    FormTeam,
    MarkTicketOpen,
    OpenTicket,
    PendTicket,
    PostReply,
    RegisterCustomer,
    ReopenTicket,
    SolveTicket,
)
from ticketflow.commands.workflow import (
    DefineCalendar,
    DefineSlaPolicy,
    PublishRoutingRules,
    SetAssignmentStrategy,
)
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Direction, Role
from ticketflow.errors import TicketflowError
from ticketflow.metadata import Caller

START = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)  # Monday 08:30 in Asia/Shanghai
ADMIN = Caller("admin.root", Role.ADMIN, Channel.CLI)
TEAMS = {"技术支持": ["li.wei", "emma.clark", "chen.jie"], "账务": ["wang.fang", "liu.yang"]}
SUBJECTS = ["无法登录账户", "发票金额不对", "网络经常中断", "invoice is wrong", "设备无法开机"]
CATEGORIES = ["general", "network", "billing"]
PRIORITIES = ["low", "normal", "high", "urgent"]
ACTIONS = ["reply", "customer", "pend", "open", "solve", "reopen", "close", "assign", "priority"]
WEEKDAYS = {str(d): [["09:00", "12:00"], ["13:00", "18:00"]] for d in range(5)}


@dataclass(frozen=True)
class Sla:
    minutes: dict[str, int]  # metric -> target minutes (the same for every priority)
    business_hours: bool
    warn_at_percent: int
    raise_priority: bool
    escalate_to_billing: bool


@dataclass(frozen=True)
class Step:
    minute: int  # after START
    ticket: int
    action: str
    arg: int


@dataclass(frozen=True)
class Program:
    strategies: tuple[str, str]
    sla: Sla
    tickets: list[tuple[int, str, str, bool]]  # (minute opened, subject, category, opened with a team)
    steps: list[Step] = field(default_factory=list)


def programs(max_tickets: int = 6, max_steps: int = 24) -> st.SearchStrategy[Program]:
    sla = st.builds(
        Sla,
        minutes=st.fixed_dictionaries(
            {
                "first_reply_time": st.integers(10, 600),
                "next_reply_time": st.integers(10, 600),
                "resolution_time": st.integers(60, 3000),
            }
        ),
        business_hours=st.booleans(),
        warn_at_percent=st.integers(50, 95),
        raise_priority=st.booleans(),
        escalate_to_billing=st.booleans(),
    )
    ticket = st.tuples(
        st.integers(0, 3000), st.sampled_from(SUBJECTS), st.sampled_from(CATEGORIES), st.booleans()
    )
    step = st.builds(
        Step,
        minute=st.integers(0, 6000),
        ticket=st.integers(0, max_tickets - 1),
        action=st.sampled_from(ACTIONS),
        arg=st.integers(0, 7),
    )
    strategy = st.sampled_from(["round_robin", "least_loaded", "skills"])
    return st.builds(
        Program,
        strategies=st.tuples(strategy, strategy),
        sla=sla,
        tickets=st.lists(ticket, min_size=1, max_size=max_tickets),
        steps=st.lists(step, max_size=max_steps),
    )


def sla_policy(
    sla: Sla, calendar_id: UUID | None, billing: UUID | None, name: str = "标准"
) -> dict[str, Any]:
    targets = {
        metric: {"minutes": minutes, "business_hours": sla.business_hours}
        for metric, minutes in sla.minutes.items()
    }
    return {
        "name": name,
        "position": 0,
        "calendar_id": str(calendar_id) if calendar_id else None,
        "targets": {p: targets for p in PRIORITIES},
        "warn_at_percent": sla.warn_at_percent,
        "escalation": {"raise_priority": sla.raise_priority, "team_id": str(billing) if billing else None},
    }


def routing_rules(teams: dict[str, UUID]) -> dict[str, Any]:
    return {
        "rules": [
            {
                "name": "发票",
                "team_id": str(teams["账务"]),
                "keywords": ["发票", "invoice"],
                "set_priority": "high",
            },
            {
                "name": "网络",
                "team_id": str(teams["技术支持"]),
                "categories": ["network"],
                "add_tags": ["net"],
            },
        ],
        "default_team_id": str(teams["技术支持"]),
    }


class LiveDesk:
    """A desk, its views and its automation on one fake clock; the automation always on."""

    def __init__(self, settings: Settings) -> None:
        self.clock = FakeClock(START - timedelta(hours=1))
        self.desk = TicketDesk(settings, clock=self.clock)
        self.read_side = ReadSide(self.desk)
        self.automation = Automation(self.desk, self.read_side)
        self.teams: dict[str, UUID] = {}
        self.calendar_id: UUID | None = None
        self.customer = self.desk.register_customer(
            RegisterCustomer(name="王小明", email="xiaoming@example.cn", preferred_language="zh-CN"), ADMIN
        ).object_id
        self.tickets: list[UUID | None] = []

    def close(self) -> None:
        self.read_side.close()
        self.desk.close()

    def settle(self) -> None:
        for _ in range(30):
            self.read_side.catch_up()
            if sum(self.automation.run_once().values()) == 0:
                return
        raise AssertionError("the automation did not settle")

    def _due_before(self, moment: datetime) -> datetime | None:
        rows = self.read_side.read(
            "workflow", lambda db: due_work(db, "sla", ts(moment - timedelta(microseconds=1)) or "", limit=1)
        )
        return datetime.fromisoformat(rows[0]["due_at"]) if rows and rows[0]["due_at"] else None

    def at(self, moment: datetime, action: Callable[[], Any]) -> None:
        """Run the automation at every SLA instant due before ``moment``, then the action at ``moment``."""
        while (due := self._due_before(moment)) is not None:
            self.clock.set(max(due, self.clock.now()))
            self.settle()
        self.clock.set(max(moment, self.clock.now()))
        try:
            action()
        except TicketflowError:
            pass  # a step that does not apply now (solving a closed ticket...) is refused and writes nothing
        self.settle()

    def setup(self, program: Program) -> None:
        for (name, agents), strategy in zip(TEAMS.items(), program.strategies, strict=True):
            team = self.desk.form_team(FormTeam(name=name), ADMIN).object_id
            self.teams[name] = team
            for n, agent in enumerate(agents):
                skills = ["network"] if n == 1 else ["zh"] if n == 2 else []
                self.desk.add_team_member(AddTeamMember(team_id=team, agent_id=agent, skills=skills), ADMIN)
            if strategy != "round_robin":  # a new team assigns round-robin
                self.desk.set_assignment_strategy(
                    SetAssignmentStrategy(team_id=team, strategy=strategy), ADMIN
                )
        self.desk.publish_routing_rules(PublishRoutingRules.model_validate(routing_rules(self.teams)), ADMIN)
        if program.sla.business_hours:
            self.calendar_id = self.desk.define_calendar(
                DefineCalendar(
                    name="上海工作日",
                    timezone="Asia/Shanghai",
                    weekly=WEEKDAYS,  # type: ignore[arg-type]
                    holidays=["2026-03-04"],
                    workdays={"2026-03-07": 2},
                ),
                ADMIN,
            ).object_id
        billing = self.teams["账务"] if program.sla.escalate_to_billing else None
        self.desk.define_sla_policy(
            DefineSlaPolicy.model_validate(sla_policy(program.sla, self.calendar_id, billing)), ADMIN
        )

    def run(self, program: Program) -> None:
        self.setup(program)
        self.settle()
        timed: list[tuple[int, int, Any]] = [
            (minute, n, ("open", n, subject, category, with_team))
            for n, (minute, subject, category, with_team) in enumerate(program.tickets)
        ]
        timed += [(s.minute, len(program.tickets) + i, s) for i, s in enumerate(program.steps)]
        self.tickets = [None] * len(program.tickets)
        for minute, _, item in sorted(timed, key=lambda t: (t[0], t[1])):
            moment = START + timedelta(minutes=minute, seconds=17)
            self.at(moment, lambda item=item: self._do(item))

    def _do(self, item: Any) -> None:
        customer = Caller(str(self.customer), Role.CUSTOMER, Channel.WEB_FORM)
        if isinstance(item, tuple):
            _, n, subject, category, with_team = item
            self.tickets[n] = self.desk.open_ticket(
                OpenTicket(
                    subject=subject,
                    category=category,
                    requester_id=self.customer,
                    team_id=self.teams["技术支持"] if with_team else None,
                ),
                customer,
            ).object_id
            return
        step: Step = item
        if step.ticket >= len(self.tickets) or self.tickets[step.ticket] is None:
            return
        ticket_id = self.tickets[step.ticket]
        assert ticket_id is not None
        agents = [a for team in TEAMS.values() for a in team]
        agent = Caller(agents[step.arg % len(agents)], Role.AGENT, Channel.API)
        match step.action:
            case "reply":
                self.desk.post_reply(PostReply(ticket_id=ticket_id, body="您好，已处理"), agent)
            case "customer":
                self.desk.post_reply(
                    PostReply(ticket_id=ticket_id, body="还是不行", direction=Direction.INBOUND), customer
                )
            case "pend":
                self.desk.pend_ticket(PendTicket(ticket_id=ticket_id, reason="等客户"), agent)
            case "open":
                self.desk.mark_ticket_open(MarkTicketOpen(ticket_id=ticket_id), agent)
            case "solve":
                self.desk.solve_ticket(SolveTicket(ticket_id=ticket_id), agent)
            case "reopen":
                self.desk.reopen_ticket(ReopenTicket(ticket_id=ticket_id, reason="复发"), agent)
            case "close":
                self.desk.close_ticket(CloseTicket(ticket_id=ticket_id), agent)
            case "assign":
                self.desk.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id=agent.actor_id), agent)
            case "priority":
                self.desk.change_priority(
                    ChangePriority(ticket_id=ticket_id, priority=PRIORITIES[step.arg % 4]),
                    agent,  # type: ignore[arg-type]
                )
