"""On SQLite nothing imports psycopg: ``eventsourcing.postgres`` (and psycopg with it) costs each CLI
command ~0.1-0.2 s, so the view store, the as-of reader and the erasure rewrite import it only when the
store is PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = """
import sys
import ticketflow_cli, projections.asof, projections.view, projections.readside, ticketflow.privacy.keys
from projections.view import store_class, Dialect
from projections.tickets import TicketsView
store_class(TicketsView, Dialect.SQLITE)
loaded = sorted(name for name in sys.modules if name.startswith(("psycopg", "eventsourcing.postgres")))
print(",".join(loaded))
"""


def test_the_cli_and_the_sqlite_view_stores_do_not_import_psycopg() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_postgres_view_store_is_still_importable_from_projections_view() -> None:
    from projections.view import PostgresViewStore
    from projections.view_pg import PostgresViewStore as moved

    assert PostgresViewStore is moved
