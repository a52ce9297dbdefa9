"""Sends the outbox's mail deliveries (agents' public replies on email tickets) through SMTP.

Same guarantees as the webhook sender, whose claim, attempt log and backoff it shares: a delivery is
claimed for a lease, sent, and its attempt and new state recorded in one transaction. **At least
once**: a sender killed between the SMTP server's acceptance and that record sends it again once the
lease expires, and then the very same message (the same Message-ID: see
:meth:`ticketflow.email.outbound.MailComposer.compose_reply`), so the customer's client shows one.
A refused or unreachable server is retried after 10 s, doubling up to 1 h, 12 times; a reply that can
never go out as mail (no address, erased customer, no From address) fails at once, with the reason.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from typing import Any
from uuid import UUID

from projections.outbox import DELIVERIES, MAIL_CHANNEL
from projections.readside import ReadSide
from projections.sql import Db, loads, ts
from projections.webhook_sender import Outcome, _claim
from projections.webhook_sender import _record as _record_attempt
from ticketflow.application import TicketDesk
from ticketflow.clock import Clock
from ticketflow.config import Settings
from ticketflow.email.outbound import MailNotSendable

TIMEOUT_SECONDS = 30.0
#: The status recorded for a mail the server accepted (SMTP 250 in the attempt log's HTTP-shaped column).
ACCEPTED = 250

#: Sends one message; raises on refusal or no answer.
Send = Callable[[EmailMessage], None]


def smtp_send(settings: Settings) -> Send:
    """The default transport: smtplib to the configured server (STARTTLS and login when configured)."""

    def send(message: EmailMessage) -> None:
        if not settings.smtp_host:
            raise smtplib.SMTPException("no SMTP server configured (TICKETFLOW_SMTP_HOST)")
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=TIMEOUT_SECONDS) as client:
            if settings.smtp_starttls:
                client.starttls()
            if settings.smtp_username and settings.smtp_password is not None:
                client.login(settings.smtp_username, settings.smtp_password.get_secret_value())
            client.send_message(message)

    return send


class MailSender:
    """Sends the due mail deliveries; call :meth:`run_once` from a loop (the automation does)."""

    def __init__(
        self, read_side: ReadSide, desk: TicketDesk, clock: Clock, send: Send | None = None, batch: int = 100
    ) -> None:
        self.store = read_side.stores["outbox"]
        self.desk, self.clock, self.batch = desk, clock, batch
        self.send = send or smtp_send(desk.settings)

    def run_once(self) -> int:
        now = self.clock.now()
        due = self.store.read(lambda db: _due(db, ts(now), self.batch))
        attempted = 0
        for row in due:
            if not self.store.write(lambda db, row=row: _claim(db, row, now)):  # type: ignore[misc]
                continue
            outcome, permanent = self._deliver(row)
            self.store.write(
                lambda db, row=row, outcome=outcome, permanent=permanent: _record(  # type: ignore[misc]
                    db, row, outcome, now, permanent
                )
            )
            attempted += 1
            if outcome.status is None and not permanent:
                break  # the server is down: the rest wait for the next run
        return attempted

    def _deliver(self, row: dict[str, Any]) -> tuple[Outcome, bool]:
        payload = loads(row["payload"])
        started = time.perf_counter()  # a duration, not business time
        try:
            message = self.desk.compose_reply(UUID(payload["ticket_id"]), UUID(payload["interaction_id"]))
        except MailNotSendable as exc:
            return Outcome(None, f"not sendable: {exc}"[:500], 0.0), True
        try:
            self.send(message)
            status, error = ACCEPTED, None
        except smtplib.SMTPResponseException as exc:
            status, error = None, f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"[:500]
        except Exception as exc:  # noqa: BLE001 - any failure to get the mail accepted is recorded and retried
            status, error = None, f"{type(exc).__name__}: {exc}"[:500]
        return Outcome(status, error, round((time.perf_counter() - started) * 1000, 3)), False


def _due(db: Db, now: str | None, limit: int) -> list[dict[str, Any]]:
    return db.all(
        f"SELECT d.* FROM {{p}}{DELIVERIES.name} d WHERE d.webhook_id = ? AND d.state = 'pending' "
        "AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= ?) ORDER BY d.position, d.delivery_id LIMIT ?",
        (MAIL_CHANNEL, now, limit),
    )


def _record(db: Db, row: dict[str, Any], outcome: Outcome, now: datetime, permanent: bool) -> None:
    _record_attempt(db, row, outcome, now)
    if permanent:
        db.execute(
            f"UPDATE {{p}}{DELIVERIES.name} SET state = 'failed', next_attempt_at = NULL WHERE delivery_id = ?",
            (row["delivery_id"],),
        )
