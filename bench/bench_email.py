"""The email channel's inbound cost.

    PYTHONPATH=$PWD python bench/bench_email.py [--parse 4000] [--mails 300] [--imap 1000]

Parsing alone: ``parse_message`` over four corpus shapes (a QQ Mail reply, a GB2312-labelled GBK
mail, an HTML-only Gmail reply, a Big5 mail). Intake: ``receive_mail`` of distinct mails from 50
senders into a fresh SQLite desk (registering each sender once, opening a ticket per mail, sealing
and keeping each raw message). IMAP (``--imap N``, needs Debian's dovecot-imapd): N distinct mails
appended to a real Dovecot started in a temporary directory, then fetched alone (``UID FETCH`` of each
mail's ``BODY.PEEK[]`` over one connection: the protocol's raw cost) and then by the poller into a
fresh SQLite desk (fetch, intake, the Seen flag, high-water mark, per mail); the same N mails parsed
alone (``parse_message``) are its baseline. SMTP (``--smtp N``): N agents' replies on N email tickets
sent by the outbox's mail sender (``MailSender.run_once`` until all are delivered: claim, compose from
the log, SMTP, attempt recorded) to an aiosmtpd server in this process, against the raw protocol to the
same server: the same N composed messages sent with ``smtplib``, a connection per message (what the
sender's transport does) and all over one connection. Prints messages per second.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.email import corpus
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow.email.parse import parse_message


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parse", type=int, default=4000)
    parser.add_argument("--mails", type=int, default=300)
    parser.add_argument("--imap", type=int, default=0, help="Mails in the IMAP mailbox (0: skip).")
    parser.add_argument("--smtp", type=int, default=0, help="Replies sent as mail (0: skip).")
    args = parser.parse_args()
    shapes = [
        corpus.plain(corpus.QQ_REPLY),
        corpus.gbk_labelled_gb2312(),
        corpus.html_only_gmail_reply(),
        corpus.big5_mail(),
    ]
    started = time.perf_counter()
    for i in range(args.parse):
        parse_message(shapes[i % len(shapes)])
    print(f"parse alone: {args.parse / (time.perf_counter() - started):.0f} messages/s")
    mails = [
        corpus.plain(f"第{i}封", sender=f"user{i % 50}@example.cn", message_id=f"<bench.{i}@example.cn>")
        for i in range(args.mails)
    ]
    with tempfile.TemporaryDirectory() as directory:
        desk = TicketDesk(Settings(data_dir=Path(directory), seal=False))
        try:
            started = time.perf_counter()
            for raw in mails:
                desk.receive_mail(raw, mailbox="support")
            print(
                f"intake into tickets (SQLite): {args.mails / (time.perf_counter() - started):.0f} messages/s"
            )
        finally:
            desk.close()
    if args.imap:
        imap(args.imap)
    if args.smtp:
        smtp(args.smtp)


def imap(count: int) -> None:
    import os

    from tests.email import dovecot
    from ticketflow.commands.mailbox import AddMailbox, ImapSecurity, MailProtocol
    from ticketflow.domain.values import Channel, Role
    from ticketflow.email.imap import ImapPoller
    from ticketflow.metadata import Caller

    server = dovecot.Dovecot()
    server.add_user("desk", "bench-password")
    server.start()
    try:
        client = server.client("desk")
        raws = [
            corpus.plain(f"第{i}封", sender=f"user{i % 50}@example.cn", message_id=f"<imap.{i}@example.cn>")
            for i in range(count)
        ]
        for raw in raws:
            client.append("INBOX", None, None, raw)
        started = time.perf_counter()
        for raw in raws:
            parse_message(raw)
        print(f"parse alone (the same {count} mails): {count / (time.perf_counter() - started):.0f} messages/s")
        client.select("INBOX", readonly=True)
        started = time.perf_counter()
        for uid in range(1, count + 1):
            client.uid("FETCH", str(uid), "(UID BODY.PEEK[])")
        print(
            f"IMAP fetch alone (Dovecot, {count} mails): {count / (time.perf_counter() - started):.0f} messages/s"
        )
        client.logout()
        os.environ["TF_BENCH_IMAP"] = "bench-password"
        with tempfile.TemporaryDirectory() as directory:
            desk = TicketDesk(Settings(data_dir=Path(directory), seal=False))
            try:
                desk.add_mailbox(
                    AddMailbox(
                        name="support",
                        address="support@desk.example",
                        protocol=MailProtocol("imap"),
                        imap_host="127.0.0.1",
                        imap_port=server.port,
                        imap_username="desk",
                        imap_security=ImapSecurity("plain"),
                        password_env="TF_BENCH_IMAP",
                    ),
                    Caller("bench", Role.ADMIN, Channel.CLI),
                )
                started = time.perf_counter()
                done = ImapPoller(desk, interval=60, batch=count).poll_once()
                elapsed = time.perf_counter() - started
                assert done == {"opened": count}, done
                print(f"IMAP poll into tickets (SQLite, {count} mails): {count / elapsed:.0f} messages/s")
            finally:
                desk.close()
    finally:
        server.stop()


def smtp(count: int) -> None:
    import smtplib
    import socket
    import threading
    from typing import Any

    from aiosmtpd.controller import Controller

    from projections.mail_sender import MailSender
    from projections.readside import ReadSide
    from ticketflow.commands import FormTeam, PostReply
    from ticketflow.commands.mailbox import AddMailbox
    from ticketflow.domain import Ticket
    from ticketflow.domain.values import Channel, Role
    from ticketflow.metadata import Caller

    class Sink:
        def __init__(self) -> None:
            self.accepted = 0
            self.lock = threading.Lock()

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with self.lock:
                self.accepted += 1
            return "250 2.0.0 queued"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    sink = Sink()
    server = Controller(sink, hostname="127.0.0.1", port=port)
    server.start()
    admin = Caller("bench", Role.ADMIN, Channel.CLI)
    try:
        with tempfile.TemporaryDirectory() as directory:
            desk = TicketDesk(Settings(data_dir=Path(directory), seal=False, smtp_host="127.0.0.1", smtp_port=port))
            read_side = ReadSide(desk, ["outbox"])
            try:
                team_id = desk.form_team(FormTeam(name="技术支持"), admin).object_id
                desk.add_mailbox(AddMailbox(name="support", address="support@desk.example", team_id=team_id), admin)
                replies = []
                for i in range(count):
                    raw = corpus.plain(f"第{i}封", sender=f"user{i % 50}@example.cn", message_id=f"<smtp.{i}@example.cn>")
                    ticket_id = desk.receive_mail(raw, mailbox="support", team_id=team_id).ticket_id
                    assert ticket_id is not None
                    desk.post_reply(PostReply(ticket_id=ticket_id, body=f"您好，第{i}封的回复。\n李伟"), admin)
                    reply = [e for e in desk.history(ticket_id) if isinstance(e, Ticket.Replied)][-1]
                    replies.append((ticket_id, reply.interaction_id))
                read_side.catch_up()
                messages = [desk.compose_reply(t, r) for t, r in replies]

                started = time.perf_counter()
                for message in messages:
                    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                        client.send_message(message)
                print(f"SMTP alone, a connection per message ({count} mails): "
                      f"{count / (time.perf_counter() - started):.0f} messages/s")
                started = time.perf_counter()
                with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
                    for message in messages:
                        client.send_message(message)
                print(f"SMTP alone, one connection ({count} mails): {count / (time.perf_counter() - started):.0f} messages/s")

                before = sink.accepted
                sender = MailSender(read_side, desk, desk.clock)
                started = time.perf_counter()
                sent = 0
                while sent < count:
                    done = sender.run_once()
                    if done == 0:
                        raise SystemExit(f"the sender stopped after {sent} of {count}")
                    sent += done
                elapsed = time.perf_counter() - started
                assert sink.accepted - before == count, (sink.accepted, before)
                print(f"through the outbox (MailSender, SQLite, {count} mails): {count / elapsed:.0f} messages/s")
            finally:
                read_side.close()
                desk.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
