"""What proves a record: the checkpoint that covers its sealed events, the key that signed it, and the
head of its hash chain — read from the sealer's tables, for the console's auditor pages.

Reading this proves nothing by itself (the database could lie); the proof is checked by
:func:`projections.integrity.verifier.verify_store`, which exports the record and verifies it offline
the way ``ticketflow-verify`` does.
"""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from ticketflow_verify.chain import Checkpoint, fingerprint

from projections.integrity.export import export, export_fingerprints
from projections.integrity.sealer import load_checkpoints, load_keys, open_seal_store
from projections.sql import Db
from ticketflow.application import TicketDesk


@dataclass(frozen=True)
class SignedCheckpoint:
    seq: int
    tree_size: int
    root: str
    time: str
    key_id: str
    fingerprint: str | None  # None: the key is not in the key history (verification names that)
    signature: str

    @classmethod
    def of(cls, checkpoint: Checkpoint, keys: dict[str, str]) -> SignedCheckpoint:
        fields = checkpoint.fields
        public = keys.get(str(fields.get("key_id")))
        return cls(checkpoint.seq, int(fields["tree_size"]), str(fields.get("root", "")), str(fields.get("time", "")),
                   str(fields.get("key_id", "")), fingerprint(bytes.fromhex(public)) if public else None,
                   checkpoint.signature.hex())


@dataclass(frozen=True)
class RecordProof:
    """How much of one object's history is sealed, and the checkpoint an export of it is proven against."""

    versions: int  # the object's events in the log
    sealed: int  # of them, hashed into the log tree
    covered: int  # of them, under the latest checkpoint
    head: str | None  # the hash of the newest sealed event (the head of its chain)
    checkpoint: SignedCheckpoint | None  # the latest checkpoint (None: nothing signed yet)
    log_checkpoints: int


def _stream(db: Db, object_id: str) -> list[dict[str, Any]]:
    return db.all("SELECT ordinal, version, hash FROM {p}integrity_events WHERE originator_id = ? ORDER BY version",
                  (object_id,))


def record_proof(desk: TicketDesk, object_id: UUID) -> RecordProof:
    versions = len(desk.recorder.select_events(object_id))
    store = open_seal_store(desk)
    try:
        rows, checkpoints, keys = store.read(lambda db: (_stream(db, str(object_id)), load_checkpoints(db), load_keys(db)))
    finally:
        store.datastore.close()  # type: ignore[attr-defined]
    latest = SignedCheckpoint.of(checkpoints[-1], keys) if checkpoints else None
    covered = sum(1 for r in rows if latest is not None and int(r["ordinal"]) < latest.tree_size)
    return RecordProof(versions, len(rows), covered, rows[-1]["hash"] if rows else None, latest, len(checkpoints))


def log_checkpoints(desk: TicketDesk, limit: int = 20) -> tuple[int, list[SignedCheckpoint]]:
    """The number of sealed events, and the newest ``limit`` checkpoints (newest first)."""
    store = open_seal_store(desk)
    try:
        sealed, checkpoints, keys = store.read(lambda db: (
            int(db.scalar("SELECT COUNT(*) FROM {p}integrity_events") or 0), load_checkpoints(db), load_keys(db)))
    finally:
        store.datastore.close()  # type: ignore[attr-defined]
    return sealed, [SignedCheckpoint.of(cp, keys) for cp in reversed(checkpoints[-limit:])]


def export_zip(
    desk: TicketDesk, object_id: UUID | None = None, since: datetime | None = None, until: datetime | None = None,
) -> Iterator[bytes]:
    """An audit export (the files ``ticketflow audit export`` writes) as a zip, streamed in chunks; the
    auditor unpacks it and runs ``ticketflow-verify DIR --key <fingerprint>``. ValidationFailed (before
    the first chunk) when nothing is sealed yet."""
    scratch = Path(tempfile.mkdtemp(prefix="ticketflow-export-"))
    try:  # an unlinked file lives while open: a download never started leaves nothing behind
        store = open_seal_store(desk)
        try:
            export(desk, store, scratch / "export", object_id, since, until)
        finally:
            store.datastore.close()  # type: ignore[attr-defined]
        signers = export_fingerprints(scratch / "export")
        archive = scratch / "export.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as packed:
            for path in sorted((scratch / "export").iterdir()):
                packed.write(path, f"ticketflow-export/{path.name}")
            packed.writestr("ticketflow-export/HOW-TO-VERIFY.txt", (
                "Unpack, then check this export without the desk's database, with ticketflow-verify 0.2 or later\n"
                "(pip install 'ticketflow-verify>=0.2'; 0.1 does not read checkpoint format 2):\n\n"
                f"    ticketflow-verify ticketflow-export --key {signers[-1] if signers else '<fingerprint>'}\n\n"
                "Take the key fingerprint from the desk by another channel than this file.\n"))
        opened = archive.open("rb")  # read from the open file: the directory can go at once
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    def chunks() -> Iterator[bytes]:
        with opened:
            while block := opened.read(1 << 16):
                yield block

    return chunks()
