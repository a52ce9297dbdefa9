"""Request and response models of the HTTP API.

Request bodies are derived from the command models (same fields, same
validation, unknown fields refused), minus what the URL or the server supplies:
ids from the path, the command id, the expected version (``If-Match``) and the
business time. A client therefore cannot set status, version or actor.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, create_model

from ticketflow import commands as c
from ticketflow.commands import workflow as wf
from ticketflow.commands.access import IssueToken

#: Fields no command body carries: the URL or the server supplies them. ``occurred_at`` (history's business
#: time) is taken only by ``POST /api/v1/imports``, for a token granted `import`; a command body refuses it.
SERVER_FIELDS = {"command_id", "occurred_at", "expected_version", "ticket_id", "customer_id", "team_id", "token_id"}


def request_model(
    command: type[BaseModel], name: str, example: dict[str, Any],
    keep: frozenset[str] = frozenset(), path: frozenset[str] = frozenset(), renamed: dict[str, str] | None = None,
) -> type[BaseModel]:
    """A request body with the command's fields, minus server-supplied ones (unless kept) and path ones.

    ``renamed`` maps a command field to the body's name for it; the command's name stays accepted as a
    deprecated alias (the route maps it back to the command's field)."""
    renamed = renamed or {}
    fields: dict[str, Any] = {}
    for field, info in command.model_fields.items():
        if (field in SERVER_FIELDS and field not in keep) or field in path:
            continue
        if field in renamed:
            new = renamed[field]
            alias = Field(validation_alias=AliasChoices(new, field),
                          description=f"{info.description or ''} (`{field}` is accepted as a deprecated alias)".strip())
            fields[new] = (info.annotation, alias)
        else:
            fields[field] = (info.annotation, info)
    config = ConfigDict(extra="forbid", json_schema_extra={"examples": [example]})
    return create_model(name, __config__=config, __doc__=command.__doc__, **fields)


CUSTOMER = "3f1c2a9e-7b1d-5c7e-9a51-2f0c8d6e4b11"
TEAM = "2d6a38ad-69a4-5afd-bb89-1c7fae547dde"
TICKET = "6457ba06-ac25-5a5e-8355-4547dfa4b853"

CustomerCreate = request_model(c.RegisterCustomer, "CustomerCreate", {
    "name": "王小明", "email": "xiaoming@example.cn", "phone": "+86 138 0000 0000", "company": "华信科技",
    "preferred_language": "zh-CN", "tier": "vip", "consents": ["service", "surveys"],
})
CustomerPatch = request_model(c.UpdateCustomerProfile, "CustomerPatch", {"company": "东方物流", "phone": ""})
TicketCreate = request_model(c.OpenTicket, "TicketCreate", {
    "subject": "无法登录账户", "description": "输入密码后提示错误。", "ticket_type": "incident", "category": "login",
    "priority": "high", "channel": "email", "customer_id": CUSTOMER, "team_id": TEAM, "tags": ["vip"],
}, keep=frozenset({"team_id"}), renamed={"requester_id": "customer_id"})
AssignBody = request_model(c.AssignTicket, "AssignBody", {"assignee_id": "li.wei", "reason": "on shift"})
UnassignBody = request_model(c.UnassignTicket, "UnassignBody", {"reason": "back to the team's queue"})
RemoveFromTeamBody = request_model(c.RemoveTicketFromTeam, "RemoveFromTeamBody", {"reason": "not a support question: back to triage"})
CategoryBody = request_model(c.RecategoriseTicket, "CategoryBody", {"category": "网络", "ticket_type": "incident"})
TransferBody = request_model(c.TransferTicket, "TransferBody", {"team_id": TEAM, "assignee_id": "wang.fang", "reason": "billing question"}, keep=frozenset({"team_id"}))
ReplyBody = request_model(c.PostReply, "ReplyBody", {"body": "您好，我们已经重置了您的密码。", "channel": "email"})
NoteBody = request_model(c.AddNote, "NoteBody", {"body": "Checked the gateway logs: 503 at 10:02."})
InteractionBody = request_model(c.LogInteraction, "InteractionBody", {"kind": "call", "direction": "outbound", "body": "Called back, customer confirmed.", "duration_minutes": 6})
WorkEntryBody = request_model(c.LogWork, "WorkEntryBody", {"action": "远程排查网络配置", "minutes": 30, "result": "定位到路由器故障"})
PendBody = request_model(c.PendTicket, "PendBody", {"reason": "waiting for a screenshot"})
HoldBody = request_model(c.HoldTicket, "HoldBody", {"reason": "waiting on the vendor"})
OpenBody = request_model(c.MarkTicketOpen, "OpenBody", {"reason": "vendor answered"})
SolveBody = request_model(c.SolveTicket, "SolveBody", {"resolution": "Password reset; customer can log in."})
CloseBody = request_model(c.CloseTicket, "CloseBody", {})
ReopenBody = request_model(c.ReopenTicket, "ReopenBody", {"reason": "customer says it is not fixed"})
PriorityBody = request_model(c.ChangePriority, "PriorityBody", {"priority": "urgent", "reason": "VIP customer"})
MergeBody = request_model(c.MergeTicket, "MergeBody", {"into_ticket_id": TICKET})
TagsBody = request_model(c.ChangeTags, "TagsBody", {"add": ["打印机", "vip"], "remove": ["network"]})
LinkBody = request_model(c.LinkTicket, "LinkBody", {"other_ticket_id": TICKET, "kind": "related"})
SatisfactionBody = request_model(c.RateSatisfaction, "SatisfactionBody", {"score": 5, "comment": "服务很好"})
TeamCreate = request_model(c.FormTeam, "TeamCreate", {"name": "技术支持 Technical Support", "description": "Second line"})
MemberAdd = request_model(c.AddTeamMember, "MemberAdd", {"agent_id": "li.wei", "role": "agent", "skills": ["network", "中文"]})
MemberChange = request_model(c.ChangeTeamMember, "MemberChange", {"role": "lead", "skills": ["network"]}, path=frozenset({"agent_id"}))
MemberDeactivate = request_model(c.DeactivateTeamMember, "MemberDeactivate", {"reason": "on leave"}, path=frozenset({"agent_id"}))
TokenCreate = request_model(IssueToken, "TokenCreate", {"name": "li.wei", "role": "agent", "team_ids": [TEAM]})


class Model(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CommandOut(Model):
    """What a command did."""

    id: UUID = Field(examples=[TICKET])
    version: int = Field(examples=[3], description="The object's version after the command (also the ETag).")
    position: int | None = Field(examples=[1207], description="Global log position of the last event written (None when replayed).")
    events: list[str] = Field(examples=[["Ticket.Assigned", "Ticket.MarkedOpen"]])
    replayed: bool = Field(examples=[False], description="True when this command had already been applied (a retry).")


class SlaClockOut(Model):
    """One run of one SLA metric's clock, as the SLA clock last measured it."""

    metric: str
    cycle: str
    state: str  # active, paused, fulfilled, breached
    target_minutes: float
    business_hours: bool
    elapsed_minutes: float
    due_at: datetime | None
    breached_at: datetime | None
    fulfilled_at: datetime | None
    remaining_seconds: int | None
    policy: str
    policy_version: int
    evaluated_at: datetime


class TicketOut(Model):
    ticket_id: UUID
    subject: str
    ticket_type: str
    category: str
    priority: str
    status: str
    channel: str
    customer_id: UUID
    team_id: UUID | None
    assignee_id: str | None
    tags: list[str]
    created_at: datetime
    first_reply_at: datetime | None
    updated_at: datetime
    solved_at: datetime | None
    closed_at: datetime | None
    reply_count: int
    note_count: int
    interaction_count: int
    work_minutes: int
    reopen_count: int
    reassignment_count: int
    satisfaction: int | None
    merged_into: UUID | None
    imported: bool
    version: int
    source_counters: dict[str, int] | None = None
    sla: list[SlaClockOut] = Field(default_factory=list, description="SLA clocks (on the single-ticket read)")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "ticket_id": TICKET, "subject": "无法登录账户", "ticket_type": "incident", "category": "login",
        "priority": "high", "status": "open", "channel": "email", "customer_id": CUSTOMER, "team_id": TEAM,
        "assignee_id": "li.wei", "tags": ["vip"], "created_at": "2026-11-02T09:00:00+00:00",
        "first_reply_at": "2026-11-02T09:40:00+00:00", "updated_at": "2026-11-02T09:40:00+00:00",
        "solved_at": None, "closed_at": None, "reply_count": 1, "note_count": 0, "interaction_count": 1,
        "work_minutes": 0, "reopen_count": 0, "reassignment_count": 0, "satisfaction": None, "merged_into": None,
        "imported": False, "version": 4,
    }]})


