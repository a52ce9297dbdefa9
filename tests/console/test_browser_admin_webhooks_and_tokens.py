"""The admin's webhook and token pages in real Chromium: subscribing with the event-type check
boxes, the secret shown once with a copy button, a failed delivery retried, pausing (asked first);
issuing an integration token in Chinese (only the integration's fields shown), the refusal beside
its field, revoking (asked first)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from projections.webhook_sender import MAX_ATTEMPTS, WebhookSender, backoff
from tests.console.conftest import screenshot
from ticketflow.clock import FakeClock


@pytest.fixture
def app_settings() -> dict[str, Any]:
    return {"automation": False}  # this test's own sender delivers, on a fake clock, to a fake receiver


def test_an_admin_subscribes_a_webhook_sees_a_failed_delivery_retries_it_and_pauses(browsing: Any) -> None:
    tab = browsing("en-US")
    tab.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=tab.served.base_url)
    page = tab.new_page()
    tab.sign_in(page, "admin")
    page.click("nav.mainnav >> text=Administration")
    page.click("nav.admin-tabs >> text=Webhooks")
    page.wait_for_selector("text=No webhook yet")
    page.fill("#hook-name", "CRM sync")
    page.fill("#hook-url", "https://crm.example.com/hooks/ticketflow")
    page.check("input[name=event_types][value='Ticket.Opened']")
    page.check("input[name=event_types][value='Ticket.SlaBreached']")
    page.click("button:has-text('Subscribe')")
    page.wait_for_selector("text=Copy the signing secret now: it is not shown again.")
    desk = tab.served.seeded.desk
    [hook] = desk.webhooks()
    assert page.inner_text("#created-secret") == desk.webhook_secret(hook.id)
    page.click("button[data-copy]")
    page.wait_for_selector("button[data-copy]:has-text('Copied')")
    assert page.evaluate("navigator.clipboard.readText()") == desk.webhook_secret(hook.id)
    screenshot(page, "admin-webhook-created-en")

    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    answers = {"status": 503}

    def receiver(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        return answers["status"]

    sender = WebhookSender(tab.served.app.state.services.read_side, desk, clock, post=receiver)
    tab.served.seeded.open_ticket("VPN 无法连接")
    tab.served.caught_up()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert sender.run_once() == 1
        clock.advance(backoff(attempt))
    answers["status"] = 200
    tab.served.seeded.open_ticket("邮箱满了")
    tab.served.caught_up()
    assert sender.run_once() == 1

    page.goto(tab.served.base_url + "/admin/webhooks")
    row = page.locator("table.webhooks tr", has_text="CRM sync")
    assert "Failed: 1" in row.inner_text()
    row.locator("a:has-text('Deliveries')").click()
    page.wait_for_selector("table.deliveries")
    assert page.locator("table.deliveries tbody tr").count() == 2
    failed = page.locator("table.deliveries tr", has_text="HTTP 503")
    assert "Failed" in failed.inner_text() and str(MAX_ATTEMPTS) in failed.inner_text()
    screenshot(page, "admin-webhook-deliveries-en")
    failed.locator("button:has-text('Retry now')").click()
    page.wait_for_selector("text=The delivery is queued again")
    assert sender.run_once() == 1
    page.reload()
    assert page.locator("table.deliveries tr", has_text="Delivered").count() == 2

    page.goto(tab.served.base_url + "/admin/webhooks")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.locator("table.webhooks tr", has_text="CRM sync").locator("button:has-text('Pause')").click()
    page.wait_for_selector("text=Webhook paused")
    assert asked and asked[0].startswith("Pause CRM sync?")
    assert not desk.webhooks()[0].active
    screenshot(page, "admin-webhooks-en")


def test_an_admin_issues_an_integration_token_in_chinese_and_revokes_it(browsing: Any) -> None:
    tab = browsing("zh-CN")
    page = tab.new_page()
    tab.sign_in(page, "admin")
    page.goto(tab.served.base_url + "/admin/tokens")
    assert page.is_hidden("#token-agent") and page.is_visible("#token-name")  # integration: the default role
    page.select_option("#token-role", "agent")
    assert page.is_visible("#token-agent") and page.is_hidden("#token-name")
    page.fill("#token-agent", "nobody.here")
    page.click("form[data-role-form] button[type=submit]")
    error = page.locator("form[data-role-form] .role-part[data-roles='agent supervisor'] .field-error")
    assert error.count() == 1  # beside the team-member field
    assert page.input_value("#token-agent") == "nobody.here" and page.input_value("#token-role") == "agent"
    screenshot(page, "admin-token-refused-zh")

    page.select_option("#token-role", "integration")
    page.fill("#token-name", "im-bridge")
    page.check("label:has-text('技术支持') input[name=team_ids]")
    page.check("input[name=permissions][value='tickets:open']")
    page.check("input[name=permissions][value='tickets:message']")
    page.click("form[data-role-form] button[type=submit]")
    page.wait_for_selector("#issued-token")
    token = page.inner_text("#issued-token")
    assert token.startswith("tf_")
    principal = tab.served.seeded.desk.authenticate(token)
    assert principal is not None and principal.team_ids == {tab.served.seeded.team_a}
    assert {str(p) for p in principal.permissions} == {"tickets:open", "tickets:message"}
    screenshot(page, "admin-token-issued-zh")

    page.goto(tab.served.base_url + "/admin/tokens")
    assert token not in page.content()
    row = page.locator("table.tokens tr", has_text="im-bridge")
    row.locator("summary").click()
    row.locator("input[name=reason]").fill("换用新的消息网关")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    row.locator("button.danger").click()
    page.wait_for_selector("table.tokens tr.revoked")
    assert asked and "im-bridge" in asked[0]
    assert tab.served.seeded.desk.authenticate(token) is None
    screenshot(page, "admin-tokens-zh")
