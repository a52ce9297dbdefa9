"""Message-IDs the desk sends: they name the ticket and the reply, signed so a mail cannot claim one.

``<tf.<ticket hex>.<reply hex>.<tag>@<domain>>``: the tag is 16 hex digits of an HMAC under a key
derived from the desk's secret. The same reply always gets the same Message-ID (a resend after a
crash is the same message to the customer's client), and a customer's answer that cites it in
``In-Reply-To``/``References`` finds its ticket without any lookup table.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from uuid import UUID

_OURS = re.compile(r"^<tf\.([0-9a-f]{32})\.([0-9a-f]{32})\.([0-9a-f]{16})@[^<>\s]+>$")


def mail_keys(secret: bytes) -> tuple[bytes, bytes]:
    """(the Message-ID signing key, the blind index key), each derived for its one use."""
    return (
        hmac.new(secret, b"ticketflow/mail-message-id/1", hashlib.sha256).digest(),
        hmac.new(secret, b"ticketflow/mail-blind-index/1", hashlib.sha256).digest(),
    )


def _tag(key: bytes, ticket_id: UUID, interaction_id: UUID) -> str:
    return hmac.new(key, f"{ticket_id.hex}.{interaction_id.hex}".encode(), hashlib.sha256).hexdigest()[:16]


def outbound_message_id(key: bytes, ticket_id: UUID, interaction_id: UUID, domain: str) -> str:
    return f"<tf.{ticket_id.hex}.{interaction_id.hex}.{_tag(key, ticket_id, interaction_id)}@{domain}>"


def ticket_of_message_id(key: bytes, message_id: str) -> UUID | None:
    """The ticket a Message-ID of ours names; None for anyone else's (or a forged one)."""
    found = _OURS.match(message_id.strip().lower())
    if found is None:
        return None
    ticket_id, interaction_id = UUID(hex=found.group(1)), UUID(hex=found.group(2))
    return ticket_id if hmac.compare_digest(found.group(3), _tag(key, ticket_id, interaction_id)) else None


def address_digest(key: bytes, address: str) -> str:
    """The blind index entry of an email address (trimmed, lower-cased: how mail systems compare them)."""
    normalised = address.strip().lower()
    return hmac.new(key, normalised.encode("utf-8"), hashlib.sha256).hexdigest()


def normalise_phone(phone: str) -> str:
    """A phone number as the blind index compares it: digits only (full-width digits too), with a leading
    ``+`` kept: ``+86 138-0013-8000``, ``+86 (138) 0013 8000`` and ``＋８６１３８００１３８０００`` are one number."""
    text = unicodedata.normalize("NFKC", phone).strip()
    digits = "".join(ch for ch in text if ch.isdigit())
    return ("+" if text.startswith("+") else "") + digits


def phone_digest(key: bytes, phone: str) -> str:
    """The blind index entry of a phone number (normalised; ``tel:``-prefixed, so never an address's entry)."""
    return hmac.new(key, f"tel:{normalise_phone(phone)}".encode(), hashlib.sha256).hexdigest()
