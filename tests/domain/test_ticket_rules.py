"""Ticket rules beyond the lifecycle: assignment, transfer, interactions, merge, rating."""

from __future__ import annotations

import uuid

import pytest

from ticketflow.commands import (
    AddCollaborator, AddNote, AssignTicket, ChangePriority, ChangeTags, CloseTicket, LinkTicket,
    LogInteraction, LogWork, MarkTicketOpen, MergeTicket, OpenTicket, PendTicket, PostReply, RateSatisfaction,
    RecategoriseTicket, RemoveCollaborator, SolveTicket, TransferTicket,
)
from ticketflow.domain.values import Direction, InteractionKind, LinkKind, Priority, Status, TicketType
from ticketflow.errors import (
    CustomerNotFound, InvalidTransition, PermissionDenied, RuleViolation, TeamNotFound, TicketNotFound,
)
from tests.support import AGENT, Desk
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.config import Settings


def refused_without_writing(setup: Desk, command: object, caller: object, error: type[Exception], match: str | None = None) -> None:
    before = setup.app.log_position()
    with pytest.raises(error, match=match):
        setup.app.handle(command, caller)  # type: ignore[arg-type]
    assert setup.app.log_position() == before


def test_opening_needs_an_existing_customer_and_team(setup: Desk) -> None:
    refused_without_writing(
        setup, OpenTicket(subject="x", requester_id=uuid.uuid4()), AGENT, CustomerNotFound, "customer .* not found"
    )
    refused_without_writing(
        setup,
        OpenTicket(subject="x", requester_id=setup.customer_id, team_id=uuid.uuid4()),
        AGENT,
        TeamNotFound,
    )


def test_a_new_ticket_is_new_unassigned_and_keeps_its_fields(setup: Desk) -> None:
    ticket = setup.app.get_ticket(setup.open("打印机卡纸"))
    assert (ticket.status, ticket.assignee_id, ticket.subject) == (Status.NEW, None, "打印机卡纸")
    assert ticket.requester_id == setup.customer_id and ticket.team_id == setup.team_id
    assert ticket.created_at == setup.app.clock.now()


def test_assigning_a_new_ticket_opens_it(setup: Desk) -> None:
    ticket_id = setup.open()
    result = setup.app.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
    assert result.events == ("Ticket.Assigned", "Ticket.MarkedOpen")
    ticket = setup.app.get_ticket(ticket_id)
    assert (ticket.status, ticket.assignee_id) == (Status.OPEN, "li.wei")


def test_a_desk_that_keeps_assigned_tickets_new_opens_them_only_when_marked_open(clock: FakeClock) -> None:
    app = TicketDesk(Settings(database_url="memory://", assign_opens_new=False), clock=clock)
    try:
        setup = Desk(app)
        assigned, transferred = setup.open(), setup.open("发票抬头错误")
        result = app.assign_ticket(AssignTicket(ticket_id=assigned, assignee_id="li.wei"), AGENT)
        assert result.events == ("Ticket.Assigned",)
        app.transfer_ticket(
            TransferTicket(ticket_id=transferred, team_id=setup.other_team_id, assignee_id="wang.fang", reason="账务问题"),
            AGENT,
        )
        tickets = [app.get_ticket(assigned), app.get_ticket(transferred)]
        assert [(t.status, t.assignee_id) for t in tickets] == [(Status.NEW, "li.wei"), (Status.NEW, "wang.fang")]
        app.handle(MarkTicketOpen(ticket_id=assigned), AGENT)
        assert app.get_ticket(assigned).status == Status.OPEN
    finally:
        app.close()


def test_the_assign_opens_new_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(database_url="memory://").assign_opens_new is True
    monkeypatch.setenv("TICKETFLOW_ASSIGN_OPENS_NEW", "off")
    assert Settings(database_url="memory://").assign_opens_new is False


