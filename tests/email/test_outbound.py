"""Agents' public replies on email tickets go out through the outbox as mail, to a real SMTP server
(aiosmtpd in-process): threaded, from the team's mailbox, Chinese intact, the same message on a resend;
the customer's answer to it threads back into the ticket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from aiosmtpd.controller import Controller

from projections.mail_sender import MailSender
from projections.outbox import MAIL_CHANNEL, list_deliveries
from projections.readside import ReadSide
from tests.email import corpus
from tests.support import ADMIN
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import AddNote, FormTeam, OpenTicket, PostReply, RegisterCustomer
from ticketflow.commands.mailbox import AddMailbox
from ticketflow.commands.privacy import EraseCustomer
from ticketflow.config import Settings
from ticketflow.domain import Ticket
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller

AGENT = Caller("li.wei", Role.ADMIN, Channel.API)


@dataclass
class Inbox:
    """The SMTP server's handler: every message it accepted, as the customer's mailbox would hold it."""

    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 queued"

    def messages(self) -> list[EmailMessage]:
        return [message_from_bytes(raw, policy=policy.default) for _, _, raw in self.received]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Mail:
    desk: TicketDesk
    read_side: ReadSide
    clock: FakeClock
    inbox: Inbox
    server: Controller
    team_id: UUID

    def send(self) -> int:
        self.read_side.catch_up()
        return MailSender(self.read_side, self.desk, self.clock).run_once()

    def restart_server(self) -> None:
        """A stopped aiosmtpd controller cannot start again: a new server on the same port."""
        self.server = Controller(self.inbox, hostname="127.0.0.1", port=self.server.port)
        self.server.start()

    def deliveries(self) -> list[dict[str, Any]]:
        self.read_side.catch_up()
        return self.read_side.read("outbox", lambda db: list_deliveries(db, MAIL_CHANNEL))


@pytest.fixture
def mail(tmp_path: Path, clock: FakeClock) -> Iterator[Mail]:
    port = _free_port()
    desk = TicketDesk(
        Settings(data_dir=tmp_path / "desk", smtp_host="127.0.0.1", smtp_port=port), clock=clock
    )
    team_id = desk.form_team(FormTeam(name="技术支持"), ADMIN).object_id
    desk.add_mailbox(AddMailbox(name="support", address="support@desk.example", team_id=team_id), ADMIN)
    inbox = Inbox()
    server = Controller(inbox, hostname="127.0.0.1", port=port)
    server.start()
    read_side = ReadSide(desk, ["outbox"])
    running = Mail(desk, read_side, clock, inbox, server, team_id)
    try:
        yield running
    finally:
        if running.server.loop.is_running():
            running.server.stop()
        read_side.close()
        desk.close()


def _reply(mail: Mail, ticket_id: UUID, body: str) -> UUID:
    mail.desk.post_reply(PostReply(ticket_id=ticket_id, body=body), AGENT)
    replies = [
        e for e in mail.desk.history(ticket_id) if isinstance(e, Ticket.Replied) and e.direction == "outbound"
    ]
    return replies[-1].interaction_id


def test_a_reply_on_an_email_ticket_reaches_the_customer_threaded_and_their_answer_comes_back(
    mail: Mail,
) -> None:
    opened = mail.desk.receive_mail(
        corpus.plain("打印机卡纸了", subject="打印机故障", sender="张三 <zhangsan@example.cn>"),
        mailbox="support",
        team_id=mail.team_id,
    )
    ticket_id = opened.ticket_id
    assert ticket_id is not None
    interaction = _reply(mail, ticket_id, "您好，请打开后盖取出卡住的纸。\n李伟")
    assert mail.send() == 1
    assert mail.send() == 0  # delivered: never sent again
    ((envelope_from, recipients, _),) = mail.inbox.received
    assert (envelope_from, recipients) == ("support@desk.example", ["zhangsan@example.cn"])
    (message,) = mail.inbox.messages()
    assert message["From"].addresses[0].addr_spec == "support@desk.example"
    assert message["From"].addresses[0].display_name == "技术支持"
    assert str(message["To"]) == "张三 <zhangsan@example.cn>"
    assert str(message["Subject"]) == f"Re: 打印机故障 [#{str(ticket_id)[:8]}]"
    assert message["In-Reply-To"] == "<first.1@mail.example.cn>" == message["References"]
    assert message["Message-ID"].startswith(f"<tf.{ticket_id.hex}.{interaction.hex}.")
    assert message.get_content_type() == "multipart/alternative"
    plain, rich = message.iter_parts()
    assert plain.get_content_type() == "text/plain" and rich.get_content_type() == "text/html"
    assert plain.get_content().replace("\r\n", "\n") == "您好，请打开后盖取出卡住的纸。\n李伟\n"
    assert "<p>您好，请打开后盖取出卡住的纸。<br>\n李伟</p>" in rich.get_content().replace("\r\n", "\n")
    (row,) = mail.deliveries()
    assert (row["state"], row["attempts"], row["last_status"]) == ("delivered", 1, 250)

    answer = corpus.plain(
        corpus.GMAIL_REPLY_ZH.replace("重置之后还是不行。", "取出来了，谢谢！"),
        subject=str(message["Subject"]),
        sender="zhangsan@example.cn",
        message_id="<answer.1@mail.example.cn>",
        extra={
            "In-Reply-To": message["Message-ID"],
            "References": f"<first.1@mail.example.cn> {message['Message-ID']}",
        },
    )
    back = mail.desk.receive_mail(answer, mailbox="support")
    assert (back.action, back.ticket_id) == ("replied", ticket_id)
    inbound = [
        e for e in mail.desk.history(ticket_id) if isinstance(e, Ticket.Replied) and e.direction == "inbound"
    ]
    assert [e.body for e in inbound] == ["取出来了，谢谢！"]

    _reply(mail, ticket_id, "不客气。")
    assert mail.send() == 1
    second = mail.inbox.messages()[-1]
    assert second["In-Reply-To"] == "<answer.1@mail.example.cn>"
    assert second["References"].split() == [
        "<first.1@mail.example.cn>",
        message["Message-ID"],
        "<answer.1@mail.example.cn>",
    ]


def test_a_server_down_is_retried_with_backoff_and_the_resend_is_the_same_message(mail: Mail) -> None:
    ticket_id = mail.desk.receive_mail(corpus.plain("hi"), mailbox="support", team_id=mail.team_id).ticket_id
    assert ticket_id is not None
    _reply(mail, ticket_id, "first try")
    mail.server.stop()
    assert mail.send() == 1
    (row,) = mail.deliveries()
    assert row["state"] == "pending" and row["attempts"] == 1 and "ConnectionRefused" in row["last_error"]
    mail.restart_server()
    assert mail.send() == 0  # not due for 10 s
    mail.clock.advance(timedelta(seconds=11))
    assert mail.send() == 1
    (row,) = mail.deliveries()
    assert (row["state"], row["attempts"]) == ("delivered", 2)
    (message,) = mail.inbox.messages()
    assert (
        message["Message-ID"]
        == mail.desk.compose_reply(ticket_id, _interaction(mail, ticket_id))["Message-ID"]
    )
    assert bytes(mail.desk.compose_reply(ticket_id, _interaction(mail, ticket_id))) == bytes(
        mail.desk.compose_reply(ticket_id, _interaction(mail, ticket_id))
    )  # composed again after a crash: byte for byte the same message


_KILLED_SENDER = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import datetime
    from projections.mail_sender import MailSender, smtp_send
    from projections.readside import ReadSide
    from ticketflow.application import TicketDesk
    from ticketflow.clock import FakeClock
    from ticketflow.config import Settings

    settings = Settings(data_dir=sys.argv[1], smtp_host="127.0.0.1", smtp_port=int(sys.argv[2]))
    clock = FakeClock(datetime.fromisoformat(sys.argv[3]))
    desk = TicketDesk(settings, clock=clock)
    read_side = ReadSide(desk, ["outbox"])
    read_side.catch_up()
    send = smtp_send(settings)

    def accepted_then_killed(message):
        send(message)  # the server answered 250: the mail is in the customer's mailbox
        print("accepted", message["Message-ID"], flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # before the attempt is recorded, for real

    MailSender(read_side, desk, clock, send=accepted_then_killed).run_once()
    """
)


