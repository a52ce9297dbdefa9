"""An agent's public reply as a mail: a mixin of :class:`~ticketflow.application.TicketDesk`.

:meth:`compose_reply` builds the same message every time for the same reply (the sender may have to
send it again after a crash between the SMTP server's acceptance and recording it; the customer's
client then shows one message): the Message-ID is derived from the ticket and the reply (signed, see
:mod:`ticketflow.email.ids`), the Date is the reply's time, and the threading headers list the
customer's mails on the ticket and our earlier replies. From is the address of a mailbox of the
ticket's team, else the desk's ``mail_from``. The body is ``multipart/alternative``: the reply as a
UTF-8 plain-text part, and the same text as simple HTML (escaped; paragraphs and line breaks kept),
under a boundary derived from the Message-ID so that the whole message is the same byte for byte.
"""

from __future__ import annotations

import hashlib
import html
import re
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ticketflow.domain import Customer, Ticket
from ticketflow.domain.customer import ERASED
from ticketflow.domain.values import Direction
from ticketflow.email.ids import outbound_message_id

if TYPE_CHECKING:
    from ticketflow.application import TicketDesk

    _Base = TicketDesk
else:
    _Base = object

#: At most this many ids in References (the nearest kept; RFC 5322 sets no limit, servers do).
MAX_REFERENCES = 20


def html_of(text: str) -> str:
    """The reply's text as a small HTML document: every character escaped (nothing the agent typed is
    markup), blank lines start paragraphs, single newlines are line breaks."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()) if p.strip()]
    body = "\n".join(
        "<p>" + "<br>\n".join(html.escape(line) for line in p.split("\n")) + "</p>" for p in paragraphs
    )
    return f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n{body}\n</body></html>\n'


class MailNotSendable(Exception):
    """A reply that can never go out as mail (no address, erased customer, no From): not retried."""


class MailComposer(_Base):
    def compose_reply(self, ticket_id: UUID, interaction_id: UUID) -> EmailMessage:
        ticket = self._load(Ticket, ticket_id)
        events: list[Any] = list(self.events.get(ticket_id))
        reply = next(
            (e for e in events if isinstance(e, Ticket.Replied) and e.interaction_id == interaction_id), None
        )
        if reply is None or reply.direction != Direction.OUTBOUND:
            raise MailNotSendable(f"ticket {ticket_id} has no outbound reply {interaction_id}")
        customer = self._load(Customer, ticket.requester_id)
        if customer.erased or not customer.email or customer.email == ERASED:
            raise MailNotSendable(f"customer {customer.id} has no email address")
        sender = self._from_address(ticket)
        domain = sender.split("@", 1)[1]
        key = self.message_id_key
        thread: list[str] = []
        for event in events:
            if event.originator_version >= reply.originator_version:
                break
            if isinstance(event, Ticket.MailReceived) and event.message_id.startswith("<"):
                thread.append(event.message_id)
            elif isinstance(event, Ticket.Replied) and event.direction == Direction.OUTBOUND:
                thread.append(outbound_message_id(key, ticket.id, event.interaction_id, domain))
        reference = f"#{str(ticket.id)[:8]}"
        subject = ticket.subject if ticket.subject != ERASED else ""
        message = EmailMessage()
        message["From"] = Address(self._team_name(ticket), addr_spec=sender)
        message["To"] = Address(customer.name if customer.name != ERASED else "", addr_spec=customer.email)
        message["Subject"] = f"Re: {subject} [{reference}]"
        message["Date"] = format_datetime(reply.occurred_at)
        message["Message-ID"] = outbound_message_id(key, ticket.id, interaction_id, domain)
        if thread:
            message["In-Reply-To"] = thread[-1]
            message["References"] = " ".join(thread[-MAX_REFERENCES:])
        message["Auto-Submitted"] = "no"  # a person wrote it: auto-responders may answer
        message.set_content(reply.body, charset="utf-8")
        message.add_alternative(html_of(reply.body), subtype="html", charset="utf-8")
        message.set_boundary("=_tf_" + hashlib.sha256(str(message["Message-ID"]).encode()).hexdigest()[:32])
        self.mail_store.add_ref(reference, ticket.id)
        return message

    def _from_address(self, ticket: Ticket) -> str:
        boxes = [m for m in self.mailboxes() if m.team_id == ticket.team_id and ticket.team_id is not None]
        if boxes:
            return str(boxes[0].address)
        if self.settings.mail_from:
            return self.settings.mail_from
        raise MailNotSendable(
            f"ticket {ticket.id}: its team has no mailbox and TICKETFLOW_MAIL_FROM is not set (no From address)"
        )

    def _team_name(self, ticket: Ticket) -> str:
        if ticket.team_id is None:
            return ""
        from ticketflow.domain import Team

        return str(self._peek(Team, ticket.team_id).name)
