"""Attachments of a customer's mail on the console's ticket page: a download link in the timeline for the
roles that see ticket text, the bytes under the API's rules (never rendered, every download recorded in the
access log), and neither link nor bytes for a role that sees ticket text masked."""

from __future__ import annotations

import re
from email.message import EmailMessage

from tests.console.conftest import Console
from ticketflow.domain import DataAccess
from ticketflow.domain.values import Channel

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 8
LINK = re.compile(r'href="(/tickets/[0-9a-f-]{36}/attachments/[0-9a-f]{64})"')


def _mail_with_attachment(console: Console) -> str:
    msg = EmailMessage()
    msg["From"] = "王小明 <xiaoming@example.cn>"
    msg["To"] = "support@desk.example"
    msg["Subject"] = "打印机报错"
    msg["Message-ID"] = "<console.att@mail.example.cn>"
    msg.set_content("报错截图见附件。")
    msg.add_attachment(PDF, maintype="application", subtype="octet-stream", filename="报错截图.pdf")
    outcome = console.desk.receive_mail(msg.as_bytes(), mailbox="support", team_id=console.seeded.team_a)
    console.caught_up()
    return str(outcome.ticket_id)


def _downloads(console: Console) -> list[DataAccess.Recorded]:
    """The access log's records of attachment downloads (events: they say who read, and through what)."""
    desk = console.desk
    recorded: list[DataAccess.Recorded] = [next(iter(desk.events.get(i))) for i in desk._ids_of(DataAccess)]  # type: ignore[misc]
    return [r for r in recorded if "/attachments/" in r.resource]


def test_the_timeline_links_an_attachment_for_those_who_see_ticket_text_and_serves_it_as_a_recorded_download(
    console: Console,
) -> None:
    ticket_id = _mail_with_attachment(console)
    console.sign_in("agent_a")
    page = console.client.get(f"/tickets/{ticket_id}")
    assert page.status_code == 200 and "报错截图.pdf" in page.text
    (href,) = LINK.findall(page.text)
    assert href.startswith(f"/tickets/{ticket_id}/attachments/")
    assert _downloads(console) == []  # showing the link reads nothing of the file
    response = console.client.get(href)
    assert response.status_code == 200 and response.content == PDF
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in response.headers["content-security-policy"]
    (download,) = _downloads(console)
    assert (download.resource, download.fields) == (f"GET {href}", ["attachment"])
    assert (download.actor_id, str(download.via)) == ("li.wei", Channel.CONSOLE.value)

    console.sign_in("auditor")  # sees ticket text masked: no file name, no link, no bytes
    page = console.client.get(f"/tickets/{ticket_id}")
    assert page.status_code == 200 and "报错截图" not in page.text and LINK.findall(page.text) == []
    refused = console.client.get(href)
    assert refused.status_code == 403 and PDF not in refused.content
    assert refused.headers["content-type"].startswith("text/html")  # a console page saying so
    console.sign_in("agent_b")  # another team's agent: not even the ticket's existence
    assert console.client.get(href).status_code == 404
    assert len(_downloads(console)) == 1  # refusals read nothing
