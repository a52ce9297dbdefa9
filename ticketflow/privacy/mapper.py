"""Encrypting each customer's personal data under their own key, as events are stored.

Every event class declares its personal fields and whose data they are
(:mod:`ticketflow.domain.base`). On the way into the store, those fields are replaced
by a sealed envelope: AES-256-GCM under the data subject's key, with the event's
identity and the field name as associated data, so a sealed value copied into another
event or field does not open. Snapshots of an aggregate holding personal data (a
customer, a ticket, a reminder) are sealed whole under their subject's key.

On the way out, a sealed value opens with the key; once the key is destroyed (erasure)
it reads as :data:`ERASED`. The stored bytes never change, so hashes over them stay valid.
"""

from __future__ import annotations

import base64
import os
from functools import lru_cache
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent, Transcoder
from eventsourcing.utils import get_topic

from ticketflow.domain.customer import ERASED
from ticketflow.privacy.keys import KeyStore

SEALED = "__sealed_v1__"

#: Which attribute of an aggregate's state names whose personal data a snapshot holds.
SNAPSHOT_SUBJECTS = {
    "ticketflow.domain.ticket:Ticket": "requester_id",
    "ticketflow.domain.customer:Customer": "_id",
    "ticketflow.domain.reminder:Reminder": "customer_id",
}


class SubjectErased(Exception):
    """Personal data of an erased customer cannot be stored any more (only markers can)."""


class PrivacyMapper(Mapper[UUID]):
    """The eventsourcing mapper, sealing personal fields per data subject."""

    def __init__(self, transcoder: Transcoder, keys: KeyStore, **kwargs: Any) -> None:
        super().__init__(transcoder, **kwargs)
        self.keys = keys

    # ------------------------------------------------------------------ storing
    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        cls = type(domain_event)
        topic = get_topic(cls)
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(cls, "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        aad = f"{originator_id}:{originator_version}".encode()
        if isinstance(domain_event, Snapshot):
            state = self._seal_snapshot(state, originator_id, aad)
        else:
            fields = getattr(cls, "personal_fields", frozenset())
            subject = domain_event.subject_id() if fields else None
            if subject is not None:
                state = self._seal_fields(state, fields, subject, aad)
        stored = self.transcoder.encode(state)
        if self.compressor:
            stored = self.compressor.compress(stored)
        if self.cipher:
            stored = self.cipher.encrypt(stored)
        return StoredEvent(originator_id=originator_id, originator_version=originator_version, topic=topic, state=stored)

    def _seal_fields(self, state: dict[str, Any], fields: frozenset[str], subject: UUID, aad: bytes) -> dict[str, Any]:
        key = self.keys.key_for(subject, create=True)
        for name in fields:
            value = state.get(name)
            if value in (None, "", {}, []):
                continue  # nothing personal to hide (and its absence is not personal)
            if key is None:
                state[name] = _erased_like(value)  # the customer was erased: keep no new plaintext either
                continue
            state[name] = self._seal(key, subject, value, aad + b":" + name.encode())
        return state

    def _seal_snapshot(self, state: dict[str, Any], originator_id: UUID, aad: bytes) -> dict[str, Any]:
        attribute = SNAPSHOT_SUBJECTS.get(state.get("topic", ""))
        if attribute is None:
            return state
        inner = state["state"]
        subject = originator_id if attribute == "_id" else inner.get(attribute)
        if subject is None:
            return state
        subject = subject if isinstance(subject, UUID) else UUID(str(subject))
        key = self.keys.key_for(subject, create=True)
        if key is None:
            raise SubjectErased(f"customer {subject} is erased: no snapshot of {originator_id} is kept")
        return {**state, "state": self._seal(key, subject, inner, aad + b":snapshot")}

    def _seal(self, key: bytes, subject: UUID, value: Any, aad: bytes) -> dict[str, str]:
        nonce = os.urandom(12)
        ciphertext = _aead(key).encrypt(nonce, self.transcoder.encode(value), aad)
        shape = "dict" if isinstance(value, dict) else "list" if isinstance(value, list) else "text"
        return {SEALED: str(subject), "t": shape, "n": _b64(nonce), "c": _b64(ciphertext)}

    # ------------------------------------------------------------------ reading
    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        state = vars(event)
        aad = f"{stored_event.originator_id}:{stored_event.originator_version}".encode()
        if isinstance(event, Snapshot):
            inner = state.get("state")
            if isinstance(inner, dict) and SEALED in inner:
                opened = self._open(inner, aad + b":snapshot")
                if opened is _GONE:
                    raise MapperDeserialisationError(
                        f"snapshot of {stored_event.originator_id} v{stored_event.originator_version} "
                        "belongs to an erased customer"
                    )
                state["state"] = opened
            return event
        for name, value in list(state.items()):
            if isinstance(value, dict) and SEALED in value:
                opened = self._open(value, aad + b":" + name.encode())
                state[name] = _ERASED_SHAPES.get(value.get("t", "text"), ERASED) if opened is _GONE else opened
        return event

    def _open(self, envelope: dict[str, str], aad: bytes) -> Any:
        subject = UUID(envelope[SEALED])
        key = self.keys.key_for(subject, create=False)
        if key is None:
            return _GONE
        try:
            plaintext = _aead(key).decrypt(_unb64(envelope["n"]), _unb64(envelope["c"]), aad)
        except (InvalidTag, ValueError, KeyError) as exc:
            raise MapperDeserialisationError(
                f"a sealed personal field ({aad.decode(errors='replace')}) does not open: altered, or moved "
                f"from another event or field ({type(exc).__name__})"
            ) from None
        return self.transcoder.decode(plaintext)


_GONE = object()
#: What an unreadable value becomes, by the shape it had (a dict of changes stays a dict).
_ERASED_SHAPES: dict[str, Any] = {"text": ERASED, "dict": {}, "list": []}


@lru_cache(maxsize=4096)
def _aead(key: bytes) -> AESGCM:
    """One cipher object per key (building one costs more than sealing a field)."""
    return AESGCM(key)


def _erased_like(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ERASED for k in value}
    return ERASED


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))

