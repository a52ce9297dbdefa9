"""Backup and restore of both stores: a backup taken while the desk serves restores to a store that
passes ``audit verify``, and a customer erased after the backup stays erased after the restore."""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from uuid import UUID

import psycopg
import pytest

from projections.readside import ReadSide
from tests.api.conftest import build_api
from tests.privacy.test_canary import NEEDLES, erase, leaked_in, use_everywhere
from tests.support import ADMIN, Desk, run_cli
from ticketflow import backup as backups
from ticketflow.application import TicketDesk
from ticketflow.commands import OpenTicket, RegisterCustomer
from ticketflow.config import Settings
from ticketflow.privacy import ledger

OPENED = "ticketflow.domain.ticket:Ticket.Opened"


def _env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """What the `ticketflow` command reads: the same store as ``settings``."""
    monkeypatch.setenv("TICKETFLOW_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("TICKETFLOW_AUTOMATION", "false")
    monkeypatch.setenv("TICKETFLOW_ERASURE_LEDGER", str(settings.erasure_ledger))
    if settings.database_url:
        monkeypatch.setenv("TICKETFLOW_DATABASE_URL", settings.database_url)
    else:
        monkeypatch.delenv("TICKETFLOW_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def _take_backup_then_erase(settings: Settings, dest: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, int]:
    """The canary customer's data everywhere; a backup while the API is up; then the erasure."""
    for api in build_api(settings):
        customer = use_everywhere(api)
        code, out, err = run_cli(["backup", str(dest)], capsys)  # the API's desk is open meanwhile
        assert code == 0, err
        backed_up = api.desk.log_position()
        erase(api, customer)
        assert api.get("compliance", f"/api/v1/customers/{customer}").json()["name"] != f"王{NEEDLES[0].decode()}"
    assert "backed up" in out
    return customer, backed_up


def _restored_desk_is_sound(settings: Settings, customer: str, capsys: pytest.CaptureFixture[str]) -> None:
    desk = TicketDesk(settings)
    try:
        assert desk.erasure_scope(UUID(customer)).already_erased
        record = desk.get_customer(UUID(customer))
        assert leaked_in(json.dumps(record.__dict__, default=str, ensure_ascii=False)) == []
    finally:
        desk.close()
    code, out, err = run_cli(["audit", "verify"], capsys)
    assert code == 0, out + err
    assert backups.pending_restore(settings) is None


def test_a_sqlite_backup_restores_and_an_erasure_made_after_it_stays_erased_from_the_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The store is lost after the erasure: only the ledger, kept elsewhere, says who was erased."""
    data = tmp_path / "data"
    settings = Settings(data_dir=data, automation=False, erasure_ledger=tmp_path / "elsewhere" / "erasures.jsonl")
    _env(monkeypatch, settings)
    customer, _ = _take_backup_then_erase(settings, tmp_path / "backup", capsys)
    assert [str(r.customer_id) for r in ledger.read(settings.erasure_ledger)] == [customer]  # type: ignore[arg-type]
    assert leaked_in(settings.erasure_ledger.read_text(encoding="utf-8")) == []  # type: ignore[union-attr]
    shutil.rmtree(data)  # the disk is lost

    code, out, err = run_cli(["restore", str(tmp_path / "backup")], capsys)

    assert code == 0, err
    assert "1 erasure(s) made since the backup re-applied" in out
    _restored_desk_is_sound(settings, customer, capsys)
    for path in sorted(data.rglob("*.sqlite")):  # the canary check of tests/privacy/test_canary.py
        db = sqlite3.connect(path)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
        db.close()
    leaks = {str(p.relative_to(data)): [n.decode() for n in NEEDLES if n in p.read_bytes()]
             for p in data.rglob("*") if p.is_file()}
    assert {p: found for p, found in leaks.items() if found} == {}


def test_a_sqlite_restore_over_the_live_store_re_applies_the_erasures_it_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No ledger: the erasures come from the store being replaced, which is moved aside, not deleted."""
    data = tmp_path / "data"
    settings = Settings(data_dir=data, automation=False, erasure_ledger=tmp_path / "ledger.jsonl")
    _env(monkeypatch, settings)
    customer, backed_up = _take_backup_then_erase(settings, tmp_path / "backup", capsys)
    settings.erasure_ledger.unlink()  # type: ignore[union-attr]

    code, out, err = run_cli(["restore", str(tmp_path / "backup")], capsys)

    assert code == 0, err
    assert "1 erasure(s) made since the backup re-applied" in out
    assert any(p.name.startswith("data.before-restore-") for p in tmp_path.iterdir())
    _restored_desk_is_sound(settings, customer, capsys)
    desk = TicketDesk(settings)
    try:
        assert desk.log_position() > backed_up  # the backup's log, then the re-applied erasure
    finally:
        desk.close()


def test_a_damaged_backup_is_refused_in_one_line_and_nothing_is_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path / "data", automation=False, erasure_ledger=tmp_path / "ledger.jsonl")
    _env(monkeypatch, settings)
    desk = TicketDesk(settings)
    desk.close()
    assert run_cli(["backup", str(tmp_path / "backup")], capsys)[0] == 0
    stored = tmp_path / "backup" / "store" / "ticketflow.sqlite"
    damaged = stored.read_bytes()
    stored.write_bytes(damaged[:-1] + bytes([damaged[-1] ^ 0xFF]))  # the last byte changed, whatever it was

    code, _out, err = run_cli(["restore", str(tmp_path / "backup")], capsys)

    assert code == 1
    assert err.strip() == f"error: backup {tmp_path / 'backup'} is damaged: store/ticketflow.sqlite does not match its SHA-256"
    assert (tmp_path / "data" / "ticketflow.sqlite").is_file() and backups.pending_restore(settings) is None


def test_serve_refuses_to_start_while_a_restore_has_erasures_left_to_re_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path / "data", automation=False, erasure_ledger=tmp_path / "ledger.jsonl")
    _env(monkeypatch, settings)
    settings.data_dir.mkdir()
    (settings.data_dir / backups.RESTORING).write_text(json.dumps({"backup": "/srv/backups/b1", "erasures": []}))

    for command in (["serve", "--port", "1"], ["project"]):
        code, _out, err = run_cli(command, capsys)
        assert code == 1
        assert "a restore from /srv/backups/b1 has not finished re-applying erasures" in err
        assert "run `ticketflow restore /srv/backups/b1` again" in err