def test_assigning_outside_the_team_or_to_an_inactive_member_is_refused(setup: Desk) -> None:
    from ticketflow.commands import DeactivateTeamMember

    ticket_id = setup.open()
    refused_without_writing(
        setup, AssignTicket(ticket_id=ticket_id, assignee_id="wang.fang"), AGENT, RuleViolation, "not an active member"
    )
    setup.app.deactivate_team_member(DeactivateTeamMember(team_id=setup.team_id, agent_id="emma.clark"), AGENT)
    refused_without_writing(
        setup, AssignTicket(ticket_id=ticket_id, assignee_id="emma.clark"), AGENT, RuleViolation, "not an active member"
    )


def test_reassigning_to_the_same_agent_is_refused(setup: Desk) -> None:
    ticket_id = setup.open()
    setup.app.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
    refused_without_writing(
        setup, AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT, RuleViolation, "already assigned"
    )


def test_transfer_moves_team_and_assignee_with_a_reason(setup: Desk) -> None:
    ticket_id = setup.open()
    setup.app.assign_ticket(AssignTicket(ticket_id=ticket_id, assignee_id="li.wei"), AGENT)
    setup.app.transfer_ticket(
        TransferTicket(ticket_id=ticket_id, team_id=setup.other_team_id, assignee_id="wang.fang", reason="账务问题"),
        AGENT,
    )
    ticket = setup.app.get_ticket(ticket_id)
    assert (ticket.team_id, ticket.assignee_id) == (setup.other_team_id, "wang.fang")
    event = setup.app.history(ticket_id)[-1]
    assert event.payload() == {
        "to_team_id": setup.other_team_id,
        "from_team_id": setup.team_id,
        "assignee_id": "wang.fang",
        "previous_assignee_id": "li.wei",
        "reason": "账务问题",
    }


def test_transfer_to_the_same_team_or_to_a_non_member_is_refused(setup: Desk) -> None:
    ticket_id = setup.open()
    refused_without_writing(
        setup, TransferTicket(ticket_id=ticket_id, team_id=setup.team_id, reason="r"), AGENT, RuleViolation, "already with team"
    )
    refused_without_writing(
        setup,
        TransferTicket(ticket_id=ticket_id, team_id=setup.other_team_id, assignee_id="li.wei", reason="r"),
        AGENT,
        RuleViolation,
        "not an active member",
    )


def test_an_inbound_message_wakes_a_pending_ticket_and_reopens_a_solved_one(setup: Desk) -> None:
    ticket_id = setup.open()
    setup.app.pend_ticket(PendTicket(ticket_id=ticket_id, reason="need screenshot"), AGENT)
    result = setup.app.post_reply(
        PostReply(ticket_id=ticket_id, body="截图如下", direction=Direction.INBOUND), setup.customer_caller
    )
    assert result.events == ("Ticket.Replied", "Ticket.MarkedOpen")
    setup.app.solve_ticket(SolveTicket(ticket_id=ticket_id), AGENT)
    result = setup.app.post_reply(
        PostReply(ticket_id=ticket_id, body="还是不行", direction=Direction.INBOUND), setup.customer_caller
    )
    assert result.events == ("Ticket.Replied", "Ticket.Reopened")
    ticket = setup.app.get_ticket(ticket_id)
    assert (ticket.status, ticket.reopen_count, ticket.solved_at) == (Status.OPEN, 1, None)


