"""Rewriting PostgreSQL tables after an erasure, so that no old row version stays in their files.

An UPDATE or DELETE leaves the old row version in the table's file as a dead tuple, and a plain
``VACUUM`` only marks its space reusable. ``VACUUM FULL`` copies the live rows into new files and
drops the old ones, but it must also copy every row version a transaction still open may see
("recently dead"): a report, a ``pg_dump`` in progress, another process's batch begun before the
purge. Rewritten then, the erased text (or the destroyed key) would be carried into the new file.
So the rewrite first waits, for a bounded time, until the transactions of this database that
began before the purge have ended.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import Any

#: How long a rewrite waits for the transactions begun before the purge to end.
WAIT_SECONDS = 10.0
log = logging.getLogger("ticketflow.privacy")

#: What ``VACUUM VERBOSE`` says when an open transaction made it keep dead row versions (in the
#: server's English messages; in another ``lc_messages`` only the wait on pg_stat_activity applies).
_KEPT = re.compile(r"(\d+) dead row versions cannot be removed yet")
#: Other sessions of this database whose snapshot (or own transaction) is not newer than the marker.
_OLDER = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND greatest(age(backend_xmin), age(backend_xid)) >= age(%s::text::xid)"
)


def rewrite_tables(connection: Any, tables: Sequence[str], wait_seconds: float = WAIT_SECONDS) -> bool:
    """``VACUUM FULL`` each of ``tables`` once no transaction begun before the caller's last commit
    is open (``connection`` in autocommit), again while PostgreSQL says it had to keep dead row
    versions. False when some were still kept after ``wait_seconds``: a warning says which tables
    to rewrite again once the transactions that hold them have ended."""
    # Imported here: keys.py imports this module, and SQLite must not pull in psycopg.
    from psycopg.rows import tuple_row

    deadline = time.monotonic() + wait_seconds
    kept: list[str] = []
    notices: list[str] = []

    def handler(diagnostic: Any) -> None:
        notices.append(str(diagnostic.message_detail or ""))

    connection.add_notice_handler(handler)
    try:
        with connection.cursor(row_factory=tuple_row) as cursor:
            # A transaction id taken now is newer than the purge, which has committed.
            marker = int(cursor.execute("SELECT pg_current_xact_id()::text").fetchone()[0]) % 2**32
            while cursor.execute(_OLDER, (str(marker),)).fetchone()[0] and time.monotonic() < deadline:
                time.sleep(0.05)
            for table in tables:
                while True:
                    notices.clear()
                    cursor.execute(f"VACUUM (FULL, VERBOSE) {table}")
                    if not any(int(n) for d in notices for n in _KEPT.findall(d)):
                        break
                    if time.monotonic() >= deadline:
                        kept.append(table)
                        break
                    time.sleep(0.05)
    finally:
        connection.remove_notice_handler(handler)
    if kept:
        log.warning("erasure: transactions begun before the purge were still open after %.0f s, so old row"
                    " versions were kept; run VACUUM FULL on %s once they have ended", wait_seconds, ", ".join(kept))
    return not kept
