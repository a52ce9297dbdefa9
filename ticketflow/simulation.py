"""A realistic desk, simulated: teams, agents, customers and tickets living through their lifecycles.

Used by ``ticketflow demo`` and by benchmarks. Each ticket gets a script of
steps (open, assign, reply, pend, customer answers, transfer, work, solve,
rate, reopen, close, merge); the steps of all tickets are interleaved in time
order on a simulated clock, so business times look like a real month at a desk.
Steps that would fall after "now" are not run: the desk ends with a realistic
mix of new, open, pending, on-hold, solved and closed tickets.

Setup (teams, members, customers) uses command ids derived from fixed names, so
re-running the demo on the same store replays those commands instead of
duplicating them; every run adds a fresh batch of tickets.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.persistence import IntegrityError

from ticketflow.application import CommandResult, TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import (
    AddNote, AddTeamMember, AssignTicket, ChangePriority, CloseTicket, Command, FormTeam,
    HoldTicket, LogInteraction, LogWork, MarkTicketOpen, MergeTicket, OpenTicket, PendTicket,
    PostReply, RateSatisfaction, RegisterCustomer, ReopenTicket, SolveTicket, TransferTicket,
)
from ticketflow.automation import survey_id_for
from ticketflow.commands.workflow import (
    AnswerSurvey, DefineCalendar, DefineSlaPolicy, PublishRoutingRules, SetAssignmentStrategy,
)
from ticketflow.domain.values import (
    Channel, Consent, CustomerTier, Direction, InteractionKind, MemberRole, Priority, Role, Status,
    TicketType,
)
from ticketflow.errors import TicketflowError
from ticketflow.metadata import Caller

#: Most scripted steps saved in one transaction without the automation.
STEPS_PER_WRITE = 500
#: Scripted steps per transaction with the automation on (with the automation's own writes among them).
STEPS_PER_SLICE = 200

DEMO_NAMESPACE = uuid5(NAMESPACE_URL, "https://ticketflow.dev/demo")

TEAMS = {
    "tech": ("技术支持 Technical Support", ["login", "network", "device", "software"]),
    "billing": ("账务 Billing", ["invoice", "refund", "payment"]),
    "sales": ("销售 Sales", ["quote", "contract", "upgrade"]),
    "aftersales": ("售后服务 After-sales", ["repair", "delivery", "warranty"]),
}
AGENTS = {
    "tech": ["li.wei", "zhang.min", "emma.clark", "chen.jie", "omar.haddad"],
    "billing": ["wang.fang", "liu.yang", "sofia.rossi"],
    "sales": ["zhao.lei", "james.miller", "huang.ying"],
    "aftersales": ["sun.hao", "zhou.xin", "anna.kowalski"],
}
SUPERVISOR = "supervisor.gao"

CN_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
CN_GIVEN = ["伟", "芳", "娜", "敏", "静", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英", "建华", "志强", "海燕", "晓东"]
EN_FIRST = ["Olivia", "Liam", "Emma", "Noah", "Ava", "Lucas", "Mia", "Ethan", "Grace", "Daniel", "Chloe", "Samuel"]
EN_LAST = ["Smith", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Thomas", "Roberts", "Walker", "Wright"]
COMPANIES = ["华信科技", "东方物流", "蓝海贸易", "Northwind Traders", "Contoso Ltd", "Fabrikam", "星辰传媒", "Acme Corp"]
TITLES = ["经理", "工程师", "采购主管", "IT Manager", "Engineer", "Purchasing Lead", "总监", "Analyst"]

SUBJECTS = {
    "login": ("无法登录账户，提示密码错误", "Cannot log in: the password is rejected"),
    "network": ("网络连接经常中断", "Network connection keeps dropping"),
    "device": ("设备开机后屏幕不亮", "Device screen stays dark after power on"),
    "software": ("软件升级后报错", "Error after the software update"),
    "invoice": ("发票金额与合同不符", "Invoice amount does not match the contract"),
    "refund": ("申请退款进度查询", "Where is my refund?"),
    "payment": ("重复扣款", "Charged twice for one order"),
    "quote": ("请提供企业版报价", "Please send a quote for the enterprise plan"),
    "contract": ("合同续签事宜", "Contract renewal"),
    "upgrade": ("咨询套餐升级", "Question about upgrading our plan"),
    "repair": ("产品需要维修", "Product needs repair"),
    "delivery": ("快递一直没有送达", "Delivery has not arrived"),
    "warranty": ("保修期内免费更换吗", "Is a replacement covered by warranty?"),
}
CUSTOMER_LINES = (
    ["您好，问题还是存在，请尽快处理。", "我已经按照步骤操作了，还是不行。", "谢谢，已经收到。", "请问什么时候能解决？"],
    ["Hello, the problem is still there.", "I followed the steps but it still fails.", "Thanks, received.", "When will this be fixed?"],
)
AGENT_LINES = (
    ["您好，我们已经收到您的问题，正在处理中。", "请您提供一下订单号和截图，谢谢。", "问题已经修复，请您再试一次。", "已为您安排工程师上门。"],
    ["Hello, we received your request and are working on it.", "Could you send the order number and a screenshot?", "The issue is fixed, please try again.", "An engineer will visit you."],
)
NOTES = ["客户是老用户，注意语气。", "Checked logs: error 503 from the gateway.", "需要账务部门确认。", "Escalated to vendor, waiting for reply."]
WORK = [("远程排查网络配置", "定位到路由器故障"), ("Reset the account password", "Customer can log in"), ("核对账单与合同", "差额已退款"), ("Replaced the faulty part", "Device works")]


def demo_id(*parts: object) -> UUID:
    """A fixed command id for setup steps, so a re-run replays instead of duplicating."""
    return uuid5(DEMO_NAMESPACE, ":".join(str(p) for p in parts))


@dataclass
class DemoSummary:
    tickets: list[UUID] = field(default_factory=list)
    customers: int = 0
    teams: dict[UUID, str] = field(default_factory=dict)
    agents: int = 0
    commands: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    first_position: int = 0
    last_position: int = 0

    @property
    def events_written(self) -> int:
        return self.last_position - self.first_position


@dataclass(order=True)
class _Step:
    at: datetime
    seq: int
    ticket: int = field(compare=False)
    build: Callable[[UUID], tuple[Command, Caller]] = field(compare=False)


class DeskSimulation:
    def __init__(
        self,
        desk: TicketDesk,
        clock: FakeClock,
        *,
        tickets: int = 1000,
        customers: int = 200,
        days: int = 30,
        seed: int | None = None,
        workflow: bool = False,
    ) -> None:
        """``workflow``: tickets arrive without a team and the automation routes them, SLA
        policies measure them, customers answer surveys (the caller runs the automation
        through ``run(tick=...)``); otherwise the script dispatches by hand."""
        self.workflow = workflow
        self.desk = desk
        self.clock = clock
        self.ticket_count = tickets
        self.customer_count = customers
        self.days = days
        self.seed = seed
        self.rng = random.Random(seed)
        self.run_id = uuid4() if seed is None else demo_id("run", seed)
        self.end = clock.now()
        self.start = self.end - timedelta(days=days)
        self.summary = DemoSummary()
        self.team_ids: dict[str, UUID] = {}
        self.customer_ids: list[UUID] = []
        self.customer_lang: dict[UUID, int] = {}
        self.surveyed: set[UUID] = set()  # customers who consented to satisfaction surveys

    # ----------------------------------------------------------------- setup
    def setup(self) -> None:
        """Teams, members, customers (and the workflow's policies), saved in one transaction; on a store
        that has them already (a re-run), one command at a time, each recognised as done."""
        self.summary.first_position = self.desk.log_position()
        try:
            with self.desk.batch():
                self._setup()
        except IntegrityError:
            self.summary = DemoSummary(first_position=self.summary.first_position)
            self.team_ids, self.customer_ids, self.customer_lang, self.surveyed = {}, [], {}, set()
            self.rng = random.Random(self.seed)
            self._setup()

    def _setup(self) -> None:
        self.clock.set(self.start - timedelta(days=1))
        admin = Caller("admin", Role.ADMIN, Channel.SYSTEM)
        for key, (name, skills) in TEAMS.items():
            team = self._run(FormTeam(command_id=demo_id("team", key), name=name), admin)
            assert team is not None
            self.team_ids[key] = team.object_id
            self.summary.teams[team.object_id] = name
            for i, agent in enumerate(AGENTS[key]):
                role = MemberRole.LEAD if i == 0 else MemberRole.AGENT
                member_skills = self.rng.sample(skills, k=min(2, len(skills))) + (["中文"] if "." in agent else [])
                self._run(
                    AddTeamMember(
                        command_id=demo_id("member", key, agent), team_id=team.object_id,
                        agent_id=agent, role=role, skills=member_skills,
                    ),
                    admin,
                )
                self.summary.agents += 1
        for i in range(self.customer_count):
            self.customer_ids.append(self._register_customer(i, admin))
        self.summary.customers = len(self.customer_ids)
        if self.workflow:
            self._define_policies(admin)

    def _define_policies(self, admin: Caller) -> None:
        """Routing rules by keyword and category, assignment strategies, a Shanghai calendar, SLAs."""
        rules = [
            {"name": f"{key} by category", "team_id": self.team_ids[key], "categories": categories}
            for key, (_, categories) in TEAMS.items() if key != "tech"
        ]
        rules.insert(0, {"name": "发票/invoice to billing", "team_id": self.team_ids["billing"],
                         "keywords": ["发票", "invoice", "扣款", "refund"], "add_tags": ["billing"]})
        self._run(PublishRoutingRules.model_validate({
            "command_id": demo_id("routing", 1), "rules": rules, "default_team_id": self.team_ids["tech"],
            "note": "demo rulebook",
        }), admin)
        for key, strategy in (("billing", "least_loaded"), ("aftersales", "skills")):
            team = self.desk.get_team(self.team_ids[key])
            if team.strategy != strategy:
                self._run(SetAssignmentStrategy(team_id=team.id, strategy=strategy), admin)
        calendar = self._run(DefineCalendar(
            command_id=demo_id("calendar", 1), name="上海工作日 Shanghai workdays", timezone="Asia/Shanghai",
            weekly={str(d): [("09:00", "12:00"), ("13:00", "18:00")] for d in range(5)},
            holidays=[f"2026-10-0{d}" for d in range(1, 8)], workdays={"2026-10-10": 4},
        ), admin)
        calendar_id = calendar.object_id if calendar else None
        targets = {
            "vip": {"urgent": 30, "high": 60, "normal": 120, "low": 240},
            "standard": {"urgent": 60, "high": 240, "normal": 480, "low": 960},
        }
        for position, (name, minutes) in enumerate(targets.items()):
            self._run(DefineSlaPolicy.model_validate({
                "command_id": demo_id("sla", name), "name": name, "position": position,
                "conditions": {"tiers": ["vip"]} if name == "vip" else {},
                "targets": {p: {"first_reply_time": {"minutes": m}, "next_reply_time": {"minutes": m * 2},
                                "resolution_time": {"minutes": m * 6}} for p, m in minutes.items()},
                "calendar_id": calendar_id, "escalation": {"raise_priority": name == "vip"},
            }), admin)

    def _register_customer(self, i: int, admin: Caller) -> UUID:
        rng = random.Random(f"customer-{i}")
        chinese = rng.random() < 0.6
        if chinese:
            name = rng.choice(CN_SURNAMES) + rng.choice(CN_GIVEN)
            email = f"user{i}@example.cn"
            phone = f"+86 138{rng.randrange(10**7, 10**8)}"
            language = "zh-CN"
        else:
            name = f"{rng.choice(EN_FIRST)} {rng.choice(EN_LAST)}"
            email = f"{name.split()[0].lower()}.{i}@example.com"
            phone = f"+44 7700 {rng.randrange(100000, 999999)}"
            language = "en-GB"
        surveys = rng.random() < 0.7
        result = self._run(
            RegisterCustomer(
                command_id=demo_id("customer", i),
                name=name,
                email=email,
                phone=phone,
                im_handle=f"wx_{i:04d}" if chinese else None,
                company=rng.choice(COMPANIES),
                job_title=rng.choice(TITLES),
                preferred_language=language,
                tier=CustomerTier.VIP if rng.random() < 0.1 else CustomerTier.STANDARD,
                consents=[Consent.SERVICE] + ([Consent.SURVEYS] if surveys else []),
            ),
            admin,
        )
        assert result is not None
        self.customer_lang[result.object_id] = 0 if chinese else 1
        if surveys:
            self.surveyed.add(result.object_id)
        return result.object_id

    # ----------------------------------------------------------------- tickets
    def run(
        self, progress: Callable[[int], None] = lambda n: None, tick: Callable[[], None] | None = None,
        next_due: Callable[[datetime, datetime], datetime | None] | None = None,
        transaction: Callable[[], AbstractContextManager[None]] | None = None,
    ) -> DemoSummary:
        """Run every scripted step in time order; ``progress`` gets the steps done so far.

        ``tick`` (the automation) looks as a live desk's does: right after each step, and at every
        instant ``next_due(after, before)`` names where work falls due between two steps (and up to
        the end); each look sees every step and look before it. The run is written a slice at a
        time, each slice in one ``transaction`` (default: the desk's :meth:`~TicketDesk.batch`):
        :data:`STEPS_PER_SLICE` steps and the looks among them with the automation (whose caller
        shows each look what the slice wrote so far, see ``ticketflow_cli/demo.py``), up to
        :data:`STEPS_PER_WRITE` steps without (nothing reads between steps)."""
        steps: list[_Step] = []
        seq = 0
        for n in range(self.ticket_count):
            for at, build in self._script(n):
                if at <= self.end:
                    heapq.heappush(steps, _Step(at, seq, n, build))
                    seq += 1
        in_slice = transaction or self.desk.batch
        ticket_ids: dict[int, UUID] = {}
        merged: set[int] = set()
        done = 0
        if tick is not None:
            with in_slice():
                self.clock.set(self.start)
                tick()
        while steps:
            with in_slice():
                for _ in range(STEPS_PER_SLICE if tick is not None else STEPS_PER_WRITE):
                    if not steps:
                        break
                    if tick is not None:
                        self._look_until(steps[0].at, tick, next_due)
                    step = heapq.heappop(steps)
                    done += 1
                    if step.ticket not in merged:
                        self._step(step, ticket_ids, merged)
                    progress(done)
                    if tick is not None:
                        tick()
        if tick is not None:
            with in_slice():
                self._look_until(self.end, tick, next_due)
                self.clock.set(self.end)
                tick()
        self.clock.set(self.end)
        self.summary.last_position = self.desk.log_position()
        return self.summary

    def _look_until(
        self, moment: datetime, tick: Callable[[], None],
        next_due: Callable[[datetime, datetime], datetime | None] | None,
    ) -> None:
        """Let the automation look at every instant work falls due before ``moment``."""
        while next_due is not None and (due := next_due(self.clock.now(), moment)) is not None:
            self.clock.set(due)
            tick()

    def _step(self, step: _Step, ticket_ids: dict[int, UUID], merged: set[int]) -> None:
        self.clock.set(step.at)
        command, caller = step.build(ticket_ids.get(step.ticket, UUID(int=0)))
        if isinstance(command, MergeTicket):
            target = self._merge_target(command.ticket_id)
            if target is None:
                return
            command = command.model_copy(update={"into_ticket_id": target})
        result = self._run(command, caller)
        if isinstance(command, OpenTicket) and result is not None:
            ticket_ids[step.ticket] = result.object_id
            self.summary.tickets.append(result.object_id)
        if isinstance(command, MergeTicket) and result is not None:
            merged.add(step.ticket)

    def step_count(self) -> int:
        return sum(1 for n in range(self.ticket_count) for at, _ in self._script(n) if at <= self.end)

    def _script(self, n: int) -> Iterator[tuple[datetime, Callable[[UUID], tuple[Command, Caller]]]]:
        rng = random.Random(f"{self.run_id}:{n}")
        customer = self.customer_ids[rng.randrange(len(self.customer_ids))]
        lang = self.customer_lang[customer]
        team_key = rng.choice(list(TEAMS))
        category = rng.choice(TEAMS[team_key][1])
        agents = AGENTS[team_key]
        agent = rng.choice(agents)
        channel = rng.choice([Channel.EMAIL, Channel.PHONE, Channel.WEB_FORM, Channel.CHAT, Channel.IM, Channel.API, Channel.WALK_IN])
        ttype = rng.choices(list(TicketType), weights=[40, 15, 5, 25, 15])[0]
        priority = rng.choices(list(Priority), weights=[15, 55, 22, 8])[0]
        customer_caller = Caller(str(customer), Role.CUSTOMER, channel)
        agent_caller = Caller(agent, Role.AGENT, Channel.API)
        system = Caller("router", Role.SYSTEM, Channel.SYSTEM)
        run = self.run_id
        cmd_id = lambda tag: demo_id(run, n, tag)  # noqa: E731 - one id per scripted step
        subject = SUBJECTS[category][lang]

        at = self.start + timedelta(seconds=rng.randrange(self.days * 86400))

        def later(minutes: float) -> datetime:
            nonlocal at
            at = at + timedelta(minutes=minutes * rng.uniform(0.5, 1.5))
            return at

        yield at, lambda _: (
            OpenTicket(
                command_id=cmd_id("open"), subject=subject,
                description=f"{subject}。{rng.choice(CUSTOMER_LINES[lang])}" if lang == 0 else f"{subject}. {rng.choice(CUSTOMER_LINES[lang])}",
                ticket_type=ttype, category=category, priority=priority, channel=channel,
                requester_id=customer, team_id=None if self.workflow else self.team_ids[team_key], tags=[category],
            ),
            customer_caller,
        )
        if rng.random() < 0.04:
            return  # still new, nobody has picked it up
        if not self.workflow:  # with the workflow on, the router assigns
            yield later(20), lambda t: (AssignTicket(command_id=cmd_id("assign"), ticket_id=t, assignee_id=agent, reason="routed by category"), system)
        yield later(60), lambda t: (PostReply(command_id=cmd_id("reply1"), ticket_id=t, body=rng.choice(AGENT_LINES[lang]), channel=Channel.EMAIL), agent_caller)
        if rng.random() < 0.3:
            yield later(15), lambda t: (AddNote(command_id=cmd_id("note"), ticket_id=t, body=rng.choice(NOTES)), agent_caller)
        if rng.random() < 0.25:
            yield later(30), lambda t: (LogInteraction(command_id=cmd_id("call"), ticket_id=t, kind=InteractionKind.CALL, direction=Direction.OUTBOUND, body=rng.choice(AGENT_LINES[lang]), duration_minutes=rng.randrange(2, 25)), agent_caller)
        if priority in (Priority.LOW, Priority.NORMAL) and rng.random() < 0.08:
            yield later(10), lambda t: (ChangePriority(command_id=cmd_id("prio"), ticket_id=t, priority=Priority.HIGH, reason="customer is blocked"), agent_caller)
        if rng.random() < 0.1:
            other = rng.choice([k for k in TEAMS if k != team_key])
            new_agent = rng.choice(AGENTS[other])
            yield later(45), lambda t: (TransferTicket(command_id=cmd_id("transfer"), ticket_id=t, team_id=self.team_ids[other], assignee_id=new_agent, reason="belongs to another department"), agent_caller)
            agent_caller = Caller(new_agent, Role.AGENT, Channel.API)
        if n > 0 and rng.random() < 0.02:
            # A duplicate: merged into an earlier unclosed ticket, chosen when the step runs.
            yield later(30), lambda t: (MergeTicket(command_id=cmd_id("merge"), ticket_id=t, into_ticket_id=UUID(int=0)), agent_caller)
            return
        if rng.random() < 0.3:
            yield later(20), lambda t: (PendTicket(command_id=cmd_id("pend"), ticket_id=t, reason="waiting for the customer's screenshot"), agent_caller)
            if rng.random() < 0.15:
                return  # the customer never answered (yet)
            yield later(600), lambda t: (PostReply(command_id=cmd_id("answer"), ticket_id=t, body=rng.choice(CUSTOMER_LINES[lang]), direction=Direction.INBOUND, channel=channel), customer_caller)
        if rng.random() < 0.1:
            yield later(30), lambda t: (HoldTicket(command_id=cmd_id("hold"), ticket_id=t, reason="waiting on the vendor"), agent_caller)
            if rng.random() < 0.3:
                return
            yield later(1440), lambda t: (MarkTicketOpen(command_id=cmd_id("resume"), ticket_id=t, reason="vendor answered"), agent_caller)
        action, outcome = rng.choice(WORK)
        yield later(90), lambda t: (LogWork(command_id=cmd_id("work"), ticket_id=t, action=action, minutes=rng.randrange(5, 120), result=outcome), agent_caller)
        if rng.random() < 0.12:
            return  # still being worked
        yield later(30), lambda t: (SolveTicket(command_id=cmd_id("solve"), ticket_id=t, resolution=outcome), agent_caller)
        if rng.random() < 0.06:
            yield later(1440), lambda t: (ReopenTicket(command_id=cmd_id("reopen"), ticket_id=t, reason="customer says it is not fixed"), agent_caller)
            yield later(60), lambda t: (PostReply(command_id=cmd_id("reply2"), ticket_id=t, body=rng.choice(AGENT_LINES[lang])), agent_caller)
            yield later(120), lambda t: (SolveTicket(command_id=cmd_id("solve2"), ticket_id=t, resolution=outcome), agent_caller)
        if rng.random() < 0.6:
            score = rng.choices([1, 2, 3, 4, 5], weights=[4, 6, 15, 35, 40])[0]
            comment = rng.choice(["服务很好", "Quick and helpful", "处理太慢了", ""]) if score != 3 else ""
            if self.workflow and customer in self.surveyed:  # the customer answers the survey sent on solving
                yield later(240), lambda t: (AnswerSurvey(command_id=cmd_id("rate"), token=self.desk.survey_token(t, survey_id_for(t)), score=score, comment=comment), customer_caller)
            else:
                yield later(240), lambda t: (RateSatisfaction(command_id=cmd_id("rate"), ticket_id=t, score=score, comment=comment), customer_caller)
        if rng.random() < 0.75:
            yield later(4320), lambda t: (CloseTicket(command_id=cmd_id("close"), ticket_id=t), system)

    def _merge_target(self, duplicate: UUID) -> UUID | None:
        for candidate in reversed(self.summary.tickets[-30:]):
            if candidate != duplicate and self.desk.get_ticket(candidate).status is not Status.CLOSED:
                return candidate
        return None

    def _run(self, command: Command, caller: Caller) -> CommandResult | None:
        self.summary.commands += 1
        try:
            return self.desk.handle(command, caller)
        except TicketflowError as exc:
            self.summary.refused[type(exc).__name__] += 1
            return None