def test_every_kind_of_interaction_is_its_own_event(setup: Desk) -> None:
    ticket_id = setup.open()
    setup.app.post_reply(PostReply(ticket_id=ticket_id, body="您好"), AGENT)
    setup.app.add_note(AddNote(ticket_id=ticket_id, body="internal"), AGENT)
    for kind in (InteractionKind.CALL, InteractionKind.EMAIL, InteractionKind.CHAT, InteractionKind.MEETING):
        setup.app.log_interaction(
            LogInteraction(ticket_id=ticket_id, kind=kind, direction=Direction.INBOUND, body=f"{kind} 记录"), AGENT
        )
    names = [type(e).__qualname__ for e in setup.app.history(ticket_id)]
    for name in ("Replied", "NoteAdded", "CallLogged", "EmailLogged", "ChatLogged", "MeetingMinuted"):
        assert f"Ticket.{name}" in names
    ticket = setup.app.get_ticket(ticket_id)
    assert (ticket.interaction_count, ticket.public_reply_count, ticket.note_count) == (6, 1, 1)
    call = next(e for e in setup.app.history(ticket_id) if type(e).__qualname__ == "Ticket.CallLogged")
    # an inbound contact is the customer's; the agent who logged it is the event's actor
    requester = str(ticket.requester_id)
    assert (call.channel, call.direction, call.author_id, call.actor_id) == ("phone", "inbound", requester, "li.wei")


def test_a_customer_cannot_add_internal_notes_or_send_outbound_replies(setup: Desk) -> None:
    ticket_id = setup.open()
    refused_without_writing(setup, AddNote(ticket_id=ticket_id, body="x"), setup.customer_caller, PermissionDenied)
    refused_without_writing(setup, PostReply(ticket_id=ticket_id, body="x"), setup.customer_caller, PermissionDenied)


def test_a_first_public_reply_opens_a_new_ticket(setup: Desk) -> None:
    ticket_id = setup.open()
    result = setup.app.post_reply(PostReply(ticket_id=ticket_id, body="We are on it"), AGENT)
    assert result.events == ("Ticket.Replied", "Ticket.MarkedOpen")


def test_work_entries_accumulate_minutes(setup: Desk) -> None:
    ticket_id = setup.open()
    setup.app.log_work(LogWork(ticket_id=ticket_id, action="远程排查", minutes=30, result="找到原因"), AGENT)
    setup.app.log_work(LogWork(ticket_id=ticket_id, action="Replaced cable", minutes=15), AGENT)
    ticket = setup.app.get_ticket(ticket_id)
    assert (ticket.work_minutes, ticket.work_entry_count) == (45, 2)


def test_priority_category_tags_collaborators_and_links(setup: Desk) -> None:
    ticket_id, other = setup.open(), setup.open("another")
    setup.app.change_priority(ChangePriority(ticket_id=ticket_id, priority=Priority.URGENT, reason="VIP"), AGENT)
    setup.app.recategorise_ticket(
        RecategoriseTicket(ticket_id=ticket_id, category="账单", ticket_type=TicketType.COMPLAINT), AGENT
    )
    setup.app.change_tags(ChangeTags(ticket_id=ticket_id, add=["VIP", "退款"]), AGENT)
    setup.app.add_collaborator(AddCollaborator(ticket_id=ticket_id, agent_id="emma.clark"), AGENT)
    setup.app.link_ticket(LinkTicket(ticket_id=ticket_id, other_ticket_id=other), AGENT)
    ticket = setup.app.get_ticket(ticket_id)
    assert ticket.priority is Priority.URGENT and ticket.category == "账单"
    assert ticket.ticket_type is TicketType.COMPLAINT
    assert ticket.tags == ["vip", "退款"]
    assert ticket.collaborators == ["emma.clark"]
    assert ticket.links == [{"ticket_id": str(other), "kind": "related"}]
    refused_without_writing(
        setup, ChangePriority(ticket_id=ticket_id, priority=Priority.URGENT), AGENT, RuleViolation, "already has priority"
    )
    refused_without_writing(setup, ChangeTags(ticket_id=ticket_id, add=["vip"]), AGENT, RuleViolation)
    refused_without_writing(setup, RemoveCollaborator(ticket_id=ticket_id, agent_id="nobody"), AGENT, RuleViolation)
    refused_without_writing(
        setup, LinkTicket(ticket_id=ticket_id, other_ticket_id=other), AGENT, RuleViolation, "already linked"
    )
    refused_without_writing(
        setup, LinkTicket(ticket_id=ticket_id, other_ticket_id=uuid.uuid4()), AGENT, TicketNotFound
    )


