"""The parallel log pass (``verify_store(..., workers=N)``) reports exactly what the single pass reports."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from projections.integrity.keys import KeyRing
from projections.integrity.sealer import Sealer
from projections.integrity.verifier import verify_store
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import AddNote
from ticketflow.config import Settings
from ticketflow_verify.chain import event_hash, genesis
from tests.integrity.conftest import Ticking
from tests.integrity.support import Sealed, event_at, flip, oid, populate, raw, sealed_db, set_state
from tests.support import AGENT


@pytest.fixture
def big(tmp_path: Path, clock: FakeClock) -> Iterator[Sealed]:
    """A SQLite store whose streams interleave: every range boundary cuts streams in the middle."""
    desk = TicketDesk(Settings(data_dir=tmp_path / "data").model_copy(update={"snapshot_interval": 3}), clock=clock)
    tickets = populate(desk, tickets=5, notes=6)
    sealer = Sealer(desk, every_events=4, every_seconds=3600, anchor=tmp_path / "anchor.ndjson",
                    keys=KeyRing(tmp_path / "keys"), now=Ticking())
    sealer.catch_up(checkpoint=True)
    s = Sealed(desk, sealer, tickets)
    yield s
    sealer.close()
    desk.close()


def positions(s: Sealed, n: int) -> list[int]:
    rows = s.sealer.read(lambda db: db.all(
        "SELECT position FROM {p}integrity_events WHERE originator_id = ? ORDER BY version", (str(s.tickets[n]),)))
    return [int(r["position"]) for r in rows]


def _flip_late_event(s: Sealed) -> None:
    position = positions(s, 3)[4]
    set_state(s.desk, position, flip(bytes(event_at(s.desk, position)["state"])))


def _flip_first_event(s: Sealed) -> None:
    position = positions(s, 0)[0]
    set_state(s.desk, position, flip(bytes(event_at(s.desk, position)["state"])))


def _delete_event(s: Sealed) -> None:
    raw(s.desk.recorder, "DELETE FROM {t} WHERE notification_id = ?", (positions(s, 2)[3],))


def _reorder(s: Sealed) -> None:
    a, b = positions(s, 0)[4], positions(s, 1)[4]
    raw(s.desk.recorder, "UPDATE {t} SET notification_id = ? WHERE notification_id = ?", (10_000_000, a))
    raw(s.desk.recorder, "UPDATE {t} SET notification_id = ? WHERE notification_id = ?", (a, b))
    raw(s.desk.recorder, "UPDATE {t} SET notification_id = ? WHERE notification_id = ?", (b, 10_000_000))


def _insert(s: Sealed) -> None:
    position = positions(s, 1)[3]
    forged = event_at(s.desk, position)
    raw(s.desk.recorder, "UPDATE {t} SET notification_id = notification_id + ? WHERE notification_id > ?", (10_000_000, position))
    raw(s.desk.recorder, "UPDATE {t} SET notification_id = notification_id - ? WHERE notification_id > ?", (9_999_999, 10_000_000))
    raw(s.desk.recorder, "INSERT INTO {t} (notification_id, originator_id, originator_version, topic, state) VALUES (?, ?, 1, ?, ?)",
        (position + 1, oid(s.desk, UUID("00000000-0000-4000-8000-000000000001")), forged["topic"], bytes(forged["state"])))


def _truncate(s: Sealed) -> None:
    raw(s.desk.recorder, "DELETE FROM {t} WHERE notification_id > ?", (s.desk.log_position() - 3,))


def _rewrite_event_and_hash(s: Sealed) -> None:
    ticket = s.tickets[4]
    position = positions(s, 4)[0]
    row = event_at(s.desk, position)
    state = flip(bytes(row["state"]))
    set_state(s.desk, position, state)
    h = event_hash(str(ticket), 1, row["topic"], state, genesis(str(ticket)))
    sealed_db(s.sealer, "UPDATE {p}integrity_events SET hash = ? WHERE position = ?", (h.hex(), position))


def _rewrite_last_event_and_hash(s: Sealed) -> None:
    """A stream's last event, rewritten with its sealed hash: only the signed roots (and heads root) show it."""
    ticket = s.tickets[2]
    position = positions(s, 2)[-1]
    row = event_at(s.desk, position)
    previous = s.sealer.read(lambda db: db.scalar(
        "SELECT hash FROM {p}integrity_events WHERE originator_id = ? AND version = ?", (str(ticket), row["originator_version"] - 1)))
    state = flip(bytes(row["state"]))
    set_state(s.desk, position, state)
    h = event_hash(str(ticket), row["originator_version"], row["topic"], state, bytes.fromhex(previous))
    sealed_db(s.sealer, "UPDATE {p}integrity_events SET hash = ? WHERE position = ?", (h.hex(), position))


def _renumber_ordinal(s: Sealed) -> None:
    sealed_db(s.sealer, "UPDATE {p}integrity_events SET ordinal = ordinal + 1000 WHERE position = ?", (positions(s, 1)[5],))


