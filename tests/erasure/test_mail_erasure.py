"""Erasure reaches the email channel: a canary customer's mail (body, subject, attachment file name and
bytes) leaves nothing readable behind — no raw message, no attachment, no blind-index entry, no view row —
on both shared stores; on SQLite the attachment files themselves are deleted."""

from __future__ import annotations

import uuid
from email.message import EmailMessage

from projections.readside import ReadSide
from tests.erasure.test_views_erasure import COMPLIANCE, Canary, hits, raw_tables
from ticketflow.application import TicketDesk
from ticketflow.commands.privacy import EraseCustomer
from ticketflow.config import Settings, StorageKind
from ticketflow.domain import Ticket


def _canary_mail(canary: Canary) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"{canary.text('客户')} <{canary.word.lower()}@example.org>"
    msg["To"] = "support@desk.example"
    msg["Subject"] = canary.text("subject")
    msg["Message-ID"] = f"<{canary.word}@example.org>"
    msg.set_content(canary.text("body"))
    msg.add_attachment(
        canary.text("attachment").encode(),
        maintype="text",
        subtype="plain",
        filename=f"{canary.word}-{canary.han}.txt",
    )
    return msg.as_bytes()


def test_erasing_the_sender_destroys_their_mail_and_attachments(shared_store_settings: Settings) -> None:
    canary = Canary(word=f"Qvexomir{uuid.uuid4().hex[:10]}", han="龘靐齉")
    desk = TicketDesk(shared_store_settings)
    read_side = ReadSide(desk)
    try:
        outcome = desk.receive_mail(_canary_mail(canary), mailbox="support")
        assert outcome.action == "opened" and outcome.customer_id is not None
        (received,) = [e for e in desk.history(outcome.ticket_id) if isinstance(e, Ticket.MailReceived)]
        (attachment,) = desk.ticket_attachments(outcome.ticket_id)  # type: ignore[arg-type]
        assert attachment.digest is not None and attachment.filename.startswith(canary.word)
        read_side.catch_up()
        timeline = raw_tables(read_side, "timeline")
        assert hits(timeline, canary)  # the view held the body and the file name before
        files = []
        if shared_store_settings.storage is StorageKind.SQLITE:
            files = [p for p in shared_store_settings.data_dir.rglob(attachment.digest) if p.is_file()]
            assert len(files) == 1

        desk.erase_customer(
            EraseCustomer(customer_id=outcome.customer_id, basis="customer_request", reference="case-mail"),
            COMPLIANCE,
        )
        read_side.catch_up()

        assert desk.raw_mail(received.raw_digest) is None
        assert desk.mail_store.raw(received.raw_digest) is None
        assert desk.mail_store.attachment(attachment.digest) is None
        assert desk.find_customer_by_email(f"{canary.word.lower()}@example.org") is None
        assert all(not f.exists() for f in files)
        (after,) = desk.ticket_attachments(outcome.ticket_id)  # type: ignore[arg-type]
        assert after.digest == attachment.digest  # the reference stays: a hash of ciphertext that is gone
        assert canary.word not in after.filename and canary.han not in after.filename
        assert {
            name: found for name in read_side.stores if (found := hits(raw_tables(read_side, name), canary))
        } == {}
    finally:
        read_side.close()
        desk.close()
