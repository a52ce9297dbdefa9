"""/api/v1/webhooks: admins subscribe, change, pause and watch deliveries; nobody else may."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest

from projections.webhook_sender import MAX_ATTEMPTS, WebhookSender, backoff
from ticketflow.clock import FakeClock
from ticketflow.config import Settings
from tests.api.conftest import Api, build_api
from tests.outbox.receiver import Receiver


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    # The tests drive their own WebhookSender on a fake clock: the app's automation thread (which
    # sends on the real clock) would claim the same deliveries first.
    settings = Settings(
        data_dir=tmp_path / "api-data", rate_limit_burst=10_000, rate_limit_per_second=10_000, automation=False
    )
    yield from build_api(settings)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def receiver(api: Api, clock: FakeClock) -> Iterator[Receiver]:
    receiver = Receiver(lambda webhook_id: api.desk.webhook_secret(UUID(webhook_id)), clock)
    yield receiver
    receiver.stop()


def subscribe(api: Api, url: str, *types: str) -> tuple[str, dict[str, object]]:
    response = api.post("admin", "/api/v1/webhooks", {"name": "CRM sync", "url": url, "event_types": list(types)})
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()


def test_an_admin_subscribes_and_gets_the_signing_secret_once(api: Api) -> None:
    response = api.post("admin", "/api/v1/webhooks", {
        "name": "CRM sync", "url": "https://crm.example.com/hooks", "event_types": ["Ticket.Opened", "Ticket.SlaBreached"],
    })
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == f"/api/v1/webhooks/{body['id']}"
    assert body["secret"] == api.desk.webhook_secret(UUID(body["id"]))
    assert body["signature"].startswith("X-Ticketflow-Signature: t=<unix>,v1=")

    api.wait(body["position"])
    [listed] = api.get("admin", "/api/v1/webhooks").json()
    assert listed["webhook_id"] == body["id"] and listed["active"] is True
    assert listed["event_types"] == ["Ticket.Opened", "Ticket.SlaBreached"]
    assert "secret" not in listed
    assert api.get("admin", f"/api/v1/webhooks/{body['id']}").json() == listed
    missing = api.get("admin", "/api/v1/webhooks/00000000-0000-0000-0000-000000000001")
    assert missing.status_code == 404


def test_an_unknown_event_type_is_refused_with_422_naming_it(api: Api) -> None:
    response = api.post("admin", "/api/v1/webhooks", {
        "name": "typo", "url": "https://crm.example.com/hooks", "event_types": ["Ticket.Opend", "Nothing.Happened"],
    })
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "'Nothing.Happened'" in detail and "'Ticket.Opend' (did you mean 'Ticket.Opened'?)" in detail
    token_events = api.post("admin", "/api/v1/webhooks", {
        "name": "tokens", "url": "https://crm.example.com/hooks", "event_types": ["ApiToken.Issued"],
    })
    assert token_events.status_code == 422  # security events are never notified
    assert "Ticket.SlaBreached" in api.get("admin", "/api/v1/webhooks/event-types").json()


@pytest.mark.parametrize("who", ["agent_a", "supervisor_a", "auditor", "integration"])
def test_only_an_admin_may_manage_or_see_webhooks(api: Api, who: str) -> None:
    hook, _ = subscribe(api, "https://crm.example.com/hooks", "*")
    body = {"name": "mine", "url": "https://x.example.com", "event_types": ["*"]}
    assert api.post(who, "/api/v1/webhooks", body).status_code == 403
    assert api.get(who, "/api/v1/webhooks").status_code == 403
    assert api.get(who, f"/api/v1/webhooks/{hook}/deliveries").status_code == 403
    assert api.post(who, f"/api/v1/webhooks/{hook}/pause", {"reason": "no"}).status_code == 403


def test_an_admin_changes_pauses_and_resumes_a_webhook(api: Api) -> None:
    hook, _ = subscribe(api, "https://crm.example.com/hooks", "Ticket.Opened")
    path = f"/api/v1/webhooks/{hook}"
    changed = api.client.patch(path, json={"event_types": ["Ticket.Solved", "Ticket.Opened"]}, headers=api.headers("admin"))
    assert changed.status_code == 200, changed.text
    bad = api.client.patch(path, json={"event_types": ["Ticket.Nope"]}, headers=api.headers("admin"))
    assert bad.status_code == 422 and "'Ticket.Nope'" in bad.json()["detail"]
    paused = api.post("admin", f"{path}/pause", {"reason": "maintenance"})
    assert paused.status_code == 200
    assert api.post("admin", f"{path}/pause", {"reason": "again"}).status_code == 409
    api.wait(paused.json()["position"])
    row = api.get("admin", path).json()
    assert row["active"] is False and row["event_types"] == ["Ticket.Opened", "Ticket.Solved"]
    resumed = api.post("admin", f"{path}/resume")
    assert resumed.status_code == 200
    api.wait(resumed.json()["position"])
    assert api.get("admin", path).json()["active"] is True
    unknown = api.post("admin", "/api/v1/webhooks/00000000-0000-0000-0000-000000000001/resume")
    assert unknown.status_code == 404


def test_operators_see_failed_deliveries_and_retry_them(api: Api, receiver: Receiver, clock: FakeClock) -> None:
    hook, _ = subscribe(api, receiver.url, "Ticket.Opened")
    api.open_ticket()
    api.caught_up()
    sender = WebhookSender(api.client.app.state.services.read_side, api.desk, clock)  # type: ignore[attr-defined]
    receiver.status = 500
    for attempt in range(1, MAX_ATTEMPTS + 1):
        assert sender.run_once() == 1
        clock.advance(backoff(attempt))
    [row] = api.get("admin", f"/api/v1/webhooks/{hook}/deliveries").json()
    assert (row["state"], row["attempts"], row["last_status"], row["last_error"]) == ("failed", MAX_ATTEMPTS, 500, "HTTP 500")
    assert api.get("admin", f"/api/v1/webhooks/{hook}/deliveries", params={"state": "pending"}).json() == []
    detail = api.get("admin", f"/api/v1/webhooks/{hook}/deliveries/{row['delivery_id']}").json()
    assert len(detail["attempt_log"]) == MAX_ATTEMPTS and detail["payload"]["payload"]["subject"] == "***"

    receiver.status = 200
    retried = api.post("admin", f"/api/v1/webhooks/{hook}/deliveries/{row['delivery_id']}/retry")
    assert retried.status_code == 200 and retried.json()["state"] == "pending"
    assert sender.run_once() == 1
    [row] = api.get("admin", f"/api/v1/webhooks/{hook}/deliveries").json()
    assert row["state"] == "delivered"
    again = api.post("admin", f"/api/v1/webhooks/{hook}/deliveries/{row['delivery_id']}/retry")
    assert again.status_code == 409
    missing = api.post("admin", f"/api/v1/webhooks/{hook}/deliveries/00000000-0000-0000-0000-000000000001/retry")
    assert missing.status_code == 404
    assert {r.delivery_id for r in receiver.received} == {row["delivery_id"]}
    assert all(r.signature_ok for r in receiver.received)


def test_an_admin_removes_a_webhook_and_it_answers_404_after(api: Api) -> None:
    hook, _ = subscribe(api, "https://crm.example.com/hooks", "Ticket.Opened")
    path = f"/api/v1/webhooks/{hook}"
    assert api.client.delete(path, headers=api.headers("agent_a")).status_code == 403
    removed = api.client.delete(path, params={"reason": "CRM retired"}, headers=api.headers("admin"))
    assert removed.status_code == 200, removed.text
    assert removed.json()["events"] == ["Webhook.Removed"]
    api.wait(removed.json()["position"])
    assert api.get("admin", path).status_code == 404
    assert api.get("admin", "/api/v1/webhooks").json() == []
    again = api.client.delete(path, headers=api.headers("admin"))
    assert again.status_code == 404 and again.headers["content-type"].startswith("application/problem+json")


def test_a_webhook_subscribed_with_the_ticket_text_scope_shows_it(api: Api) -> None:
    response = api.post("admin", "/api/v1/webhooks", {
        "name": "CRM sync", "url": "https://crm.example.com/hooks", "event_types": ["*"], "scopes": ["tickets:text"],
    })
    assert response.status_code == 201, response.text
    api.wait(response.json()["position"])
    assert api.get("admin", f"/api/v1/webhooks/{response.json()['id']}").json()["scopes"] == ["tickets:text"]
    bad = api.post("admin", "/api/v1/webhooks", {
        "name": "x", "url": "https://crm.example.com/hooks", "event_types": ["*"], "scopes": ["pii:unmask"],
    })
    assert bad.status_code == 422
