"""Received mail into tickets: new conversations open tickets, replies thread into theirs, machines are
ignored, every mail is taken in once, the raw message is kept sealed and erased with its customer."""

from __future__ import annotations

import hashlib
from uuid import uuid4

import pytest

from tests.email import corpus
from tests.support import ADMIN, Desk
from ticketflow.application import TicketDesk
from ticketflow.commands import AddNote, CloseTicket, PendTicket, PostReply, RegisterCustomer, SolveTicket
from ticketflow.commands.customer import UpdateCustomerProfile
from ticketflow.commands.privacy import EraseCustomer
from ticketflow.domain import Customer, Ticket
from ticketflow.domain.values import Channel, Role
from ticketflow.email.ids import outbound_message_id
from ticketflow.metadata import Caller

COMPLIANCE = Caller("chen.dpo", Role.COMPLIANCE, Channel.API)


def _events(app: TicketDesk, ticket_id, cls: type) -> list:
    return [e for e in app.history(ticket_id) if isinstance(e, cls)]


def test_a_new_mail_from_a_stranger_registers_them_and_opens_a_ticket(any_desk: TicketDesk) -> None:
    raw = corpus.plain(
        "打印机卡纸了，请尽快处理。", subject="打印机故障", sender="张三 <ZhangSan@Example.cn>"
    )
    outcome = any_desk.receive_mail(raw, mailbox="support", uid="1")
    assert outcome.action == "opened"
    ticket = any_desk.get_ticket(outcome.ticket_id)
    assert (ticket.subject, ticket.description, ticket.channel) == (
        "打印机故障",
        "打印机卡纸了，请尽快处理。",
        "email",
    )
    customer = any_desk.get_customer(outcome.customer_id)
    assert (customer.name, customer.email) == ("张三", "zhangsan@example.cn")
    assert any_desk.find_customer_by_email(" zhangsan@EXAMPLE.cn ") == customer.id
    (received,) = _events(any_desk, ticket.id, Ticket.MailReceived)
    assert received.message_id == "<first.1@mail.example.cn>" and received.interaction_id is None
    assert any_desk.raw_mail(received.raw_digest) == raw
    stored = any_desk.mail_store.raw(received.raw_digest)
    assert stored is not None and raw not in stored[1]  # sealed, addressed by the hash of the ciphertext
    assert hashlib.sha256(stored[1]).hexdigest() == received.raw_digest


def test_a_known_customer_is_found_by_address_and_the_mailbox_team_gets_the_ticket(setup: Desk) -> None:
    outcome = setup.app.receive_mail(
        corpus.plain("hi", sender="<XiaoMing@example.cn>"), mailbox="support", team_id=setup.team_id
    )
    assert outcome.customer_id == setup.customer_id
    assert setup.app.get_ticket(outcome.ticket_id).team_id == setup.team_id


def test_an_address_change_moves_the_index(setup: Desk) -> None:
    setup.app.update_customer_profile(
        UpdateCustomerProfile(customer_id=setup.customer_id, email="new@example.cn"), ADMIN
    )
    assert setup.app.find_customer_by_email("new@example.cn") == setup.customer_id
    assert setup.app.find_customer_by_email("xiaoming@example.cn") is None


def test_the_same_mail_twice_is_one_ticket(setup: Desk) -> None:
    raw = corpus.plain("hi")
    first = setup.app.receive_mail(raw, mailbox="support", uid="7")
    again = setup.app.receive_mail(raw, mailbox="support", uid="7")
    other_box = setup.app.receive_mail(raw, mailbox="sales", uid="3")  # the same mail sent to two addresses
    assert (first.action, again.action, other_box.action) == ("opened", "duplicate", "duplicate")
    assert again.ticket_id == other_box.ticket_id == first.ticket_id
    assert len(_events(setup.app, first.ticket_id, Ticket.MailReceived)) == 1


def test_without_message_id_the_mailbox_uid_identifies_the_mail(setup: Desk) -> None:
    raw = b"From: xiaoming@example.cn\r\nSubject: no id\r\n\r\nbody\r\n"
    first = setup.app.receive_mail(raw, mailbox="support", uid="9")
    assert setup.app.receive_mail(raw, mailbox="support", uid="9").action == "duplicate"
    assert setup.app.receive_mail(raw, mailbox="support", uid="10").ticket_id != first.ticket_id


