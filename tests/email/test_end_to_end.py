"""The email channel's "done when", on real servers: a desk configured as the README says (an IMAP mailbox
added with the CLI, its password in the environment; `TICKETFLOW_SMTP_HOST` for replies) receives a
customer's mail from Dovecot as a ticket; the agent's reply, posted through the API, is sent by the
desk's automation to a real SMTP server (aiosmtpd) that delivers it into the customer's own Dovecot
mailbox, threaded; the customer's answer with an attachment lands in the same ticket; and all of it shows
in the timeline, the audit trail and the audit export (the attachment by the hash of its ciphertext),
which the offline verifier accepts."""

from __future__ import annotations

import base64
import email
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.api.conftest import build_api
from tests.email import dovecot
from tests.support import run_cli
from ticketflow.config import Settings

DESK_PASSWORD = "d0ve-Desk-pw"
CUSTOMER_PASSWORD = "d0ve-Customer-pw"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 16  # the customer's scan, made here


@pytest.fixture(scope="module")
def server() -> Iterator[dovecot.Dovecot]:
    """One Dovecot: the desk's mailbox `support` and the customer's own mailbox `zhangsan`."""
    if not dovecot.available():
        if os.environ.get("CI") == "true":
            pytest.fail("dovecot is not installed: .ci/run installs dovecot-imapd under CI=true")
        pytest.skip("Debian's dovecot-imapd is not installed (apt-get install dovecot-imapd)")
    box = dovecot.Dovecot()
    box.add_user("support", DESK_PASSWORD)
    box.add_user("zhangsan", CUSTOMER_PASSWORD)
    box.start()
    try:
        yield box
    finally:
        box.stop()


class Relay:
    """The SMTP server the desk sends through: it delivers each accepted mail into its recipient's Dovecot
    mailbox (IMAP APPEND, as a mail server's local delivery would) and says so."""

    def __init__(self, mailboxes: dovecot.Dovecot) -> None:
        self.mailboxes = mailboxes
        self.delivered = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        for recipient in envelope.rcpt_tos:
            self.mailboxes.append(envelope.original_content, recipient.split("@", 1)[0])
        self.delivered.set()
        return "250 2.0.0 delivered"


