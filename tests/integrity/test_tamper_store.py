"""Every tampering of the stored log, its snapshots or its checkpoints is found, at the right place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from projections.integrity.verifier import verify_store
from ticketflow_verify.chain import checkpoint_body, key_id, public_raw, sign
from tests.integrity.support import Sealed, event_at, flip, oid, raw, sealed_db, set_state


def first(sealed: Sealed, **kwargs: Any) -> str:
    report = verify_store(sealed.desk, sealed.sealer.store, **kwargs)
    assert not report.ok, "tampering went unnoticed"
    return report.problems[0]


def ticket_positions(sealed: Sealed, n: int = 0) -> list[int]:
    rows = sealed.sealer.read(lambda db: db.all(
        "SELECT position FROM {p}integrity_events WHERE originator_id = ? ORDER BY version", (str(sealed.tickets[n]),)))
    return [int(r["position"]) for r in rows]


def test_an_untouched_store_verifies(sealed: Sealed, tmp_path: Path) -> None:
    report = verify_store(sealed.desk, sealed.sealer.store, anchor=tmp_path / "anchor.ndjson")
    assert report.ok, report.problems
    assert report.sealed == report.events == sealed.desk.log_position()
    assert report.checkpoints >= 3 and report.snapshots > 0


def test_changing_one_byte_of_an_event_names_that_event(sealed: Sealed) -> None:
    position = ticket_positions(sealed)[2]
    set_state(sealed.desk, position, flip(bytes(event_at(sealed.desk, position)["state"])))
    assert first(sealed).startswith(f"event at position {position} ({sealed.tickets[0]} v3): stored bytes do not match")


def test_changing_one_byte_of_a_snapshot_names_the_snapshot(sealed: Sealed) -> None:
    recorder = sealed.desk.snapshots.recorder  # type: ignore[union-attr]
    ticket = sealed.tickets[1]
    row = raw(recorder, "SELECT originator_version, state FROM {t} WHERE originator_id = ? ORDER BY originator_version",
              (oid(sealed.desk, ticket),))[0]
    state = bytes(row["state"])
    # inside a value (a sealed field's ciphertext, or a message body): the JSON stays well-formed
    at = state.index(b'"c":"') + 12 if b'"c":"' in state else state.index(b"note") + 1
    raw(recorder, "UPDATE {t} SET state = ? WHERE originator_id = ? AND originator_version = ?",
        (flip(state, at), oid(sealed.desk, ticket), row["originator_version"]))
    assert first(sealed).startswith(f"snapshot of {ticket} at v{row['originator_version']}: ")


def test_deleting_an_event_names_it(sealed: Sealed) -> None:
    position = ticket_positions(sealed)[1]
    raw(sealed.desk.recorder, "DELETE FROM {t} WHERE notification_id = ?", (position,))
    assert first(sealed, snapshots=False) == (
        f"sealed event at position {position} ({sealed.tickets[0]} v2) is missing from the log (deleted)"
    )


def test_reordering_two_events_names_the_first_moved(sealed: Sealed) -> None:
    a, b = ticket_positions(sealed, 0)[1], ticket_positions(sealed, 1)[1]
    parking = 10_000_000
    raw(sealed.desk.recorder, "UPDATE {t} SET notification_id = ? WHERE notification_id = ?", (parking, a))
    raw(sealed.desk.recorder, "UPDATE {t} SET notification_id = ? WHERE notification_id = ?", (a, b))
    raw(sealed.desk.recorder, "UPDATE {t} SET notification_id = ? WHERE notification_id = ?", (b, parking))
    assert first(sealed, snapshots=False).startswith(
        f"event at position {a} ({sealed.tickets[1]} v2): the sealed log has {sealed.tickets[0]} v2 at this position"
    )


def test_inserting_an_event_in_the_middle_names_it(sealed: Sealed) -> None:
    position = ticket_positions(sealed)[1]
    forged = event_at(sealed.desk, position)
    table_shift = 10_000_000
    # make room after ``position`` (two steps: the key must stay unique), then slip a forged event in
    raw(sealed.desk.recorder, "UPDATE {t} SET notification_id = notification_id + ? WHERE notification_id > ?", (table_shift, position))
    raw(sealed.desk.recorder, "UPDATE {t} SET notification_id = notification_id - ? WHERE notification_id > ?", (table_shift - 1, table_shift))
    other = "00000000-0000-4000-8000-000000000001"
    raw(sealed.desk.recorder, "INSERT INTO {t} (notification_id, originator_id, originator_version, topic, state) VALUES (?, ?, 1, ?, ?)",
        (position + 1, oid(sealed.desk, UUID(other)), forged["topic"], bytes(forged["state"])))
    assert first(sealed, snapshots=False) == (
        f"event at position {position + 1} ({other} v1) is not in the sealed log (inserted after sealing)"
    )


def test_truncating_the_tail_is_found(sealed: Sealed) -> None:
    last = sealed.desk.log_position()
    raw(sealed.desk.recorder, "DELETE FROM {t} WHERE notification_id > ?", (last - 2,))
    assert first(sealed, snapshots=False).startswith(f"sealed event at position {last - 1} ")
    assert "missing from the log (truncated)" in first(sealed, snapshots=False)


def test_rewriting_an_event_and_its_sealed_hash_is_caught_by_the_signed_root(sealed: Sealed) -> None:
    from ticketflow_verify.chain import event_hash, genesis

    position = ticket_positions(sealed)[0]  # v1: previous is the genesis
    row = event_at(sealed.desk, position)
    state = flip(bytes(row["state"]))
    set_state(sealed.desk, position, state)
    h = event_hash(str(sealed.tickets[0]), 1, row["topic"], state, genesis(str(sealed.tickets[0])))
    sealed_db(sealed.sealer, "UPDATE {p}integrity_events SET hash = ? WHERE position = ?", (h.hex(), position))
    problem = first(sealed, snapshots=False)
    assert problem.startswith("event at position") or problem.startswith("checkpoint #")
    report = verify_store(sealed.desk, sealed.sealer.store, snapshots=False)
    assert any(p.startswith("checkpoint #") and "signed root does not match" in p for p in report.problems)


def _checkpoint(sealed: Sealed, seq: int) -> dict[str, Any]:
    return sealed.sealer.read(lambda db: db.one("SELECT body, signature FROM {p}integrity_checkpoints WHERE seq = ?", (seq,)))


def test_replacing_a_checkpoint_is_found(sealed: Sealed) -> None:
    body = json.loads(_checkpoint(sealed, 2)["body"])
    body["root"] = "00" * 32
    sealed_db(sealed.sealer, "UPDATE {p}integrity_checkpoints SET body = ? WHERE seq = 2", (checkpoint_body(body).decode(),))
    assert first(sealed, snapshots=False).startswith("checkpoint #2: bad signature")


def test_a_checkpoint_signed_by_an_unannounced_key_is_found(sealed: Sealed, tmp_path: Path) -> None:
    intruder = Ed25519PrivateKey.generate()
    body = json.loads(_checkpoint(sealed, 2)["body"])
    body["key_id"] = key_id(public_raw(intruder))
    text = checkpoint_body(body)
    sealed_db(sealed.sealer, "INSERT INTO {p}integrity_keys (key_id, public_key) VALUES (?, ?)",
              (body["key_id"], public_raw(intruder).hex()))
    sealed_db(sealed.sealer, "UPDATE {p}integrity_checkpoints SET body = ?, signature = ? WHERE seq = 2",
              (text.decode(), sign(intruder, text).hex()))
    assert "unannounced key" in first(sealed, snapshots=False)
    assert first(sealed, snapshots=False, anchor=tmp_path / "anchor.ndjson")


def test_the_anchor_file_exposes_a_rewritten_checkpoint_history(sealed: Sealed, tmp_path: Path) -> None:
    sealed_db(sealed.sealer, "DELETE FROM {p}integrity_checkpoints WHERE seq > 1")
    report = verify_store(sealed.desk, sealed.sealer.store, anchor=tmp_path / "anchor.ndjson", snapshots=False)
    assert report.problems == [
        f"ROLLBACK: the database's checkpoints end at #1, older than checkpoint #2 in anchor {tmp_path / 'anchor.ndjson'}"]


def test_swapping_encrypted_fields_between_two_events_names_the_first(sealed: Sealed) -> None:
    import re

    a, b = ticket_positions(sealed)[1], ticket_positions(sealed)[2]
    state_a, state_b = bytes(event_at(sealed.desk, a)["state"]), bytes(event_at(sealed.desk, b)["state"])
    field = re.compile(rb'"c":"[^"]*"')
    if not (field.search(state_a) and field.search(state_b)):
        pytest.skip("events carry no field-level ciphertext in this build")
    ca, cb = field.search(state_a).group(0), field.search(state_b).group(0)  # type: ignore[union-attr]
    set_state(sealed.desk, a, state_a.replace(ca, cb))
    set_state(sealed.desk, b, state_b.replace(cb, ca))
    problems = verify_store(sealed.desk, sealed.sealer.store, snapshots=False).problems
    assert problems[0] == f"event at position {a} ({sealed.tickets[0]} v2): stored bytes do not match the sealed hash"
    assert f"event at position {b} ({sealed.tickets[0]} v3): stored bytes do not match the sealed hash" in problems