class TicketPage(Model):
    items: list[TicketOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    note: str | None = Field(default=None, description=(
        "With `as_of`: set when the log holds nothing at or before that instant on `as_of_basis` "
        "(it says from when it does); null otherwise."))


class AttachmentOut(Model):
    digest: str | None = Field(
        description="SHA-256 of the stored ciphertext (None: not kept, see refused).",
        examples=["9f2c0d6e4b1a8c7d5e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d"],
    )
    content_type: str = Field(description="Sniffed from the bytes, never the declared type.", examples=["application/pdf"])
    size: int = Field(examples=[10485760])
    refused: str = Field(default="", description="Why it was not kept (e.g. larger than the limit).")
    href: str | None = Field(default=None, description="Where to download it.")


class TimelineEntryOut(Model):
    version: int
    occurred_at: datetime
    entry_type: str = Field(examples=["reply"])
    entry_id: UUID
    author_id: str
    channel: str
    direction: str
    public: bool
    body: str
    minutes: int
    result: str | None
    attachment: AttachmentOut | None = Field(default=None, description="For entry_type attachment.")


class FieldChange(Model):
    field: str
    old: Any = None
    new: Any = None


class AuditEntryOut(Model):
    position: int
    object_id: UUID
    object_type: str
    version: int
    event_type: str = Field(examples=["Ticket.Assigned"])
    occurred_at: datetime
    recorded_at: datetime
    actor_id: str
    actor_role: str
    via: str
    correlation_id: str
    command_id: str
    imported: bool
    changes: list[FieldChange]
    summary: str


class CustomerOut(Model):
    customer_id: UUID
    name: str | None
    email: str | None
    phone: str | None
    im_handle: str | None
    company: str | None
    job_title: str | None
    preferred_language: str
    tier: str
    consents: list[str]
    note_count: int
    registered_at: datetime
    updated_at: datetime
    version: int
    masked: list[str] = Field(description="Fields withheld from this caller; send X-Access-Purpose to see them (recorded).")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "customer_id": CUSTOMER, "name": "***", "email": "***", "phone": "***", "im_handle": None, "company": "***",
        "job_title": None, "preferred_language": "zh-CN", "tier": "vip", "consents": ["service", "surveys"],
        "note_count": 0, "registered_at": "2026-11-01T08:00:00+00:00", "updated_at": "2026-11-01T08:00:00+00:00",
        "version": 1, "masked": ["name", "email", "phone", "company"],
    }]})


