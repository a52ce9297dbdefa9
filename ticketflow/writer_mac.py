"""Every stored event carries a MAC by the desk that wrote it.

A row put into the event table by anything but the desk's own code (someone with
database access, a bad migration) has no valid MAC: the sealer refuses to seal it (and
stops, loudly), and ``audit verify`` names it while it is still unsealed. The MAC goes in front of the stored bytes::

    stored = MAGIC || HMAC-SHA256(key, u32(len(id)) || id || u64(version) || u32(len(topic)) || topic || inner)
             || inner

``inner`` is what the mapper made (JSON, sealed personal fields, compressed/encrypted as
configured); the hash chain covers the whole stored bytes, MAC included. Reads strip the MAC
without judging it; the sealer refuses a row without a valid one. ``key`` derives
from the desk's secret key (``TICKETFLOW_SECRET_KEY`` or the data dir's key file), so every
process of one desk must share it. Rows stored before this existed have no MAGIC and read
as they always did; the sealer accepts a row without a MAC only at or before the position an
operator declares (``TICKETFLOW_UNMACED_EVENTS_UNTIL``, for a store upgraded with rows its old
sealer had not sealed yet): nothing in the database can widen that window.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent

from ticketflow.errors import TicketflowError

MAGIC = b"\x00tfm1"
MAC_BYTES = 32
_u32 = struct.Struct(">I").pack
_u64 = struct.Struct(">Q").pack


class ForgedEvent(TicketflowError):
    """A stored event whose writer MAC does not check: not written by this desk."""

    code = "forged_event"


def writer_key(secret: bytes) -> bytes:
    return hmac.new(secret, b"ticketflow/writer-mac/1", hashlib.sha256).digest()


class WriterMac:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def mac(self, originator_id: UUID | str, version: int, topic: str, inner: bytes) -> bytes:
        oid, top = str(originator_id).encode(), topic.encode()
        message = _u32(len(oid)) + oid + _u64(version) + _u32(len(top)) + top + inner
        return hmac.digest(self._key, message, "sha256")  # hmac.new(...).digest() in one call (OpenSSL's)

    def wrap(self, stored: StoredEvent) -> StoredEvent:
        tag = self.mac(stored.originator_id, stored.originator_version, stored.topic, stored.state)
        return StoredEvent(stored.originator_id, stored.originator_version, stored.topic, MAGIC + tag + stored.state)

    def check(self, originator_id: UUID | str, version: int, topic: str, state: bytes) -> bool | None:
        """True: a valid MAC; False: a MAC that does not check (forged or altered); None: no MAC (legacy)."""
        if not state.startswith(MAGIC):
            return None
        tag, inner = state[len(MAGIC):len(MAGIC) + MAC_BYTES], state[len(MAGIC) + MAC_BYTES:]
        return hmac.compare_digest(tag, self.mac(originator_id, version, topic, inner))

    def require(self, originator_id: UUID | str, version: int, topic: str, state: bytes, legacy_ok: bool) -> None:
        """Raise :class:`ForgedEvent` unless the row carries a valid MAC (or is a legacy row, if allowed)."""
        verdict = self.check(originator_id, version, topic, state)
        if verdict or (verdict is None and legacy_ok):
            return
        what = "has no writer MAC" if verdict is None else "fails the writer MAC"
        raise ForgedEvent(
            f"stored event {originator_id} v{version} {what}: it was not written by this desk (or the process"
            " that wrote it has another secret key: set TICKETFLOW_SECRET_KEY alike on every process)"
        )

    @staticmethod
    def unwrap(stored: StoredEvent) -> StoredEvent:
        """The mapper's bytes. Reads do not judge the MAC (the sealer and ``audit verify`` do), so a
        process with a mismatched secret key cannot take the desk down, only stop the sealing."""
        state = bytes(stored.state)
        if not state.startswith(MAGIC):
            return stored
        return StoredEvent(stored.originator_id, stored.originator_version, stored.topic, inner_state(state))


def inner_state(state: bytes) -> bytes:
    """What the mapper made of a stored state: its writer MAC, if it has one, stripped (not judged, as
    :meth:`WriterMac.unwrap`); a legacy state as it is."""
    return state[_INNER:] if state.startswith(MAGIC) else state


_INNER = len(MAGIC) + MAC_BYTES


def with_writer_mac(mapper_class: type[Mapper[Any]]) -> type[Mapper[Any]]:
    """A subclass of ``mapper_class`` that MACs what it stores and checks what it reads."""

    class MacMapper(mapper_class):  # type: ignore[valid-type, misc]
        writer_mac: WriterMac

        def to_stored_event(self, domain_event: Any) -> StoredEvent:
            return self.writer_mac.wrap(super().to_stored_event(domain_event))

        def to_domain_event(self, stored_event: StoredEvent) -> Any:
            return super().to_domain_event(self.writer_mac.unwrap(stored_event))

    MacMapper.__name__ = MacMapper.__qualname__ = f"WriterMac{mapper_class.__name__}"
    MacMapper.inner_class = mapper_class  # the mapper of the bytes within the MAC
    return MacMapper
