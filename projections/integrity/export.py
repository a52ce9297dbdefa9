"""``ticketflow audit export DIR``: a self-contained, offline-verifiable copy of (part of) the log.

The layout is documented in :mod:`ticketflow_verify.bundle`; events are proven against the
latest signed checkpoint, so seal first (``ticketflow audit seal``) to include recent events.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from projections.integrity.sealer import load_checkpoints, load_keys
from projections.sql import Db
from projections.view import ViewStore
from ticketflow.application import TicketDesk
from ticketflow.errors import ValidationFailed
from ticketflow_verify.bundle import FILES
from ticketflow_verify.bundle import load_checkpoints as load_bundle_checkpoints
from ticketflow_verify.chain import FORMATS, checkpoint_format, fingerprint, genesis, heads_levels, inclusion_proof, leaf, tree_levels

PAGE = 10_000


def _sealed_dicts(store: ViewStore, after: int = 0, upto_ordinal: int | None = None) -> Iterator[dict[str, Any]]:
    """The sealed hashes in log order, a page at a time."""
    limit = upto_ordinal if upto_ordinal is not None else 1 << 62
    while True:
        rows = store.read(lambda db, a=after: db.all(
            "SELECT position, ordinal, originator_id, version, hash FROM {p}integrity_events"
            " WHERE position > ? AND ordinal < ? ORDER BY position LIMIT ?", (a, limit, PAGE)))
        if not rows:
            return
        yield from rows
        after = int(rows[-1]["position"])


def export(
    desk: TicketDesk, store: ViewStore, directory: Path, ticket: UUID | None = None,
    since: datetime | None = None, until: datetime | None = None,
) -> dict[str, Any]:
    """Write the export; returns its manifest."""
    checkpoints = store.read(load_checkpoints)
    if not checkpoints:
        raise ValidationFailed("nothing sealed yet: run `ticketflow audit seal` first")
    target = checkpoints[-1]
    size = int(target.fields["tree_size"])
    complete = ticket is None and since is None and until is None
    directory.mkdir(parents=True, exist_ok=True)
    if any((directory / name).exists() for name in (*FILES, "manifest.json")):
        raise ValidationFailed(f"{directory} already holds an export: choose an empty directory")
    levels = None if complete else tree_levels(
        [leaf(bytes.fromhex(r["hash"])) for r in _leaf_rows(store, size)]
    )
    count = 0
    heads: dict[str, str] = {}
    with (directory / "events.ndjson").open("w", encoding="utf-8") as out:
        for row, stored in _events(desk, store, size, ticket):
            oid = row["originator_id"]
            previous = heads.get(oid) or genesis(oid).hex()
            heads[oid] = row["hash"]
            if since or until:
                when = desk.mapper.to_domain_event(stored).timestamp
                if (since and when < since) or (until and when >= until):
                    continue
            line: dict[str, Any] = {
                "position": int(row["position"]), "ordinal": int(row["ordinal"]), "originator_id": oid,
                "version": int(row["version"]), "topic": stored.topic,
                "state": base64.b64encode(bytes(stored.state)).decode(), "previous": previous, "hash": row["hash"],
            }
            if levels is not None:
                line["proof"] = [p.hex() for p in inclusion_proof(levels, int(row["ordinal"]))]
            out.write(json.dumps(line, separators=(",", ":")) + "\n")
            count += 1
    with (directory / "checkpoints.ndjson").open("w", encoding="utf-8") as out:
        for cp in checkpoints:
            out.write(json.dumps({"seq": cp.seq, "body": cp.body.decode(), "signature": cp.signature.hex()}) + "\n")
    keys = store.read(load_keys)
    (directory / "keys.json").write_text(json.dumps([{"key_id": k, "public_key": v} for k, v in keys.items()], indent=1))
    if ticket is not None and not (since or until):
        format_ = checkpoint_format(target.fields)
        if format_ not in FORMATS:
            raise ValidationFailed(
                f"checkpoint #{target.seq} is of format {target.fields.get('format')!r}, which this version of"
                " ticketflow does not write: export with the version that sealed it"
            )
        _write_heads(store, directory, size, str(ticket), format_)
    manifest = {
        "format": 1, "scope": {"ticket": str(ticket) if ticket else None, "from": since.isoformat() if since else None,
                               "to": until.isoformat() if until else None},
        "complete_log": complete, "checkpoint": target.seq, "tree_size": size, "events": count,
        "files": {n: hashlib.sha256((directory / n).read_bytes()).hexdigest() for n in FILES if (directory / n).exists()},
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def _leaf_rows(store: ViewStore, size: int) -> list[dict[str, Any]]:
    return store.read(lambda db: db.all("SELECT hash FROM {p}integrity_events WHERE ordinal < ? ORDER BY ordinal", (size,)))


def _events(desk: TicketDesk, store: ViewStore, size: int, ticket: UUID | None) -> Iterator[tuple[dict[str, Any], Any]]:
    """Sealed rows with their stored events, in log order, up to the checkpoint."""
    if ticket is not None:
        rows = store.read(lambda db: db.all(
            "SELECT position, ordinal, originator_id, version, hash FROM {p}integrity_events"
            " WHERE originator_id = ? AND ordinal < ? ORDER BY position", (str(ticket), size)))
        if not rows:
            raise ValidationFailed(f"no sealed events for {ticket}")
        stored = {s.originator_version: s for s in desk.recorder.select_events(ticket)}
        for row in rows:
            event = stored.get(int(row["version"]))
            if event is None:
                raise ValidationFailed(f"sealed event {ticket} v{row['version']} is missing from the event store")
            yield row, event
        return
    rows = _sealed_dicts(store, 0, size)
    row = next(rows, None)
    start = 1
    while row is not None:
        notifications = desk.recorder.select_notifications(start, PAGE)
        if not notifications:
            raise ValidationFailed(f"sealed event at position {row['position']} is missing from the event store")
        for n in notifications:
            if row is None:
                return
            if n.id == int(row["position"]):
                yield row, n
                row = next(rows, None)
        start = notifications[-1].id + 1


def _write_heads(store: ViewStore, directory: Path, size: int, stream: str, format: int) -> None:
    def query(db: Db) -> list[dict[str, Any]]:
        return db.all(
            "SELECT e.originator_id, e.version, e.hash FROM {p}integrity_events e JOIN"
            " (SELECT originator_id, MIN(ordinal) AS first, MAX(ordinal) AS last FROM {p}integrity_events"
            " WHERE ordinal < ? GROUP BY originator_id) m ON e.ordinal = m.last ORDER BY m.first", (size,))
    # The streams in the order of their first events (format 2's leaf order; format 1 sorts them).
    heads = {r["originator_id"]: (int(r["version"]), bytes.fromhex(r["hash"])) for r in store.read(query)}
    ids, levels = heads_levels(heads, format=format)
    index = ids.index(stream)
    version, h = heads[stream]
    entry = {"originator_id": stream, "version": version, "hash": h.hex(), "index": index,
             "proof": [p.hex() for p in inclusion_proof(levels, index)]}
    (directory / "heads.ndjson").write_text(json.dumps(entry) + "\n")


def export_fingerprints(directory: Path) -> list[str]:
    """The fingerprints of the keys that signed an export's checkpoints, oldest first."""
    keys = {k["key_id"]: k["public_key"] for k in json.loads((directory / "keys.json").read_text(encoding="utf-8"))}
    used: list[str] = []
    for cp in load_bundle_checkpoints(directory):
        kid = cp.fields.get("key_id")
        if kid in keys and (f := fingerprint(bytes.fromhex(keys[kid]))) not in used:
            used.append(f)
    return used