class CustomerTicketOut(Model):
    ticket_id: UUID
    subject: str
    ticket_type: str
    category: str
    priority: str
    channel: str
    status: str
    created_at: datetime
    first_reply_at: datetime | None
    solved_at: datetime | None
    closed_at: datetime | None
    satisfaction: int | None
    interaction_count: int


class CustomerInteractionOut(Model):
    ticket_id: UUID
    version: int
    occurred_at: datetime
    kind: str
    direction: str
    channel: str
    author_id: str
    body: str


class CustomerOverviewOut(Model):
    profile: CustomerOut
    tickets: list[CustomerTicketOut]
    interactions: list[CustomerInteractionOut]
    figures: dict[str, Any] = Field(examples=[{"ticket_count": 4, "complaint_rate": 0.25, "open_tickets": 1, "average_satisfaction": 4.5}])


class MemberOut(Model):
    role: str = Field(examples=["agent"])
    skills: list[str] = Field(examples=[["network", "中文"]])
    active: bool = Field(examples=[True])


class TeamOut(Model):
    team_id: UUID = Field(examples=[TEAM])
    name: str = Field(examples=["技术支持 Technical Support"])
    description: str
    members: dict[str, MemberOut]
    active_members: int
    version: int


class SearchHitOut(Model):
    ticket_id: UUID
    kind: str = Field(examples=["subject"])
    occurred_at: datetime
    snippet: str


