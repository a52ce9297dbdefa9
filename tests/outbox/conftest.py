"""A desk with the outbox view, a loopback receiver and a sender on a fake clock, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import pytest

from projections.outbox import list_deliveries
from projections.readside import ReadSide
from projections.webhook_sender import Post, WebhookSender, http_post
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands.workflow import SubscribeWebhook
from ticketflow.config import Settings
from tests.outbox.receiver import Receiver
from tests.support import ADMIN, Desk


@dataclass
class Outbox:
    desk: TicketDesk
    setup: Desk
    clock: FakeClock
    read_side: ReadSide
    receiver: Receiver

    def subscribe(self, *event_types: str, url: str | None = None) -> UUID:
        result, _ = self.desk.subscribe_webhook(
            SubscribeWebhook(name=f"hook-{len(self.desk.webhooks())}", url=url or self.receiver.url,
                             event_types=list(event_types)), ADMIN,
        )
        return result.object_id

    def sender(self, post: Post = http_post) -> WebhookSender:  # the loopback receiver: no target check
        return WebhookSender(self.read_side, self.desk, self.clock, post=post)

    def send(self) -> int:
        """Bring the outbox up to the log, then one sender pass."""
        self.read_side.catch_up()
        return self.sender().run_once()

    def deliveries(self, webhook_id: UUID) -> list[dict[str, Any]]:
        self.read_side.catch_up()
        return self.read_side.read("outbox", lambda db: list_deliveries(db, str(webhook_id)))


@pytest.fixture
def outbox(shared_store_settings: Settings, clock: FakeClock) -> Iterator[Outbox]:
    desk = TicketDesk(shared_store_settings, clock=clock)
    read_side = ReadSide(desk, ["outbox"])
    receiver = Receiver(lambda webhook_id: desk.webhook_secret(UUID(webhook_id)), clock)
    yield Outbox(desk, Desk(desk), clock, read_side, receiver)
    receiver.stop()
    read_side.close()
    desk.close()
