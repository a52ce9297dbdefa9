"""Where a stepped automation looks next (the demo's ``next_due``) and what a look finds due (``due_work``):
as the work rows and the automation's marks together say (the effective rows), found without walking
every due row."""

from __future__ import annotations

from itertools import combinations
from typing import Any

from projections.readside import ReadSide
from projections.sql import Db
from projections.workflow import _EFFECTIVE, WORK, WORK_KINDS, due_work, earliest_todo, mark_work, next_due
from ticketflow.application import TicketDesk

T = [f"2026-10-0{d}T09:00:00+00:00" for d in range(1, 8)]

#: (kind, object, due_at, state, stamp) work rows and (kind, object, stamp, state, due_at) marks.
ROWS = [
    ("sla", "a", "", "due", 5),
    ("sla", "b", "", "due", 7),
    ("follow_up", "c", T[1], "due", 8),
    ("auto_close", "d", T[3], "due", 9),
    ("reminder", "e", T[0], "done", 10),
    ("route", "f", "", "done", 11),
    ("survey", "g", "", "due", 12),
]
MARKED = [
    ("sla", "a", 5, "due", T[2]),  # looked at, due again at T[2]
    ("sla", "b", 6, "due", T[0]),  # an older mark: the row changed since (stamp 7), so it is due now
    ("auto_close", "d", 9, "done", T[3]),  # done
    ("route", "f", 11, "due", T[4]),  # the view settled the row: the mark is moot
]


def fill(db: Db) -> None:
    """The rows as the view writes them (todo_at: the due ones' due_at), then marked as the automation does."""
    for kind, object_id, due_at, state, stamp in ROWS:
        db.execute(
            WORK.upsert_sql,
            (kind, object_id, due_at, state, stamp, None, None, due_at if state == "due" else None),
        )
    for kind, object_id, stamp, state, due_at in MARKED:
        mark_work(db, {"kind": kind, "object_id": object_id, "stamp": stamp}, state, due_at)


def as_the_automation_reads_it(db: Db, after: str, before: str) -> Any:
    """The effective rows, every one of them walked (what the automation's own queries read)."""
    row = db.one(
        f"SELECT MIN(e.due_at) AS due_at FROM ({_EFFECTIVE} WHERE w.state = 'due') e"
        " WHERE e.state = 'due' AND e.due_at > ? AND e.due_at < ?",
        (after, before),
    )
    return row["due_at"] if row and row["due_at"] else None


def test_the_next_instant_work_falls_due_is_the_effective_rows_earliest_in_every_window(
    desk: TicketDesk,
) -> None:
    read_side = ReadSide(desk, ["workflow"])
    try:
        read_side.stores["workflow"].write(fill)
        instants = ["2026-09-30T00:00:00+00:00", *T, "2026-10-09T00:00:00+00:00"]
        for after, before in combinations(instants, 2):
            expected = read_side.read(
                "workflow", lambda db, a=after, b=before: as_the_automation_reads_it(db, a, b)
            )
            assert read_side.read("workflow", lambda db, a=after, b=before: next_due(db, a, b)) == expected
        assert read_side.read("workflow", lambda db: next_due(db, instants[0], instants[-1])) == T[1]
        assert read_side.read("workflow", lambda db: next_due(db, T[1], instants[-1])) == T[2]
    finally:
        read_side.close()


def effective_due(db: Db, kind: str, until: str) -> Any:
    """The effective rows of a kind due by ``until``, every row walked and joined with its mark."""
    return db.all(
        f"SELECT e.kind, e.object_id, e.stamp, e.due_at FROM ({_EFFECTIVE} WHERE w.kind = ? AND w.state = 'due') e"
        " WHERE e.state = 'due' AND e.due_at <= ? ORDER BY e.due_at, e.stamp",
        (kind, until),
    )


def test_a_look_finds_the_effective_rows_due_by_any_instant_in_their_order(desk: TicketDesk) -> None:
    read_side = ReadSide(desk, ["workflow"])
    try:
        read_side.stores["workflow"].write(fill)
        found = {}
        for kind in WORK_KINDS:
            for until in ["", *T, "9999"]:
                expected = read_side.read("workflow", lambda db, k=kind, u=until: effective_due(db, k, u))
                rows = read_side.read("workflow", lambda db, k=kind, u=until: due_work(db, k, u))
                assert [(r["kind"], r["object_id"], r["stamp"], r["due_at"]) for r in rows] == [
                    (r["kind"], r["object_id"], r["stamp"], r["due_at"]) for r in expected
                ]
                found[kind, until] = [r["object_id"] for r in rows]
        # a: put off to T[2]; b: changed since its mark, due now; d: done; f: settled; e: a reminder done.
        assert found["sla", ""] == ["b"]
        assert found["sla", T[2]] == ["b", "a"]
        assert found["auto_close", "9999"] == found["reminder", "9999"] == found["route", "9999"] == []
        assert found["survey", ""] == ["g"]
    finally:
        read_side.close()


def test_a_kind_has_work_due_by_an_instant_exactly_when_its_earliest_work_still_to_do_is_at_or_before_it(
    desk: TicketDesk,
) -> None:
    """What lets an automation without view workers skip a step's query (``Automation._due``): the earliest
    ``todo_at`` per kind says, for every ``until``, whether ``due_work`` finds anything."""
    read_side = ReadSide(desk, ["workflow"])
    try:
        read_side.stores["workflow"].write(fill)
        earliest = read_side.read("workflow", earliest_todo)
        assert set(earliest) == set(WORK_KINDS)
        assert earliest["sla"] == ""  # b: changed since its mark, due now
        assert earliest["route"] is None and earliest["auto_close"] is None and earliest["reminder"] is None
        for kind in WORK_KINDS:
            for until in ["", "2026-09-30T00:00:00+00:00", *T, "9999-12-31"]:
                found = read_side.read("workflow", lambda db, k=kind, u=until: due_work(db, k, u))
                first = earliest[kind]
                assert bool(found) == (first is not None and first <= until), (kind, until)
    finally:
        read_side.close()
