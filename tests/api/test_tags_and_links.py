"""Tagging and linking tickets over HTTP: POST /api/v1/tickets/{id}/tags and /links."""

from __future__ import annotations

from uuid import UUID

import pytest

from tests.api.conftest import Api
from ticketflow.commands import LinkTicket
from ticketflow.errors import TicketNotFound

PROBLEM = "application/problem+json"


def _read(api: Api, who: str, ticket: str, response: object) -> dict[str, object]:
    position = response.headers["X-Log-Position"]  # type: ignore[attr-defined]
    read = api.get(who, f"/api/v1/tickets/{ticket}", params={"min_position": position})
    assert read.status_code == 200, read.text
    return read.json()  # type: ignore[no-any-return]


def test_an_agent_tags_a_ticket_in_chinese_and_the_tags_show_on_the_ticket(api: Api) -> None:
    ticket = api.open_ticket()
    response = api.post("agent_a", f"/api/v1/tickets/{ticket}/tags", {"add": ["打印机", "VIP", "network", "卡纸"]})
    assert response.status_code == 200, response.text
    assert response.json()["events"] == ["Ticket.TagsChanged"] and response.headers["ETag"] == '"2"'
    assert _read(api, "agent_a", ticket, response)["tags"] == sorted(["打印机", "vip", "network", "卡纸"])

    response = api.post("agent_a", f"/api/v1/tickets/{ticket}/tags", {"add": ["硒鼓"], "remove": ["network", "卡纸"]},
                        **{"If-Match": '"2"'})
    assert response.status_code == 200, response.text
    row = _read(api, "agent_a", ticket, response)
    assert row["tags"] == sorted(["打印机", "vip", "硒鼓"]) and row["version"] == 3
    listed = api.get("agent_a", "/api/v1/tickets", params={"min_position": response.headers["X-Log-Position"]}).json()
    assert next(t for t in listed["items"] if t["ticket_id"] == ticket)["tags"] == sorted(["打印机", "vip", "硒鼓"])
    audit = api.get("agent_a", f"/api/v1/tickets/{ticket}/audit").json()
    assert {"field": "tags", "old": sorted(["打印机", "vip", "network", "卡纸"]), "new": sorted(["打印机", "vip", "硒鼓"])} \
        in audit[-1]["changes"]


def test_a_tag_that_is_not_a_tag_is_422_and_asking_for_no_change_is_refused(api: Api) -> None:
    ticket = api.open_ticket()
    before = api.desk.log_position()
    bad = api.post("agent_a", f"/api/v1/tickets/{ticket}/tags", {"add": ["打印机 卡纸"]})  # a space
    assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)
    assert api.post("agent_a", f"/api/v1/tickets/{ticket}/tags", {"add": ["x"], "status": "closed"}).status_code == 422
    nothing = api.post("agent_a", f"/api/v1/tickets/{ticket}/tags", {"remove": ["never-set"]})
    assert nothing.status_code in (409, 422) and nothing.headers["content-type"].startswith(PROBLEM)
    assert api.desk.log_position() == before


@pytest.mark.parametrize("path, body", [("tags", {"add": ["打印机"]}), ("links", None)])
def test_a_stale_if_match_is_412_and_writes_nothing(api: Api, path: str, body: dict[str, object] | None) -> None:
    ticket, other = api.open_ticket(), api.open_ticket(subject="打印机又卡纸")
    body = body or {"other_ticket_id": other}
    assert api.post("agent_a", f"/api/v1/tickets/{ticket}/notes", {"body": "first"}).status_code == 200  # version 2
    before = api.desk.log_position()
    stale = api.post("agent_a", f"/api/v1/tickets/{ticket}/{path}", body, **{"If-Match": '"1"'})
    assert stale.status_code == 412 and stale.headers["content-type"].startswith(PROBLEM)
    assert api.desk.log_position() == before
    fresh = api.post("agent_a", f"/api/v1/tickets/{ticket}/{path}", body, **{"If-Match": '"2"'})
    assert fresh.status_code == 200 and fresh.headers["ETag"] == '"3"'


def test_a_retried_tag_change_with_the_same_idempotency_key_is_replayed(api: Api) -> None:
    ticket = api.open_ticket()
    first = api.post("agent_a", f"/api/v1/tickets/{ticket}/tags", {"add": ["打印机"]}, **{"Idempotency-Key": "tag-1"})
    again = api.post("agent_a", f"/api/v1/tickets/{ticket}/tags", {"add": ["打印机"]}, **{"Idempotency-Key": "tag-1"})
    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()