def _customer_mail(**headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "张三 <zhangsan@example.cn>"
    msg["To"] = "技术支持 <support@desk.example>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    return msg


def _inbox(server: dovecot.Dovecot, user: str) -> list[EmailMessage]:
    """Every mail in the user's INBOX, as their mail client reads it."""
    client = server.client(user)
    try:
        client.select("INBOX", readonly=True)
        _, found = client.uid("SEARCH", "ALL")
        mails: list[EmailMessage] = []
        for uid in b" ".join(x for x in found if x).split():
            _, data = client.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
            raw = next(item[1] for item in data if isinstance(item, tuple))
            mails.append(email.message_from_bytes(raw, policy=policy.default))
        return mails
    finally:
        client.logout()


def test_a_customers_mail_becomes_a_ticket_the_reply_reaches_their_mailbox_threaded_and_their_answer_lands_with_its_attachment(
    tmp_path: Path,
    server: dovecot.Dovecot,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    relay = Relay(server)
    smtp = Controller(relay, hostname="127.0.0.1", port=dovecot.free_port())
    smtp.start()
    data_dir = tmp_path / "desk"
    monkeypatch.setenv("TICKETFLOW_DATA_DIR", str(data_dir))  # what the CLI reads
    monkeypatch.setenv("TICKETFLOW_IMAP_SUPPORT", DESK_PASSWORD)
    settings = Settings(  # what `ticketflow serve` reads from TICKETFLOW_SMTP_HOST / _PORT
        data_dir=data_dir, smtp_host="127.0.0.1", smtp_port=smtp.port, imap_poll_seconds=0,
        rate_limit_burst=10_000, rate_limit_per_second=10_000,
    )
    running = build_api(settings)
    api = next(running)
    try:
        # The admin adds the desk's IMAP mailbox, as the README shows.
        code, _, err = run_cli(
            ["mailbox", "add", "support", "support@desk.example", "--team", str(api.team_a),
             "--protocol", "imap", "--imap-host", "127.0.0.1", "--imap-port", str(server.port),
             "--imap-username", "support", "--imap-folder", "INBOX", "--imap-security", "plain",
             "--password-env", "TICKETFLOW_IMAP_SUPPORT"],
            capsys,
        )
        assert code == 0, err

        # 1. The customer writes; the fetch opens a ticket for the mailbox's team.
        first = _customer_mail(Subject="打印机卡纸", Message_ID="<first.e2e@example.cn>")
        first.set_content("您好，三楼的打印机一直卡纸。\n张三")
        server.append(first.as_bytes(), "support")
        code, out, err = run_cli(["mailbox", "poll"], capsys)
        assert (code, json.loads(out)) == (0, {"opened": 1}), err
        api.caught_up()
        (ticket,) = api.get("agent_a", "/api/v1/tickets").json()["items"]
        ticket_id = ticket["ticket_id"]
        assert (ticket["subject"], ticket["channel"], ticket["team_id"]) == ("打印机卡纸", "email", str(api.team_a))

        # 2. The agent replies through the API; the automation mails it; it lands in the customer's mailbox.
        reply = api.post("agent_a", f"/api/v1/tickets/{ticket_id}/replies", {"body": "请打开后盖取出卡纸。\n李伟"})
        assert reply.status_code in (200, 201), reply.text
        assert relay.delivered.wait(timeout=60), "the desk's automation sent nothing"
        (answer_to,) = _inbox(server, "zhangsan")
        assert answer_to["From"].addresses[0].addr_spec == "support@desk.example"
        assert str(answer_to["Subject"]) == f"Re: 打印机卡纸 [#{ticket_id[:8]}]"
        assert answer_to["In-Reply-To"] == "<first.e2e@example.cn>" == answer_to["References"]
        body = answer_to.get_body(("plain",))
        assert body is not None and body.get_content().replace("\r\n", "\n") == "请打开后盖取出卡纸。\n李伟\n"

        # 3. The customer answers from their client, with a scan attached; it joins the same ticket.
        answer = _customer_mail(
            Subject=str(answer_to["Subject"]),
            Message_ID="<answer.e2e@example.cn>",
            In_Reply_To=answer_to["Message-ID"],
            References=f"<first.e2e@example.cn> {answer_to['Message-ID']}",
        )
        answer.set_content("取出来了，但是有报错，截图见附件。\n\n> 请打开后盖取出卡纸。")
        answer.add_attachment(PDF, maintype="application", subtype="octet-stream", filename="报错截图.pdf")
        server.append(answer.as_bytes(), "support")
        code, out, err = run_cli(["mailbox", "poll"], capsys)
        assert (code, json.loads(out)) == (0, {"replied": 1}), err
        api.caught_up()
        assert len(api.get("agent_a", "/api/v1/tickets").json()["items"]) == 1

        # 4. The timeline: the mail, the reply, the answer and its attachment, downloadable.
        timeline = api.get("agent_a", f"/api/v1/tickets/{ticket_id}/timeline").json()
        talk = [(e["entry_type"], e["direction"], e["body"]) for e in timeline if e["entry_type"] in ("reply", "attachment")]
        assert talk == [
            ("reply", "outbound", "请打开后盖取出卡纸。\n李伟"),
            ("reply", "inbound", "取出来了，但是有报错，截图见附件。"),
            ("attachment", "inbound", "报错截图.pdf"),
        ]
        inbound = [e for e in timeline if e["direction"] == "inbound" and e["entry_type"] in ("reply", "attachment")]
        assert {e["author_id"] for e in inbound} == {ticket["customer_id"]}  # the customer's, not the desk's
        attachment = timeline[-1]["attachment"]
        assert (attachment["content_type"], attachment["size"]) == ("application/pdf", len(PDF))
        download = api.get("agent_a", attachment["href"])
        assert download.status_code == 200 and download.content == PDF
        digest = attachment["digest"]
        assert digest != hashlib.sha256(PDF).hexdigest()  # the hash of the ciphertext, not of the file

        # 5. The audit trail: every step, by whom, through which channel.
        audit = api.get("auditor", f"/api/v1/tickets/{ticket_id}/audit").json()
        steps = [(a["event_type"], a["actor_role"], a["via"]) for a in audit]
        for step in [
            ("Ticket.Opened", "system", "email"),  # the desk's intake, on the customer's behalf
            ("Ticket.MailReceived", "system", "email"),
            ("Ticket.Replied", "agent", "api"),
            ("Ticket.Replied", "system", "email"),
            ("Ticket.MailReceived", "system", "email"),
            ("Ticket.AttachmentReceived", "system", "email"),
        ]:
            assert step in steps, steps
        assert steps.index(("Ticket.Replied", "agent", "api")) < steps.index(("Ticket.AttachmentReceived", "system", "email"))
        worked = api.get("agent_a", f"/api/v1/tickets/{ticket_id}/audit").json()  # an auditor sees it masked
        (kept_entry,) = [a for a in worked if a["event_type"] == "Ticket.AttachmentReceived"]
        assert kept_entry["summary"] == f"attachment received: application/pdf, {len(PDF)} bytes, kept as {digest[:12]}"
    finally:
        next(running, None)  # the desk stops (its automation and sealer with it)
        smtp.stop()

    # 6. The audit export: sealed, verified offline, the attachment named by its hash.
    code, _, err = run_cli(["audit", "seal"], capsys)
    assert code == 0, err
    code, out, err = run_cli(["audit", "export", str(tmp_path / "export"), "--ticket", ticket_id], capsys)
    assert code == 0, err
    key = out.split("--key ")[-1].strip()
    from ticketflow_verify.cli import main as verify

    assert verify([str(tmp_path / "export"), "--key", key]) == 0
    lines = [json.loads(x) for x in (tmp_path / "export" / "events.ndjson").read_text(encoding="utf-8").splitlines()]
    kept = [base64.b64decode(x["state"]) for x in lines if x["topic"].endswith(":Ticket.AttachmentReceived")]
    assert len(kept) == 1 and digest.encode() in kept[0]
    everything = b"".join(base64.b64decode(x["state"]) for x in lines)
    assert "报错截图".encode() not in everything and "打印机".encode() not in everything  # personal data sealed