class EventOut(Model):
    position: int = Field(examples=[1207])
    object_id: UUID = Field(examples=[TICKET])
    object_type: str = Field(examples=["ticket"])
    version: int
    event_type: str
    occurred_at: datetime
    recorded_at: datetime
    actor_id: str
    actor_role: str
    via: str
    correlation_id: str
    imported: bool
    payload: dict[str, Any]


class EventPage(Model):
    items: list[EventOut]
    next_cursor: str = Field(description="Pass as `cursor` to continue; stable: it is the last position returned.")


class AccessEntryOut(Model):
    position: int = Field(examples=[2210])
    customer_id: UUID = Field(examples=[CUSTOMER])
    actor_id: str = Field(examples=["li.wei"])
    actor_role: str = Field(examples=["agent"])
    fields: list[str] = Field(examples=[["email", "name", "phone"]])
    purpose: str = Field(examples=["calling back about ticket 42"])
    request_id: str
    resource: str
    occurred_at: datetime


class MeOut(Model):
    token_id: UUID
    name: str = Field(examples=["li.wei"])
    role: str = Field(examples=["agent"])
    team_ids: list[UUID]
    all_teams: bool
    permissions: list[str]


class TokenOut(Model):
    token_id: UUID
    token: str | None = Field(description="Shown once; only its hash is stored.")


class ViewLag(Model):
    view: str = Field(examples=["tickets"])
    position: int = Field(examples=[1207])
    lag: int = Field(examples=[0])


class ReadyOut(Model):
    ready: bool
    log_position: int
    views: list[ViewLag]


class HealthOut(Model):
    status: str = Field(examples=["ok"])


# ------------------------------------------------------------------ workflow policies
CALENDAR = "a3c08e3d-7779-5097-ba53-1f6533d3e27f"  # calendar_id("上海工作日")
SLA_POLICY = "7f24711f-bee0-5367-acd4-59af37fc82be"  # sla_policy_id("VIP")
ROUTING_POLICY = "a7644e53-93cc-5b68-a573-6ddb677e0bf4"
BILLING_TEAM = "8e0f6a51-3c2b-5d4e-9f70-1a2b3c4d5e6f"
ROUTING_RULES_EXAMPLE: dict[str, Any] = {
    "rules": [
        {"name": "发票到财务", "team_id": BILLING_TEAM, "keywords": ["发票", "invoice"], "set_priority": "high",
         "add_tags": ["billing"]},
        {"name": "VIP 中文工单", "team_id": TEAM, "tiers": ["vip"], "languages": ["zh"]},
    ],
    "default_team_id": TEAM,
    "note": "发票问题直接转财务",
}
_WORKING_DAY = [["09:00", "12:00"], ["13:00", "18:00"]]
CALENDAR_EXAMPLE: dict[str, Any] = {
    "name": "上海工作日", "timezone": "Asia/Shanghai",
    "weekly": {day: _WORKING_DAY for day in ("0", "1", "2", "3", "4")},
    "holidays": [f"2026-10-0{d}" for d in range(1, 8)],  # 国庆节 2026
    "workdays": {"2026-10-10": 4},  # 调休: Saturday 10 October is worked on Friday hours
}
SLA_POLICY_EXAMPLE: dict[str, Any] = {
    "name": "VIP", "position": 0, "conditions": {"tiers": ["vip"]},
    "targets": {
        "urgent": {"first_reply_time": {"minutes": 60, "business_hours": True},
                   "resolution_time": {"minutes": 480, "business_hours": True}},
        "high": {"first_reply_time": {"minutes": 120, "business_hours": True}},
    },
    "calendar_id": CALENDAR, "warn_at_percent": 80,
    "escalation": {"raise_priority": True, "team_id": None},
}

