"""bench/throughput_table.py's own logic (no bench is run): which parts ``--only`` picks, the database
URL the PostgreSQL part makes, and how a row reads in the Markdown table."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("throughput_table", REPO / "bench" / "throughput_table.py")
assert spec is not None and spec.loader is not None
table = importlib.util.module_from_spec(spec)
sys.modules["throughput_table"] = table  # dataclasses look their module up
spec.loader.exec_module(table)


def test_only_picks_the_named_parts_in_the_tables_order() -> None:
    assert table.parse_parts("views, sqlite,demo") == ["sqlite", "demo", "views"]


def test_only_refuses_a_part_it_does_not_have() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="unknown part\\(s\\) sqlite3"):
        table.parse_parts("sqlite3,demo")


def test_the_postgres_part_names_its_own_database_on_the_same_server() -> None:
    assert (
        table.database_url("postgresql://postgres@127.0.0.1:5432/test?sslmode=disable", "tf_bench_table_1")
        == "postgresql://postgres@127.0.0.1:5432/tf_bench_table_1?sslmode=disable"
    )
    assert table.database_url("postgresql://u:p@db", "mine") == "postgresql://u:p@db/mine"


def test_a_row_reads_as_one_markdown_line_whatever_its_cells_hold() -> None:
    rows = [
        table.Row("commands/s | SQLite", "≥ 1,000", "1,204", True),
        table.Row("demo", "≤ 10 s", "12.0 s wall", False),
        table.Row("peer ratio", "reported", "32 clients 5.00x", None),
    ]
    lines = table.markdown(rows).splitlines()
    assert lines[:2] == ["| measure | target | measured | met? |", "|---|---|---|---|"]
    assert lines[2] == "| commands/s \\| SQLite | ≥ 1,000 | 1,204 | yes |"
    assert lines[3] == "| demo | ≤ 10 s | 12.0 s wall | **no** |"
    assert lines[4] == "| peer ratio | reported | 32 clients 5.00x | — |"


def test_a_part_that_failed_leaves_its_rows_saying_why() -> None:
    args = argparse.Namespace(demo_tickets=1000, queue_tickets=20_000)
    rows = table.failed_rows("sqlite", args, "SystemExit: the server did not answer")
    assert [r.measure for r in rows] == [table.SQLITE_CPU[0], table.SQLITE_RATE[0], table.FSYNCS[0]]
    assert all(r.measured == "failed: SystemExit: the server did not answer" and r.met is None for r in rows)
    (queues,) = table.failed_rows("queues", args, "x")
    assert "20,000 tickets" in queues.measure
