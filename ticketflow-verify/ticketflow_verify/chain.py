"""The hashes, trees and signatures of ticketflow's tamper-evident log (formats 1 and 2).

This module needs only the standard library and ``cryptography``; it imports
nothing else from ticketflow, so an auditor can copy it and re-check an export.
Everything an independent re-implementation needs is specified here.

Integers are big-endian; ``str`` fields are UTF-8. ``H`` is SHA-256.

* **Event hash** (one per stored event, chained per stream)::

      frame(x)   = u32(len(x)) || x
      genesis(s) = H("ticketflow/genesis/1" || frame(s))
      event(e)   = H("ticketflow/event/1" || frame(originator_id) || u64(version)
                     || frame(topic) || u64(len(state)) || state || previous)

  ``originator_id`` is the lower-case hyphenated UUID text, ``state`` the stored bytes
  exactly as the event store holds them (compressed / encrypted as stored: never a
  re-encoding), ``previous`` the 32-byte hash of the stream's previous event
  (``genesis(originator_id)`` before version 1). Versions run 1, 2, 3... without gaps.

* **Log tree** (RFC 6962 / RFC 9162 Merkle tree over every event in log order)::

      leaf(h)    = H(0x00 || h)            node(l, r) = H(0x01 || l || r)
      root([])   = H("")

* **Heads tree** (what makes a single stream's export complete): at a checkpoint of
  size n, the streams' last events within the first n leaves, as leaves
  ``H(0x00 || "ticketflow/head/1" || frame(originator_id) || u64(version) || hash)``
  of an RFC 6962 tree (an odd last node carried up). A stream's head entry with its proof
  shows its last version. The leaves' order is the checkpoint's ``format``'s:

  - format 1: the streams sorted by originator id;
  - format 2: the streams in the order of their first events in the log (leaf ordinal).
    A new stream's leaf is appended and a moved head changes one path, so the sealer
    updates the tree in O(log n) per change; sorted by id, a new stream shifted every
    leaf after it and each checkpoint re-hashed O(streams) nodes.

* **Checkpoint**: ``body`` is compact JSON (sorted keys) with ``format`` (1 or 2, see the heads tree),
  ``tree_size``, ``root`` (hex), ``heads_root`` (hex), ``heads_count``, ``time``
  (ISO-8601 UTC), ``key_id`` and optionally ``next_key`` ``{key_id, public_key}``
  announcing the key that signs the following checkpoints. The signature is
  Ed25519 over ``"ticketflow/checkpoint/1\\n" || body`` by the key named by ``key_id``;
  ``key_id`` = first 16 hex digits of ``H(raw public key)``.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

#: The format the sealer writes; a verifier reads every format of :data:`FORMATS` (and refuses others).
FORMAT = 2
FORMATS = (1, 2)
EMPTY_ROOT = hashlib.sha256(b"").digest()
CHECKPOINT_CONTEXT = b"ticketflow/checkpoint/1\n"
_sha = hashlib.sha256
_u32 = struct.Struct(">I").pack
_u64 = struct.Struct(">Q").pack


def _frame(data: bytes) -> bytes:
    return _u32(len(data)) + data


def genesis(originator_id: str) -> bytes:
    return _sha(b"ticketflow/genesis/1" + _frame(originator_id.encode())).digest()


def event_hash(originator_id: str, version: int, topic: str, state: bytes, previous: bytes) -> bytes:
    """The chained hash of one stored event (see the module docstring)."""
    oid = originator_id.encode()
    top = topic.encode()
    return _sha(
        b"ticketflow/event/1" + _u32(len(oid)) + oid + _u64(version) + _u32(len(top)) + top
        + _u64(len(state)) + state + previous
    ).digest()


class EventHasher:
    """:func:`event_hash` with the framed id and topic prefixes cached (streams and topics repeat)."""

    def __init__(self) -> None:
        self._ids: dict[str, bytes] = {}
        self._topics: dict[str, bytes] = {}

    def __call__(self, originator_id: str, version: int, topic: str, state: bytes, previous: bytes) -> bytes:
        head = self._ids.get(originator_id)
        if head is None:
            oid = originator_id.encode()
            head = self._ids[originator_id] = b"ticketflow/event/1" + _u32(len(oid)) + oid
        framed = self._topics.get(topic)
        if framed is None:
            top = topic.encode()
            framed = self._topics[topic] = _u32(len(top)) + top
        return _sha(head + _u64(version) + framed + _u64(len(state)) + state + previous).digest()


def leaf(h: bytes) -> bytes:
    return _sha(b"\x00" + h).digest()


def node(left: bytes, right: bytes) -> bytes:
    return _sha(b"\x01" + left + right).digest()


def head_leaf(originator_id: str, version: int, h: bytes) -> bytes:
    return _sha(b"\x00ticketflow/head/1" + _frame(originator_id.encode()) + _u64(version) + h).digest()


class Frontier:
    """The right edge of a growing tree: O(log n) state, appends in O(1) amortised."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        self.size = size
        self.hashes = list(hashes)  # roots of the perfect subtrees, largest first

    def append(self, leaf_hash: bytes) -> None:
        self.hashes.append(leaf_hash)
        self.size += 1
        n = self.size
        while n % 2 == 0:  # merge equal-sized subtrees
            right = self.hashes.pop()
            self.hashes[-1] = node(self.hashes[-1], right)
            n //= 2

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        h = self.hashes[-1]
        for left in reversed(self.hashes[:-1]):
            h = node(left, h)
        return h

    def dump(self) -> str:
        return "".join(h.hex() for h in self.hashes)

    @classmethod
    def load(cls, size: int, text: str) -> Frontier:
        return cls(size, [bytes.fromhex(text[i:i + 64]) for i in range(0, len(text), 64)])