def test_a_reply_naming_the_ticket_reference_is_the_customers_inbound_reply(setup: Desk) -> None:
    opened = setup.app.receive_mail(corpus.plain("无法登录"), mailbox="support")
    ticket_id = opened.ticket_id
    setup.app.pend_ticket(PendTicket(ticket_id=ticket_id), ADMIN)
    reply = corpus.plain(
        corpus.QQ_REPLY,
        subject=f"回复: 无法登录账户 [#{str(ticket_id)[:8]}]",
        message_id="<r.1@mail.example.cn>",
    )
    outcome = setup.app.receive_mail(reply, mailbox="support")
    assert (outcome.action, outcome.ticket_id) == ("replied", ticket_id)
    (replied,) = _events(setup.app, ticket_id, Ticket.Replied)
    assert (replied.direction, replied.channel, replied.body) == ("inbound", "email", "已经可以登录了。")
    assert replied.author_id == str(setup.customer_id)
    assert setup.app.get_ticket(ticket_id).status == "open"  # the customer answered
    mails = _events(setup.app, ticket_id, Ticket.MailReceived)
    assert [m.interaction_id for m in mails] == [None, replied.interaction_id]


def test_a_reply_to_our_message_id_threads_and_a_forged_one_does_not(setup: Desk) -> None:
    ticket_id = setup.open()
    ours = outbound_message_id(setup.app.message_id_key, ticket_id, uuid4(), "desk.example")
    answer = corpus.plain("thanks", subject="Re: hi", message_id="<a.1@x>", extra={"In-Reply-To": ours})
    assert setup.app.receive_mail(answer, mailbox="support").ticket_id == ticket_id
    forged = ours[:-20] + "0000000000000000@desk.example>"[-20:]
    fake = corpus.plain("x", subject="Re: hi", message_id="<a.2@x>", extra={"References": forged})
    assert setup.app.receive_mail(fake, mailbox="support").action == "opened"


def test_a_customer_adding_to_their_own_first_mail_threads_by_references(setup: Desk) -> None:
    first = setup.app.receive_mail(corpus.plain("first"), mailbox="support")
    more = corpus.plain(
        "forgot: my id is 42",
        subject="Re: 无法登录账户",
        message_id="<more@x>",
        extra={"In-Reply-To": "<first.1@mail.example.cn>"},
    )
    assert setup.app.receive_mail(more, mailbox="support").ticket_id == first.ticket_id


def test_someone_else_citing_a_ticket_gets_their_own(setup: Desk) -> None:
    ticket_id = setup.open()
    setup.app.mail_store.add_ref(f"#{str(ticket_id)[:8]}", ticket_id)
    intruder = corpus.plain("let me in", subject=f"Re: [#{str(ticket_id)[:8]}]", sender="eve@evil.example")
    outcome = setup.app.receive_mail(intruder, mailbox="support")
    assert outcome.action == "opened" and outcome.ticket_id != ticket_id
    assert _events(setup.app, ticket_id, Ticket.Replied) == []


def test_a_reply_to_a_closed_ticket_opens_a_new_one_and_a_solved_one_reopens(setup: Desk) -> None:
    first = setup.app.receive_mail(corpus.plain("a", message_id="<c.1@x>"), mailbox="support").ticket_id
    setup.app.post_reply(PostReply(ticket_id=first, body="done"), ADMIN)
    setup.app.solve_ticket(SolveTicket(ticket_id=first), ADMIN)
    again = corpus.plain("still broken", subject="Re", message_id="<c.2@x>", extra={"In-Reply-To": "<c.1@x>"})
    assert setup.app.receive_mail(again, mailbox="support").ticket_id == first
    assert setup.app.get_ticket(first).status == "open"
    setup.app.solve_ticket(SolveTicket(ticket_id=first), ADMIN)
    setup.app.close_ticket(CloseTicket(ticket_id=first), ADMIN)
    late = corpus.plain("one more", subject="Re", message_id="<c.3@x>", extra={"In-Reply-To": "<c.1@x>"})
    outcome = setup.app.receive_mail(late, mailbox="support")
    assert outcome.action == "opened" and outcome.ticket_id != first


def test_a_reply_fetched_again_long_after_is_still_held_once(setup: Desk) -> None:
    ticket_id = setup.app.receive_mail(corpus.plain("a"), mailbox="support").ticket_id
    reply = corpus.plain("b", subject=f"Re [#{str(ticket_id)[:8]}]", message_id="<late@x>")
    assert setup.app.receive_mail(reply, mailbox="support").action == "replied"
    for n in range(70):  # beyond the commands an aggregate remembers
        setup.app.add_note(AddNote(ticket_id=ticket_id, body=f"note {n}"), ADMIN)
    assert setup.app.receive_mail(reply, mailbox="support").action == "duplicate"
    assert len(_events(setup.app, ticket_id, Ticket.Replied)) == 1


@pytest.mark.parametrize(
    "raw",
    [
        corpus.bounce(),
        corpus.auto_reply("Auto-Submitted", "auto-replied"),
        corpus.auto_reply("Precedence", "junk"),
        corpus.auto_reply("X-Autoreply", "yes"),
        corpus.auto_reply("List-Id", "<l.example.cn>"),
    ],
    ids=["bounce", "auto-submitted", "precedence", "x-autoreply", "list"],
)
def test_machine_mail_never_opens_a_ticket_nor_registers_anyone(desk: TicketDesk, raw: bytes) -> None:
    before = desk.log_position()
    outcome = desk.receive_mail(raw, mailbox="support")
    assert outcome.action == "ignored" and outcome.ticket_id is None
    assert desk.log_position() == before


