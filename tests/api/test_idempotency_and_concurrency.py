"""Retries never duplicate an event; racing writers never silently overwrite."""

from __future__ import annotations

import threading
from typing import Any

from tests.api.conftest import Api


def test_a_retry_with_the_same_key_returns_the_first_response_and_writes_nothing(api: Api) -> None:
    body = {"subject": "重复提交", "requester_id": str(api.customer), "team_id": str(api.team_a)}
    first = api.post("agent_a", "/api/v1/tickets", body, **{"Idempotency-Key": "k-1"})
    position = api.desk.log_position()
    again = api.post("agent_a", "/api/v1/tickets", body, **{"Idempotency-Key": "k-1"})
    assert again.status_code == first.status_code == 201
    assert again.json() == first.json() and again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert api.desk.log_position() == position


def test_the_same_key_with_a_different_body_is_422(api: Api) -> None:
    ticket = api.open_ticket()
    api.post("agent_a", f"/api/v1/tickets/{ticket}/notes", {"body": "one"}, **{"Idempotency-Key": "k-2"})
    response = api.post("agent_a", f"/api/v1/tickets/{ticket}/notes", {"body": "two"}, **{"Idempotency-Key": "k-2"})
    assert response.status_code == 422 and response.json()["type"].endswith("/idempotency_key_reused")


def test_keys_are_scoped_to_the_caller(api: Api) -> None:
    ticket = api.open_ticket()
    a = api.post("agent_a", f"/api/v1/tickets/{ticket}/notes", {"body": "same"}, **{"Idempotency-Key": "shared"})
    b = api.post("admin", f"/api/v1/tickets/{ticket}/notes", {"body": "same"}, **{"Idempotency-Key": "shared"})
    assert a.status_code == b.status_code == 200 and "Idempotent-Replayed" not in b.headers
    assert a.json()["version"] != b.json()["version"]


def test_a_retry_while_the_first_is_still_running_is_409(api: Api) -> None:
    from api.middleware import caller_scope

    store = api.client.app.state.services.idempotency  # type: ignore[attr-defined]
    ticket = api.open_ticket()
    path = f"/api/v1/tickets/{ticket}/notes"
    body = b'{"body":"slow"}'
    import hashlib

    class Fake:
        headers = {"authorization": f"Bearer {api.tokens['agent_a']}"}
        client = None

    fingerprint = hashlib.sha256(b"POST" + path.encode() + b"\n" + body).hexdigest()
    store.begin(caller_scope(Fake()), "k-running", fingerprint)  # the first request is mid-flight
    response = api.client.post(path, content=body, headers=api.headers("agent_a", **{"Idempotency-Key": "k-running", "content-type": "application/json"}))
    assert response.status_code == 409 and response.headers["Retry-After"] == "1"


def test_parallel_retries_of_one_request_write_one_event(api: Api) -> None:
    ticket = api.open_ticket()
    before = len(api.desk.history(__import__("uuid").UUID(ticket)))
    results: list[Any] = []

    def send() -> None:
        results.append(api.post("agent_a", f"/api/v1/tickets/{ticket}/notes", {"body": "once"}, **{"Idempotency-Key": "k-par"}))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.status_code for r in results} <= {200, 409}
    assert len(api.desk.history(__import__("uuid").UUID(ticket))) == before + 1


def test_two_agents_racing_on_one_ticket_one_wins_one_gets_412(api: Api) -> None:
    ticket = api.open_ticket()
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def change(priority: str) -> None:
        barrier.wait()
        statuses.append(api.post("agent_a", f"/api/v1/tickets/{ticket}/priority", {"priority": priority}, **{"If-Match": '"1"'}).status_code)

    threads = [threading.Thread(target=change, args=(p,)) for p in ("high", "urgent")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) in ([200, 409], [200, 412])
    assert api.desk.get_ticket(__import__("uuid").UUID(ticket)).version == 2


def test_parallel_clients_all_land_and_state_equals_replay(api: Api) -> None:
    import functools
    from uuid import UUID

    ticket = api.open_ticket()
    errors: list[int] = []

    def note(i: int) -> None:
        response = api.post("agent_a", f"/api/v1/tickets/{ticket}/notes", {"body": f"note {i}"})
        if response.status_code != 200:
            errors.append(response.status_code)

    threads = [threading.Thread(target=note, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    events = api.desk.history(UUID(ticket))
    assert sorted(e.body for e in events if hasattr(e, "body")) == sorted(f"note {i}" for i in range(12))
    replayed = functools.reduce(lambda agg, e: e.mutate(agg), events, None)
    live = api.desk.get_ticket(UUID(ticket))
    assert {k: v for k, v in vars(replayed).items() if k != "_pending_events"} == {k: v for k, v in vars(live).items() if k != "_pending_events"}


def test_the_key_scope_is_the_token_not_the_spelling_of_the_header(api: Api) -> None:
    ticket = api.open_ticket()
    token = api.tokens["agent_a"]
    first = api.client.post(f"/api/v1/tickets/{ticket}/notes", json={"body": "x"},
                            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "spell"})
    again = api.client.post(f"/api/v1/tickets/{ticket}/notes", json={"body": "x"},
                            headers={"Authorization": f"bearer   {token}", "Idempotency-Key": "spell"})
    assert first.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
