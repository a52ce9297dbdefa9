"""The erasure ledger: one line per completed erasure, kept apart from the store and its backups.

A backup taken before an erasure still holds the customer's key. Restoring it would bring their
personal data back, unless the restore re-applies every erasure made since: those it finds in the
store it replaces, and those in this ledger (``TICKETFLOW_ERASURE_LEDGER``), which survives the
loss of the store when it lives elsewhere. A line holds the customer's id, the basis, the case
reference and the time: no personal data.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from uuid import UUID

from ticketflow.errors import ValidationFailed


@dataclass(frozen=True)
class ErasureRecord:
    customer_id: UUID
    basis: str
    reference: str
    erased_at: str  # ISO 8601, UTC

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "customer_id": str(self.customer_id)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> ErasureRecord:
        data = json.loads(text)
        return cls(UUID(data["customer_id"]), str(data["basis"]), str(data["reference"]), str(data["erased_at"]))


def append(path: Path, record: ErasureRecord) -> None:
    """Add one erasure to the ledger, on disk before this returns (appends from several processes
    interleave whole lines: each is one ``write`` on a file opened for appending)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(descriptor, (record.to_json() + "\n").encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read(path: Path) -> list[ErasureRecord]:
    """Every erasure in the ledger, in the order they were made; a damaged line is an error naming it."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(ErasureRecord.from_json(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValidationFailed(f"erasure ledger {path} line {number} is not an erasure record: {exc}") from None
    return records