def test_a_backup_refuses_a_directory_that_is_not_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path / "data", automation=False, erasure_ledger=tmp_path / "ledger.jsonl")
    _env(monkeypatch, settings)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "old").write_text("x")
    code, _out, err = run_cli(["backup", str(tmp_path / "full")], capsys)
    assert code == 1 and "is not an empty directory" in err


@pytest.mark.postgres
@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump / pg_restore are not installed")
def test_a_postgres_backup_restores_and_an_erasure_made_after_it_stays_erased(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(database_url=postgres_url, data_dir=tmp_path / "data", automation=False,
                        embedded_projections=True, erasure_ledger=tmp_path / "ledger.jsonl")
    _env(monkeypatch, settings)
    monkeypatch.setenv("TICKETFLOW_EMBEDDED_PROJECTIONS", "true")
    customer, _ = _take_backup_then_erase(settings, tmp_path / "backup", capsys)

    code, out, err = run_cli(["restore", str(tmp_path / "backup")], capsys)

    assert code == 0, err
    assert "1 erasure(s) made since the backup re-applied" in out
    schema = postgres_url.split("schema=")[1]
    aside = out.split("the replaced store was moved to ")[1].split()[0]
    try:
        _restored_desk_is_sound(settings, customer, capsys)
        with psycopg.connect(postgres_url.split("?")[0]) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))]
            leaks = {}
            for table in tables:
                rows = conn.execute(f'SELECT t::text FROM "{schema}"."{table}" t').fetchall()
                if found := sorted({n for row in rows for n in leaked_in(row[0])}):
                    leaks[table] = found
        assert tables and leaks == {}
    finally:
        with psycopg.connect(postgres_url.split("?")[0], autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{aside}" CASCADE')


def test_backups_taken_while_the_desk_writes_restore_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A writer registers customers (each a new key) and opens their tickets while the views follow,
    as under `serve`, and backups are taken meanwhile. Each restores to a store where every ticket's
    text reads back (the key store was copied after the log), every view counts what the log holds,
    and `audit verify` passes."""
    settings = Settings(data_dir=tmp_path / "data", automation=False)
    desk = TicketDesk(settings)
    team = Desk(desk).team_id
    read_side = ReadSide(desk)
    read_side.start()
    stop = threading.Event()

    def write() -> None:
        number = 0
        while not stop.is_set():
            number += 1
            customer = desk.register_customer(RegisterCustomer(name=f"客户{number}"), ADMIN).object_id
            desk.open_ticket(OpenTicket(subject=f"工单{number}", requester_id=customer, team_id=team), ADMIN)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for n in range(3):
            time.sleep(0.3)
            backups.backup(settings, tmp_path / f"backup-{n}", desk.log_position())
    finally:
        stop.set()
        writer.join()
        read_side.close()
        desk.close()
    for n in range(3):
        restored = Settings(data_dir=tmp_path / f"restored-{n}", automation=False)
        _env(monkeypatch, restored.model_copy(update={"erasure_ledger": tmp_path / "no-ledger.jsonl"}))
        code, _out, err = run_cli(["restore", str(tmp_path / f"backup-{n}")], capsys)
        assert code == 0, err
        code, out, err = run_cli(["audit", "verify"], capsys)
        assert code == 0, out + err
        desk = TicketDesk(restored)
        opened = desk.recorder.select_notifications(1, 100_000, topics=[OPENED])
        assert opened, "the backup was taken before anything was written"
        assert all(desk.get_ticket(o.originator_id).subject.startswith("工单") for o in opened)
        read_side = ReadSide(desk)
        assert read_side.read("tickets", lambda db: db.scalar("SELECT count(*) FROM {p}tf_tickets")) == len(opened)
        assert {s.lag for s in read_side.status()} == {0}
        read_side.close()
        desk.close()


def test_an_interrupted_restore_is_finished_by_running_it_again_with_the_erasures_it_had_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The replaced store is already aside when a restore stops: the erasures it read from it are in
    the marker, and the next run re-applies them."""
    settings = Settings(data_dir=tmp_path / "data", automation=False, erasure_ledger=tmp_path / "ledger.jsonl")
    _env(monkeypatch, settings)
    desk = TicketDesk(settings)
    customer = Desk(desk).customer_id
    desk.close()
    assert run_cli(["backup", str(tmp_path / "backup")], capsys)[0] == 0
    assert run_cli(["customer", "erase", str(customer), "--reference", "DSR-7", "--yes"], capsys)[0] == 0
    settings.erasure_ledger.unlink()  # type: ignore[union-attr]

    erasures, _aside = backups.begin_restore(settings, tmp_path / "backup", None, lambda: TicketDesk(settings))
    assert [r.customer_id for r in erasures] == [customer]  # the restore stops here
    assert "has not finished re-applying erasures" in run_cli(["serve"], capsys)[2]

    code, out, err = run_cli(["restore", str(tmp_path / "backup")], capsys)

    assert code == 0, err
    assert "1 erasure(s) made since the backup re-applied" in out
    desk = TicketDesk(settings)
    try:
        assert desk.erasure_scope(customer).already_erased
        assert desk.get_customer(customer).name != "王小明"
    finally:
        desk.close()
    assert backups.pending_restore(settings) is None


def _whatif_jobs_survive_a_backup_and_restore(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> str | None:
    """A supervisor's what-if jobs (one done with its report, one queued) are in the backup; one asked
    for after it is not in the restored store. The restore's output (where the replaced store went)."""
    from ticketflow.whatif.jobs import open_job_store

    desk = TicketDesk(settings)
    store = open_job_store(settings, desk.recorder)
    try:
        request = {"period": {"from": "2026-11-01T00:00:00+08:00", "to": "2026-12-01T00:00:00+08:00"},
                   "team": "技术支持", "candidate": {"rotation": [{"team_id": "技术支持", "agent_id": "li.wei",
                                                                   "active": False}]}}
        done = store.submit(request, "gao.sup", "supervisor", ["t-1"], desk.clock.now())
        claim = store.claim()
        assert claim is not None and claim.job.id == done.id
        store.finish(claim, '{"tickets": {"replayed": 3}}', None)
        queued = store.submit({**request, "team": None}, "zhang.admin", "admin", None, desk.clock.now())
        kept = [(j.id, j.status, j.request, j.team_ids) for j in store.jobs()]
        code, _out, err = run_cli(["backup", str(tmp_path / "backup")], capsys)
        assert code == 0, err
        store.submit(request, "gao.sup", "supervisor", ["t-1"], desk.clock.now())  # after the backup
    finally:
        store.close()
        desk.close()

    code, out, err = run_cli(["restore", str(tmp_path / "backup")], capsys)

    assert code == 0, err
    desk = TicketDesk(settings)
    store = open_job_store(settings, desk.recorder)
    try:
        assert [(j.id, j.status, j.request, j.team_ids) for j in store.jobs()] == kept
        assert [j.id for j in store.jobs()] == [queued.id, done.id]
        restored = store.get(done.id)
        assert restored is not None and restored.report == '{"tickets": {"replayed": 3}}'
    finally:
        store.close()
        desk.close()
    return out


def test_a_sqlite_backup_keeps_the_whatif_jobs_and_their_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path / "data", automation=False, erasure_ledger=tmp_path / "ledger.jsonl")
    _env(monkeypatch, settings)
    _whatif_jobs_survive_a_backup_and_restore(settings, tmp_path, capsys)
    assert (tmp_path / "backup" / "store" / "ticketflow-whatif.sqlite").is_file()


@pytest.mark.postgres
@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump / pg_restore are not installed")
def test_a_postgres_backup_keeps_the_whatif_jobs_and_their_reports(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(database_url=postgres_url, data_dir=tmp_path / "data", automation=False,
                        erasure_ledger=tmp_path / "ledger.jsonl")
    _env(monkeypatch, settings)
    out = _whatif_jobs_survive_a_backup_and_restore(settings, tmp_path, capsys)
    assert out is not None
    aside = out.split("the replaced store was moved to ")[1].split()[0]
    with psycopg.connect(postgres_url.split("?")[0], autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{aside}" CASCADE')
