"""``POST /api/v1/imports``: history over HTTP, for a token granted ``import``, on SQLite and PostgreSQL.

A batch of historical events is recorded as imported facts at their own times; posting it again
writes nothing and answers the same counts; a bad row is rejected with its index and its case is
not written at all.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from tests.api.conftest import Api


def _batch(api: Api) -> dict[str, Any]:
    """Two ServiceNow-style cases: one with the quirks live commands refuse, one with replies in Chinese."""
    a, customer = str(api.team_a), str(api.customer)
    return {"source": "servicenow", "events": [
        {"case_id": "INC0000001", "event_id": "1", "kind": "opened", "occurred_at": "2016-03-01T09:00:00+08:00",
         "subject": "打印机无法连接", "customer_id": customer, "priority": "high", "category": "hardware"},
        {"case_id": "INC0000001", "event_id": "2", "kind": "assignee", "occurred_at": "2016-03-01T09:05:00+08:00",
         "assignee_id": "李伟"},  # an assignee before any group, and still new
        {"case_id": "INC0000001", "event_id": "3", "kind": "team", "occurred_at": "2016-03-01T09:10:00+08:00",
         "team_id": a},
        {"case_id": "INC0000001", "event_id": "4", "kind": "status", "occurred_at": "2016-03-01T10:00:00+08:00",
         "status": "closed", "actor_id": "李伟"},
        {"case_id": "INC0000001", "event_id": "5", "kind": "status", "occurred_at": "2016-03-02T08:00:00+08:00",
         "status": "open", "reason": "客户回电"},  # a reopen after closed
        {"case_id": "INC0000002", "kind": "opened", "occurred_at": "2016-03-03T09:00:00Z",
         "subject": "邮箱满了", "customer_id": customer, "team_id": a, "actor_id": "emma.clark"},
        {"case_id": "INC0000002", "kind": "reply", "occurred_at": "2016-03-03T09:30:00Z",
         "body": "您好，我的邮箱提示已满。", "direction": "inbound"},
        {"case_id": "INC0000002", "kind": "reply", "occurred_at": "2016-03-03T10:00:00Z",
         "body": "已为您扩容到 10 GB。", "actor_id": "emma.clark"},
        {"case_id": "INC0000002", "kind": "note", "occurred_at": "2016-03-03T10:01:00Z", "body": "配额已调整"},
        {"case_id": "INC0000002", "kind": "category", "occurred_at": "2016-03-03T10:02:00Z", "category": "邮件"},
        {"case_id": "INC0000002", "kind": "status", "occurred_at": "2016-03-03T10:05:00Z", "status": "solved"},
    ]}


def _post(api: Api, who: str, body: dict[str, Any]) -> Any:
    return api.post(who, "/api/v1/imports", body)


def test_a_batch_is_recorded_as_imported_facts_at_their_own_times(iapi: Api) -> None:
    response = _post(iapi, "admin", _batch(iapi))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["counts"] == {"cases": 2, "events": 11, "recorded": 11, "rejected": 0} and answer["rejects"] == []
    first = iapi.desk.get_ticket(UUID(answer["tickets"]["INC0000001"]))
    assert (first.status, first.team_id, first.assignee_id, first.reopen_count) == ("open", iapi.team_a, "李伟", 1)
    events = iapi.desk.history(first.id)
    assert all(e.imported for e in events[1:]) and events[0].occurred_at == datetime(2016, 3, 1, 1, tzinfo=UTC)
    assert [type(e).__qualname__ for e in events] == [
        "Ticket.Opened", "Ticket.Assigned", "Ticket.Transferred", "Ticket.Closed", "Ticket.Reopened"]
    assert answer["written"] == sum(len(iapi.desk.history(UUID(t))) for t in answer["tickets"].values())
    second = iapi.desk.get_ticket(UUID(answer["tickets"]["INC0000002"]))
    assert (second.status, second.category, second.public_reply_count) == ("solved", "邮件", 2)
    assert iapi.desk.history(second.id)[0].actor_id == "emma.clark"  # the source's person opened it
    texts = [getattr(e, "body", None) for e in iapi.desk.history(second.id)]
    assert "您好，我的邮箱提示已满。" in texts and "已为您扩容到 10 GB。" in texts
    # The views show it (Chinese included), as it stood on business time.
    iapi.wait(answer["position"])
    row = iapi.get("admin", f"/api/v1/tickets/{second.id}").json()
    assert row["subject"] == "邮箱满了" and row["imported"] is True and row["created_at"].startswith("2016-03-03T09:00")
    then = iapi.get("admin", f"/api/v1/tickets/{first.id}", params={"as_of": "2016-03-01T01:30:00Z",
                                                                   "as_of_basis": "business"}).json()
    assert (then["status"], then["assignee_id"], then["team_id"]) == ("new", "李伟", str(iapi.team_a))  # new, assigned


def test_posting_the_same_batch_again_writes_nothing_and_answers_the_same_counts(iapi: Api) -> None:
    batch = _batch(iapi)
    first = _post(iapi, "admin", batch).json()
    end = iapi.desk.log_position()
    again = _post(iapi, "admin", batch).json()
    assert again["counts"] == first["counts"] == {"cases": 2, "events": 11, "recorded": 11, "rejected": 0}
    assert again["tickets"] == first["tickets"] and again["written"] == 0 and iapi.desk.log_position() == end
    # A later batch that repeats the history and adds to it writes only what is new.
    batch["events"].append({"case_id": "INC0000001", "event_id": "6", "kind": "priority",
                            "occurred_at": "2016-03-02T09:00:00+08:00", "priority": "urgent"})
    more = _post(iapi, "admin", batch).json()
    assert more["written"] == 1 and more["counts"]["recorded"] == 12
    assert iapi.desk.get_ticket(UUID(first["tickets"]["INC0000001"])).priority == "urgent"
    # The same rows without event ids are recognised by their content.
    for row in batch["events"]:
        row.pop("event_id", None)
    _post(iapi, "admin", {**batch, "source": "jira"})
    position = iapi.desk.log_position()
    assert _post(iapi, "admin", {**batch, "source": "jira"}).json()["written"] == 0
    assert iapi.desk.log_position() == position


def test_a_bad_row_is_rejected_with_its_index_and_its_case_is_not_written(iapi: Api) -> None:
    batch = _batch(iapi)
    batch["events"][8] = {"case_id": "INC0000002", "kind": "note", "occurred_at": "yesterday", "body": "x"}
    batch["events"].append({"case_id": "INC0000003", "kind": "status", "occurred_at": "2016-04-01T00:00:00Z",
                            "status": "open"})  # never opened
    batch["events"].append({"kind": "note", "occurred_at": "2016-04-01T00:00:00Z", "body": "no case"})
    answer = _post(iapi, "admin", batch).json()
    rejects = {r["row"]: r for r in answer["rejects"]}
    assert "occurred_at" in rejects[8]["reason"] and rejects[8]["case_id"] == "INC0000002"
    assert all(rejects[i]["reason"] == "case not written: row 8 was rejected" for i in (5, 6, 7, 9, 10))
    assert "no opened event" in rejects[11]["reason"] and "case_id" in rejects[12]["reason"]
    assert answer["counts"] == {"cases": 3, "events": 13, "recorded": 5, "rejected": 8}
    assert list(answer["tickets"]) == ["INC0000001"]
    tickets = [e for e in iapi.desk.recorder.select_notifications(1, 10_000) if e.topic.endswith("Ticket.Opened")]
    assert len(tickets) == 1  # the rejected case wrote nothing
    # A case whose later row the desk would refuse (an unknown team) is refused before its first write.
    batch = _batch(iapi)
    batch["events"][9] = {"case_id": "INC0000002", "kind": "team", "occurred_at": "2016-03-03T10:02:00Z",
                          "team_id": "6457ba06-ac25-5a5e-8355-4547dfa4b853"}
    answer = _post(iapi, "admin", batch).json()
    assert {r["row"] for r in answer["rejects"]} == {5, 6, 7, 8, 9, 10} and "not found" in answer["rejects"][4]["reason"]
    assert "INC0000002" not in answer["tickets"]


def test_only_a_token_granted_import_may_post_history(iapi: Api) -> None:
    for who in ("agent_a", "supervisor_a", "integration", "auditor"):
        refused = _post(iapi, who, _batch(iapi))
        assert refused.status_code == 403, who
        assert refused.headers["content-type"].startswith("application/problem+json")
        article = "an" if who in ("agent_a", "integration", "auditor") else "a"
        assert refused.json()["detail"].startswith(f"{article} {who.removesuffix('_a')} token may not"), refused.text
    assert not any(n.topic.endswith("Ticket.Opened") for n in iapi.desk.recorder.select_notifications(1, 10_000))
    assert _post(iapi, "admin", _batch(iapi)).status_code == 200
    # An integration may name only its own teams.
    batch = _batch(iapi)
    batch["events"][5]["team_id"] = str(iapi.team_b)
    batch["events"][5]["case_id"] = batch["events"][6]["case_id"] = "INC0000009"
    answer = _post(iapi, "migrator", {"source": "servicenow", "events": batch["events"][5:7]}).json()
    assert "not in this token's teams" in answer["rejects"][0]["reason"] and answer["counts"]["recorded"] == 0
    answer = _post(iapi, "migrator", {"source": "servicenow", "events": _batch(iapi)["events"][:5]}).json()
    assert "without a team (triage) is not in this token's scope" in answer["rejects"][0]["reason"]


def test_a_malformed_batch_is_a_problem(iapi: Api) -> None:
    bodies: tuple[dict[str, Any], ...] = (
        {"source": "servicenow", "events": []}, {"events": [{}]}, {"source": "bad source", "events": [{}]})
    for body in bodies:
        response = _post(iapi, "admin", body)
        assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json")
