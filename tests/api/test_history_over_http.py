"""History over HTTP: a token granted `import` may send `occurred_at`; its events keep that business
time and are marked imported. Any other token sending it is refused, and nothing is written."""

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


def test_an_import_token_records_a_ticket_and_its_changes_at_their_original_times(api: Api) -> None:
    who = import_token(api)
    response = opened(api, who, occurred_at=THEN)
    assert response.status_code == 201, response.text
    ticket = response.json()["id"]
    assigned = api.post(
        who,
        f"/api/v1/tickets/{ticket}/assign",
        {"assignee_id": "li.wei", "occurred_at": "2016-03-15T10:00:00+08:00"},
    )
    assert assigned.status_code == 200, assigned.text
    history = api.desk.history(UUID(ticket))
    assert [(type(e).__name__, e.occurred_at, e.imported, e.via) for e in history] == [
        ("Opened", datetime(2016, 3, 15, 1, 30, tzinfo=UTC), True, "import"),
        ("Assigned", datetime(2016, 3, 15, 2, 0, tzinfo=UTC), True, "import"),
        ("MarkedOpen", datetime(2016, 3, 15, 2, 0, tzinfo=UTC), True, "import"),
    ]
    api.wait(int(assigned.headers["X-Log-Position"]))
    row = api.get("admin", f"/api/v1/tickets/{ticket}").json()
    assert (row["imported"], row["created_at"][:10]) == (True, "2016-03-15")


def test_without_the_import_permission_occurred_at_is_refused_and_nothing_is_written(api: Api) -> None:
    ticket = api.open_ticket()
    before = api.desk.log_position()
    for who in ("agent_a", "supervisor_a"):
        response = opened(api, who, occurred_at=THEN)
        assert response.status_code == 403 and response.headers["content-type"].startswith(PROBLEM)
        assert "import permission" in response.json()["detail"]
        pend = api.post(who, f"/api/v1/tickets/{ticket}/pend", {"occurred_at": THEN})
        assert pend.status_code == 403
    assert api.desk.log_position() == before


def test_a_future_or_ancient_or_naive_time_is_refused(api: Api) -> None:
    who = import_token(api)
    before = api.desk.log_position()
    future = opened(api, who, occurred_at="2999-01-01T00:00:00Z")
    assert future.status_code in (409, 422) and "in the future" in future.json()["detail"]
    for value in ("1969-12-31T23:59:59Z", "2016-03-15T09:30:00"):
        bad = opened(api, who, occurred_at=value)
        assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM), value
    assert api.desk.log_position() == before
