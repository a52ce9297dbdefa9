"""A full disk answers 507 and a read-only one 503 (problem+json, Retry-After), nothing half-written,
and the desk recovers when space or write access returns: on a real (tmpfs) file system."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import Api, build_api
from ticketflow.config import Settings


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mount)], check=False, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small file system here (needs root and mount): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=False, capture_output=True)
        subprocess.run(["umount", "-l", str(mount)], check=False, capture_output=True)


def _fill(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:  # unbuffered: nothing left to flush (and fail) on close
        try:
            while True:
                out.write(b"\0" * 65536)
                os.fsync(out.fileno())
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def _register(api: Api, name: str) -> int:
    return int(api.post("admin", "/api/v1/customers", {"name": name}).status_code)


def _registered(api: Api) -> int:
    return len(api.desk.recorder.select_notifications(1, 100_000, topics=["ticketflow.domain.customer:Customer.Registered"]))


def test_a_full_disk_answers_507_writes_nothing_and_the_desk_recovers(small_disk: Path) -> None:
    settings = Settings(data_dir=small_disk / "data", automation=False, seal=False, rate_limit_burst=10_000,
                        rate_limit_per_second=10_000)
    for api in build_api(settings):
        assert _register(api, "张三") == 201
        before = _registered(api)
        filler = _fill(small_disk)
        statuses = [_register(api, f"客户{i}") for i in range(30)]
        refused = [s for s in statuses if s != 201]
        assert refused and set(refused) == {507}, statuses  # never a 500
        response = api.post("admin", "/api/v1/customers", {"name": "李四"})
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["Retry-After"] == "30"
        assert _registered(api) == before + statuses.count(201)  # nothing half-written
        filler.unlink()
        assert _register(api, "王五") == 201  # space is back: so is the desk


def test_a_read_only_disk_answers_503_and_the_desk_recovers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Linux refuses to remount a file system read-only while files on it are open for writing, so
    the store's write is made to fail as SQLite fails on a read-only disk (SQLITE_READONLY)."""
    import sqlite3

    settings = Settings(data_dir=tmp_path / "data", automation=False, seal=False, rate_limit_burst=10_000,
                        rate_limit_per_second=10_000)
    for api in build_api(settings):
        assert _register(api, "张三") == 201
        before = _registered(api)
        recorder = api.desk.recorder
        insert, insert_group = recorder._insert_events, recorder._insert_group_at_once

        def read_only(*_: object, **__: object) -> None:
            raise sqlite3.OperationalError("attempt to write a readonly database")

        # both ways a group is written: all its events in one statement, or save by save
        monkeypatch.setattr(recorder, "_insert_events", read_only)
        monkeypatch.setattr(recorder, "_insert_group_at_once", read_only)
        response = api.post("admin", "/api/v1/customers", {"name": "李四"})
        assert response.status_code == 503, response.text
        assert response.json()["type"].endswith("/storage_read_only") and response.headers["Retry-After"] == "30"
        assert api.get("admin", "/api/v1/me").status_code == 200  # reads still answer
        monkeypatch.setattr(recorder, "_insert_events", insert)
        monkeypatch.setattr(recorder, "_insert_group_at_once", insert_group)
        assert _registered(api) == before
        assert _register(api, "王五") == 201
