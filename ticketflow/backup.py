"""Backups of a desk's stores, and their restore, which re-applies the erasures made since.

* **SQLite**: every database file of the desk (the views and the sealer's ``integrity.sqlite``,
  the idempotency store, the event store, the key, mail and account stores, the what-if jobs) is copied with
  SQLite's online backup API, each in one read transaction, so a copy is consistent while
  ``serve`` keeps writing. The order keeps the copies consistent with each other: the views and
  the sealer are copied before the event log, so none is ahead of it; the key and mail stores
  after it, so every key the copied events need is in the copy.
* **PostgreSQL**: ``pg_dump --format=custom`` of the desk's schema (one snapshot of every table).

Both also copy the data dir's secrets (``secret.key``, the sealer's signing keys in ``keys/``): a
backup is as sensitive as the store. A manifest (``ticketflow-backup.json``) lists every file
with its SHA-256.

A restore puts the files (or the schema) back, after moving the store it replaces aside, then
re-applies every erasure made since the backup: those recorded in the replaced store and those in
the erasure ledger (:mod:`ticketflow.privacy.ledger`). Until that is done, a marker in the data
dir makes ``serve`` and ``project`` refuse to start.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from ticketflow.commands.privacy import EraseCustomer
from ticketflow.config import Settings, StorageKind
from ticketflow.domain.values import Channel, Role
from ticketflow.errors import NotFound, ValidationFailed
from ticketflow.metadata import Caller
from ticketflow.privacy import ledger
from ticketflow.privacy.ledger import ErasureRecord
from ticketflow.privacy.report import erasure_log

MANIFEST = "ticketflow-backup.json"
#: In the data dir while a restore has not finished re-applying erasures (holds what is left to do).
RESTORING = "RESTORE-IN-PROGRESS.json"
PG_DUMP = "ticketflow.pgdump"
RESTORE_CALLER = Caller("restore", Role.SYSTEM, Channel.CLI)
#: Added to the case reference of an erasure a restore re-applies (the reference stays one line of 200).
_REAPPLIED = " (re-applied on restore)"


@dataclass
class Manifest:
    kind: str  # "sqlite" or "postgres"
    created_at: str
    log_position: int
    schema: str | None = None
    files: list[dict[str, Any]] = field(default_factory=list)  # {"root": "store"|"data", "path", "sha256", "bytes"}

    def write(self, directory: Path) -> None:
        (directory / MANIFEST).write_text(json.dumps(self.__dict__, indent=2), encoding="utf-8")

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST
        if not path.is_file():
            raise ValidationFailed(f"{directory} is not a ticketflow backup (no {MANIFEST})")
        return cls(**json.loads(path.read_text(encoding="utf-8")))


# ---------------------------------------------------------------------------------------------- backup
def sqlite_files(settings: Settings) -> list[Path]:
    """The desk's SQLite files, in the order a backup copies them (see the module's docstring)."""
    store = settings.sqlite_path
    root = store.parent
    views = sorted(settings.views_dir.glob("*.sqlite"))
    before = [root / "api.sqlite"]
    after = sorted(p for p in root.glob(f"{store.stem}-*.sqlite"))
    return [p for p in [*views, *before, store, *after] if p.is_file()]


def secret_files(settings: Settings) -> list[Path]:
    """The data dir's secrets: the signing key of survey links and webhooks, the sealer's keys."""
    data = settings.data_dir
    keys = sorted(p for p in (data / "keys").rglob("*") if p.is_file() and not p.name.startswith("."))
    return [p for p in [data / "secret.key", *keys] if p.is_file()]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy a live SQLite database with the online backup API: one read transaction, so the copy is
    the database as of one commit, whatever is written meanwhile; then check the copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(source, timeout=30)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = DELETE")  # a self-contained file: no -wal beside it
            (verdict,) = dst.execute("PRAGMA quick_check").fetchone()
        finally:
            dst.close()
    finally:
        src.close()
    if verdict != "ok":
        raise ValidationFailed(f"the copy of {source} failed its check: {verdict}")


def _prepare_destination(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValidationFailed(f"{dest} exists and is not an empty directory: back up into a new one")
    dest.mkdir(parents=True, exist_ok=True)
    dest.chmod(0o700)  # a backup holds the customers' keys and the desk's secrets


def _entry(dest: Path, root: str, relative: Path) -> dict[str, Any]:
    path = dest / root / relative
    return {"root": root, "path": relative.as_posix(), "sha256": _sha256(path), "bytes": path.stat().st_size}


def backup(settings: Settings, dest: Path, log_position: int) -> Manifest:
    """Back the desk up into the new directory ``dest``. ``log_position``: the log's end when it began."""
    if settings.storage is StorageKind.MEMORY:
        raise ValidationFailed("an in-memory desk has nothing to back up")
    _prepare_destination(dest)
    manifest = Manifest(settings.storage.value, datetime.now(UTC).isoformat(), log_position)
    if settings.storage is StorageKind.SQLITE:
        root = settings.sqlite_path.parent
        for path in sqlite_files(settings):
            relative = path.relative_to(root)
            copy_sqlite(path, dest / "store" / relative)
            manifest.files.append(_entry(dest, "store", relative))
    else:
        manifest.schema = settings.eventsourcing_env().get("POSTGRES_SCHEMA", "public")
        (dest / "store").mkdir()
        _pg_tool(settings, ["pg_dump", "--format=custom", "--no-owner", f"--schema={manifest.schema}",
                            f"--file={dest / 'store' / PG_DUMP}"])
        manifest.files.append(_entry(dest, "store", Path(PG_DUMP)))
    for path in secret_files(settings):
        relative = path.relative_to(settings.data_dir)
        (dest / "data" / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest / "data" / relative)
        manifest.files.append(_entry(dest, "data", relative))
    manifest.write(dest)
    return manifest