RoutingRulesPut = request_model(wf.PublishRoutingRules, "RoutingRulesPut", ROUTING_RULES_EXAMPLE)
CalendarDefine = request_model(wf.DefineCalendar, "CalendarDefine", CALENDAR_EXAMPLE)
SlaPolicyDefine = request_model(wf.DefineSlaPolicy, "SlaPolicyDefine", SLA_POLICY_EXAMPLE)
SlaPolicyRetire = request_model(wf.RetireSlaPolicy, "SlaPolicyRetire", {"reason": "合并到新的 VIP 标准"},
                                path=frozenset({"policy_id"}))
StrategyPut = request_model(wf.SetAssignmentStrategy, "StrategyPut", {"strategy": "least_loaded"})


class RoutingPolicyOut(Model):
    """The routing rulebook at one version: rules in order (first match wins) and the default team."""

    policy_id: UUID
    version: int
    rules: list[dict[str, Any]]
    default_team_id: UUID
    note: str
    updated_at: datetime

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "policy_id": ROUTING_POLICY, "version": 3, "default_team_id": TEAM, "note": "发票问题直接转财务",
        "updated_at": "2026-11-02T09:00:00+00:00",
        "rules": [{"name": "发票到财务", "team_id": BILLING_TEAM, "keywords": ["发票", "invoice"], "languages": [],
                   "set_priority": "high", "add_tags": ["billing"]}],
    }]})


class PolicyVersionOut(Model):
    """One version of a policy: what changed, who changed it, when and through what."""

    version: int = Field(examples=[2])
    event_type: str = Field(examples=["RoutingPolicy.Revised"])
    occurred_at: datetime = Field(examples=["2026-11-02T09:00:00+00:00"])
    actor_id: str = Field(examples=["gao.sup"])
    actor_role: str = Field(examples=["supervisor"])
    via: str = Field(examples=["api"])
    imported: bool = Field(examples=[False])
    note: str = Field(examples=["发票问题直接转财务"], description="The publisher's note, or why it was retired.")
    content: dict[str, Any] = Field(examples=[{"default_team_id": TEAM, "note": "发票问题直接转财务", "rules": []}],
                                    description="The version's content as recorded.")


class CalendarOut(Model):
    calendar_id: UUID
    name: str
    timezone: str
    weekly: dict[str, list[list[str]]]
    holidays: list[str]
    workdays: dict[str, int]
    version: int
    updated_at: datetime

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "calendar_id": CALENDAR, **{k: v for k, v in CALENDAR_EXAMPLE.items()}, "version": 1,
        "updated_at": "2026-09-01T08:00:00+00:00",
    }]})


class SlaPolicyOut(Model):
    policy_id: UUID
    name: str
    position: int
    conditions: dict[str, list[str]]
    targets: dict[str, dict[str, dict[str, Any]]]
    calendar_id: UUID | None
    warn_at_percent: int
    escalation: dict[str, Any]
    retired: bool
    version: int
    updated_at: datetime

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "policy_id": SLA_POLICY, **SLA_POLICY_EXAMPLE, "escalation": {"raise_priority": True, "team_id": None},
        "retired": False, "version": 2, "updated_at": "2026-09-01T08:00:00+00:00",
    }]})


