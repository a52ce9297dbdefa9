"""PostgreSQL: one process at a time runs the desk's DDL in a schema.

Every process that opens a desk (each `serve` worker, `ticketflow project`, the CLI) runs the
store's "create if missing" DDL on start, and they often start together. PostgreSQL does not make
that DDL safe to run concurrently: a ``CREATE OR REPLACE FUNCTION`` whose row another open
transaction has just replaced fails with "tuple concurrently updated" (eventsourcing replaces its
insert function on every start), and two ``CREATE TABLE IF NOT EXISTS`` of a new table both see it
missing and the second fails on ``pg_type``'s unique index. A `project` that died of it at start
left every view behind. Each DDL transaction therefore first takes a transaction-level advisory
lock named after the schema: a second process waits for the first to commit, then finds
everything there.
"""

from __future__ import annotations

import hashlib
from typing import Any

from eventsourcing.postgres import PostgresApplicationRecorder

from ticketflow.pg_group_commit import PostgresGroupCommit


def ddl_lock_key(schema: str) -> int:
    """The advisory lock key of a schema's DDL (a signed 64-bit number, stable across processes)."""
    digest = hashlib.blake2b(f"ticketflow ddl {schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_schema_ddl(cursor: Any, schema: str) -> None:
    """Wait until no other transaction runs DDL in ``schema``; held until this transaction ends."""
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (ddl_lock_key(schema),))


class SerialisedDdl:
    """Mixin for an eventsourcing PostgreSQL recorder: its DDL transaction holds the schema's DDL lock."""

    datastore: Any

    def _create_table(self, curs: Any) -> None:
        lock_schema_ddl(curs, self.datastore.schema)
        super()._create_table(curs)  # type: ignore[misc]


class SerialisedTrackingDdl(SerialisedDdl):
    """Mixin for an eventsourcing PostgreSQL tracking recorder (a view's store). The library decides
    whether the tracking table is new before its DDL transaction starts; a process that waited for
    another's DDL looks again once it holds the lock, or it would insert the table's first row twice."""

    datastore: Any
    tracking_table_name: str
    table_migration_identifier: str

    def _create_table(self, curs: Any) -> None:
        lock_schema_ddl(curs, self.datastore.schema)
        if not getattr(self, "tracking_table_exists", False):
            table = ".".join(
                '"' + name.replace('"', '""') + '"'
                for name in (self.datastore.schema, self.tracking_table_name)
            )
            curs.execute("SELECT to_regclass(%s) IS NOT NULL AS present", (table,))
            if curs.fetchone()["present"]:  # made by the process this one waited for
                self.tracking_table_exists = True
                self.tracking_migration_current = self.tracking_migration_previous = self._max_tracking_id(  # type: ignore[attr-defined]
                    self.table_migration_identifier, curs
                )
        super(SerialisedDdl, self)._create_table(curs)  # type: ignore[misc]


class DeskRecorder(PostgresGroupCommit, SerialisedDdl, PostgresApplicationRecorder):
    """The desk's event recorder on PostgreSQL (``APPLICATION_RECORDER_TOPIC``): its DDL waits for any
    other process's, and concurrent saves commit in groups (ticketflow/pg_group_commit.py)."""
