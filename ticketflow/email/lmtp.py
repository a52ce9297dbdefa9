"""An LMTP receiver (RFC 2033) the desk's mail server delivers into, built on aiosmtpd's LMTP server.

Postfix (``mailbox_transport = lmtp:inet:127.0.0.1:8024``), Exim or Dovecot's LMTP proxy hand each
mail here. A recipient is accepted only when a mailbox receives for its address (550 otherwise, so
the mail server bounces at once instead of queueing). Each accepted mail goes through
:meth:`~ticketflow.email.intake.MailIntake.receive_mail` once per mailbox before the 250 is sent:
a mail acknowledged is committed. A failure answers 451, and the mail server delivers again later,
which is safe: intake is idempotent by the mail's identity.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import TYPE_CHECKING, Any

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP

from ticketflow.errors import TicketflowError

if TYPE_CHECKING:
    from ticketflow.application import TicketDesk

log = logging.getLogger("ticketflow.email")

#: The largest mail accepted (the mail server bounces bigger ones at once).
MAX_MESSAGE_BYTES = 40 * 1024 * 1024


class IntakeHandler:
    """aiosmtpd handler: RCPT checks the mailbox, DATA takes the mail in (one intake at a time)."""

    def __init__(self, desk: TicketDesk) -> None:
        self.desk = desk
        self._lock = threading.Lock()  # one intake at a time: a sender's first mails register them once

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        mailbox = await asyncio.get_running_loop().run_in_executor(
            None, self.desk.mailbox_for_address, address
        )
        if mailbox is None:
            return f"550 5.1.1 <{address}>: no mailbox of this desk receives for this address"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content or envelope.content
        try:
            outcomes = await asyncio.get_running_loop().run_in_executor(
                None, self._take_in, raw, envelope.rcpt_tos
            )
        except TicketflowError as exc:
            log.warning("mail refused: %s", exc)
            return f"554 5.6.0 {str(exc)[:200]}"
        except Exception:
            log.exception("mail intake failed; the mail server will deliver again")
            return "451 4.3.0 the desk could not store the mail now; try again later"
        return "250 2.0.0 " + "; ".join(outcomes)

    def _take_in(self, raw: bytes, recipients: list[str]) -> list[str]:
        outcomes: list[str] = []
        with self._lock:
            for address in dict.fromkeys(a.lower() for a in recipients):
                mailbox = self.desk.mailbox_for_address(address)
                if mailbox is None:  # removed since RCPT
                    continue
                outcome = self.desk.receive_mail(raw, mailbox=mailbox.name, team_id=mailbox.team_id)
                log.info(
                    "mail for %s: %s %s", mailbox.name, outcome.action, outcome.ticket_id or outcome.reason
                )
                outcomes.append(outcome.action + (f" {outcome.ticket_id}" if outcome.ticket_id else ""))
        return outcomes


class LmtpReceiver(Controller):
    """Runs the LMTP server in its own thread: ``start()``, ``stop()``."""

    def __init__(self, desk: TicketDesk, hostname: str = "127.0.0.1", port: int = 8024) -> None:
        super().__init__(IntakeHandler(desk), hostname=hostname, port=port, data_size_limit=MAX_MESSAGE_BYTES)

    def factory(self) -> LMTP:
        return LMTP(self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        """The base class greets with SMTP's HELO to check the server is up; an LMTP server wants LHLO."""
        import socket

        with socket.create_connection((self.hostname, self.port), timeout=self.ready_timeout) as sock:
            sock.recv(1024)  # the greeting
            sock.sendall(b"QUIT\r\n")
            sock.recv(1024)
