"""/metrics: the desk's facts (view lag, sealer backlog, SLA per team, webhook outbox) read from the store
at scrape time, route templates as labels, no `_created` series."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from projections.integrity.sealer import Sealer
from projections.webhook_sender import WebhookSender
from tests.api.conftest import Api, build_api
from tests.support import ADMIN
from tests.workflow.test_workflow_commands import SYSTEM, define_policy
from ticketflow.clock import FakeClock
from ticketflow.commands.workflow import ApplySla, RecordSlaEvent, SubscribeWebhook
from ticketflow.config import Settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(api: Api) -> Samples:
    response = api.get("admin", "/metrics")
    assert response.status_code == 200, response.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


@pytest.fixture
def quiet_api(shared_store_settings: Settings, tmp_path: Path) -> Iterator[tuple[Api, FakeClock]]:
    """An API whose views, automation and sealer do not run by themselves: the test moves them."""
    clock = FakeClock()
    settings = shared_store_settings.model_copy(update={
        "embedded_projections": False, "seal": True, "rate_limit_burst": 10_000, "rate_limit_per_second": 10_000,
    })
    for api in build_api(settings, clock):
        yield api, clock


def test_lag_unsealed_events_sla_and_webhook_gauges_are_read_from_the_store(quiet_api: tuple[Api, FakeClock]) -> None:
    api, clock = quiet_api
    desk = api.desk
    define_policy(desk)
    ticket = api.open_ticket()
    desk.apply_sla(ApplySla(ticket_id=ticket), SYSTEM)  # type: ignore[arg-type]
    for kind in ("warning", "breached"):
        desk.record_sla_event(RecordSlaEvent(ticket_id=ticket, kind=kind, metric="first_reply_time", cycle="c1",
                                             moment=clock.now()), SYSTEM)
    hook, _ = desk.subscribe_webhook(
        SubscribeWebhook(name="crm", url="https://93.184.215.14/hook", event_types=["Ticket.Opened"]), ADMIN
    )
    api.open_ticket(subject="打印机卡纸")  # one delivery for crm
    end = desk.log_position()

    before = scrape(api)  # nothing has followed the log yet
    assert value(before, "ticketflow_log_position") == end
    assert value(before, "ticketflow_view_lag_events", view="tickets") == end
    assert value(before, "ticketflow_unsealed_events") == end
    assert not any(name == "ticketflow_seal_checkpoint_age_seconds" for name, _ in before)

    read_side = api.client.app.state.services.read_side  # type: ignore[attr-defined]
    read_side.catch_up()
    clock.advance(timedelta(seconds=90))
    WebhookSender(read_side, desk, clock, post=lambda url, body, headers: 503).run_once()
    sealer = Sealer(desk, now=clock.now)
    try:
        sealer.catch_up(checkpoint=True)
    finally:
        sealer.close()
    clock.advance(timedelta(seconds=30))

    after = scrape(api)
    assert all(value(after, "ticketflow_view_lag_events", view=v) == 0 for v in ("tickets", "workflow", "outbox"))
    assert value(after, "ticketflow_unsealed_events") == 0
    assert value(after, "ticketflow_seal_checkpoint_age_seconds") == 30
    team_a = str(api.team_a)
    assert value(after, "ticketflow_sla_warnings", team_id=team_a, team="技术支持") == 1
    assert value(after, "ticketflow_sla_breaches", team_id=team_a, team="技术支持") == 1
    assert value(after, "ticketflow_sla_breaches", team_id=str(api.team_b), team="Billing") == 0
    assert value(after, "ticketflow_webhook_deliveries", webhook="crm", state="pending") == 1
    assert value(after, "ticketflow_webhook_failed_attempts", webhook="crm") == 1
    assert value(after, "ticketflow_webhook_queue_age_seconds", webhook="crm") == 120
    assert hook.object_id is not None


def test_requests_are_labelled_by_route_template_and_no_created_series_is_exposed(api: Api) -> None:
    ticket = api.open_ticket()
    api.caught_up()
    for _ in range(3):
        assert api.get("agent_a", f"/api/v1/tickets/{ticket}").status_code == 200
    assert api.get("agent_a", "/api/v1/no/such/thing").status_code == 404
    assert api.get("agent_a", "/also/not/here").status_code in (401, 404)
    text = api.get("admin", "/metrics").text
    samples = scrape(api)
    route = "/api/v1/tickets/{ticket_id}"
    assert value(samples, "ticketflow_http_requests_total", method="GET", route=route, status="200") == 3
    assert ticket not in text  # never a raw path
    unmatched = [labels for name, labels in samples if name == "ticketflow_http_requests_total"
                 and dict(labels)["route"] == "unmatched"]
    assert unmatched and all(dict(labels)["route"] == "unmatched" for labels in unmatched)
    assert not any("no/such" in dict(labels)["route"] or "not/here" in dict(labels)["route"]
                   for name, labels in samples if name == "ticketflow_http_requests_total")
    assert "_created" not in text
    assert value(samples, "process_resident_memory_bytes") > 0


def test_a_request_refused_before_routing_still_carries_its_route_template(api: Api) -> None:
    huge = {"subject": "x", "requester_id": str(api.customer), "description": "长" * 600_000}
    assert api.post("agent_a", "/api/v1/tickets", huge).status_code == 413
    samples = scrape(api)
    assert value(samples, "ticketflow_http_requests_total", method="POST", route="/api/v1/tickets", status="413") == 1