# ------------------------------------------------- reminders, surveys, problem library
REMINDER = "9b2e4c1d-3f5a-5e6b-8c7d-0a1b2c3d4e5f"

ReminderCreate = request_model(wf.ScheduleReminder, "ReminderCreate", {
    "kind": "follow_up", "ticket_id": TICKET, "agent_id": "li.wei", "team_id": TEAM,
    "due_at": "2026-11-05T09:00:00+08:00", "note": "回访：确认客户可以正常登录",
}, keep=frozenset({"ticket_id", "customer_id", "team_id"}))
ReminderComplete = request_model(wf.CompleteReminder, "ReminderComplete", {"outcome": "客户确认问题已解决"},
                                 path=frozenset({"reminder_id"}))
ReminderCancel = request_model(wf.CancelReminder, "ReminderCancel", {"reason": "ticket reopened"},
                               path=frozenset({"reminder_id"}))
SurveyAnswerBody = request_model(wf.AnswerSurvey, "SurveyAnswerBody", {"score": 5, "comment": "服务很及时，谢谢"},
                                 path=frozenset({"token"}))
ResolutionBody = request_model(wf.RecordResolution, "ResolutionBody", {"summary": "清除浏览器缓存并重置密码后可以登录。"})


class ReminderOut(Model):
    """A reminder (提醒) or follow-up (回访). ``note`` and ``outcome`` are masked unless shown."""

    reminder_id: UUID
    kind: str = Field(examples=["follow_up"])
    ticket_id: UUID | None
    customer_id: UUID | None
    agent_id: str | None
    team_id: UUID | None
    due_at: datetime
    due: bool = Field(description="Open and due now (its due time has passed).")
    state: str = Field(examples=["scheduled"], description="scheduled, fired, done or cancelled")
    note: str
    outcome: str | None
    cancel_reason: str | None
    created_by: str
    created_at: datetime
    fired_at: datetime | None
    done_at: datetime | None
    cancelled_at: datetime | None
    version: int

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "reminder_id": REMINDER, "kind": "follow_up", "ticket_id": TICKET, "customer_id": CUSTOMER,
        "agent_id": "li.wei", "team_id": TEAM, "due_at": "2026-11-05T01:00:00+00:00", "due": True, "state": "fired",
        "note": "***", "outcome": None, "cancel_reason": None, "created_by": "li.wei",
        "created_at": "2026-11-02T09:00:00+00:00", "fired_at": "2026-11-05T01:00:05+00:00", "done_at": None,
        "cancelled_at": None, "version": 2,
    }]})


class SurveyReceipt(Model):
    """The survey answer was recorded (it cannot be changed)."""

    recorded: bool = Field(examples=[True])
    score: int = Field(examples=[5])


class ProblemOut(Model):
    """A solved problem of the problem library (问题库). ``summary`` is masked unless shown."""

    ticket_id: UUID
    customer_id: UUID
    category: str = Field(examples=["login"])
    summary: str
    source: str = Field(examples=["summary"], description='"summary" (recorded by the agent) or "resolution" (given on solving)')
    solved_at: datetime
    recorded_at: datetime

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "ticket_id": TICKET, "customer_id": CUSTOMER, "category": "login", "summary": "清除浏览器缓存并重置密码后可以登录。",
        "source": "summary", "solved_at": "2026-11-02T10:00:00+00:00", "recorded_at": "2026-11-02T10:05:00+00:00",
    }]})


class FieldChangeOut(Model):
    """One field changed between two versions, and the event that changed it (time travel diff)."""

    field: str = Field(examples=["priority"])
    old: Any = Field(description="The value before (null: not set); personal values are masked as for the audit trail")
    new: Any
    version: int = Field(examples=[3], description="The version the event made")
    event_type: str = Field(examples=["Ticket.PriorityChanged"])
    occurred_at: datetime
    recorded_at: datetime
    actor_id: str = Field(examples=["li.wei"])
    actor_role: str = Field(examples=["agent"])


