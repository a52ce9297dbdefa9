"""POST /api/v1/surveys/{token}: public, answered once, refused clearly, rate-limited per address."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest

from ticketflow.clock import FakeClock
from ticketflow.config import Settings
from tests.api.conftest import Api
from tests.workflow_api.conftest import build, solve, survey_token


def answer(api: Api, token: str, score: int = 5, comment: str = "", **headers: str) -> object:
    return api.client.post(f"/api/v1/surveys/{token}", json={"score": score, "comment": comment}, headers=headers)


def test_a_survey_is_answered_once_without_an_account_and_the_rating_reaches_the_ticket_and_the_customer(api: Api) -> None:
    ticket_id = api.open_ticket()
    solve(api, ticket_id, "重置了密码")
    token = survey_token(api.desk, UUID(ticket_id))
    first = answer(api, token, 4, "很快")
    assert first.status_code == 200, first.text  # type: ignore[attr-defined]
    assert first.json() == {"recorded": True, "score": 4}  # type: ignore[attr-defined]
    api.wait(int(first.headers["X-Log-Position"]))  # type: ignore[attr-defined]
    assert api.get("agent_a", f"/api/v1/tickets/{ticket_id}").json()["satisfaction"] == 4
    overview = api.get("agent_a", f"/api/v1/customers/{api.customer}/overview").json()
    assert [t["satisfaction"] for t in overview["tickets"]] == [4]
    assert overview["figures"]["average_satisfaction"] == 4.0
    report = api.get("agent_a", "/api/v1/reports/satisfaction").json()
    assert report[0]["ratings"] == 1
    repeated = answer(api, token, 1)
    assert repeated.status_code == 409  # type: ignore[attr-defined]
    assert repeated.json()["detail"] == "this survey was already answered"  # type: ignore[attr-defined]
    assert repeated.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]


def test_a_late_answer_is_refused_with_the_expiry_time(api: Api, clock: FakeClock) -> None:
    ticket_id = api.open_ticket()
    solve(api, ticket_id)
    token = survey_token(api.desk, UUID(ticket_id))
    clock.advance(timedelta(days=15))
    late = answer(api, token, 3)
    assert late.status_code == 409  # type: ignore[attr-defined]
    assert late.json()["detail"].startswith("this survey expired at ")  # type: ignore[attr-defined]


def test_an_invalid_or_tampered_token_and_a_bad_score_are_refused(api: Api) -> None:
    ticket_id = api.open_ticket()
    solve(api, ticket_id)
    token = survey_token(api.desk, UUID(ticket_id))
    for bad in ("sv_not-a-real-token", token[:-1] + ("0" if token[-1] != "0" else "1")):
        response = answer(api, bad)
        assert response.status_code == 422  # type: ignore[attr-defined]
        assert response.json()["detail"] == "this survey link is not valid"  # type: ignore[attr-defined]
    assert answer(api, token, 6).status_code == 422  # type: ignore[attr-defined]
    assert answer(api, token, 5).status_code == 200  # type: ignore[attr-defined]


def test_a_bearer_token_is_neither_needed_nor_used(api: Api) -> None:
    ticket_id = api.open_ticket()
    solve(api, ticket_id)
    token = survey_token(api.desk, UUID(ticket_id))
    response = answer(api, token, 5, Authorization="Bearer not-a-token")
    assert response.status_code == 200  # type: ignore[attr-defined]
    rated = [e for e in api.desk.history(UUID(ticket_id)) if type(e).__name__ == "Rated"]
    assert [(e.actor_id, e.actor_role) for e in rated] == [(str(api.customer), "customer")]


@pytest.fixture
def limited_api(tmp_path: Path, clock: FakeClock) -> Iterator[Api]:
    yield from build(Settings(data_dir=tmp_path / "limited", automation=False, rate_limit_burst=20,
                              rate_limit_per_second=0.01), clock)


def test_answers_are_rate_limited_per_address_even_with_made_up_bearer_tokens(limited_api: Api) -> None:
    statuses = [
        answer(limited_api, "sv_" + "0" * 64 + "_" + "0" * 32, Authorization=f"Bearer guess-{i}").status_code  # type: ignore[attr-defined]
        for i in range(4)
    ]
    assert statuses[:2] == [422, 422] and statuses[2:] == [429, 429]  # a tenth of the burst of 20
