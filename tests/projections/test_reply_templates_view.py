"""The reply templates view, on every store: a team's active templates, their uses, exactly once,
and equal to a rebuild."""

from __future__ import annotations

import uuid

import pytest
from eventsourcing.persistence import IntegrityError, Tracking

from projections.readside import ReadSide
from projections.reply_templates import team_templates
from tests.projections.support import dump
from tests.support import ADMIN, SUPERVISOR, two_teams
from ticketflow.application import TicketDesk
from ticketflow.commands import (
    AddNote,
    CreateReplyTemplate,
    OpenTicket,
    PostReply,
    RegisterCustomer,
    RetireReplyTemplate,
    ReviseReplyTemplate,
)
from ticketflow.domain.reply_template import ReplyKind

VIEW = "reply_templates"


def templates(read_side: ReadSide, team: uuid.UUID, include_retired: bool = False) -> list[tuple[str, int, bool, int]]:
    rows = read_side.read(VIEW, lambda db: team_templates(db, str(team), include_retired))
    return [(r["title"], r["version"], r["retired"], r["use_count"]) for r in rows]


def test_the_view_lists_a_teams_active_templates_with_their_uses_and_equals_a_rebuild(any_desk: TicketDesk) -> None:
    desk = any_desk
    live = ReadSide(desk, [VIEW])
    live.start()
    try:
        team_a, team_b = two_teams(desk)
        customer = desk.register_customer(RegisterCustomer(name="王小明"), ADMIN).object_id
        ticket = desk.open_ticket(OpenTicket(subject="打印机卡纸", requester_id=customer, team_id=team_a), ADMIN).object_id

        def create(team: uuid.UUID, title: str, body: str, kind: ReplyKind | None = None) -> uuid.UUID:
            command = CreateReplyTemplate(team_id=team, title=title, body=body, kind=kind)
            return desk.create_reply_template(command, SUPERVISOR).object_id

        greeting = create(team_a, "问候", "{{customer.name}}您好，{{team.name}}已收到您的工单 {{ticket.reference}}。")
        handover = create(team_a, "转交", "已转交 {{team.name}}", ReplyKind.NOTE)
        old = create(team_a, "旧模板", "旧的回复")
        create(team_b, "Billing hello", "Hello {{customer.name}}")
        desk.handle(ReviseReplyTemplate(template_id=greeting, title="问候", body="{{customer.name}}，您好！"), SUPERVISOR)
        desk.handle(RetireReplyTemplate(template_id=old, reason="不再使用"), SUPERVISOR)
        for _ in range(2):
            desk.handle(PostReply(ticket_id=ticket, body="{{customer.name}}，您好！", template_id=greeting), SUPERVISOR)
        desk.handle(AddNote(ticket_id=ticket, body="已转交 {{team.name}}", template_id=handover), SUPERVISOR)
        desk.handle(PostReply(ticket_id=ticket, body="没有模板的回复"), SUPERVISOR)
        assert live.wait(desk.log_position(), timeout=30)

        assert templates(live, team_a) == [("转交", 1, False, 1), ("问候", 2, False, 2)]
        assert templates(live, team_a, include_retired=True)[0] == ("旧模板", 2, True, 0)
        assert templates(live, team_b) == [("Billing hello", 1, False, 0)]
        before = dump(live, VIEW)
        live.stop()

        # Exactly once: a batch at a position the view already holds is refused and changes nothing.
        store = live.stores[VIEW]
        last = desk.recorder.select_notifications(desk.log_position(), 1)[0]
        with pytest.raises(IntegrityError):
            store.process_batch([(desk.mapper.to_domain_event(last), last.id)], Tracking(desk.name, last.id))  # type: ignore[list-item]
        assert dump(live, VIEW) == before

        live.rebuild(VIEW)
        assert dump(live, VIEW) == before
    finally:
        live.close()