def _pg_tool(settings: Settings, argv: list[str]) -> None:
    """Run pg_dump / pg_restore on the desk's database (the password in the environment, never argv)."""
    env = settings.eventsourcing_env()
    if shutil.which(argv[0]) is None:
        raise ValidationFailed(f"{argv[0]} is not installed (Debian: apt-get install postgresql-client)")
    connection = [f"--host={env['POSTGRES_HOST']}", f"--port={env['POSTGRES_PORT']}",
                  f"--username={env['POSTGRES_USER']}", f"--dbname={env['POSTGRES_DBNAME']}", "--no-password"]
    process_env = {**os.environ, "PGPASSWORD": env["POSTGRES_PASSWORD"]} if env["POSTGRES_PASSWORD"] else None
    done = subprocess.run([*argv, *connection], capture_output=True, text=True, env=process_env, check=False)
    if done.returncode != 0:
        reason = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
        raise ValidationFailed(f"{argv[0]} failed: {reason}")


# ---------------------------------------------------------------------------------------------- restore
def verify_backup(source: Path) -> Manifest:
    """The backup's manifest, once every file it lists is there with its recorded SHA-256."""
    manifest = Manifest.read(source)
    for entry in manifest.files:
        path = source / entry["root"] / entry["path"]
        if not path.is_file():
            raise ValidationFailed(f"backup {source} is incomplete: {entry['root']}/{entry['path']} is missing")
        if _sha256(path) != entry["sha256"]:
            raise ValidationFailed(f"backup {source} is damaged: {entry['root']}/{entry['path']} does not match its SHA-256")
    return manifest


def pending_restore(settings: Settings) -> dict[str, Any] | None:
    """The unfinished restore's marker, or None."""
    path = settings.data_dir / RESTORING
    if not path.is_file():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def refuse_while_restoring(settings: Settings) -> None:
    """``serve`` and ``project`` do not start on a store whose restore has not re-applied its erasures."""
    marker = pending_restore(settings)
    if marker is not None:
        raise ValidationFailed(
            f"a restore from {marker['backup']} has not finished re-applying erasures: "
            f"run `ticketflow restore {marker['backup']}` again before serving"
        )


def _unique(records: list[ErasureRecord]) -> list[ErasureRecord]:
    seen: dict[UUID, ErasureRecord] = {}
    for record in records:
        seen.setdefault(record.customer_id, record)
    return list(seen.values())


def _erasures_in_store(desk: Any) -> list[ErasureRecord]:
    return [
        ErasureRecord(UUID(row["customer_id"]), row["basis"], row["reference"], row["completed_at"] or row["requested_at"])
        for row in erasure_log(desk, limit=10**9)
    ]


def _has_store(settings: Settings) -> bool:
    if settings.storage is StorageKind.SQLITE:
        return settings.sqlite_path.is_file()
    return bool(_pg_tables(settings))


def _pg_connect(settings: Settings) -> Any:
    import psycopg

    env = settings.eventsourcing_env()
    return psycopg.connect(
        dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
        user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"] or None, autocommit=True,
    )


def _pg_schema(settings: Settings) -> str:
    return settings.eventsourcing_env().get("POSTGRES_SCHEMA", "public")


