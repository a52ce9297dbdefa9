"""The sealer follows the log exactly once, checkpoints on schedule, rotates keys; encryption is covered."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.cryptography import AESCipher
from ticketflow_verify.bundle import verify_export

from projections.integrity.export import export
from projections.integrity.sealer import Sealer, SealView
from projections.integrity.verifier import verify_store
from tests.integrity.conftest import Ticking, make_sealed
from tests.integrity.support import AGENT, Sealed, event_at, set_state
from tests.support import Desk
from ticketflow.clock import FakeClock
from ticketflow.commands import AddNote
from ticketflow.config import Settings, StorageKind
from ticketflow.errors import TicketflowError


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


def test_the_heads_tree_kept_between_checkpoints_equals_the_verifiers_recomputation() -> None:
    """New streams (appended, in log order) and moved heads re-hash only their paths; after every
    checkpoint (one to three sealed batches told since the last), at every size from 0 to 400 streams,
    the root is the one ``heads_levels`` computes from scratch, and so are all the levels."""
    import random

    from ticketflow_verify.chain import heads_levels, root_of

    from projections.integrity.sealer import HeadsTree

    for seed in range(6):
        rng = random.Random(seed)
        tree, heads, size = HeadsTree(), {}, 0
        assert tree.root(heads, size) == root_of(heads_levels({}, format=2)[1])
        while len(heads) < 400:
            for _ in range(rng.choice((1, 1, 2, 3))):  # sealed batches between two checkpoints
                new = [f"{rng.getrandbits(64):016x}-工单" for _ in range(rng.choice((0, 1, 1, 2, 3, 17, 40)))]
                changed = set(new)
                for oid in new:
                    heads[oid] = (1, rng.randbytes(32))
                for oid in rng.sample(sorted(heads), min(len(heads), rng.choice((0, 1, 4)))):
                    heads[oid] = (heads[oid][0] + 1, rng.randbytes(32))
                    changed.add(oid)
                events = len(new) + len(changed) + 1
                tree.moved(heads, new, changed, size, size + events)
                size += events
            assert tree.root(heads, size) == root_of(heads_levels(heads, format=2)[1]), (seed, len(heads))
            assert tree._levels == heads_levels(heads, format=2)[1]


def test_a_heads_tree_given_other_heads_untold_changes_or_left_half_way_is_built_again_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ticketflow_verify.chain import head_leaf, heads_levels, root_of

    from projections.integrity import sealer as sealer_module
    from projections.integrity.sealer import HeadsTree

    def expected(heads: dict[str, tuple[int, bytes]]) -> bytes:
        return root_of(heads_levels(heads, format=2)[1])

    tree = HeadsTree()
    heads = {f"stream-{n:03d}": (1, bytes([n]) * 32) for n in range(10)}
    tree.root(heads, 10)
    reloaded = {oid: head for oid, head in heads.items() if oid != "stream-004"}  # read again from the store
    assert tree.root(reloaded, 10) == expected(reloaded)
    reloaded["stream-007"] = (2, b"\x07" * 32)  # a batch whose change nobody told the tree (positions 10-11)
    reloaded["stream-002"] = (2, b"\x02" * 32)  # the next batch, told (11-12): the gap shows
    tree.moved(reloaded, [], {"stream-002"}, 11, 12)
    assert tree.root(reloaded, 12) == expected(reloaded)
    new = [f"stream-{n:03d}" for n in range(10, 20)]
    for oid in new:
        reloaded[oid] = (1, b"\x01" * 32)
    tree.moved(reloaded, new, set(new), 12, 22)
    calls = []

    def failing(*args: object) -> bytes:
        calls.append(args)
        if len(calls) == 5:
            raise MemoryError("half way")
        return head_leaf(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(sealer_module, "head_leaf", failing)
    with pytest.raises(MemoryError):
        tree.root(reloaded, 22)
    monkeypatch.setattr(sealer_module, "head_leaf", head_leaf)
    assert tree.root(reloaded, 22) == expected(reloaded)


def _heads_at(sealed: Sealed, size: int) -> dict[str, tuple[int, bytes]]:
    """The streams' last sealed events within the first ``size`` leaves, in the order of their first events."""
    rows = sealed.sealer.store.read(lambda db: db.all(
        "SELECT originator_id, version, hash FROM {p}integrity_events WHERE ordinal < ? ORDER BY ordinal", (size,)))
    heads: dict[str, tuple[int, bytes]] = {}
    for r in rows:
        heads[r["originator_id"]] = (int(r["version"]), bytes.fromhex(r["hash"]))
    return heads