def test_a_sender_killed_between_the_servers_acceptance_and_the_record_sends_once_more_with_the_same_message_id(
    mail: Mail,
) -> None:
    ticket_id = mail.desk.receive_mail(
        corpus.plain("打印机卡纸了", sender="张三 <zhangsan@example.cn>"), mailbox="support", team_id=mail.team_id
    ).ticket_id
    assert ticket_id is not None
    first = _reply(mail, ticket_id, "第一封回复")
    second = _reply(mail, ticket_id, "第二封回复")
    mail.read_side.catch_up()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_SENDER, str(mail.desk.settings.data_dir), str(mail.server.port),
         mail.clock.now().isoformat()],
        env=env,
        capture_output=True,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    expected = [mail.desk.compose_reply(ticket_id, i)["Message-ID"] for i in (first, second)]
    assert killed.stdout.decode().split() == ["accepted", expected[0]]
    assert [m["Message-ID"] for m in mail.inbox.messages()] == expected[:1]
    assert [(r["state"], r["attempts"]) for r in mail.deliveries()] == [("pending", 0), ("pending", 0)]

    assert mail.send() == 1  # the second reply; the first is held by the killed sender's lease ...
    mail.clock.advance(timedelta(seconds=61))
    assert mail.send() == 1  # ... until it expires: then it goes again
    assert mail.send() == 0
    assert [m["Message-ID"] for m in mail.inbox.messages()] == [expected[0], expected[1], expected[0]]
    assert mail.inbox.received[0][2] == mail.inbox.received[2][2]  # the second send is the same message
    assert [(r["state"], r["attempts"]) for r in mail.deliveries()] == [("delivered", 1), ("delivered", 1)]