def tree_levels(leaves: Sequence[bytes]) -> list[list[bytes]]:
    """All levels of the tree over ``leaves`` (leaf hashes); an odd last node is carried up."""
    levels = [list(leaves)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        above = [node(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        if len(below) % 2:
            above.append(below[-1])
        levels.append(above)
    return levels


def root_of(levels: list[list[bytes]]) -> bytes:
    return levels[-1][0] if levels[0] else EMPTY_ROOT


def inclusion_proof(levels: list[list[bytes]], index: int) -> list[bytes]:
    proof = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            proof.append(level[sibling])
        index //= 2
    return proof


def root_from_proof(index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]) -> bytes | None:
    """RFC 9162 section 2.1.3.2: the root the proof leads to, or None when malformed."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return None
        if fn % 2 == 1 or fn == sn:
            r = node(p, r)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def heads_levels(heads: dict[str, tuple[int, bytes]], *, format: int) -> tuple[list[str], list[list[bytes]]]:
    """The heads tree of a checkpoint of ``format``: its streams' ids in leaf order, and its levels.
    ``heads`` must hold the streams in the order of their first events in the log (as a dict filled
    walking the log does); format 1 sorts them by id. A format not in :data:`FORMATS` is a ValueError."""
    if format not in FORMATS:
        raise ValueError(f"checkpoint format {format!r} is not one of {FORMATS}")
    ids = sorted(heads) if format == 1 else list(heads)
    return ids, tree_levels([head_leaf(i, *heads[i]) for i in ids])


def checkpoint_format(fields: dict[str, Any]) -> int:
    """A checkpoint's format (1 when its body names none: the first checkpoints named it)."""
    value = fields.get("format", 1)
    return value if type(value) is int else -1


# ---------------------------------------------------------------------- keys and checkpoints
def key_id(public_raw: bytes) -> str:
    return _sha(public_raw).hexdigest()[:16]


def fingerprint(public_raw: bytes) -> str:
    """What an auditor is handed out of band: ``SHA256:`` and the hex SHA-256 of the raw public key."""
    return "SHA256:" + _sha(public_raw).hexdigest()


def normalise_fingerprint(text: str) -> str:
    """``SHA256:<64 hex>`` from what a person may type (case, spaces, colons, no prefix)."""
    raw = text.strip()
    if raw.upper().startswith("SHA256:"):
        raw = raw[7:]
    raw = raw.replace(":", "").replace(" ", "").lower()
    if len(raw) != 64 or any(c not in "0123456789abcdef" for c in raw):
        raise ValueError(f"{text!r} is not a key fingerprint (SHA256: and 64 hex digits)")
    return "SHA256:" + raw


def public_raw(private: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization as ser

    return private.public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)


def checkpoint_body(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def sign(private: Ed25519PrivateKey, body: bytes) -> bytes:
    return private.sign(CHECKPOINT_CONTEXT + body)


def signature_ok(public_hex: str, body: bytes, signature: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex)).verify(signature, CHECKPOINT_CONTEXT + body)
    except (InvalidSignature, ValueError):
        return False
    return True


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    body: bytes
    signature: bytes

    @property
    def fields(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


def check_signatures(checkpoints: Iterable[Checkpoint], keys: dict[str, str], trusted: str | None) -> str | None:
    """Walk the checkpoints in order: each must be signed by the key in force, which starts as
    the first checkpoint's key (or ``trusted``) and changes only when announced by its predecessor.
    Returns the first problem, or None."""
    current = trusted
    for cp in checkpoints:
        where = f"checkpoint #{cp.seq}"
        try:
            fields = cp.fields
        except ValueError:
            return f"{where}: body is not JSON"
        kid = fields.get("key_id")
        if current is None:
            current = kid
        if kid != current:
            return f"{where}: signed by key {kid}, but the key in force is {current} (unannounced key)"
        public = keys.get(str(kid))
        if public is None or key_id(bytes.fromhex(public)) != kid:
            return f"{where}: public key {kid} missing from the key history or not matching its id"
        if not signature_ok(public, cp.body, cp.signature):
            return f"{where}: bad signature by key {kid}"
        if checkpoint_format(fields) not in FORMATS:
            return (f"{where}: format {fields.get('format')!r}, which this verifier does not read (it reads"
                    f" {', '.join(map(str, FORMATS))}; a newer ticketflow-verify may)")
        announced = fields.get("next_key")
        if announced:
            if key_id(bytes.fromhex(announced["public_key"])) != announced["key_id"]:
                return f"{where}: announced key does not match its id"
            keys.setdefault(announced["key_id"], announced["public_key"])
            if keys[announced["key_id"]] != announced["public_key"]:
                return f"{where}: announced key {announced['key_id']} differs from the key history"
            current = announced["key_id"]
    return None
