"""Saved replies (快捷回复) in the console: a supervisor writes and revises the team's templates; an
agent puts one into the composer and sends it — the customer's name filled in by the server, the
use recorded with the template's version; refusals next to the form."""

from __future__ import annotations

import re
from uuid import UUID

from tests.console.conftest import Console
from ticketflow.domain import Ticket


def _write_template(console: Console, body: str, title: str = "打印机卡纸处理") -> tuple[str, str]:
    client = console.sign_in("supervisor_a")
    team = console.seeded.team_a
    answer = client.post(f"/admin/teams/{team}/templates", data={
        "csrf_token": console.csrf(f"/admin/teams/{team}/templates"), "title": title, "kind": "reply", "body": body})
    assert answer.status_code == 200 and "Saved reply created." in answer.text, answer.text[-2000:]
    found = re.search(rf'action="/admin/teams/{team}/templates/([0-9a-f-]+)"', answer.text)
    assert found
    return str(team), found.group(1)


def test_an_agent_sends_a_saved_reply_with_the_name_filled_in_by_the_server(console: Console) -> None:
    _team, template = _write_template(console, "{{customer.name}}您好，关于工单 {{ticket.reference}}：请打开进纸盒取出卡纸。——{{agent.name}}")
    ticket = console.seeded.tickets["printer"]
    client = console.sign_in("agent_a")
    page = client.get(f"/tickets/{ticket}", params={"template": template})
    assert page.status_code == 200
    body = re.search(r'<textarea id="reply-body"[^>]*>(.*?)</textarea>', page.text, re.S).group(1)  # type: ignore[union-attr]
    assert body.startswith("{{customer.name}}您好") and f"#{ticket[:8]}" in body and "李伟" in body
    assert "王小明" not in page.text  # the name is not sent to the browser
    version = re.search(r'id="reply-form".*?name="version" value="(\d+)"', page.text, re.S).group(1)  # type: ignore[union-attr]
    sent = client.post(f"/tickets/{ticket}/reply", data={
        "csrf_token": console.csrf(), "version": version, "body": body, "template_id": template, "template_version": "1"})
    assert sent.status_code == 200 and "Reply sent." in sent.text
    replies = [e for e in console.desk.history(UUID(ticket)) if isinstance(e, Ticket.Replied)]
    assert replies[-1].body.startswith("王小明您好") and replies[-1].template_id == UUID(template)
    assert replies[-1].template_version == 1
    console.caught_up()
    listing = console.sign_in("supervisor_a").get(f"/admin/teams/{console.seeded.team_a}/templates").text
    assert re.search(r'data-template="打印机卡纸处理".*?<td>1<', listing, re.S)  # the use is counted


def test_an_unknown_placeholder_and_a_stale_revision_are_refused_next_to_the_form(console: Console) -> None:
    client = console.sign_in("supervisor_a")
    team = console.seeded.team_a
    bad = client.post(f"/admin/teams/{team}/templates", data={
        "csrf_token": console.csrf(f"/admin/teams/{team}/templates"), "title": "订单", "body": "订单号 {{order.number}}"})
    assert bad.status_code == 422 and "订单号 {{order.number}}" in bad.text and 'class="field-error"' in bad.text
    _team, template = _write_template(console, "您好 {{customer.name}}")
    client = console.sign_in("supervisor_a")
    csrf = console.csrf(f"/admin/teams/{team}/templates")
    revised = client.post(f"/admin/teams/{team}/templates/{template}", data={
        "csrf_token": csrf, "version": "1", "title": "问候", "body": "您好，{{customer.name}}！"})
    assert revised.status_code == 200 and "Saved reply revised." in revised.text
    stale = client.post(f"/admin/teams/{team}/templates/{template}", data={
        "csrf_token": csrf, "version": "1", "title": "问候", "body": "旧的"})
    assert stale.status_code == 412 and "Someone else changed this" in stale.text


def test_another_teams_people_cannot_see_or_use_the_templates(console: Console) -> None:
    team, template = _write_template(console, "您好")
    agent_b = console.sign_in("agent_b")
    assert agent_b.get(f"/admin/teams/{team}/templates").status_code == 403  # agents do not manage templates
    billing = console.seeded.tickets["billing"]
    page = agent_b.get(f"/tickets/{billing}", params={"template": template})
    assert page.status_code == 404 and "您好" not in page.text  # another team's template: not found, next to the picker
    agent_a = console.sign_in("agent_a")
    assert agent_a.get(f"/admin/teams/{team}/templates").status_code == 403
    assert "打印机卡纸处理" in agent_a.get(f"/tickets/{console.seeded.tickets['printer']}").text  # offered in the composer