def test_a_mail_without_a_usable_sender_is_ignored(desk: TicketDesk) -> None:
    assert desk.receive_mail(b"Subject: x\r\n\r\nbody", mailbox="m").action == "ignored"
    outcome = desk.receive_mail(corpus.plain("x", sender="not-an-address@nowhere"), mailbox="m")
    assert outcome.action == "ignored" and "sender" in outcome.reason


def test_chinese_charsets_reach_the_ticket(desk: TicketDesk) -> None:
    outcome = desk.receive_mail(corpus.gbk_labelled_gb2312(), mailbox="support")
    ticket = desk.get_ticket(outcome.ticket_id)
    assert ticket.subject == "朱镕基的喆字显示乱码"
    assert desk.get_customer(ticket.requester_id).name == "王喆"
    big5 = desk.get_ticket(desk.receive_mail(corpus.big5_mail(), mailbox="support").ticket_id)
    assert big5.description == "請問帳號為什麼被鎖定？"


def test_a_long_mail_is_cut_in_the_event_and_whole_in_the_raw_message(desk: TicketDesk) -> None:
    raw = corpus.plain("长" * 30_000)
    outcome = desk.receive_mail(raw, mailbox="support")
    ticket = desk.get_ticket(outcome.ticket_id)
    assert len(ticket.description) == 20_000 and ticket.description.endswith("kept for audit]")
    (received,) = _events(desk, ticket.id, Ticket.MailReceived)
    assert desk.raw_mail(received.raw_digest) == raw


def test_erasure_forgets_the_address_and_the_raw_messages(any_desk: TicketDesk) -> None:
    raw = corpus.plain("我的手机号是 13800000000", sender="李四 <lisi@example.cn>")
    outcome = any_desk.receive_mail(raw, mailbox="support")
    (received,) = _events(any_desk, outcome.ticket_id, Ticket.MailReceived)
    any_desk.erase_customer(
        EraseCustomer(customer_id=outcome.customer_id, basis="customer_request", reference="DSR-1"),
        COMPLIANCE,
    )
    assert any_desk.find_customer_by_email("lisi@example.cn") is None
    assert any_desk.mail_store.raw(received.raw_digest) is None
    assert any_desk.raw_mail(received.raw_digest) is None
    (received,) = _events(any_desk, outcome.ticket_id, Ticket.MailReceived)
    assert received.message_id == "[erased]"
    again = any_desk.receive_mail(
        corpus.plain("again", sender="lisi@example.cn", message_id="<n@x>"), mailbox="s"
    )
    assert again.action == "opened" and again.customer_id != outcome.customer_id


def test_customers_registered_by_staff_are_indexed(desk: TicketDesk) -> None:
    customer_id = desk.register_customer(
        RegisterCustomer(name="赵六", email="Zhao@Example.cn"), ADMIN
    ).object_id
    assert desk.find_customer_by_email("zhao@example.cn") == customer_id
    assert isinstance(desk.get_customer(customer_id), Customer)


def test_the_mail_event_reads_in_timelines(setup: Desk) -> None:
    from ticketflow.describe import describe

    ticket_id = setup.app.receive_mail(corpus.plain("a"), mailbox="support").ticket_id
    (received,) = _events(setup.app, ticket_id, Ticket.MailReceived)
    assert describe(received).startswith("mail received in mailbox support (opened the ticket), kept as ")


def test_the_index_is_rebuilt_for_customers_registered_before_it(setup: Desk) -> None:
    setup.app.mail_store.unindex(setup.customer_id)  # as on a store written before the email channel
    assert setup.app.find_customer_by_email("xiaoming@example.cn") is None
    other = setup.app.register_customer(
        RegisterCustomer(name="李四", email="lisi@example.cn"), ADMIN
    ).object_id
    setup.app.erase_customer(
        EraseCustomer(customer_id=other, basis="customer_request", reference="DSR-2"), COMPLIANCE
    )
    assert setup.app.rebuild_email_index() == 1
    assert setup.app.find_customer_by_email("xiaoming@example.cn") == setup.customer_id
    assert setup.app.find_customer_by_email("lisi@example.cn") is None


def test_a_retried_registration_mends_an_index_write_lost_in_a_crash(desk: TicketDesk) -> None:
    command = RegisterCustomer(name="周七", email="zhou@example.cn")
    customer_id = desk.register_customer(command, ADMIN).object_id
    desk.mail_store.unindex(customer_id)  # killed between saving the event and indexing the address
    assert desk.register_customer(command, ADMIN).replayed
    assert desk.find_customer_by_email("zhou@example.cn") == customer_id