def _interaction(mail: Mail, ticket_id: UUID) -> UUID:
    return next(e.interaction_id for e in mail.desk.history(ticket_id) if isinstance(e, Ticket.Replied))


def test_only_public_replies_on_email_tickets_are_mailed(mail: Mail) -> None:
    customer = mail.desk.register_customer(
        RegisterCustomer(name="王五", email="wangwu@example.cn"), ADMIN
    ).object_id
    web = mail.desk.open_ticket(
        OpenTicket(subject="网页表单", requester_id=customer, team_id=mail.team_id), ADMIN
    )
    _reply(mail, web.object_id, "a reply on a web-form ticket")
    by_mail = mail.desk.receive_mail(corpus.plain("x"), mailbox="support", team_id=mail.team_id).ticket_id
    assert by_mail is not None
    mail.desk.add_note(AddNote(ticket_id=by_mail, body="internal"), ADMIN)
    assert mail.send() == 0 and mail.inbox.received == []


def test_a_reply_that_can_never_be_mailed_fails_at_once_with_its_reason(mail: Mail) -> None:
    outcome = mail.desk.receive_mail(
        corpus.plain("x", sender="lisi@example.cn"), mailbox="support", team_id=mail.team_id
    )
    assert outcome.ticket_id is not None and outcome.customer_id is not None
    _reply(mail, outcome.ticket_id, "too late")
    mail.desk.erase_customer(
        EraseCustomer(customer_id=outcome.customer_id, basis="customer_request", reference="DSR-9"), ADMIN
    )
    assert mail.send() == 1
    (row,) = mail.deliveries()
    assert row["state"] == "failed" and "no email address" in row["last_error"]
    assert mail.inbox.received == []


def test_the_automation_sends_mail_when_an_smtp_server_is_configured(mail: Mail) -> None:
    from projections.automation import Automation

    ticket_id = mail.desk.receive_mail(corpus.plain("hi"), mailbox="support", team_id=mail.team_id).ticket_id
    assert ticket_id is not None
    _reply(mail, ticket_id, "自动化发出")
    read_side = ReadSide(mail.desk)
    try:
        read_side.catch_up()
        automation = Automation(mail.desk, read_side, clock=mail.clock)
        assert "mail" in automation.extra_steps
        assert automation.run_once()["mail"] == 1
    finally:
        read_side.close()
    (message,) = mail.inbox.messages()
    body = message.get_body(("plain",))
    assert body is not None and body.get_content().strip() == "自动化发出"


def test_the_html_part_escapes_what_the_agent_typed_and_keeps_paragraphs() -> None:
    from ticketflow.email.outbound import html_of

    rendered = html_of("您好 <b>张三</b> & 团队：\n请重启。\n\n<script>alert(1)</script>")
    assert "<p>您好 &lt;b&gt;张三&lt;/b&gt; &amp; 团队：<br>\n请重启。</p>" in rendered
    assert "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>" in rendered and "<script>" not in rendered