# ------------------------------------------------------------- saved reply templates (快捷回复)
TEMPLATE = "8c1f2e3d-4b5a-5c6d-9e7f-1a2b3c4d5e6f"
TEMPLATE_EXAMPLE: dict[str, Any] = {"title": "密码重置完成", "kind": "reply",
                    "body": "{{customer.name}}您好：\n您的工单 {{ticket.reference}}「{{ticket.subject}}」已处理，密码已重置。\n"
                            "{{team.name}} {{agent.name}}"}

ReplyTemplateCreate = request_model(c.CreateReplyTemplate, "ReplyTemplateCreate", TEMPLATE_EXAMPLE)
ReplyTemplatePut = request_model(c.ReviseReplyTemplate, "ReplyTemplatePut", TEMPLATE_EXAMPLE,
                                 path=frozenset({"template_id"}))
ReplyTemplateRetire = request_model(c.RetireReplyTemplate, "ReplyTemplateRetire", {"reason": "产品已下线"},
                                    path=frozenset({"template_id"}))
_TEMPLATE_ROW: dict[str, Any] = {
    "template_id": TEMPLATE, "team_id": TEAM, "title": TEMPLATE_EXAMPLE["title"], "body": TEMPLATE_EXAMPLE["body"],
    "kind": "reply", "version": 2, "retired": False,
}


class ReplyTemplateOut(Model):
    """A team's saved reply template (快捷回复), from the reply templates view."""

    template_id: UUID
    team_id: UUID
    title: str
    body: str = Field(description="With its placeholders, e.g. {{customer.name}}, as written")
    kind: str | None = Field(description="reply, note, or null: either")
    version: int
    retired: bool
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime
    use_count: int = Field(description="Replies and notes sent from the template")
    last_used_at: datetime | None

    model_config = ConfigDict(json_schema_extra={"examples": [{
        **_TEMPLATE_ROW, "created_by": "gao.sup", "created_at": "2026-11-02T09:00:00+00:00", "updated_by": "gao.sup",
        "updated_at": "2026-11-03T09:00:00+00:00", "use_count": 17, "last_used_at": "2026-11-04T10:30:00+00:00",
    }]})


class ReplyTemplateDetailOut(Model):
    """One template (or one past version, ``?version=N``) and every version of it."""

    template_id: UUID
    team_id: UUID
    title: str
    body: str
    kind: str | None
    version: int
    retired: bool
    updated_at: datetime
    placeholders: dict[str, str] = Field(description="Every placeholder a template may use, and what it stands for")
    history: list[PolicyVersionOut] = Field(description="Each version: who, when, through what, and its content")

    model_config = ConfigDict(json_schema_extra={"examples": [{
        **_TEMPLATE_ROW, "updated_at": "2026-11-03T09:00:00+00:00",
        "placeholders": {"customer.name": "the requester's name (personal data)"},
        "history": [{"version": 1, "event_type": "ReplyTemplate.Created", "occurred_at": "2026-11-02T09:00:00+00:00",
                     "actor_id": "gao.sup", "actor_role": "supervisor", "via": "api", "imported": False, "note": "",
                     "content": {"team_id": TEAM, "title": "密码重置", "body": "{{customer.name}}您好", "kind": None}}],
    }]})


class RenderedTemplateOut(Model):
    """A template filled in for one ticket, for the reply composer. Placeholders listed in ``unfilled`` stay
    in ``body`` as written: send the body with ``template_id`` and the server fills them in."""

    template_id: UUID
    version: int
    ticket_id: UUID
    kind: str | None
    title: str
    body: str
    unfilled: list[str] = Field(description='e.g. ["customer.name"] unless X-Access-Purpose was sent')

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "template_id": TEMPLATE, "version": 2, "ticket_id": TICKET, "kind": "reply", "title": "密码重置完成",
        "body": "{{customer.name}}您好：\n您的工单 #6457ba06「无法登录账户」已处理，密码已重置。\n技术支持 李伟",
        "unfilled": ["customer.name"],
    }]})