def test_a_follow_up_links_back_to_a_closed_ticket(setup: Desk) -> None:
    closed = setup.open()
    setup.app.solve_ticket(SolveTicket(ticket_id=closed), AGENT)
    setup.app.close_ticket(CloseTicket(ticket_id=closed), AGENT)
    follow_up = setup.open("same problem again")
    setup.app.link_ticket(LinkTicket(ticket_id=follow_up, other_ticket_id=closed, kind=LinkKind.FOLLOW_UP_OF), AGENT)
    assert setup.app.get_ticket(follow_up).links == [{"ticket_id": str(closed), "kind": "follow_up_of"}]
    refused_without_writing(setup, PostReply(ticket_id=closed, body="hi"), AGENT, InvalidTransition, "final")


def test_merge_closes_the_duplicate_with_a_pointer_and_keeps_its_interactions(setup: Desk) -> None:
    primary, duplicate = setup.open("primary"), setup.open("duplicate")
    setup.app.post_reply(PostReply(ticket_id=duplicate, body="重复的问题"), AGENT)
    result = setup.app.merge_ticket(MergeTicket(ticket_id=duplicate, into_ticket_id=primary), AGENT)
    assert result.events == ("Ticket.MergedInto",)
    dup = setup.app.get_ticket(duplicate)
    assert (dup.status, dup.merged_into) == (Status.CLOSED, primary)
    assert setup.app.get_ticket(primary).merged_duplicates == [duplicate]
    assert any(getattr(e, "body", None) == "重复的问题" for e in setup.app.history(duplicate))
    refused_without_writing(
        setup, MergeTicket(ticket_id=primary, into_ticket_id=primary), AGENT, RuleViolation, "into itself"
    )
    refused_without_writing(
        setup, MergeTicket(ticket_id=setup.open("third"), into_ticket_id=duplicate), AGENT, RuleViolation, "it is closed"
    )


def test_satisfaction_is_rated_once_solved_and_only_by_the_requester(setup: Desk) -> None:
    ticket_id = setup.open()
    refused_without_writing(
        setup, RateSatisfaction(ticket_id=ticket_id, score=5), setup.customer_caller, RuleViolation, "once it is solved"
    )
    setup.app.solve_ticket(SolveTicket(ticket_id=ticket_id), AGENT)
    from ticketflow.domain.values import Channel, Role
    from ticketflow.metadata import Caller

    stranger = Caller(str(uuid.uuid4()), Role.CUSTOMER, Channel.WEB_FORM)
    refused_without_writing(setup, RateSatisfaction(ticket_id=ticket_id, score=5), stranger, PermissionDenied)
    setup.app.rate_satisfaction(RateSatisfaction(ticket_id=ticket_id, score=4, comment="很好"), setup.customer_caller)
    assert setup.app.get_ticket(ticket_id).satisfaction == {"score": 4, "comment": "很好"}


def test_unknown_ticket_is_not_found(setup: Desk) -> None:
    missing = uuid.uuid4()
    with pytest.raises(TicketNotFound, match=str(missing)):
        setup.app.pend_ticket(PendTicket(ticket_id=missing), AGENT)


def test_a_customer_id_is_not_a_ticket(setup: Desk) -> None:
    with pytest.raises(TicketNotFound):
        setup.app.get_ticket(setup.customer_id)


def test_a_copy_of_a_ticket_shares_no_mutable_state(setup: Desk) -> None:
    import copy

    ticket_id = setup.open()
    setup.app.change_tags(ChangeTags(ticket_id=ticket_id, add=["vip"]), AGENT)
    original = setup.app.get_ticket(ticket_id)
    clone = copy.deepcopy(original)
    assert vars(clone) == vars(original) and type(clone) is type(original)
    clone.tags.append("changed")
    clone.recent_commands.clear()
    assert original.tags == ["vip"] and original.recent_commands