def _resign(sealed: Sealed, change: Callable[[dict[str, Any]], None]) -> None:
    """Rewrite every checkpoint's body with ``change`` and sign it again with its key, as a sealer of
    that body would have written it."""
    from ticketflow_verify.chain import checkpoint_body, sign

    store = sealed.sealer.store
    for row in store.read(lambda db: db.all("SELECT seq, body, key_id FROM {p}integrity_checkpoints ORDER BY seq")):
        fields = json.loads(row["body"])
        change(fields)
        body = checkpoint_body(fields)
        signature = sign(sealed.sealer.keys.private(row["key_id"]), body).hex()
        store.write(lambda db, b=body, s=signature, q=row["seq"]: db.execute(
            "UPDATE {p}integrity_checkpoints SET body = ?, signature = ? WHERE seq = ?", (b.decode(), s, q)))


def test_a_store_sealed_in_format_1_still_verifies_and_new_checkpoints_are_format_2(
    sealed: Sealed, tmp_path: Path, passes: list[Any]
) -> None:
    """Checkpoints an earlier sealer signed (format 1: the heads tree sorted by id) verify in the store
    (latest and every checkpoint) and in a ticket's export; the sealer goes on in format 2, and a store
    holding both verifies."""
    from ticketflow_verify.chain import heads_levels, root_of

    desk = sealed.desk
    while list(_heads_at(sealed, desk.log_position())) == sorted(_heads_at(sealed, desk.log_position())):
        sealed.tickets.append(Desk(desk).open("another, so that first-event order is not id order"))
        sealed.sealer.catch_up(checkpoint=True)
    heads = _heads_at(sealed, desk.log_position())
    assert root_of(heads_levels(heads, format=1)[1]) != root_of(heads_levels(heads, format=2)[1])

    def as_format_1(fields: dict[str, Any]) -> None:
        fields["format"] = 1
        fields["heads_root"] = root_of(heads_levels(_heads_at(sealed, fields["tree_size"]), format=1)[1]).hex()

    _resign(sealed, as_format_1)
    for deep, workers in ((False, 1), (False, 2), (True, 1)):  # 2: the parallel pass (SQLite)
        report = verify_store(desk, sealed.sealer.store, snapshots=False, deep=deep, workers=workers)
        assert report.ok, report.problems
    if desk.settings.storage is StorageKind.SQLITE:
        assert passes and None not in passes, "the parallel pass stood down on an intact store"
    export(desk, sealed.sealer.store, tmp_path / "old", ticket=sealed.tickets[-1])
    assert verify_export(tmp_path / "old") == []
    export(desk, sealed.sealer.store, tmp_path / "old-log")  # the whole log: its heads root recomputed
    assert verify_export(tmp_path / "old-log") == []

    desk.add_note(AddNote(ticket_id=sealed.tickets[0], body="after the upgrade"), AGENT)
    sealed.sealer.catch_up(checkpoint=True)
    sealed.sealer.checkpoint(force=True)
    formats = [json.loads(r["body"])["format"] for r in sealed.sealer.read(
        lambda db: db.all("SELECT body FROM {p}integrity_checkpoints ORDER BY seq"))]
    assert formats[0] == 1 and formats[-1] == 2
    for deep, workers in ((False, 1), (False, 2), (True, 1)):
        report = verify_store(desk, sealed.sealer.store, snapshots=False, deep=deep, workers=workers)
        assert report.ok, report.problems
    if desk.settings.storage is StorageKind.SQLITE:
        assert len(passes) == 2 and None not in passes
    export(desk, sealed.sealer.store, tmp_path / "new", ticket=sealed.tickets[0])
    assert verify_export(tmp_path / "new") == []
    export(desk, sealed.sealer.store, tmp_path / "new-log")
    assert verify_export(tmp_path / "new-log") == []


def test_a_checkpoint_in_a_format_the_verifier_does_not_know_is_refused_by_name(sealed: Sealed, tmp_path: Path) -> None:
    export(sealed.desk, sealed.sealer.store, tmp_path / "export", ticket=sealed.tickets[0])
    _resign(sealed, lambda fields: fields.update(format=3))
    report = verify_store(sealed.desk, sealed.sealer.store, snapshots=False)
    assert any("format 3, which this verifier does not read" in p for p in report.problems), report.problems
    assert not any("heads root" in p for p in report.problems), report.problems
    export(sealed.desk, sealed.sealer.store, tmp_path / "newer")  # the whole log: no heads tree to prove
    assert verify_export(tmp_path / "export") == []
    problems = verify_export(tmp_path / "newer")
    assert problems and "format 3, which this verifier does not read" in problems[0]
    assert not any("heads root" in p for p in problems), problems  # not taken for a mismatch
    with pytest.raises(TicketflowError, match="format 3, which this version of ticketflow does not write"):
        export(sealed.desk, sealed.sealer.store, tmp_path / "ticket", ticket=sealed.tickets[0])
