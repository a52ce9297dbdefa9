"""The admin's webhook and API-token pages: subscribing (the signing secret shown once), pausing and
resuming, a failed delivery seen and retried; issuing a token (its text shown once, working against
the API), listing it with team names, revoking it; refusals beside their field with the typed values
kept; admins only; forms need their token."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from projections.webhook_sender import MAX_ATTEMPTS, WebhookSender, backoff, verify
from tests.console.conftest import Console
from tests.support import ADMIN
from ticketflow.clock import FakeClock
from ticketflow.commands import OpenTicket
from ticketflow.commands.access import IssueToken
from ticketflow.domain.values import Role
from ticketflow.tokens import TokenRecord

SECRET = re.compile(r'<code id="[a-z-]+" class="secret">([^<]+)</code>')


@pytest.fixture
def app_settings() -> dict[str, Any]:
    # The tests drive their own sender on a fake clock with a fake receiver: the app's automation
    # thread (real clock, real HTTP) would claim the same deliveries first.
    return {"automation": False}


class FakeReceiver:
    """Stands in for the other system: answers ``status``, checks every signature, no network."""

    def __init__(self, console: Console, clock: FakeClock) -> None:
        self.console, self.clock = console, clock
        self.status = 200
        self.received: list[tuple[str, bool]] = []

    def __call__(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        hook = re.search(rb'"webhook_id": ?"([0-9a-f-]+)"', body)
        assert hook is not None
        secret = self.console.desk.webhook_secret(UUID(hook.group(1).decode()))
        self.received.append((url, verify(secret, headers["X-Ticketflow-Signature"], body, self.clock.now().timestamp())))
        return self.status


def _admin(console: Console) -> str:
    console.sign_in("admin")
    return console.csrf("/admin/webhooks")


def _subscribe(console: Console, csrf: str, **fields: Any) -> Any:
    data = {"csrf_token": csrf, "name": "CRM sync", "url": "https://crm.example.com/hooks/ticketflow",
            "event_types": ["Ticket.Opened", "Ticket.Solved"], "form_key": "1" * 32, **fields}
    return console.client.post("/admin/webhooks", data=data, follow_redirects=False)


def _issue(console: Console, csrf: str, **fields: Any) -> Any:
    data = {"csrf_token": csrf, "form_key": "2" * 32, **fields}
    return console.client.post("/admin/tokens", data=data, follow_redirects=False)


# ------------------------------------------------------------------ webhooks
def test_an_admin_subscribes_a_webhook_and_sees_its_signing_secret_once(console: Console) -> None:
    csrf = _admin(console)
    empty = console.client.get("/admin/webhooks")
    assert "No webhook yet" in empty.text
    assert 'value="Ticket.SlaBreached"' in empty.text and 'value="*"' in empty.text  # the API's event types

    answer = _subscribe(console, csrf)
    assert answer.status_code == 201 and answer.headers["cache-control"] == "no-store"
    [hook] = console.desk.webhooks()
    [secret] = SECRET.findall(answer.text)
    assert secret == console.desk.webhook_secret(hook.id)
    assert "not shown again" in answer.text and "X-Ticketflow-Signature" in answer.text
    listed = console.client.get("/admin/webhooks").text
    assert secret not in listed  # shown once
    assert "CRM sync" in listed and "https://crm.example.com/hooks/ticketflow" in listed  # as the admin API shows it
    assert "Ticket.Opened" in listed and "Ticket.Solved" in listed and "Active" in listed
    assert "No deliveries yet" in listed

    again = _subscribe(console, csrf)  # the answer page reloaded: the same form sent again
    assert again.status_code == 201 and len(console.desk.webhooks()) == 1

    page = console.client.get(f"/admin/webhooks/{hook.id}")
    assert page.status_code == 200 and "No deliveries yet" in page.text and secret not in page.text


def test_an_admin_pauses_and_resumes_a_webhook_and_a_stale_form_is_refused(console: Console) -> None:
    csrf = _admin(console)
    _subscribe(console, csrf)
    [hook] = console.desk.webhooks()
    paused = console.client.post(f"/admin/webhooks/{hook.id}/pause", follow_redirects=True,
                                 data={"csrf_token": csrf, "version": "1", "reason": "CRM maintenance"})
    assert paused.status_code == 200 and "Webhook paused" in paused.text
    assert 'action="/admin/webhooks/' + str(hook.id) + '/resume"' in paused.text
    assert not console.desk.webhooks()[0].active

    stale = console.client.post(f"/admin/webhooks/{hook.id}/resume", data={"csrf_token": csrf, "version": "1"})
    assert stale.status_code == 412 and "Someone else changed" in stale.text

    resumed = console.client.post(f"/admin/webhooks/{hook.id}/resume", follow_redirects=True,
                                  data={"csrf_token": csrf, "version": "2", "from": "webhook"})
    assert resumed.status_code == 200 and resumed.url.path == f"/admin/webhooks/{hook.id}"
    assert "Webhook resumed" in resumed.text and console.desk.webhooks()[0].active
    history = [type(e).__name__ for e in console.desk.history(hook.id)]
    assert history == ["Subscribed", "Paused", "Resumed"]


def test_an_admin_sees_a_failed_delivery_and_retries_it(console: Console) -> None:
    csrf = _admin(console)
    _subscribe(console, csrf, event_types=["Ticket.Opened"])
    [hook] = console.desk.webhooks()
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    receiver = FakeReceiver(console, clock)
    services = console.client.app.state.services  # type: ignore[attr-defined]
    sender = WebhookSender(services.read_side, console.desk, clock, post=receiver)
    console.seeded.open_ticket("VPN 无法连接")
    console.caught_up()

    receiver.status = 503
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert sender.run_once() == 1
        clock.advance(backoff(attempt))
    page = console.client.get(f"/admin/webhooks/{hook.id}?state=failed").text
    assert "Ticket.Opened" in page and "HTTP 503" in page and "Failed" in page
    assert re.search(rf'<td class="num">{MAX_ATTEMPTS}</td>', page)
    assert "Failed: 1" in console.client.get("/admin/webhooks").text  # the list's delivery health
    delivery = re.search(r'/deliveries/([0-9a-f-]+)/retry', page)
    assert delivery is not None

    receiver.status = 200
    retried = console.client.post(f"/admin/webhooks/{hook.id}/deliveries/{delivery.group(1)}/retry",
                                  data={"csrf_token": csrf}, follow_redirects=True)
    assert retried.status_code == 200 and "queued again" in retried.text
    assert sender.run_once() == 1
    page = console.client.get(f"/admin/webhooks/{hook.id}").text
    assert "Delivered" in page and "/retry" not in page and "Healthy" in page
    again = console.client.post(f"/admin/webhooks/{hook.id}/deliveries/{delivery.group(1)}/retry",
                                data={"csrf_token": csrf})
    assert again.status_code == 409 and "already delivered" in again.text
    assert len(receiver.received) == MAX_ATTEMPTS + 1 and all(ok for _, ok in receiver.received)
    assert {url for url, _ in receiver.received} == {"https://crm.example.com/hooks/ticketflow"}


def test_a_webhook_without_event_types_or_with_an_unknown_one_is_refused_with_the_values_kept(console: Console) -> None:
    csrf = _admin(console)
    before = console.desk.log_position()
    none = _subscribe(console, csrf, event_types=[])
    assert none.status_code == 422 and "Choose at least one" in none.text
    assert 'value="CRM sync"' in none.text and 'value="https://crm.example.com/hooks/ticketflow"' in none.text
    unknown = _subscribe(console, csrf, event_types=["Ticket.Opened", "Ticket.Opend"])
    assert unknown.status_code == 422 and "did you mean" in unknown.text
    assert re.search(r'value="Ticket.Opened" checked', unknown.text)  # the ticked types stay ticked
    bad_url = _subscribe(console, csrf, url="ftp://crm.example.com")
    assert bad_url.status_code == 422 and "URL: Give an address starting with https:// or http://." in bad_url.text
    assert console.desk.log_position() == before


# ------------------------------------------------------------------ tokens
def test_an_integration_token_limited_to_a_team_works_is_listed_and_stops_working_when_revoked(console: Console) -> None:
    csrf = _admin(console)
    assert "No token yet" in console.client.get("/admin/tokens").text
    team_a = str(console.seeded.team_a)
    answer = _issue(console, csrf, role="integration", name="im-bridge", team_ids=[team_a],
                    permissions=["tickets:open", "tickets:message"])
    assert answer.status_code == 201 and answer.headers["cache-control"] == "no-store"
    assert "Copy the token now: it is not shown again." in answer.text
    [token] = SECRET.findall(answer.text)

    me = console.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    assert me.json()["name"] == "im-bridge" and me.json()["role"] == "integration"
    assert me.json()["team_ids"] == [team_a] and me.json()["permissions"] == ["tickets:message", "tickets:open"]

    listed = console.client.get("/admin/tokens").text
    secret = token.split("_", 2)[2]  # tf_<token id>_<secret>; the secret itself may hold "_"
    assert token not in listed and secret not in listed
    row = re.search(r'<tr[^>]*id="token-[^"]+">(.*?)</tr>', listed, re.S)
    assert row is not None
    assert all(text in row.group(1) for text in ("im-bridge", "Integration", "技术支持", "Open new tickets",
                                                  "Post customers' messages on tickets", "by zhang.admin", "Active"))
    assert "Billing" not in row.group(1)

    record = next(t for t in console.desk.list_tokens() if t.name == "im-bridge")
    revoked = console.client.post(f"/admin/tokens/{record.token_id}/revoke", follow_redirects=True,
                                  data={"csrf_token": csrf, "version": "1", "reason": "bridge replaced"})
    assert revoked.status_code == 200 and "Token revoked" in revoked.text
    assert "Revoked" in revoked.text and "bridge replaced" in revoked.text
    assert console.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    twice = console.client.post(f"/admin/tokens/{record.token_id}/revoke", data={"csrf_token": csrf, "version": "2", "reason": "x"})
    assert console.client.post(f"/admin/tokens/{record.token_id}/revoke", data={"csrf_token": csrf, "reason": "x"}).status_code == 422
    assert twice.status_code == 409


def test_a_person_token_shows_the_teams_their_membership_gives_them(console: Console) -> None:
    csrf = _admin(console)
    answer = _issue(console, csrf, role="agent", agent_id="li.wei")
    assert answer.status_code == 201
    [token] = SECRET.findall(answer.text)
    assert console.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).json()["name"] == "li.wei"
    listed = console.client.get("/admin/tokens").text
    assert "Team member: li.wei" in listed and "技术支持" in listed and "From team membership" in listed


def test_an_agent_token_for_someone_in_no_team_is_refused_beside_the_field_with_the_values_kept(console: Console) -> None:
    csrf = _admin(console)
    before = console.desk.log_position()
    refused = _issue(console, csrf, role="agent", agent_id="nobody.here")
    assert refused.status_code == 409
    text = refused.text
    agent_field, error, name_field = (text.index('id="token-agent"'), text.index("is not an active member of any team"),
                                      text.index('id="token-name"'))
    assert agent_field < error < name_field  # beside the team-member field, not at the end of the form
    assert 'value="nobody.here"' in text and re.search(r'<option value="agent"\s+selected>', text)

    writer = _issue(console, csrf, role="integration", name="crm-writer", permissions=["tickets:write", "events:read"])
    assert writer.status_code == 409
    teams_legend, error = writer.text.index("Teams (integrations)"), writer.text.index("must be limited to teams")
    assert teams_legend < error < writer.text.index("Permissions (integrations)")
    assert re.search(r'value="tickets:write" checked', writer.text) and 'value="crm-writer"' in writer.text
    assert console.desk.log_position() == before and console.desk.list_tokens() == []


def test_sending_the_issue_form_again_issues_no_second_token(console: Console) -> None:
    csrf = _admin(console)
    first = _issue(console, csrf, role="auditor", name="audit-export")
    assert first.status_code == 201
    second = _issue(console, csrf, role="auditor", name="audit-export")
    assert second.status_code == 200 and "This form was sent already" in second.text
    assert not SECRET.findall(second.text) and len(console.desk.list_tokens()) == 1


def test_the_token_list_has_no_place_for_a_secret() -> None:
    assert not [name for name in TokenRecord.__dataclass_fields__ if "secret" in name or "hash" in name]


# ------------------------------------------------------------------ access, empty states, CSRF
@pytest.mark.parametrize("who", ["supervisor_a", "agent_a", "auditor", "compliance"])
def test_only_admins_reach_the_webhook_and_token_pages(console: Console, who: str) -> None:
    console.desk.issue_token(IssueToken(role=Role.AUDITOR, name="seen-by-nobody"), ADMIN)
    console.sign_in(who)
    csrf = console.csrf()
    before = console.desk.log_position()
    for path in ("/admin/webhooks", "/admin/tokens"):
        page = console.client.get(path)
        assert page.status_code == 403 and "Your role may not use this page." in page.text
        assert "seen-by-nobody" not in page.text
    assert _subscribe(console, csrf).status_code == 403
    assert _issue(console, csrf, role="admin", name="sneaky").status_code == 403
    token = console.desk.list_tokens()[0].token_id
    assert console.client.post(f"/admin/tokens/{token}/revoke", data={"csrf_token": csrf}).status_code == 403
    assert console.desk.log_position() == before
    assert "/admin/tokens" not in console.client.get("/queues").text


def test_the_admin_pages_share_one_tab_strip(console: Console) -> None:
    console.sign_in("admin")
    tabs = ["/admin/teams", "/admin/routing", "/admin/sla", "/admin/calendars", "/admin/accounts", "/admin/tokens",
            "/admin/webhooks"]
    for path in tabs:
        strip = re.search(r'<nav class="[^"]*admin-tabs[^"]*".*?</nav>', console.client.get(path).text, re.S)
        assert strip is not None
        assert re.findall(r'href="([^"]+)"', strip.group(0)) == tabs
        assert re.search(rf'href="{path}"\s+aria-current="page"', strip.group(0))


def test_an_unknown_webhook_is_a_not_found_page(console: Console) -> None:
    console.sign_in("admin")
    response = console.client.get("/admin/webhooks/00000000-0000-0000-0000-000000000001")
    assert response.status_code == 404 and response.headers["content-type"].startswith("text/html")


def test_a_post_without_the_form_token_is_refused_and_writes_nothing(console: Console) -> None:
    console.sign_in("admin")
    before = console.desk.log_position()
    for token in ({}, {"csrf_token": "forged"}):
        webhook = console.client.post("/admin/webhooks", data={"name": "x", "url": "https://x.example",
                                                               "event_types": ["*"], **token})
        issued = console.client.post("/admin/tokens", data={"role": "admin", "name": "x", **token})
        assert webhook.status_code == 403 and issued.status_code == 403
        assert "This form has expired" in issued.text
    assert console.desk.log_position() == before


def test_an_open_ticket_event_reaches_only_the_subscribed_and_active_webhooks(console: Console) -> None:
    """The page's pause is the API's pause: events while paused are not enqueued (no second rule)."""
    csrf = _admin(console)
    _subscribe(console, csrf, event_types=["Ticket.Opened"])
    [hook] = console.desk.webhooks()
    console.client.post(f"/admin/webhooks/{hook.id}/pause", data={"csrf_token": csrf, "version": "1"})
    console.desk.open_ticket(OpenTicket(subject="paused", requester_id=console.seeded.customer,
                                        team_id=console.seeded.team_a), ADMIN)
    console.caught_up()
    assert "No deliveries yet" in console.client.get(f"/admin/webhooks/{hook.id}").text
