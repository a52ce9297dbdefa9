"""Saved reply templates (快捷回复): who writes them, placeholders, versions, filling one for a ticket,
and replies and notes that record the template they were sent from."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from eventsourcing.persistence import StoredEvent

from tests.support import ADMIN, two_teams
from ticketflow.access import Permission, Principal
from ticketflow.application import TicketDesk
from ticketflow.commands import (
    AddNote,
    AddTeamMember,
    CreateReplyTemplate,
    OpenTicket,
    PostReply,
    RegisterCustomer,
    RetireReplyTemplate,
    ReviseReplyTemplate,
)
from ticketflow.commands.accounts import CreateAccount
from ticketflow.config import Settings
from ticketflow.domain import DataAccess, Ticket
from ticketflow.domain.reply_template import ReplyKind, check_placeholders, fill, placeholders_in
from ticketflow.domain.values import Direction, MemberRole, Role
from ticketflow.errors import (
    ConcurrencyConflict,
    NotFound,
    PermissionDenied,
    RuleViolation,
    TeamNotFound,
    ValidationFailed,
)
from ticketflow.metadata import Caller

GREETING = "{{customer.name}}您好：您的工单 {{ticket.reference}}「{{ ticket.subject }}」已处理。{{team.name}} {{agent.name}}"


def person(name: str, role: Role, *teams: uuid.UUID) -> Caller:
    return Principal(uuid.uuid4(), name, role, frozenset(teams), agent_id=name).caller()


class Setup:
    def __init__(self, desk: TicketDesk) -> None:
        self.desk = desk
        self.team_a, self.team_b = two_teams(desk)
        desk.add_team_member(AddTeamMember(team_id=self.team_b, agent_id="zhou.sup", role=MemberRole.SUPERVISOR), ADMIN)
        self.supervisor_a = person("gao.sup", Role.SUPERVISOR, self.team_a)
        self.supervisor_b = person("zhou.sup", Role.SUPERVISOR, self.team_b)
        self.agent_a = person("li.wei", Role.AGENT, self.team_a)
        self.agent_b = person("wang.fang", Role.AGENT, self.team_b)
        self.customer = desk.register_customer(RegisterCustomer(name="王小明"), ADMIN).object_id
        self.ticket = desk.open_ticket(
            OpenTicket(subject="无法登录账户", requester_id=self.customer, team_id=self.team_a), ADMIN).object_id

    def create(self, caller: Caller | None = None, body: str = GREETING, team_id: uuid.UUID | None = None,
               kind: ReplyKind | None = None) -> uuid.UUID:
        command = CreateReplyTemplate(team_id=team_id or self.team_a, title="密码重置", body=body, kind=kind)
        return self.desk.create_reply_template(command, caller or self.supervisor_a).object_id

    def refused(self, call: object, error: type[Exception], match: str | None = None) -> None:
        before = self.desk.log_position()
        with pytest.raises(error, match=match):
            call()  # type: ignore[operator]
        assert self.desk.log_position() == before


@pytest.fixture
def s(desk: TicketDesk) -> Setup:
    return Setup(desk)


# ------------------------------------------------------------------ placeholders
def test_placeholders_are_found_filled_and_unknown_ones_named() -> None:
    assert placeholders_in(GREETING) == ["customer.name", "ticket.reference", "ticket.subject", "team.name", "agent.name"]
    assert fill("{{ customer.name }}，{{team.name}}", {"customer.name": "王小明", "team.name": "技术支持"}) == "王小明，技术支持"
    assert fill("{{customer.name}}好", {"customer.name": "王"}, keep={"customer.name"}) == "{{customer.name}}好"
    check_placeholders("没有占位符 {single} braces")
    with pytest.raises(ValidationFailed, match=r"unknown placeholder \{\{customer\.phone\}\}, \{\{订单号\}\}"):
        check_placeholders("{{customer.phone}} {{订单号}} {{customer.name}}")


# ------------------------------------------------------------------ who writes
def test_a_supervisor_creates_a_chinese_template_for_their_team(s: Setup) -> None:
    template = s.desk.reply_template(s.create(), s.agent_a)
    assert (template.team_id, template.title, template.body, template.kind, template.version) == (
        s.team_a, "密码重置", GREETING, None, 1)
    created = s.desk.reply_template_history(template.id, s.agent_a)[0]
    assert (type(created).__qualname__, created.actor_id, created.actor_role) == (
        "ReplyTemplate.Created", "gao.sup", "supervisor")


def test_an_agent_cannot_write_templates_and_another_teams_supervisor_cannot_see_them(s: Setup) -> None:
    command = CreateReplyTemplate(team_id=s.team_a, title="t", body="b")
    s.refused(lambda: s.desk.handle(command, s.agent_a), PermissionDenied, "may not write reply templates")
    s.refused(lambda: s.desk.handle(command, s.supervisor_b), TeamNotFound)
    template_id = s.create()
    revise = ReviseReplyTemplate(template_id=template_id, title="t", body="b")
    s.refused(lambda: s.desk.handle(revise, s.agent_a), PermissionDenied)
    s.refused(lambda: s.desk.handle(revise, s.supervisor_b), NotFound, "reply template")
    s.refused(lambda: s.desk.handle(RetireReplyTemplate(template_id=template_id), s.supervisor_b), NotFound)
    with pytest.raises(NotFound):
        s.desk.reply_template(template_id, s.agent_b)  # team B's staff do not see team A's templates


def test_an_admin_writes_templates_for_any_team(s: Setup) -> None:
    template_id = s.create(ADMIN, team_id=s.team_b, kind=ReplyKind.NOTE)
    assert s.desk.reply_template(template_id, s.agent_b).kind == "note"
    s.desk.handle(RetireReplyTemplate(template_id=template_id, reason="不再使用"), ADMIN)
    assert s.desk.reply_template(template_id, s.supervisor_b).retired


def test_unknown_placeholders_are_refused_on_create_and_revise_naming_them(s: Setup) -> None:
    s.refused(lambda: s.create(body="您好 {{customer.phone}}"), ValidationFailed, r"\{\{customer\.phone\}\}")
    template_id = s.create()
    revise = ReviseReplyTemplate(template_id=template_id, title="t", body="{{ticket.number}}")
    s.refused(lambda: s.desk.handle(revise, s.supervisor_a), ValidationFailed, r"unknown placeholder \{\{ticket\.number\}\}")


# ------------------------------------------------------------------ versions
def test_revisions_are_versions_with_their_history_and_stale_or_retired_writes_are_refused(s: Setup) -> None:
    template_id = s.create()
    result = s.desk.handle(ReviseReplyTemplate(template_id=template_id, title="密码已重置", body="{{customer.name}}您好",
                                               kind=ReplyKind.REPLY, expected_version=1), s.supervisor_a)
    assert (result.version, result.events) == (2, ("ReplyTemplate.Revised",))
    same = ReviseReplyTemplate(template_id=template_id, title="密码已重置", body="{{customer.name}}您好", kind=ReplyKind.REPLY)
    assert s.desk.handle(same, s.supervisor_a).events == ()  # unchanged: no new version
    stale = ReviseReplyTemplate(template_id=template_id, title="x", body="y", expected_version=1)
    s.refused(lambda: s.desk.handle(stale, ADMIN), ConcurrencyConflict)
    assert s.desk.reply_template(template_id, s.agent_a, version=1).body == GREETING
    s.desk.handle(RetireReplyTemplate(template_id=template_id, reason="流程变更"), s.supervisor_a)
    s.refused(lambda: s.desk.handle(RetireReplyTemplate(template_id=template_id), s.supervisor_a), RuleViolation)
    s.refused(lambda: s.desk.handle(stale.model_copy(update={"expected_version": None}), s.supervisor_a),
              RuleViolation, "retired")
    history = s.desk.reply_template_history(template_id, s.agent_a)
    assert [(type(e).__qualname__, e.originator_version, e.actor_id) for e in history] == [
        ("ReplyTemplate.Created", 1, "gao.sup"), ("ReplyTemplate.Revised", 2, "gao.sup"),
        ("ReplyTemplate.Retired", 3, "gao.sup")]


# ------------------------------------------------------------------ rendering and sending
def test_rendering_fills_the_ticket_agent_and_team_but_keeps_the_customers_name(s: Setup) -> None:
    s.desk.create_account(CreateAccount(username="li.wei", display_name="李伟", role=Role.AGENT, agent_id="li.wei"),
                          ADMIN, "correct horse battery staple")
    rendered = s.desk.render_reply_template(s.ticket, s.create(), s.agent_a)
    reference = f"#{str(s.ticket)[:8]}"
    assert rendered.body == f"{{{{customer.name}}}}您好：您的工单 {reference}「无法登录账户」已处理。技术支持 李伟"
    assert (rendered.unfilled, rendered.customer_id) == (("customer.name",), s.customer)
    shown = s.desk.render_reply_template(s.ticket, rendered.template_id, s.agent_a, keep=())
    assert shown.body.startswith("王小明您好") and shown.unfilled == ()


def test_a_reply_from_a_template_is_filled_on_the_server_and_records_the_template_and_the_read(s: Setup) -> None:
    template_id = s.create()
    s.desk.handle(ReviseReplyTemplate(template_id=template_id, title="t", body=GREETING + "。"), s.supervisor_a)
    draft = s.desk.render_reply_template(s.ticket, template_id, s.agent_a, version=1).body + "\n如有问题请回复。"
    result = s.desk.handle(PostReply(ticket_id=s.ticket, body=draft, template_id=template_id, template_version=1),
                           s.agent_a)
    assert result.events == ("Ticket.Replied", "Ticket.MarkedOpen")
    replied = [e for e in s.desk.history(s.ticket) if isinstance(e, Ticket.Replied)][-1]
    assert (replied.template_id, replied.template_version) == (template_id, 1)
    assert replied.body.startswith("王小明您好：您的工单 #") and "{{" not in replied.body
    accesses = [e for e in _all_events(s.desk) if isinstance(e, DataAccess.Recorded)]
    assert [(a.customer_id, a.fields, a.actor_id) for a in accesses] == [(s.customer, ["name"], "li.wei")]
    assert str(template_id) in accesses[0].purpose


def test_a_note_records_its_template_and_a_body_without_the_name_records_no_read(s: Setup) -> None:
    template_id = s.create(body="已转{{team.name}}跟进", kind=ReplyKind.NOTE)
    s.desk.handle(AddNote(ticket_id=s.ticket, body="已转{{team.name}}跟进：打印机", template_id=template_id), s.agent_a)
    note = s.desk.history(s.ticket)[-1]
    assert isinstance(note, Ticket.NoteAdded)
    assert (note.body, note.template_id, note.template_version) == ("已转技术支持跟进：打印机", template_id, 1)
    assert not [e for e in _all_events(s.desk) if isinstance(e, DataAccess.Recorded)]
    reply = PostReply(ticket_id=s.ticket, body="x", template_id=template_id)
    s.refused(lambda: s.desk.handle(reply, s.agent_a), RuleViolation, "for a note, not a reply")


def test_a_template_is_used_only_on_its_teams_tickets_while_active_with_known_placeholders(s: Setup) -> None:
    other = s.create(ADMIN, team_id=s.team_b)
    s.refused(lambda: s.desk.handle(PostReply(ticket_id=s.ticket, body="x", template_id=other), s.agent_a), NotFound)
    s.refused(lambda: s.desk.handle(PostReply(ticket_id=s.ticket, body="x", template_id=other), ADMIN), RuleViolation,
              "team")
    template_id = s.create()
    unknown = PostReply(ticket_id=s.ticket, body="{{customer.email}}", template_id=template_id)
    s.refused(lambda: s.desk.handle(unknown, s.agent_a), ValidationFailed, r"\{\{customer\.email\}\}")
    never = PostReply(ticket_id=s.ticket, body="x", template_id=template_id, template_version=2)
    s.refused(lambda: s.desk.handle(never, s.agent_a), RuleViolation, "no version 2")
    bridge = Principal(uuid.uuid4(), "im-bridge", Role.INTEGRATION, frozenset({s.team_a}),
                       granted=frozenset({Permission.TICKETS_WRITE})).caller()
    named = PostReply(ticket_id=s.ticket, body="{{customer.name}}", template_id=template_id)
    s.refused(lambda: s.desk.handle(named, bridge), PermissionDenied, "personal data")
    s.desk.handle(RetireReplyTemplate(template_id=template_id), s.supervisor_a)
    s.refused(lambda: s.desk.handle(PostReply(ticket_id=s.ticket, body="x", template_id=template_id), s.agent_a),
              RuleViolation, "retired")
    with pytest.raises(ValueError, match="inbound"):
        PostReply(ticket_id=s.ticket, body="x", direction=Direction.INBOUND, template_id=template_id)


def _all_events(desk: TicketDesk) -> list[object]:
    return [desk.mapper.to_domain_event(n) for n in desk.recorder.select_notifications(1, 10**6)]


# ------------------------------------------------------------------ the published schema
def test_replies_and_notes_stored_before_v2_still_load_without_a_template(tmp_path: Path) -> None:
    writer = TicketDesk(Settings(data_dir=tmp_path / "v2", encrypt_personal_data=False))
    setup = Setup(writer)
    writer.handle(PostReply(ticket_id=setup.ticket, body="您好"), setup.agent_a)
    writer.handle(AddNote(ticket_id=setup.ticket, body="内部备注"), setup.agent_a)
    old = []
    for stored in writer.recorder.select_events(setup.ticket):
        state = writer.mapper.transcoder.decode(writer.writer_mac.unwrap(stored).state)
        if stored.topic.endswith(("Ticket.Replied", "Ticket.NoteAdded")):
            assert state.pop("class_version") == 2
            assert (state.pop("template_id"), state.pop("template_version")) == (None, None)
        old.append(writer.writer_mac.wrap(StoredEvent(
            stored.originator_id, stored.originator_version, stored.topic, writer.mapper.transcoder.encode(state))))
    writer.close()

    reader = TicketDesk(Settings(data_dir=tmp_path / "v1", encrypt_personal_data=False))
    reader.recorder.insert_events(old)
    ticket = reader.get_ticket(setup.ticket)
    assert (ticket.public_reply_count, ticket.note_count) == (1, 1)
    replied, note = [e for e in reader.history(setup.ticket) if isinstance(e, Ticket.Replied | Ticket.NoteAdded)]
    assert (replied.body, replied.template_id, replied.template_version) == ("您好", None, None)
    assert (note.body, note.template_id, vars(note)["template_version"]) == ("内部备注", None, None)
    reader.close()

