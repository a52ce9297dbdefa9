"""Turning a received mail into a ticket or a reply: a mixin of :class:`~ticketflow.application.TicketDesk`.

``receive_mail(raw, mailbox=..., uid=...)`` parses the mail and then, exactly once per mail:

* a mail written by a machine (auto-reply, bounce, mailing list) is ignored: it never opens a
  ticket and never triggers a reply;
* the sender is found through the blind index of customers' addresses (the address in the events
  is sealed), or registered from the mail (display name, address);
* a reply to mail we sent (our signed Message-ID in ``In-Reply-To``/``References``), to the mail
  that opened a ticket, or naming a ticket's ``[#reference]`` in its subject, is added to that
  ticket as the customer's inbound reply on the email channel, when the ticket is the sender's and
  not closed; anything else opens a new ticket on the email channel for the mailbox's team;
* the raw message is kept outside the log, sealed under the customer's key, referenced from the
  ``Ticket.MailReceived`` event by the hash of its ciphertext; each attachment likewise (up to
  ``TICKETFLOW_MAIL_ATTACHMENT_MAX_BYTES``), typed by its bytes, referenced from a
  ``Ticket.AttachmentReceived`` event recorded with it.

Idempotence reuses the command-id machinery: every command's id derives from the mail's identity
(its Message-ID; without one, the mailbox and UID; without those, the hash of the bytes), so a mail
fetched again after a crash between fetch and commit finds its first result instead of writing again.
The Message-ID comes first: the same mail delivered to two desk addresses is one ticket.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import NAMESPACE_URL, UUID, uuid5

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import ValidationError

from ticketflow.commands import OpenTicket, PostReply, RegisterCustomer
from ticketflow.domain import Team, Ticket
from ticketflow.domain.values import Channel, Direction, InteractionKind, Role, Status
from ticketflow.email.attachments import sniff
from ticketflow.email.ids import (
    address_digest,
    mail_keys,
    normalise_phone,
    phone_digest,
    ticket_of_message_id,
)
from ticketflow.email.parse import ParsedMail, parse_message
from ticketflow.email.store import MailStore, open_mail_store
from ticketflow.errors import NotFound
from ticketflow.metadata import Caller
from ticketflow.opening import opened_ticket

if TYPE_CHECKING:
    from ticketflow.application import TicketDesk

    _Base = TicketDesk
else:
    _Base = object

#: Namespace of the command ids derived from a mail's identity.
MAIL_NAMESPACE = uuid5(NAMESPACE_URL, "https://ticketflow.dev/mail")
#: Who records received mail: the desk itself, on the email channel.
INTAKE = Caller("mail-intake", Role.SYSTEM, Channel.EMAIL)
#: Longest text kept in an event (the command limit); the whole mail stays in the raw message.
MAX_TEXT = 20_000
_TRUNCATED = "\n…[truncated: the whole message is kept for audit]"
_SUBJECT_REF = re.compile(r"\[#([0-9a-f]{8})\]", re.IGNORECASE)
_RAW_AAD = b"ticketflow/mail-raw/1:"
_ATTACHMENT_AAD = b"ticketflow/mail-attachment/1:"


@dataclass(frozen=True)
class KeptAttachment:
    """An attachment as the ticket records it: ``digest`` None when it was not kept (``refused``)."""

    digest: str | None
    filename: str
    content_type: str
    size: int
    refused: str = ""


@dataclass(frozen=True)
class AttachmentDownload:
    data: bytes
    filename: str  # as the mail named it ("" when it named none; the erased marker after erasure)
    content_type: str  # sniffed from the bytes when it was received
    customer_id: UUID


@dataclass(frozen=True)
class MailOutcome:
    """What a received mail did: ``opened`` a ticket, ``replied`` to one, was a ``duplicate`` of a mail
    already taken in, or was ``ignored`` (``reason`` says why)."""

    action: str
    reason: str = ""
    ticket_id: UUID | None = None
    customer_id: UUID | None = None
    mail_key: str = ""


class _AlreadyHeld(Exception):
    pass


class MailIntake(_Base):
    @property
    def mail_store(self) -> MailStore:
        store: MailStore | None = self.__dict__.get("_mail_store")
        if store is None:
            store = self.__dict__["_mail_store"] = open_mail_store(self.settings, self.recorder)
        return store

    @property
    def _mail_keys(self) -> tuple[bytes, bytes]:
        keys: tuple[bytes, bytes] | None = self.__dict__.get("_mail_key_pair")
        if keys is None:
            keys = self.__dict__["_mail_key_pair"] = mail_keys(self.settings.secret_key_bytes())
        return keys

    @property
    def message_id_key(self) -> bytes:
        return self._mail_keys[0]

    # ------------------------------------------------------------ blind index
    def index_customer_email(self, customer_id: UUID, email: str | None, phone: str | None = None) -> None:
        """Keep the blind index in step with the customer's address and phone number (called after each
        profile write that changes either): the customer's old entries go, the current ones are added."""
        self.mail_store.unindex(customer_id)
        if email:
            self.mail_store.index(address_digest(self._mail_keys[1], email), customer_id)
        if phone and normalise_phone(phone).lstrip("+"):
            self.mail_store.index(phone_digest(self._mail_keys[1], phone), customer_id)

    def rebuild_email_index(self) -> int:
        """Index every customer's address and phone number anew (customers registered before the index
        existed, or an index lost with its file); returns how many customers are indexed. Erased customers
        are left out."""
        from ticketflow.domain import Customer

        indexed = 0
        for customer_id in self._ids_of(Customer):
            customer = self._peek(Customer, customer_id)
            email, phone = (None, None) if customer.erased else (customer.email, customer.phone)
            self.index_customer_email(customer_id, email, phone)
            indexed += email is not None or phone is not None
        return indexed

    def find_customer_by_email(self, address: str) -> UUID | None:
        """The customer with this address (not erased), through the blind index."""
        return self._found(self.mail_store.lookup(address_digest(self._mail_keys[1], address)))

    def find_customer_by_phone(self, phone: str) -> UUID | None:
        """The customer with this phone number (not erased), through the blind index; the number is
        compared normalised (digits, and a leading ``+``)."""
        if not normalise_phone(phone).lstrip("+"):
            return None
        return self._found(self.mail_store.lookup(phone_digest(self._mail_keys[1], phone)))

    def _found(self, customer_id: UUID | None) -> UUID | None:
        if customer_id is None or self.keys.is_erased(customer_id):
            return None
        return customer_id

    # ------------------------------------------------------------ raw messages
    def _seal_raw(self, customer_id: UUID, raw: bytes) -> str:
        key = self.keys.key_for(customer_id, create=True)
        if key is None:
            raise NotFound("customer", customer_id)  # erased between lookup and now: nothing to keep
        nonce = os.urandom(12)
        sealed = nonce + AESGCM(key).encrypt(nonce, raw, _RAW_AAD + customer_id.bytes)
        digest = hashlib.sha256(sealed).hexdigest()
        self.mail_store.keep_raw(digest, customer_id, sealed)
        return digest

    def _seal_attachments(self, customer_id: UUID, parsed: ParsedMail) -> list[KeptAttachment]:
        limit = self.settings.mail_attachment_max_bytes
        kept: list[KeptAttachment] = []
        for attachment in parsed.attachments:
            size, kind = len(attachment.data), sniff(attachment.data)
            if size > limit:
                kept.append(
                    KeptAttachment(None, attachment.filename, kind, size, f"larger than {limit} bytes")
                )
                continue
            key = self.keys.key_for(customer_id, create=True)
            if key is None:
                raise NotFound("customer", customer_id)
            nonce = os.urandom(12)
            sealed = nonce + AESGCM(key).encrypt(nonce, attachment.data, _ATTACHMENT_AAD + customer_id.bytes)
            digest = hashlib.sha256(sealed).hexdigest()
            self.mail_store.keep_attachment(digest, customer_id, sealed)
            kept.append(KeptAttachment(digest, attachment.filename, kind, size))
        return kept

    def ticket_attachment(self, ticket_id: UUID, digest: str) -> AttachmentDownload:
        """An attachment kept on this ticket, opened; NotFound when the ticket holds no such attachment
        or it is gone (its customer erased)."""
        held = self._load(Ticket, ticket_id).attachment(digest)
        if held is None:
            raise NotFound("attachment", digest)
        found = self.mail_store.attachment(digest)
        key = None if found is None else self.keys.key_for(found[0], create=False)
        if found is None or key is None:
            raise NotFound("attachment", digest)
        customer_id, sealed = found
        data = AESGCM(key).decrypt(sealed[:12], sealed[12:], _ATTACHMENT_AAD + customer_id.bytes)
        filename, kind = "", held[1]
        for event in self.history(ticket_id):
            if isinstance(event, Ticket.AttachmentReceived) and event.digest == digest:
                filename, kind = event.filename, event.content_type
                break
        return AttachmentDownload(data, filename, kind, customer_id)

    def ticket_attachments(self, ticket_id: UUID) -> list[Ticket.AttachmentReceived]:
        """The attachments the ticket received (kept or not), in order."""
        return [e for e in self.history(ticket_id) if isinstance(e, Ticket.AttachmentReceived)]

    def raw_mail(self, digest: str) -> bytes | None:
        """The raw message kept for audit; None when unknown or its customer is erased."""
        found = self.mail_store.raw(digest)
        if found is None:
            return None
        customer_id, sealed = found
        key = self.keys.key_for(customer_id, create=False)
        if key is None:
            return None
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], _RAW_AAD + customer_id.bytes)

    # ------------------------------------------------------------ intake
    def receive_mail(
        self, raw: bytes, *, mailbox: str, uid: str | None = None, team_id: UUID | None = None
    ) -> MailOutcome:
        parsed = parse_message(raw)
        if parsed.loop is not None:
            return MailOutcome("ignored", parsed.loop)
        if parsed.message_id:
            identity = f"message-id:{parsed.message_id}"
        elif uid:
            identity = f"mailbox:{mailbox}:{uid}"
        else:
            identity = f"sha256:{hashlib.sha256(raw).hexdigest()}"
        mail_key = hashlib.sha256(identity.encode()).hexdigest()
        command_id = uuid5(MAIL_NAMESPACE, mail_key)
        if not parsed.sender_address:
            return MailOutcome("ignored", "the mail names no sender (From)", mail_key=mail_key)
        from ticketflow.application import ID_NAMESPACE  # the desk's ids (imported late: it imports us)

        opened_id = uuid5(ID_NAMESPACE, f"{Ticket.__name__}:{command_id}")
        if self.recorder.select_events(opened_id, limit=1):
            return MailOutcome("duplicate", "this mail opened the ticket already", opened_id, None, mail_key)
        try:
            customer_id = self._sender_customer(parsed, mail_key)
        except ValidationError:
            return MailOutcome("ignored", f"the sender address is not usable: {parsed.sender_address!r}")
        ticket_id = self._thread_of(parsed, customer_id)
        if ticket_id is not None and mail_key in self._peek(Ticket, ticket_id).received_mail:
            # Fetched again (a crash before the fetcher recorded it): nothing sealed or stored twice.
            return MailOutcome(
                "duplicate", "the ticket holds this mail already", ticket_id, customer_id, mail_key
            )
        digest = self._seal_raw(customer_id, raw)
        attachments = self._seal_attachments(customer_id, parsed)
        message_id = parsed.message_id or identity
        if ticket_id is not None:
            outcome = self._add_reply(
                parsed, command_id, ticket_id, mail_key, message_id, mailbox, digest, attachments
            )
        else:
            outcome = self._open_from_mail(
                parsed, command_id, customer_id, team_id, mail_key, message_id, mailbox, digest, attachments
            )
        if outcome.ticket_id is not None:
            self.mail_store.add_ref(f"#{str(outcome.ticket_id)[:8]}", outcome.ticket_id)
            if parsed.message_id:
                self.mail_store.add_ref(_id_ref(parsed.message_id), outcome.ticket_id)
        return MailOutcome(outcome.action, outcome.reason, outcome.ticket_id, customer_id, mail_key)

    def _sender_customer(self, parsed: ParsedMail, mail_key: str) -> UUID:
        found = self.find_customer_by_email(parsed.sender_address)
        if found is not None:
            return found
        name = (parsed.sender_name or parsed.sender_address.split("@")[0])[:200]
        cmd = RegisterCustomer(
            command_id=uuid5(MAIL_NAMESPACE, f"customer:{mail_key}"), name=name, email=parsed.sender_address
        )
        return self.register_customer(cmd, INTAKE).object_id

    def _thread_of(self, parsed: ParsedMail, customer_id: UUID) -> UUID | None:
        """The sender's open ticket this mail answers, if any."""
        candidates: list[UUID] = []
        for mid in parsed.thread_ids:
            ours = ticket_of_message_id(self.message_id_key, mid)
            found = ours or self.mail_store.ticket_of_ref(_id_ref(mid))
            if found is not None:
                candidates.append(found)
        for ref in _SUBJECT_REF.findall(parsed.subject):
            found = self.mail_store.ticket_of_ref(f"#{ref.lower()}")
            if found is not None:
                candidates.append(found)
        for ticket_id in candidates:
            try:
                ticket = self._peek(Ticket, ticket_id)
                for _ in range(8):  # a merged duplicate: its primary carries the conversation
                    if ticket.merged_into is None:
                        break
                    ticket = self._peek(Ticket, ticket.merged_into)
            except NotFound:
                continue
            if ticket.requester_id == customer_id and ticket.status != Status.CLOSED:
                return ticket.id
        return None

    def _open_from_mail(
        self,
        parsed: ParsedMail,
        command_id: UUID,
        customer_id: UUID,
        team_id: UUID | None,
        mail_key: str,
        message_id: str,
        mailbox: str,
        digest: str,
        attachments: list[KeptAttachment],
    ) -> MailOutcome:
        cmd = OpenTicket(
            command_id=command_id,
            subject=(parsed.subject or "(no subject)")[:200],
            description=_fit(parsed.body),
            channel=Channel.EMAIL,
            requester_id=customer_id,
            team_id=team_id,
        )

        def build(ticket_id: UUID) -> Ticket:
            ticket = opened_ticket(ticket_id, cmd)
            ticket.receive_mail(mail_key, message_id, mailbox, digest, None)
            _note_attachments(ticket, mail_key, attachments, None)
            return ticket

        if team_id is not None:
            self._require_exists(Team, team_id)
        result = self._create(Ticket, cmd, INTAKE, build)
        return MailOutcome("duplicate" if result.replayed else "opened", "", result.object_id)

    def _add_reply(
        self,
        parsed: ParsedMail,
        command_id: UUID,
        ticket_id: UUID,
        mail_key: str,
        message_id: str,
        mailbox: str,
        digest: str,
        attachments: list[KeptAttachment],
    ) -> MailOutcome:
        from ticketflow.application import ID_NAMESPACE

        cmd = PostReply(
            command_id=command_id,
            ticket_id=ticket_id,
            body=_fit(parsed.body) or "(no text)",
            direction=Direction.INBOUND,
            channel=Channel.EMAIL,
        )
        interaction_id = uuid5(ID_NAMESPACE, f"interaction:{command_id}")

        def act(ticket: Ticket) -> None:
            if mail_key in ticket.received_mail:
                raise _AlreadyHeld
            ticket.record_interaction(
                InteractionKind.REPLY,
                interaction_id,
                Direction.INBOUND,
                str(ticket.requester_id),
                str(Channel.EMAIL),
                cmd.body,
            )
            ticket.receive_mail(mail_key, message_id, mailbox, digest, interaction_id)
            _note_attachments(ticket, mail_key, attachments, interaction_id)

        try:
            result = self._change(Ticket, ticket_id, cmd, INTAKE, act)
        except _AlreadyHeld:
            return MailOutcome("duplicate", "the ticket holds this mail already", ticket_id)
        return MailOutcome("duplicate" if result.replayed else "replied", "", ticket_id)


def _note_attachments(
    ticket: Ticket, mail_key: str, attachments: list[KeptAttachment], interaction_id: UUID | None
) -> None:
    for a in attachments:
        ticket.receive_attachment(
            mail_key, a.digest, a.filename, a.content_type, a.size, a.refused, interaction_id
        )


def _fit(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - len(_TRUNCATED)] + _TRUNCATED


def _id_ref(message_id: str) -> str:
    """A customer's Message-ID, as a ticket reference key (hashed: the id is the sender's data)."""
    return "mid:" + hashlib.sha256(message_id.strip().lower().encode()).hexdigest()
