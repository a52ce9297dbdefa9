"""Webhooks post to public addresses only (server-side request forgery), unless the operator allows a target."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from pydantic import ValidationError

from projections.readside import ReadSide
from projections.webhook_sender import GuardedPost, WebhookSender
from tests.support import ADMIN, Desk
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands.workflow import ChangeWebhook, SubscribeWebhook
from ticketflow.config import Settings
from ticketflow.errors import ValidationFailed
from ticketflow.webhook_targets import TargetGuard

REFUSED = [
    "http://127.0.0.1:8080/hook", "http://10.1.2.3/hook", "http://192.168.0.10/hook", "http://172.16.5.5/hook",
    "http://169.254.169.254/latest/meta-data", "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook",
    "http://[fd00::1]/hook", "http://0.0.0.0/hook", "http://2130706433/hook", "http://0x7f.1/hook",
    "http://localhost:9000/hook", "http://api.localhost/hook", "http://100.64.0.1/hook", "http://224.0.0.1/hook",
]


@pytest.mark.parametrize("url", REFUSED)
def test_a_non_public_target_is_refused_naming_the_setting(url: str) -> None:
    with pytest.raises(ValidationFailed, match="TICKETFLOW_WEBHOOK_ALLOWED_TARGETS"):
        TargetGuard().check_url(url)


def test_public_addresses_and_names_pass_and_allowed_targets_pass_by_name_or_network() -> None:
    guard = TargetGuard()
    for url in ("https://93.184.215.14/hook", "https://[2606:4700::1111]/hook", "https://crm.example.com/hook"):
        guard.check_url(url)
    allowed = TargetGuard.from_setting("crm.internal, 10.2.0.0/16, 127.0.0.1")
    for url in ("http://crm.internal:8443/x", "http://10.2.7.9/x", "http://127.0.0.1:9/x"):
        allowed.check_url(url)
    with pytest.raises(ValidationFailed):
        allowed.check_url("http://10.3.0.1/x")


def test_a_name_resolving_to_a_private_address_is_refused_at_delivery() -> None:
    answers = {"crm.example.com": ["93.184.215.14"], "rebound.example.com": ["93.184.215.14", "10.0.0.5"]}
    guard = TargetGuard(resolve=lambda host, port: answers[host])
    guard.check_delivery("https://crm.example.com/hook")
    guard.check_url("https://rebound.example.com/hook")  # a name is only known to be private once resolved
    with pytest.raises(ValidationFailed, match=r"10\.0\.0\.5"):
        guard.check_delivery("https://rebound.example.com/hook")
    allowed = TargetGuard.from_setting("10.0.0.0/8", resolve=lambda host, port: answers[host])
    allowed.check_delivery("https://rebound.example.com/hook")


def test_a_bad_allow_list_is_refused_naming_the_item() -> None:
    with pytest.raises(ValidationError, match="neither a host name"):
        Settings(webhook_allowed_targets="crm.internal, http://x/")


@pytest.fixture
def strict_desk(tmp_path: Path) -> TicketDesk:
    desk = TicketDesk(Settings(data_dir=tmp_path, webhook_allowed_targets=""), clock=FakeClock())
    yield desk
    desk.close()


def test_subscribing_or_moving_a_webhook_to_loopback_writes_nothing(strict_desk: TicketDesk) -> None:
    before = strict_desk.log_position()
    with pytest.raises(ValidationFailed, match="127.0.0.1"):
        strict_desk.subscribe_webhook(SubscribeWebhook(name="crm", url="http://127.0.0.1:9/x", event_types=["*"]), ADMIN)
    assert strict_desk.log_position() == before
    result, _ = strict_desk.subscribe_webhook(
        SubscribeWebhook(name="crm", url="https://crm.example.com/x", event_types=["*"]), ADMIN)
    with pytest.raises(ValidationFailed, match="169.254.169.254"):
        strict_desk.change_webhook(ChangeWebhook(webhook_id=result.object_id, url="http://169.254.169.254/x",
                                                 event_types=["*"]), ADMIN)
    assert [w.url for w in strict_desk.webhooks()] == ["https://crm.example.com/x"]


def test_a_delivery_to_a_name_now_pointing_inside_is_recorded_as_refused_and_never_posted(
    strict_desk: TicketDesk,
) -> None:
    strict_desk.subscribe_webhook(
        SubscribeWebhook(name="crm", url="https://crm.example.com/x", event_types=["Ticket.Opened"]), ADMIN)
    Desk(strict_desk).open("打印机坏了")
    read_side = ReadSide(strict_desk, ["outbox"])
    posted: list[str] = []

    def post(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        posted.append(url)
        return 200

    try:
        guard = TargetGuard.from_setting(strict_desk.settings.webhook_allowed_targets,
                                         resolve=lambda host, port: ["192.168.1.20"])  # the name points inside now
        sender = WebhookSender(read_side, strict_desk, strict_desk.clock, post=GuardedPost(guard, post))
        read_side.catch_up()
        assert sender.run_once() == 1
        from projections.outbox import list_deliveries

        [hook] = strict_desk.webhooks()
        [delivery] = read_side.read("outbox", lambda db: list_deliveries(db, str(hook.id)))
        assert posted == [] and delivery["state"] == "pending" and "192.168.1.20" in delivery["last_error"]
        assert isinstance(WebhookSender(read_side, strict_desk, strict_desk.clock).post, GuardedPost)  # the default
    finally:
        read_side.close()
