"""The automation's look at the work due (``due_work``) and the demo's look ahead (``next_due``) read
only the rows still to do, in index order: no scan of the work table, no sort (EXPLAIN on SQLite and
PostgreSQL), so their cost follows the rows due, not every ticket whose SLA row the view keeps."""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from projections.readside import ReadSide
from projections.sql import Db, Dialect, ts
from projections.workflow import WORK, WORK_KINDS, due_work, next_due
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.config import Settings

NOW = datetime(2026, 3, 1, tzinfo=UTC)
ROWS = 3000


def seed(db: Db) -> None:
    """Every kind; most rows done (todo_at NULL, as the automation's marks and the log leave them), some
    put off to later, a few due now."""
    rng = random.Random(14)
    rows = []
    for i in range(ROWS):
        kind = WORK_KINDS[i % len(WORK_KINDS)]
        draw = rng.random()
        state = "done" if draw < 0.1 else "due"
        todo = None if draw < 0.8 else ts(NOW + timedelta(minutes=rng.randrange(-60, 6000)))
        rows.append(
            (kind, f"object-{i}", ts(NOW), state, i + 1, None, None, todo if state == "due" else None)
        )
    db.executemany(WORK.upsert_sql, rows)


class Explaining(Db):
    """A Db that explains each statement instead of running it, and keeps the plans."""

    def __init__(self, db: Db) -> None:
        super().__init__(db.cursor, db.dialect, db.prefix)
        self.plans: list[Any] = []

    def _plan(self, template: str, params: Any) -> None:
        if self.dialect is Dialect.POSTGRES:
            rows = Db.all(self, "EXPLAIN (FORMAT JSON) " + template, params)
            row = rows[0]
            document = next(iter(row.values()))
            self.plans.append((json.loads(document) if isinstance(document, str) else document)[0]["Plan"])
        else:
            self.plans.append([r["detail"] for r in Db.all(self, "EXPLAIN QUERY PLAN " + template, params)])

    def all(self, template: str, params: Any = ()) -> list[dict[str, Any]]:
        self._plan(template, params)
        return []

    def one(self, template: str, params: Any = ()) -> dict[str, Any] | None:
        self._plan(template, params)
        return None


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(node for child in plan.get("Plans", []) for node in nodes(child))]


def test_a_look_at_the_work_due_walks_the_index_of_work_still_to_do_in_its_order(
    shared_store_settings: Settings,
) -> None:
    desk = TicketDesk(shared_store_settings, clock=FakeClock(NOW))
    read_side = ReadSide(desk, ["workflow"])
    store = read_side.stores["workflow"]
    try:

        def seeded(db: Db) -> None:
            seed(db)
            db.execute("ANALYZE {p}tf_work")

        store.write(seeded)
        expected = read_side.read(
            "workflow",
            lambda db: db.all(
                "SELECT object_id FROM {p}tf_work WHERE kind = 'sla' AND todo_at <= ? ORDER BY todo_at, stamp",
                (ts(NOW + timedelta(hours=1)),),
            ),
        )
        assert expected  # some due, most not
        found = read_side.read("workflow", lambda db: due_work(db, "sla", ts(NOW + timedelta(hours=1)) or ""))
        assert [r["object_id"] for r in found] == [r["object_id"] for r in expected]

        def explain(db: Db) -> list[Any]:
            if db.dialect is Dialect.POSTGRES:
                for setting in (
                    "enable_seqscan",
                    "enable_bitmapscan",
                    "enable_sort",
                    "enable_incremental_sort",
                ):
                    db.execute(f"SET LOCAL {setting} = off")
            explaining = Explaining(db)
            due_work(explaining, "sla", ts(NOW + timedelta(hours=1)) or "")
            next_due(explaining, ts(NOW) or "", ts(NOW + timedelta(days=2)) or "")
            return explaining.plans

        plans = read_side.read("workflow", explain)
        index = WORK.index_name(("kind", "todo_at", "stamp"), partial=True)
        for plan in plans:
            if store.dialect is Dialect.POSTGRES:
                scans = [n for n in nodes(plan) if n.get("Relation Name") == "tf_work"]
                assert scans and all(n.get("Index Name") == index and "Index Cond" in n for n in scans), plan
                assert not [n for n in nodes(plan) if n["Node Type"] in ("Sort", "Incremental Sort")], plan
            else:
                reads = [d for d in plan if "tf_work" in d]
                assert reads and all(
                    re.match(rf"SEARCH tf_work USING (COVERING )?INDEX {index} \(kind=\? AND todo_at", d)
                    for d in reads
                ), plan
                assert not [d for d in plan if "TEMP B-TREE" in d], plan
        assert len(plans) == 2
    finally:
        read_side.close()
        desk.close()