def _renumber_version(s: Sealed) -> None:
    """Version 4 of a stream becomes version 40, in the log and in the sealed log alike (a gap)."""
    position = positions(s, 3)[3]
    raw(s.desk.recorder, "UPDATE {t} SET originator_version = 40 WHERE notification_id = ?", (position,))
    sealed_db(s.sealer, "UPDATE {p}integrity_events SET version = 40 WHERE position = ?", (position,))


def _replace_checkpoint_root(s: Sealed) -> None:
    import json

    from ticketflow_verify.chain import checkpoint_body

    body = json.loads(s.sealer.read(lambda db: db.scalar("SELECT body FROM {p}integrity_checkpoints WHERE seq = 5")))
    body["root"] = "00" * 32
    sealed_db(s.sealer, "UPDATE {p}integrity_checkpoints SET body = ? WHERE seq = 5", (checkpoint_body(body).decode(),))


def _drop_checkpoints(s: Sealed) -> None:
    sealed_db(s.sealer, "DELETE FROM {p}integrity_checkpoints WHERE seq > 3")


TAMPERINGS: dict[str, Callable[[Sealed], None]] = {
    "flip a late event": _flip_late_event, "flip the first event": _flip_first_event, "delete": _delete_event,
    "reorder": _reorder, "insert": _insert, "truncate": _truncate, "rewrite event and hash": _rewrite_event_and_hash,
    "rewrite a stream's last event and hash": _rewrite_last_event_and_hash, "renumber an ordinal": _renumber_ordinal,
    "renumber a version": _renumber_version, "replace a checkpoint root": _replace_checkpoint_root,
}


@pytest.mark.parametrize("workers", [2, 3, 4])
def test_an_intact_store_gets_the_same_report_from_the_parallel_pass(big: Sealed, passes: list[Any], workers: int) -> None:
    single = verify_store(big.desk, big.sealer.store, workers=1).as_dict()
    assert passes == [] and single["ok"], single["problems"]
    parallel = verify_store(big.desk, big.sealer.store, workers=workers).as_dict()
    assert passes and passes[-1] is not None, "the parallel pass stood down on an intact store"
    assert parallel == single


def test_unsealed_events_are_counted_alike(big: Sealed, passes: list[Any]) -> None:
    big.desk.add_note(AddNote(ticket_id=big.tickets[0], body="after sealing"), AGENT)
    big.desk.add_note(AddNote(ticket_id=big.tickets[1], body="after sealing"), AGENT)
    single = verify_store(big.desk, big.sealer.store, workers=1).as_dict()
    parallel = verify_store(big.desk, big.sealer.store, workers=2).as_dict()
    assert passes[-1] is not None
    assert parallel == single and single["unsealed"] == 2 and single["ok"]


def test_a_tampered_checkpoint_history_is_reported_alike(big: Sealed, tmp_path: Path) -> None:
    _drop_checkpoints(big)
    kwargs: dict[str, Any] = {"anchor": tmp_path / "anchor.ndjson", "snapshots": False}
    single = verify_store(big.desk, big.sealer.store, workers=1, **kwargs).as_dict()
    assert not single["ok"]
    assert verify_store(big.desk, big.sealer.store, workers=2, **kwargs).as_dict() == single


@pytest.mark.parametrize("tamper", list(TAMPERINGS), ids=list(TAMPERINGS))
@pytest.mark.parametrize("workers", [2, 3])
def test_a_tampered_store_gets_the_same_report_from_the_parallel_pass(
    big: Sealed, passes: list[Any], tamper: str, workers: int,
) -> None:
    TAMPERINGS[tamper](big)
    single = verify_store(big.desk, big.sealer.store, workers=1, snapshots=False).as_dict()
    assert not single["ok"]
    parallel = verify_store(big.desk, big.sealer.store, workers=workers, snapshots=False).as_dict()
    assert passes == [None], "the parallel pass accepted a tampered log"
    assert parallel == single


def test_deep_verification_takes_the_single_pass(big: Sealed, passes: list[Any]) -> None:
    report = verify_store(big.desk, big.sealer.store, deep=True, workers=2)
    assert report.ok and passes == [None]


def test_small_logs_default_to_one_process(big: Sealed, passes: list[Any]) -> None:
    assert verify_store(big.desk, big.sealer.store).ok
    assert passes == [None]  # asked, and stood down: fewer than PARALLEL_FROM events


def test_an_event_at_a_far_position_is_counted_alike(big: Sealed) -> None:
    forged = event_at(big.desk, positions(big, 0)[0])
    raw(big.desk.recorder, "INSERT INTO {t} (notification_id, originator_id, originator_version, topic, state) VALUES (?, ?, 1, ?, ?)",
        ((1 << 62) + 5, oid(big.desk, UUID("00000000-0000-4000-8000-000000000002")), forged["topic"], bytes(forged["state"])))
    single = verify_store(big.desk, big.sealer.store, workers=1, snapshots=False).as_dict()
    assert single["unsealed"] == 1
    assert verify_store(big.desk, big.sealer.store, workers=2, snapshots=False).as_dict() == single
