"""History over HTTP goes through ``POST /api/v1/imports`` only: a ticket command's body refuses
``occurred_at`` (a 422 problem naming the field) whatever the token, and nothing is written; the same
history posted to ``/imports`` by the same token keeps its business time, marked imported."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from tests.api.conftest import Api
from tests.support import ADMIN
from ticketflow.access import Permission
from ticketflow.commands.access import IssueToken
from ticketflow.domain.values import Role

PROBLEM = "application/problem+json"
THEN = "2016-03-15T09:30:00+08:00"


def import_token(api: Api) -> str:
    command = IssueToken(
        name="servicenow-migration",
        role=Role.INTEGRATION,
        team_ids=[api.team_a],
        permissions=[Permission.TICKETS_OPEN, Permission.TICKETS_WRITE, Permission.IMPORT],
    )
    _, token = api.desk.issue_token(command, ADMIN)
    assert token is not None
    api.tokens["migration"] = token
    return "migration"


def opened(api: Api, who: str, **extra: Any) -> Any:
    body = {
        "subject": "INC0010001 网络中断",
        "requester_id": str(api.customer),
        "team_id": str(api.team_a),
        **extra,
    }
    return api.post(who, "/api/v1/tickets", body)


def refused_for_occurred_at(response: Any) -> bool:
    if response.status_code != 422 or not response.headers["content-type"].startswith(PROBLEM):
        return False
    return "occurred_at" in response.text


def test_ticket_commands_refuse_occurred_at_whatever_the_token_and_write_nothing(api: Api) -> None:
    ticket = api.open_ticket()
    import_token(api)
    before = api.desk.log_position()
    for who in ("agent_a", "supervisor_a", "admin", "migration"):
        assert refused_for_occurred_at(opened(api, who, occurred_at=THEN)), who
        for route, body in (
            ("assign", {"assignee_id": "li.wei"}),
            ("pend", {}),
            ("notes", {"body": "x"}),
            ("priority", {"priority": "urgent"}),
        ):
            response = api.post(who, f"/api/v1/tickets/{ticket}/{route}", {**body, "occurred_at": THEN})
            assert refused_for_occurred_at(response), (who, route, response.text)
    assert api.desk.log_position() == before
    schema = api.get("admin", "/openapi.json").json()["components"]["schemas"]
    assert not [
        name
        for name, model in schema.items()
        if name.endswith("Body") or name == "TicketCreate"
        if "occurred_at" in model.get("properties", {})
    ]


def test_the_same_history_posted_to_imports_keeps_its_times_marked_imported(api: Api) -> None:
    who = import_token(api)
    batch = {
        "source": "servicenow",
        "events": [
            {
                "case_id": "INC0010001",
                "event_id": "1",
                "kind": "opened",
                "occurred_at": THEN,
                "subject": "INC0010001 网络中断",
                "customer_id": str(api.customer),
                "team_id": str(api.team_a),
            },
            {
                "case_id": "INC0010001",
                "event_id": "2",
                "kind": "assignee",
                "occurred_at": "2016-03-15T10:00:00+08:00",
                "assignee_id": "li.wei",
            },
        ],
    }
    response = api.post(who, "/api/v1/imports", batch)
    assert response.status_code == 200, response.text
    ticket = UUID(response.json()["tickets"]["INC0010001"])
    history = api.desk.history(ticket)
    assert [(type(e).__name__, e.occurred_at, e.via) for e in history] == [
        ("Opened", datetime(2016, 3, 15, 1, 30, tzinfo=UTC), "import"),
        ("Assigned", datetime(2016, 3, 15, 2, 0, tzinfo=UTC), "import"),
    ]
    assert all(e.imported for e in history[1:])
    api.wait(response.json()["position"])
    row = api.get("admin", f"/api/v1/tickets/{ticket}").json()
    assert (row["imported"], row["created_at"][:10]) == (True, "2016-03-15")


def test_a_future_or_ancient_or_naive_time_is_rejected_by_imports(api: Api) -> None:
    who = import_token(api)
    before = api.desk.log_position()
    for value in ("2999-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "2016-03-15T09:30:00"):
        batch = {
            "source": "servicenow",
            "events": [
                {
                    "case_id": "INC1",
                    "kind": "opened",
                    "occurred_at": value,
                    "subject": "网络中断",
                    "customer_id": str(api.customer),
                    "team_id": str(api.team_a),
                }
            ],
        }
        answer = api.post(who, "/api/v1/imports", batch).json()
        assert answer["counts"]["recorded"] == 0 and answer["rejects"][0]["row"] == 0, (value, answer)
    assert api.desk.log_position() == before
