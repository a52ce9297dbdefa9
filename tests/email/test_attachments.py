"""Attachments of received mail: kept outside the log sealed under the customer's key, addressed by the
hash of the ciphertext, typed by their bytes, size-limited, listed in the timeline and downloaded under
the ticket's access rules (every download in the access log); erasure destroys them."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.api.conftest import Api, build_api
from ticketflow.application import TicketDesk
from ticketflow.commands.privacy import EraseCustomer
from ticketflow.config import Settings
from ticketflow.domain import Ticket
from ticketflow.domain.values import Channel, Role
from ticketflow.email.attachments import OPAQUE, sniff
from ticketflow.errors import NotFound
from ticketflow.metadata import Caller

COMPLIANCE = Caller("chen.dpo", Role.COMPLIANCE, Channel.API)
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(64)


def _mail(
    attachments: list[tuple[bytes, str, str]],
    *,
    sender: str = "王小明 <xiaoming@example.cn>",
    message_id: str = "<att.1@mail.example.cn>",
    body: str = "截图和日志见附件。",
) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "support@desk.example"
    msg["Subject"] = "打印机报错（附件）"
    msg["Message-ID"] = message_id
    msg.set_content(body)
    for data, declared, filename in attachments:
        maintype, subtype = declared.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def _received(desk: TicketDesk, ticket_id: object) -> list[Ticket.AttachmentReceived]:
    return desk.ticket_attachments(ticket_id)  # type: ignore[arg-type]


def test_the_type_is_sniffed_from_the_bytes_never_the_declaration() -> None:
    assert sniff(PDF) == "application/pdf" and sniff(PNG) == "image/png"
    assert sniff(b"MZ\x90\x00rest of a program") == "application/x-msdownload"
    assert sniff(b"PK\x03\x04docx inside") == "application/zip"
    assert sniff("日志：打印机卡纸\n".encode()) == "text/plain"
    assert sniff(b"<html><script>alert(1)</script></html>") == "text/plain"  # never served as HTML
    assert sniff(b"\x00\x01\x02binary") == OPAQUE
    assert sniff(b"\xff\xfe\xfa not utf-8 at all, and long enough to judge") == OPAQUE


def test_attachments_are_sealed_under_the_customer_key_and_addressed_by_the_ciphertext_hash(
    any_desk: TicketDesk,
) -> None:
    raw = _mail([(PDF, "image/png", "报错截图.png"), (b"MZ\x90\x00payload", "text/plain", "readme.txt")])
    outcome = any_desk.receive_mail(raw, mailbox="support")
    pdf, exe = _received(any_desk, outcome.ticket_id)
    # The declared types lied: the desk records what the bytes are.
    assert (pdf.filename, pdf.content_type, pdf.size) == ("报错截图.png", "application/pdf", len(PDF))
    assert (exe.content_type, exe.refused) == ("application/x-msdownload", "")
    stored = any_desk.mail_store.attachment(pdf.digest)  # type: ignore[arg-type]
    assert stored is not None and stored[0] == outcome.customer_id
    assert PDF not in stored[1] and hashlib.sha256(stored[1]).hexdigest() == pdf.digest
    assert hashlib.sha256(PDF).hexdigest() != pdf.digest  # no fingerprint of the plaintext anywhere
    download = any_desk.ticket_attachment(outcome.ticket_id, pdf.digest)  # type: ignore[arg-type]
    assert (download.data, download.filename, download.content_type) == (
        PDF,
        "报错截图.png",
        "application/pdf",
    )
    ticket = any_desk.get_ticket(outcome.ticket_id)
    assert [a[0] for a in ticket.attachments] == [pdf.digest, exe.digest]
    # Taken in again (a re-fetch after a crash): no second ticket, no second attachment event.
    assert any_desk.receive_mail(raw, mailbox="support").action == "duplicate"
    assert len(_received(any_desk, outcome.ticket_id)) == 2


def test_an_attachment_on_a_reply_lands_on_the_customers_ticket(desk: TicketDesk) -> None:
    opened = desk.receive_mail(_mail([]), mailbox="support")
    reply = _mail([(PNG, "image/png", "第二张.png")], message_id="<att.2@mail.example.cn>")
    reply = reply.replace(b"Subject: ", b"In-Reply-To: <att.1@mail.example.cn>\nSubject: ", 1)
    outcome = desk.receive_mail(reply, mailbox="support")
    assert (outcome.action, outcome.ticket_id) == ("replied", opened.ticket_id)
    (png,) = _received(desk, opened.ticket_id)
    assert png.interaction_id is not None and png.content_type == "image/png"
    kept = dict(desk.mail_store._attachments)  # type: ignore[attr-defined]
    assert desk.receive_mail(reply, mailbox="support").action == "duplicate"  # fetched again
    assert desk.mail_store._attachments == kept  # type: ignore[attr-defined]  # nothing stored twice


def test_an_attachment_over_the_limit_is_listed_but_not_kept(tmp_path: Path) -> None:
    desk = TicketDesk(Settings(data_dir=tmp_path / "d", mail_attachment_max_bytes=1000))
    try:
        outcome = desk.receive_mail(
            _mail([(PDF, "application/pdf", "big.pdf"), (b"ok", "text/plain", "a.txt")]), mailbox="s"
        )
        big, small = _received(desk, outcome.ticket_id)
        assert (big.digest, big.size, big.refused) == (None, len(PDF), "larger than 1000 bytes")
        assert (
            small.digest is not None and desk.get_ticket(outcome.ticket_id).attachments[0][0] == small.digest
        )
        kept = [p.name for p in (tmp_path / "d").glob("*-attachments/*/*")]
        assert kept == [small.digest]  # the big one was never written
    finally:
        desk.close()


def test_on_sqlite_attachments_are_files_beside_the_store_and_erasure_deletes_them(tmp_path: Path) -> None:
    desk = TicketDesk(Settings(data_dir=tmp_path / "d"))
    try:
        outcome = desk.receive_mail(_mail([(PDF, "application/pdf", "合同.pdf")]), mailbox="s")
        (pdf,) = _received(desk, outcome.ticket_id)
        files = [p for p in (tmp_path / "d").rglob("*") if p.is_file() and p.name == pdf.digest]
        assert len(files) == 1 and files[0].parent.parent.name.endswith("-attachments")
        assert PDF not in files[0].read_bytes()
        desk.erase_customer(
            EraseCustomer(customer_id=outcome.customer_id, basis="customer_request", reference="t-1"),
            COMPLIANCE,
        )
        assert not files[0].exists()
        with pytest.raises(NotFound):
            desk.ticket_attachment(outcome.ticket_id, pdf.digest)  # type: ignore[arg-type]
    finally:
        desk.close()


def test_a_digest_of_another_ticket_is_not_served_through_this_one(desk: TicketDesk) -> None:
    first = desk.receive_mail(_mail([(PDF, "application/pdf", "a.pdf")]), mailbox="s")
    second = desk.receive_mail(_mail([], sender="李雷 <lilei@example.cn>", message_id="<x@y>"), mailbox="s")
    (pdf,) = _received(desk, first.ticket_id)
    with pytest.raises(NotFound):
        desk.ticket_attachment(second.ticket_id, pdf.digest)  # type: ignore[arg-type]


# ------------------------------------------------------------------ over HTTP
@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from build_api(
        Settings(data_dir=tmp_path / "api-data", rate_limit_burst=10_000, rate_limit_per_second=10_000)
    )


def _ten_megabytes() -> bytes:
    rng = random.Random(13)  # fixed seed: the same bytes every run
    return b"%PDF-1.4\n" + rng.randbytes(10 * 1024 * 1024)


def test_a_ten_megabyte_attachment_goes_through_end_to_end(api: Api) -> None:
    big = _ten_megabytes()
    raw = _mail([(big, "application/octet-stream", "设备日志 2026.pdf")])
    outcome = api.desk.receive_mail(raw, mailbox="support", team_id=api.team_a)
    api.caught_up()
    timeline = api.get("agent_a", f"/api/v1/tickets/{outcome.ticket_id}/timeline").json()
    (entry,) = [e for e in timeline if e["entry_type"] == "attachment"]
    assert entry["body"] == "设备日志 2026.pdf" and entry["public"] is True
    attachment = entry["attachment"]
    assert (attachment["content_type"], attachment["size"], attachment["refused"]) == (
        "application/pdf",
        len(big),
        "",
    )
    response = api.get("agent_a", attachment["href"])
    assert response.status_code == 200 and response.content == big
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["x-content-type-options"] == "nosniff"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment;") and "%E8%AE%BE%E5%A4%87" in disposition  # 设备, UTF-8
    api.caught_up()
    log = api.get("compliance", "/api/v1/access-log", params={"customer_id": str(outcome.customer_id)}).json()
    downloads = [r for r in log if r["resource"].endswith(attachment["digest"])]
    assert len(downloads) == 1 and downloads[0]["fields"] == ["attachment"]


def test_downloads_follow_the_ticket_access_rules(api: Api) -> None:
    outcome = api.desk.receive_mail(
        _mail([(b"<script>alert(1)</script>", "text/html", "x.html")]), mailbox="support", team_id=api.team_a
    )
    (received,) = _received(api.desk, outcome.ticket_id)
    api.caught_up()  # the mail came in outside the API: the tickets view shows it once it has caught up
    path = f"/api/v1/tickets/{outcome.ticket_id}/attachments/{received.digest}"
    served = api.get("agent_a", path)
    assert served.status_code == 200 and served.headers["content-type"].startswith("text/plain")
    assert api.get("agent_b", path).status_code == 404  # another team's ticket: not even its existence
    masked = api.get("auditor", path)
    assert masked.status_code == 403 and masked.headers["content-type"] == "application/problem+json"
    unknown = api.get("agent_a", f"/api/v1/tickets/{outcome.ticket_id}/attachments/{'0' * 64}")
    assert unknown.status_code == 404 and unknown.headers["content-type"] == "application/problem+json"
    assert (
        api.get("agent_a", f"/api/v1/tickets/{outcome.ticket_id}/attachments/not-a-hash").status_code == 422
    )
    api.caught_up()
    timeline = api.get("auditor", f"/api/v1/tickets/{outcome.ticket_id}/timeline").json()
    (entry,) = [e for e in timeline if e["entry_type"] == "attachment"]
    assert entry["body"] != "x.html"  # the file name is ticket text: masked for this role


def test_the_erasure_of_the_customer_makes_downloads_404_and_leaves_no_bytes(
    api: Api, tmp_path: Path
) -> None:
    canary = b"Qvexomir-attachment-canary " + os.urandom(8).hex().encode()
    outcome = api.desk.receive_mail(
        _mail([(canary, "text/plain", "canary.txt")], body="Qvexomir body canary"),
        mailbox="support",
        team_id=api.team_a,
    )
    (received,) = _received(api.desk, outcome.ticket_id)
    api.caught_up()  # the mail came in outside the API: the tickets view shows it once it has caught up
    path = f"/api/v1/tickets/{outcome.ticket_id}/attachments/{received.digest}"
    assert api.get("agent_a", path).content == canary
    api.desk.erase_customer(
        EraseCustomer(customer_id=outcome.customer_id, basis="customer_request", reference="t-2"), COMPLIANCE
    )
    assert api.get("agent_a", path).status_code == 404
    for file in (tmp_path / "api-data").rglob("*"):
        if file.is_file():
            assert canary not in file.read_bytes(), file


def test_the_audit_export_names_each_attachment_by_its_ciphertext_hash(tmp_path: Path) -> None:
    from projections.integrity.export import export
    from projections.integrity.keys import KeyRing
    from projections.integrity.sealer import Sealer

    desk = TicketDesk(Settings(data_dir=tmp_path / "d"))
    sealer = Sealer(desk, anchor=tmp_path / "anchor.ndjson", keys=KeyRing(tmp_path / "keys"))
    try:
        outcome = desk.receive_mail(_mail([(PDF, "application/pdf", "合同.pdf")]), mailbox="s")
        (pdf,) = _received(desk, outcome.ticket_id)
        sealer.catch_up(checkpoint=True)
        export(desk, sealer.store, tmp_path / "export", ticket=outcome.ticket_id)
        lines = (tmp_path / "export" / "events.ndjson").read_text(encoding="utf-8").splitlines()
        states = {
            json.loads(x)["topic"].split(":")[1]: base64.b64decode(json.loads(x)["state"]) for x in lines
        }
        assert pdf.digest is not None and pdf.digest.encode() in states["Ticket.AttachmentReceived"]
        everything = b"".join(states.values())
        assert "合同".encode() not in everything and b"\\u5408\\u540c" not in everything  # sealed: in no form
        assert hashlib.sha256(PDF).hexdigest().encode() not in everything
    finally:
        sealer.close()
        desk.close()


def test_the_console_timeline_shows_what_an_attachment_is_and_masks_its_name(desk: TicketDesk) -> None:
    from api.console import timeline
    from ticketflow.access import MASK

    outcome = desk.receive_mail(_mail([(PNG, "application/pdf", "身份证.png")]), mailbox="s")

    def shown(show_text: bool) -> list[tuple[str, str]]:
        entries = timeline.entries(desk.history(outcome.ticket_id), str, show_text, str, str)
        (entry,) = [e for e in entries if e.kind == "AttachmentReceived"]
        return entry.details

    assert shown(True)[:2] == [("File", "身份证.png"), ("Type", "image/png")]
    assert shown(False)[0] == ("File", MASK)
