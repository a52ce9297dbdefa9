"""The sealer follows the log exactly once, checkpoints on schedule, rotates keys; encryption is covered."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from eventsourcing.cryptography import AESCipher

from projections.integrity.export import export
from projections.integrity.sealer import Sealer, SealView
from projections.integrity.verifier import verify_store
from ticketflow.clock import FakeClock
from ticketflow.commands import AddNote
from ticketflow.config import Settings
from ticketflow.errors import TicketflowError
from ticketflow_verify.bundle import verify_export
from tests.integrity.conftest import Ticking, make_sealed
from tests.integrity.support import AGENT, Sealed, event_at, set_state


def sizes(sealed: Sealed) -> list[int]:
    rows = sealed.sealer.read(lambda db: db.all("SELECT tree_size FROM {p}integrity_checkpoints ORDER BY seq"))
    return [int(r["tree_size"]) for r in rows]


def test_checkpoints_come_every_n_events_and_cover_the_whole_log(sealed: Sealed) -> None:
    total = sealed.desk.log_position()
    assert sizes(sealed) == [*range(5, total + 1, 5)] + ([total] if total % 5 else [])
    assert sealed.sealer.position() == total


def test_a_checkpoint_comes_after_t_seconds_even_below_n_events(sealed: Sealed) -> None:
    clock = Ticking()
    sealer = Sealer(sealed.desk, every_events=1000, every_seconds=30, keys=sealed.sealer.keys, now=clock,
                    store=sealed.sealer.store)
    sealed.desk.add_note(AddNote(ticket_id=sealed.tickets[0], body="late"), AGENT)
    before = sizes(sealed)
    sealer.step()
    assert sizes(sealed) == before  # sealed, but not yet due
    clock.now += timedelta(minutes=1)
    sealer.step()
    assert sizes(sealed) == before + [sealed.desk.log_position()]


def test_two_sealers_never_seal_an_event_twice(sealed: Sealed) -> None:
    other = Sealer(sealed.desk, every_events=5, keys=sealed.sealer.keys, now=Ticking())
    for _ in range(7):
        sealed.desk.add_note(AddNote(ticket_id=sealed.tickets[2], body="more"), AGENT)
    other.step(limit=3)
    sealed.sealer.catch_up()
    other.catch_up()
    other.close()
    report = verify_store(sealed.desk, sealed.sealer.store, snapshots=False)
    assert report.ok, report.problems
    assert report.sealed == sealed.desk.log_position()


def test_new_events_are_reported_unsealed_not_tampered(sealed: Sealed) -> None:
    sealed.desk.add_note(AddNote(ticket_id=sealed.tickets[0], body="not sealed yet"), AGENT)
    report = verify_store(sealed.desk, sealed.sealer.store)
    assert report.ok and report.unsealed == 1


def test_the_sealed_log_cannot_be_reset_like_a_view(sealed: Sealed) -> None:
    with pytest.raises(TicketflowError, match="cannot be reset"):
        sealed.sealer.store.reset(sealed.desk.name)
    assert verify_store(sealed.desk, sealed.sealer.store).ok
    from projections.readside import VIEWS

    assert SealView.name not in VIEWS  # ``ticketflow rebuild`` never touches it


def test_a_rotated_key_is_announced_by_the_old_one_and_exports_carry_both(sealed: Sealed, tmp_path: Path) -> None:
    old = sealed.sealer.keys.current()[0]
    new = sealed.sealer.rotate_key()
    sealed.desk.add_note(AddNote(ticket_id=sealed.tickets[0], body="after rotation"), AGENT)
    sealed.sealer.catch_up(checkpoint=True)
    keys = sealed.sealer.read(lambda db: [r["key_id"] for r in db.all("SELECT key_id FROM {p}integrity_keys")])
    assert {old, new} <= set(keys) and new != old
    assert verify_store(sealed.desk, sealed.sealer.store, trusted_key=old).ok
    export(sealed.desk, sealed.sealer.store, tmp_path / "x", ticket=sealed.tickets[0])
    assert verify_export(tmp_path / "x", trusted_key=old) == []


def test_a_key_switched_without_announcement_is_refused(sealed: Sealed) -> None:
    ring = sealed.sealer.keys
    ring.make_current(ring.generate())  # an intruder's key, never announced
    sealed.desk.add_note(AddNote(ticket_id=sealed.tickets[0], body="x"), AGENT)
    sealed.sealer.catch_up(checkpoint=True)
    problem = verify_store(sealed.desk, sealed.sealer.store).problems[0]
    assert problem.startswith(f"checkpoint #{len(sizes(sealed))}: signed by key") and "unannounced key" in problem


def test_swapping_encrypted_states_between_events_names_the_first(tmp_path: Path, clock: FakeClock) -> None:
    env = {"CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher", "CIPHER_KEY": AESCipher.create_key(16)}
    sealed = make_sealed(Settings(data_dir=tmp_path / "data"), tmp_path, clock, env)
    try:
        rows = sealed.sealer.read(lambda db: db.all(
            "SELECT position FROM {p}integrity_events WHERE originator_id = ? ORDER BY version", (str(sealed.tickets[0]),)))
        a, b = int(rows[1]["position"]), int(rows[3]["position"])
        state_a, state_b = bytes(event_at(sealed.desk, a)["state"]), bytes(event_at(sealed.desk, b)["state"])
        assert b"note" not in state_a  # really encrypted
        set_state(sealed.desk, a, state_b)
        set_state(sealed.desk, b, state_a)
        problems = verify_store(sealed.desk, sealed.sealer.store, snapshots=False).problems
        assert problems[0] == f"event at position {a} ({sealed.tickets[0]} v2): stored bytes do not match the sealed hash"
        assert f"event at position {b} ({sealed.tickets[0]} v4): stored bytes do not match the sealed hash" in problems
    finally:
        sealed.sealer.close()
        sealed.desk.close()


def test_a_rotation_interrupted_after_its_announcement_is_finished_by_the_next_checkpoint(sealed: Sealed) -> None:
    new = sealed.sealer.keys.generate()
    sealed.sealer.checkpoint(force=True, next_key=new)  # announced; the process dies before switching
    sealed.desk.add_note(AddNote(ticket_id=sealed.tickets[0], body="after the crash"), AGENT)
    sealed.sealer.catch_up(checkpoint=True)
    assert sealed.sealer.keys.current()[0] == new
    assert verify_store(sealed.desk, sealed.sealer.store).ok


def test_the_embedded_sealer_follows_the_desks_saves(sealed: Sealed) -> None:
    sealed.sealer.start(poll_seconds=0.05)
    try:
        for i in range(3):
            sealed.desk.add_note(AddNote(ticket_id=sealed.tickets[1], body=f"live {i}"), AGENT)
        target = sealed.desk.log_position()
        deadline = time.monotonic() + 10
        while sealed.sealer.position() < target and time.monotonic() < deadline:
            time.sleep(0.02)  # bounded wait on the sealer's tracking position
        assert sealed.sealer.position() == target
    finally:
        sealed.sealer.stop()
    sealed.sealer.checkpoint(force=False)
    assert verify_store(sealed.desk, sealed.sealer.store).ok


def test_the_heads_root_kept_between_checkpoints_equals_the_verifiers_recomputation(sealed: Sealed) -> None:
    """Only the heads that moved are hashed again; new streams, moved heads and a reloaded state that
    lost a stream all give the root ``heads_levels`` gives from scratch."""
    from ticketflow_verify.chain import heads_levels, root_of

    sealer = sealed.sealer
    heads = {f"stream-{n:03d}": (1, bytes([n]) * 32) for n in range(40)}

    def from_scratch() -> bytes:
        return root_of(heads_levels(heads)[1])

    assert sealer._heads_root(heads) == from_scratch()
    heads["stream-007"] = (2, b"\x07" * 31 + b"\x08")  # a head moved
    heads["stream-000a"] = (1, b"\xaa" * 32)  # a new stream, sorted in between
    heads["工单-新"] = (1, b"\xbb" * 32)  # a new stream, sorted last
    assert sealer._heads_root(heads) == from_scratch()
    del heads["stream-013"]  # state reloaded without a stream this sealer had hashed
    assert sealer._heads_root(heads) == from_scratch()
    assert sealer._heads_root({}) == root_of(heads_levels({})[1])


def test_a_heads_root_that_failed_half_way_is_recomputed_whole_by_the_next_checkpoint(
    sealed: Sealed, monkeypatch: pytest.MonkeyPatch
) -> None:
    from projections.integrity import sealer as sealer_module
    from ticketflow_verify.chain import head_leaf, heads_levels, root_of

    sealer = sealed.sealer
    heads = {f"stream-{n:03d}": (1, bytes([n]) * 32) for n in range(10)}
    sealer._heads_root(heads)
    for n in range(10, 20):
        heads[f"stream-{n:03d}"] = (1, bytes([n]) * 32)
    calls = []

    def failing(*args: object) -> bytes:
        calls.append(args)
        if len(calls) == 5:
            raise MemoryError("half way")
        return head_leaf(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(sealer_module, "head_leaf", failing)
    with pytest.raises(MemoryError):
        sealer._heads_root(heads)
    monkeypatch.setattr(sealer_module, "head_leaf", head_leaf)
    assert sealer._heads_root(heads) == root_of(heads_levels(heads)[1])