def test_an_agent_links_two_tickets_of_their_team_and_the_link_is_in_the_audit_trail(api: Api) -> None:
    ticket, other = api.open_ticket(), api.open_ticket(subject="打印机又卡纸")
    response = api.post("agent_a", f"/api/v1/tickets/{ticket}/links", {"other_ticket_id": other, "kind": "follow_up_of"})
    assert response.status_code == 200, response.text
    assert response.json()["events"] == ["Ticket.Linked"] and response.headers["ETag"] == '"2"'
    audit = api.get("agent_a", f"/api/v1/tickets/{ticket}/audit",
                    params={"min_position": response.headers["X-Log-Position"]}).json()
    assert {"field": "links", "old": None, "new": [{"ticket_id": other, "kind": "follow_up_of"}]} in audit[-1]["changes"]
    again = api.post("agent_a", f"/api/v1/tickets/{ticket}/links", {"other_ticket_id": other})
    assert again.status_code == 409 and "already linked" in again.json()["detail"]


def test_a_duplicate_is_merged_not_linked_and_a_ticket_is_not_linked_to_itself(api: Api) -> None:
    ticket, other = api.open_ticket(), api.open_ticket()
    duplicate = api.post("agent_a", f"/api/v1/tickets/{ticket}/links", {"other_ticket_id": other, "kind": "duplicate_of"})
    assert duplicate.status_code == 422 and "merging" in duplicate.text
    itself = api.post("agent_a", f"/api/v1/tickets/{ticket}/links", {"other_ticket_id": ticket})
    assert itself.status_code == 409 and "itself" in itself.json()["detail"]


def test_an_agent_cannot_tag_or_link_another_teams_ticket_nor_link_to_one(api: Api) -> None:
    own, theirs = api.open_ticket(), api.open_ticket(who="agent_b", team="b", subject="发票金额错误")
    before = api.desk.log_position()
    tag = api.post("agent_a", f"/api/v1/tickets/{theirs}/tags", {"add": ["打印机"]})
    assert tag.status_code == 404 and tag.headers["content-type"].startswith(PROBLEM)
    link_theirs = api.post("agent_a", f"/api/v1/tickets/{theirs}/links", {"other_ticket_id": own})
    assert link_theirs.status_code == 404
    link_to_theirs = api.post("agent_a", f"/api/v1/tickets/{own}/links", {"other_ticket_id": theirs})
    missing = "00000000-0000-4000-8000-000000000000"
    link_to_nothing = api.post("agent_a", f"/api/v1/tickets/{own}/links", {"other_ticket_id": missing})
    assert link_to_theirs.status_code == link_to_nothing.status_code == 404  # another team's ticket looks absent
    assert link_to_theirs.json()["type"] == link_to_nothing.json()["type"]
    assert api.desk.log_position() == before
    # An admin sees every team: the same link is allowed.
    assert api.post("admin", f"/api/v1/tickets/{own}/links", {"other_ticket_id": theirs}).status_code == 200


def test_the_application_refuses_a_link_to_another_teams_ticket_whatever_face_asks(api: Api) -> None:
    """Not only the HTTP route: the console (or any later face) calling the desk directly is refused too."""
    own, theirs = api.open_ticket(), api.open_ticket(who="agent_b", team="b")
    principal = api.desk.authenticate(api.tokens["agent_a"])
    assert principal is not None
    with pytest.raises(TicketNotFound):
        api.desk.link_ticket(LinkTicket(ticket_id=UUID(own), other_ticket_id=UUID(theirs)), principal.caller())


def test_an_auditor_may_neither_tag_nor_link(api: Api) -> None:
    ticket, other = api.open_ticket(), api.open_ticket()
    for path, body in (("tags", {"add": ["打印机"]}), ("links", {"other_ticket_id": other})):
        response = api.post("auditor", f"/api/v1/tickets/{ticket}/{path}", body)
        assert response.status_code == 403, (path, response.text)
        assert response.headers["content-type"].startswith(PROBLEM)


def test_the_queue_filters_by_channel_and_by_tag(api: Api) -> None:
    tagged = api.open_ticket(subject="打印机又坏了")
    other = api.open_ticket(subject="无法登录")
    assert api.post("agent_a", f"/api/v1/tickets/{tagged}/tags", {"add": ["打印机", "a_b"]}).status_code == 200
    assert api.post("agent_a", f"/api/v1/tickets/{other}/tags", {"add": ["axb", "打印机墨盒"]}).status_code == 200
    api.caught_up()

    def ids(**params: str) -> list[str]:
        return [t["ticket_id"] for t in api.get("agent_a", "/api/v1/tickets", params=params).json()["items"]]

    assert ids(tag="打印机") == [tagged]  # a whole tag, not a part of another
    assert ids(tag="a_b") == [tagged]  # "_" is a character, not a wildcard
    assert ids(tag="A_B") == [tagged]  # tags are lower-case
    assert {tagged, other} <= set(ids(channel="web_form"))
    assert ids(channel="phone") == []
