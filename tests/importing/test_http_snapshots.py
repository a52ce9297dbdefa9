"""``POST /api/v1/imports`` with snapshot rows (one row per update, each the case's whole state), on
SQLite and PostgreSQL: diffed by the import engine as ``ticketflow import servicenow`` does, idempotent
by source ids whether a batch comes whole or in parts, with counts and rejects by snapshot row."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from tests.api.conftest import Api

COUNTERS = ("reassignment_count", "reopen_count")


def _snapshots(api: Api) -> list[dict[str, Any]]:
    """Three ServiceNow-shaped incidents, rows out of order: an assignee before a group, a row that changed
    nothing, a gap in the sequence, awaiting states, a reopen after closed, a cleared group and assignee."""
    a, b, customer = str(api.team_a), str(api.team_b), str(api.customer)

    def snap(
        case: str,
        seq: int,
        at: str,
        status: str,
        team: str | None,
        who: str | None,
        counters: tuple[int, int],
        **extra: Any,
    ) -> dict[str, Any]:
        return {
            "case_id": case,
            "sequence": seq,
            "occurred_at": at,
            "status": status,
            "team_id": team,
            "assignee_id": who,
            "priority": extra.pop("priority", "normal"),
            "category": extra.pop("category", "硬件"),
            "source_counters": dict(zip(COUNTERS, counters, strict=True)),
            **extra,
        }

    first = {"subject": "打印机无法连接", "customer_id": customer}
    rows = [
        snap(
            "INC0000001",
            0,
            "2016-03-01T09:00:00+08:00",
            "new",
            None,
            "李伟",
            (0, 0),
            priority="high",
            **first,
        ),
        snap("INC0000001", 1, "2016-03-01T09:10:00+08:00", "new", a, "李伟", (0, 0), priority="high"),
        snap(
            "INC0000001", 3, "2016-03-01T09:20:00+08:00", "new", a, "李伟", (0, 0), priority="high"
        ),  # nothing
        snap(
            "INC0000001",
            4,
            "2016-03-01T10:00:00+08:00",
            "pending",
            a,
            "李伟",
            (0, 0),
            priority="high",
            actor_id="李伟",
        ),
        snap("INC0000001", 5, "2016-03-01T11:00:00+08:00", "solved", a, "李伟", (0, 0), priority="high"),
        snap("INC0000001", 6, "2016-03-01T12:00:00+08:00", "closed", a, "李伟", (0, 0), priority="high"),
        snap(
            "INC0000001", 7, "2016-03-02T08:00:00+08:00", "open", a, "李伟", (0, 1), priority="high"
        ),  # reopen
        snap("INC0000001", 8, "2016-03-02T09:00:00+08:00", "open", None, "李伟", (1, 1), priority="high"),
        snap(
            "INC0000002",
            0,
            "2016-03-03T09:00:00Z",
            "open",
            a,
            None,
            (0, 0),
            category="网络",
            subject="邮箱满了",
            customer_id=customer,
            channel="email",
        ),
        snap("INC0000002", 1, "2016-03-03T09:30:00Z", "open", a, "wang.fang", (0, 0), category="网络"),
        snap("INC0000002", 2, "2016-03-03T10:00:00Z", "on_hold", b, None, (1, 0), category="网络"),
        snap(
            "INC0000002",
            3,
            "2016-03-03T11:00:00Z",
            "on_hold",
            b,
            None,
            (1, 0),
            category="邮件",
            priority="urgent",
        ),
        snap(
            "INC0000002",
            4,
            "2016-03-03T12:00:00Z",
            "solved",
            b,
            None,
            (1, 0),
            category="邮件",
            priority="urgent",
        ),
        snap(
            "INC0000003",
            0,
            "2016-03-04T09:00:00Z",
            "new",
            b,
            None,
            (0, 0),
            subject="VPN 断线",
            customer_id=customer,
        ),
        snap(
            "INC0000003", 1, "2016-03-04T09:05:00Z", "new", b, None, (0, 0)
        ),  # changed nothing, counters the same
    ]
    return rows[::-1]  # out of order: the sequence orders each case


def _post(api: Api, source: str, snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    response = api.post("admin", "/api/v1/imports", {"source": source, "snapshots": snapshots})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def _state(api: Api, ticket: str) -> tuple[Any, ...]:
    t = api.desk.get_ticket(UUID(ticket))
    return (
        str(t.status),
        t.team_id and str(t.team_id),
        t.assignee_id,
        str(t.priority),
        t.category,
        t.source_counters,
    )


def test_snapshots_posted_in_two_halves_then_again_match_the_source_without_duplicates(iapi: Api) -> None:
    rows = _snapshots(iapi)
    early = [
        r
        for r in rows
        if r["case_id"] == "INC0000003" or (r["case_id"] == "INC0000001" and r["sequence"] <= 5)
    ]
    halves = (
        early,
        [r for r in rows if r not in early],
    )  # INC0000001 is split between them, at its closed state
    assert {r["case_id"] for r in halves[0]} & {r["case_id"] for r in halves[1]}
    answers = [_post(iapi, "servicenow", half) for half in halves]
    assert [a["counts"]["rejected"] for a in answers] == [0, 0], answers
    end = iapi.desk.log_position()
    again = _post(iapi, "servicenow", rows)
    assert again["written"] == 0 and iapi.desk.log_position() == end
    assert (
        again["counts"] == {"cases": 3, "events": 15, "recorded": 15, "rejected": 0}
        and again["rejects"] == []
    )
    # Each case ends as its last snapshot says.
    last = {r["case_id"]: r for r in sorted(rows, key=lambda r: r["sequence"])}
    for case, ticket in again["tickets"].items():
        row = last[case]
        assert _state(iapi, ticket) == (
            row["status"],
            row["team_id"],
            row["assignee_id"],
            row["priority"],
            row["category"],
            row["source_counters"],
        ), case
    # The same rows posted whole (under another source) give the same history, event for event.
    whole = _post(iapi, "servicenow-whole", rows)
    for case, ticket in again["tickets"].items():
        parts = [(type(e).__qualname__, e.occurred_at) for e in iapi.desk.history(UUID(ticket))]
        once = [
            (type(e).__qualname__, e.occurred_at) for e in iapi.desk.history(UUID(whole["tickets"][case]))
        ]
        assert parts == once, case
    history = [type(e).__qualname__ for e in iapi.desk.history(UUID(again["tickets"]["INC0000001"]))]
    assert history[:3] == [
        "Ticket.Opened",
        "Ticket.Assigned",
        "Ticket.Transferred",
    ]  # new with an assignee first
    assert "Ticket.Reopened" in history and history[-1] == "Ticket.RemovedFromTeam"
    first = iapi.desk.get_ticket(UUID(again["tickets"]["INC0000001"]))
    assert (first.reopen_count, all(e.imported for e in iapi.desk.history(first.id)[1:])) == (1, True)


def test_a_bad_snapshot_is_rejected_with_its_index_and_its_case_is_not_written(iapi: Api) -> None:
    rows = _snapshots(iapi)[
        ::-1
    ]  # in order: INC0000001 rows 0-7, INC0000002 rows 8-12, INC0000003 rows 13-14
    rows[10] = {**rows[10], "status": "frozen"}
    rows[13] = {k: v for k, v in rows[13].items() if k != "subject"}
    answer = _post(iapi, "servicenow", rows)
    rejects = {r["row"]: r for r in answer["rejects"]}
    assert "status" in rejects[10]["reason"] and rejects[10]["case_id"] == "INC0000002"
    assert all(rejects[i]["reason"] == "case not written: row 10 was rejected" for i in (8, 9, 11, 12))
    assert "needs subject and customer_id" in rejects[13]["reason"] and 14 in rejects
    assert answer["counts"] == {"cases": 3, "events": 15, "recorded": 8, "rejected": 7}
    assert list(answer["tickets"]) == ["INC0000001"]


def test_a_batch_holds_either_events_or_snapshots(iapi: Api) -> None:
    row = _snapshots(iapi)[-1]
    for body in (
        {"source": "servicenow", "snapshots": [row], "events": [row]},
        {"source": "servicenow"},
        {"source": "servicenow", "snapshots": []},
    ):
        response = iapi.post("admin", "/api/v1/imports", body)
        assert response.status_code == 422 and response.headers["content-type"].startswith(
            "application/problem+json"
        )


def test_only_a_token_granted_import_may_post_snapshots(iapi: Api) -> None:
    from ticketflow.batch_snapshots import record_snapshots
    from ticketflow.domain.values import Channel, Role
    from ticketflow.errors import PermissionDenied
    from ticketflow.metadata import Caller

    for who in ("agent_a", "integration"):
        response = iapi.post(who, "/api/v1/imports", {"source": "servicenow", "snapshots": _snapshots(iapi)})
        assert response.status_code == 403, who
    with pytest.raises(PermissionDenied):  # the desk's own check (not via import), even with nothing to write
        record_snapshots(iapi.desk, "servicenow", [], Caller("li.wei", Role.AGENT, Channel.API))