def _pg_tables(settings: Settings) -> list[str]:
    with _pg_connect(settings) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (_pg_schema(settings),)
        ).fetchall()
    return [row[0] for row in rows]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def put_back(settings: Settings, source: Path, manifest: Manifest, stamp: str) -> str | None:
    """Move the store being replaced aside (returned: where to) and put the backup's files in place."""
    if manifest.kind != settings.storage.value:
        raise ValidationFailed(f"backup {source} is of a {manifest.kind} desk; this desk is on {settings.storage.value}")
    aside: str | None = None
    if settings.storage is StorageKind.SQLITE:
        root = settings.sqlite_path.parent
        holder = root.parent / f"{root.name}.before-restore-{stamp}"
        desk_files = [p for p in sqlite_files(settings) for p in (p, Path(f"{p}-wal"), Path(f"{p}-shm")) if p.exists()]
        for path in desk_files:
            target = holder / "store" / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            path.rename(target)
            aside = str(holder)
        for entry in manifest.files:
            if entry["root"] == "store":
                target = root / entry["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source / "store" / entry["path"], target)
    else:
        schema = manifest.schema or "public"
        if schema != _pg_schema(settings):
            raise ValidationFailed(f"backup {source} holds schema {schema}; this desk's schema is {_pg_schema(settings)}")
        with _pg_connect(settings) as conn:
            exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
            if exists and _pg_tables(settings):
                aside = f"{schema}_before_restore_{stamp}"
                conn.execute(f"ALTER SCHEMA {_quote(schema)} RENAME TO {_quote(aside)}")
            elif exists:
                conn.execute(f"DROP SCHEMA {_quote(schema)}")
        _pg_tool(settings, ["pg_restore", "--exit-on-error", "--no-owner", str(source / "store" / PG_DUMP)])
    for entry in manifest.files:
        if entry["root"] == "data":
            target = settings.data_dir / entry["path"]
            if target.exists() and _sha256(target) != entry["sha256"]:
                kept = settings.data_dir.parent / f"{settings.data_dir.name}.before-restore-{stamp}" / "data" / entry["path"]
                kept.parent.mkdir(parents=True, exist_ok=True)
                target.rename(kept)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / "data" / entry["path"], target)
            target.chmod(0o600)
    return aside


def begin_restore(settings: Settings, source: Path, ledger_path: Path | None, open_desk: Any) -> tuple[list[ErasureRecord], str | None]:
    """Put the backup in place and return the erasures to re-apply (and where the replaced store went).

    The erasures come from the store being replaced (read before it is moved aside), the ledger,
    and an unfinished earlier restore's marker. The marker is written before anything moves."""
    manifest = verify_backup(source)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    previous = pending_restore(settings)
    erasures = [ErasureRecord.from_json(json.dumps(r)) for r in (previous or {}).get("erasures", [])]
    if previous is None and _has_store(settings):
        desk = open_desk()
        try:
            erasures += _erasures_in_store(desk)
        finally:
            desk.close()
    path = ledger_path or settings.erasure_ledger
    if path is not None and path.exists():
        erasures += ledger.read(path)
    erasures = _unique(erasures)
    marker = {"backup": str(source.resolve()), "erasures": [json.loads(r.to_json()) for r in erasures]}
    (settings.data_dir / RESTORING).write_text(json.dumps(marker, ensure_ascii=False), encoding="utf-8")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    aside = put_back(settings, source, manifest, stamp)
    return erasures, aside


def reapply_erasures(desk: Any, erasures: list[ErasureRecord]) -> list[UUID]:
    """Erase again, in the restored store, each customer erased since the backup (the backup still
    holds their key). A customer the backup does not know, or already erased in it, is skipped."""
    done = []
    for record in erasures:
        try:
            scope = desk.erasure_scope(record.customer_id)
        except NotFound:
            continue  # registered after the backup: none of their events came back
        if scope.already_erased:
            continue
        basis = record.basis if record.basis in ("customer_request", "retention") else "customer_request"
        reference = record.reference[: 200 - len(_REAPPLIED)] + _REAPPLIED
        desk.erase_customer(
            EraseCustomer(customer_id=record.customer_id, basis=basis, reference=reference),  # type: ignore[arg-type]
            RESTORE_CALLER,
        )
        done.append(record.customer_id)
    return done


def finish_restore(settings: Settings) -> None:
    (settings.data_dir / RESTORING).unlink(missing_ok=True)
