"""Processes opening a new SQLite view store at once take turns: it is created once, and both open it.

Two CLI commands closing together on a fresh data directory both seal, so both open the seal store:
eventsourcing creates its tracking table, then records the table's migration row, and the second
process to get there, having also found no table, was refused ("Failed to record tracking for
__migration__ 1"; seen failing tests/cli/test_console_script.py in CI). The threads here open their
stores through separate lock-file descriptions, as two processes do.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from projections.integrity.sealer import SealView
from projections.readside import OPENING_LOCK, open_store, views_dir
from projections.view import ViewStore
from ticketflow.config import Settings


def test_two_openers_of_a_new_view_store_take_turns_and_both_open_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    first_inside, second_inside = threading.Event(), threading.Event()
    inside, most, turns = 0, 0, threading.Lock()
    create = ViewStore.create_table

    def watched(store: ViewStore) -> None:
        nonlocal inside, most
        with turns:
            inside += 1
            most = max(most, inside)
            first = not first_inside.is_set()
        try:
            if first:
                first_inside.set()
                # Without turns, the second opener gets in here too (and both find no table yet).
                second_inside.wait(timeout=1.0)
            else:
                second_inside.set()
            create(store)
        finally:
            with turns:
                inside -= 1

    monkeypatch.setattr(ViewStore, "create_table", watched)
    opened: list[Any] = []
    failed: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(open_store(settings, SealView))
        except BaseException as exc:  # noqa: BLE001 - reported below
            failed.append(exc)

    first = threading.Thread(target=open_one)
    first.start()
    assert first_inside.wait(timeout=60)
    second = threading.Thread(target=open_one)
    second.start()
    first.join()
    second.join()
    assert not failed, failed
    assert most == 1 and len(opened) == 2  # one opener at a time; both stores open
    assert (views_dir(settings) / OPENING_LOCK).exists()
    for store in opened:
        assert store.max_tracking_id("anything") is None
        store.datastore.close()  # type: ignore[attr-defined]
