"""The policies API: versioned routing rules, calendars and SLA policies, and who may change them."""

from __future__ import annotations

import copy
from typing import Any

from api.schemas import CALENDAR_EXAMPLE, SLA_POLICY_EXAMPLE
from tests.api.conftest import Api


def put(api: Api, who: str, path: str, json: Any, **headers: str) -> Any:
    return api.client.put(path, json=json, headers=api.headers(who, **headers))


def rules(api: Api, note: str = "", keyword: str = "发票") -> dict[str, Any]:
    return {
        "rules": [{"name": "发票到财务", "team_id": str(api.team_b), "keywords": [keyword], "set_priority": "high"}],
        "default_team_id": str(api.team_a),
        "note": note,
    }


def test_publishing_routing_rules_versions_them_and_an_old_version_stays_readable(api: Api) -> None:
    first = put(api, "admin", "/api/v1/routing-rules", rules(api, "第一版"))
    assert first.status_code == 200, first.text
    assert (first.json()["version"], first.headers["ETag"]) == (1, '"1"')
    second = put(api, "admin", "/api/v1/routing-rules", rules(api, "加上 invoice", keyword="invoice"),
                 **{"If-Match": '"1"'})
    assert second.status_code == 200, second.text
    assert second.json()["version"] == 2

    current = api.get("auditor", "/api/v1/routing-rules")
    assert current.status_code == 200 and current.headers["ETag"] == '"2"'
    assert current.json()["rules"][0]["keywords"] == ["invoice"]
    old = api.get("agent_a", "/api/v1/routing-rules", params={"version": 1})
    assert old.json()["rules"][0]["keywords"] == ["发票"] and old.json()["note"] == "第一版"
    assert api.get("admin", "/api/v1/routing-rules", params={"version": 3}).status_code == 404

    history = api.get("auditor", "/api/v1/routing-rules/history").json()
    assert [(h["version"], h["actor_id"], h["actor_role"], h["note"]) for h in history] == [
        (1, "root", "admin", "第一版"), (2, "root", "admin", "加上 invoice"),
    ]
    assert history[0]["event_type"] == "RoutingPolicy.Adopted" and history[0]["via"] == "api"


def test_publishing_the_rules_in_force_writes_nothing(api: Api) -> None:
    put(api, "admin", "/api/v1/routing-rules", rules(api))
    again = put(api, "admin", "/api/v1/routing-rules", rules(api))
    assert again.status_code == 200 and again.json()["version"] == 1 and again.json()["events"] == []


def test_a_stale_if_match_is_refused_with_412_and_nothing_is_written(api: Api) -> None:
    put(api, "admin", "/api/v1/routing-rules", rules(api))
    put(api, "admin", "/api/v1/routing-rules", rules(api, keyword="invoice"))
    position = api.desk.log_position()
    stale = put(api, "admin", "/api/v1/routing-rules", rules(api, keyword="退款"), **{"If-Match": '"1"'})
    assert stale.status_code == 412, stale.text
    assert stale.headers["content-type"] == "application/problem+json"
    assert "not the expected version 1" in stale.json()["detail"]
    assert api.desk.log_position() == position
    assert api.get("admin", "/api/v1/routing-rules").json()["version"] == 2


def test_if_match_before_anything_is_published_is_a_failed_precondition(api: Api) -> None:
    response = put(api, "admin", "/api/v1/routing-rules", rules(api), **{"If-Match": '"1"'})
    assert response.status_code == 412, response.text
    assert response.json()["detail"] == 'If-Match "1" cannot match: the routing policy does not exist yet'
    assert api.get("admin", "/api/v1/routing-rules").status_code == 404


def test_agents_and_auditors_may_read_but_not_change_policies(api: Api) -> None:
    for who in ("agent_a", "auditor"):
        refused = put(api, who, "/api/v1/routing-rules", rules(api))
        assert refused.status_code == 403, refused.text
        assert "may not change routing rules, SLA policies or calendars" in refused.json()["detail"]
        assert api.post(who, "/api/v1/calendars", CALENDAR_EXAMPLE).status_code == 403
    assert api.get("agent_a", "/api/v1/calendars").status_code == 200
    assert api.get("integration", "/api/v1/sla-policies").status_code == 403


def test_an_unknown_team_is_refused_with_its_id(api: Api) -> None:
    body = rules(api)
    body["rules"][0]["team_id"] = "00000000-0000-4000-8000-000000000001"
    response = put(api, "admin", "/api/v1/routing-rules", body)
    assert response.status_code == 404, response.text
    assert response.json()["detail"] == "team 00000000-0000-4000-8000-000000000001 not found"
    duplicate = rules(api)
    duplicate["rules"] *= 2
    refused = put(api, "admin", "/api/v1/routing-rules", duplicate)
    assert refused.status_code == 422 and "must be unique: 发票到财务" in refused.json()["detail"]


def test_a_calendar_with_chinese_name_holidays_and_make_up_day_round_trips(api: Api) -> None:
    created = api.post("admin", "/api/v1/calendars", CALENDAR_EXAMPLE)
    assert created.status_code == 201, created.text
    calendar_id = created.json()["id"]
    assert created.headers["Location"] == f"/api/v1/calendars/{calendar_id}"
    listed = api.get("agent_a", "/api/v1/calendars").json()
    assert [c["name"] for c in listed] == ["上海工作日"]
    one = api.get("auditor", f"/api/v1/calendars/{calendar_id}").json()
    assert one["weekly"]["0"] == [["09:00", "12:00"], ["13:00", "18:00"]] and "5" not in one["weekly"]
    assert one["holidays"][0] == "2026-10-01" and one["workdays"] == {"2026-10-10": 4}

    revised = copy.deepcopy(CALENDAR_EXAMPLE)
    revised["holidays"].append("2026-09-25")  # 中秋节
    again = api.post("admin", "/api/v1/calendars", revised)
    assert again.status_code == 200 and again.json()["version"] == 2 and "Location" not in again.headers
    old = api.get("admin", f"/api/v1/calendars/{calendar_id}", params={"version": 1}).json()
    assert "2026-09-25" not in old["holidays"]


def test_an_invalid_calendar_time_or_timezone_is_a_422_naming_it(api: Api) -> None:
    bad = {**CALENDAR_EXAMPLE, "weekly": {"0": [["09:00", "25:00"]]}}
    response = api.post("admin", "/api/v1/calendars", bad)
    assert response.status_code == 422, response.text
    assert "'25:00' is not a time HH:MM" in response.json()["detail"]
    backwards = api.post("admin", "/api/v1/calendars", {**CALENDAR_EXAMPLE, "weekly": {"0": [["18:00", "09:00"]]}})
    assert backwards.status_code == 422 and "ends before it starts" in backwards.json()["detail"]
    for zone in ("Asia", "Mars/Olympus", "x" * 300):
        refused = api.post("admin", "/api/v1/calendars", {**CALENDAR_EXAMPLE, "timezone": zone})
        assert refused.status_code == 422, refused.text
        detail = refused.json()["detail"]
        assert "unknown timezone" in detail or ("timezone" in detail and "at most 64 characters" in detail)


def test_an_sla_policy_is_defined_revised_listed_retired_and_its_history_kept(api: Api) -> None:
    calendar_id = api.post("admin", "/api/v1/calendars", CALENDAR_EXAMPLE).json()["id"]
    policy = {**SLA_POLICY_EXAMPLE, "calendar_id": calendar_id}
    created = api.post("admin", "/api/v1/sla-policies", policy)
    assert created.status_code == 201, created.text
    policy_id = created.json()["id"]
    standard = {"name": "标准", "position": 10, "targets": {"normal": {"first_reply_time": {"minutes": 240}}}}
    assert api.post("admin", "/api/v1/sla-policies", standard).status_code == 201

    faster = copy.deepcopy(policy)
    faster["targets"]["urgent"]["first_reply_time"]["minutes"] = 30
    assert api.post("admin", "/api/v1/sla-policies", faster, **{"If-Match": '"1"'}).json()["version"] == 2
    stale = api.post("admin", "/api/v1/sla-policies", policy, **{"If-Match": '"1"'})
    assert stale.status_code == 412, stale.text

    listed = api.get("agent_a", "/api/v1/sla-policies").json()
    assert [(p["name"], p["retired"]) for p in listed] == [("VIP", False), ("标准", False)]
    assert listed[0]["targets"]["urgent"]["first_reply_time"] == {"minutes": 30, "business_hours": True}
    old = api.get("auditor", f"/api/v1/sla-policies/{policy_id}", params={"version": 1}).json()
    assert old["targets"]["urgent"]["first_reply_time"]["minutes"] == 60 and old["calendar_id"] == calendar_id

    retired = api.post("admin", f"/api/v1/sla-policies/{policy_id}/retire", {"reason": "合并到标准"})
    assert retired.status_code == 200 and retired.json()["events"] == ["SlaPolicy.Retired"]
    again = api.post("admin", f"/api/v1/sla-policies/{policy_id}/retire", {"reason": "again"})
    assert again.status_code == 409 and "already retired" in again.json()["detail"]
    assert api.post("admin", "/api/v1/sla-policies", policy).status_code == 409
    assert [p["retired"] for p in api.get("admin", "/api/v1/sla-policies").json()] == [True, False]
    history = api.get("auditor", f"/api/v1/sla-policies/{policy_id}/history").json()
    assert [(h["version"], h["event_type"], h["actor_id"]) for h in history] == [
        (1, "SlaPolicy.Defined", "root"), (2, "SlaPolicy.Revised", "root"), (3, "SlaPolicy.Retired", "root"),
    ]
    assert history[2]["note"] == "合并到标准"


def test_policy_reads_of_unknown_or_foreign_ids_are_404(api: Api) -> None:
    ticket_id = api.open_ticket()
    assert api.get("admin", f"/api/v1/sla-policies/{ticket_id}").status_code == 404
    assert api.get("admin", f"/api/v1/sla-policies/{ticket_id}/history").status_code == 404
    assert api.get("admin", f"/api/v1/calendars/{api.team_a}").status_code == 404
    assert api.get("admin", "/api/v1/routing-rules/history").status_code == 404
    unknown_calendar = {**SLA_POLICY_EXAMPLE, "calendar_id": "00000000-0000-4000-8000-000000000002"}
    response = api.post("admin", "/api/v1/sla-policies", unknown_calendar)
    assert response.status_code == 404
    assert response.json()["detail"] == "business calendar 00000000-0000-4000-8000-000000000002 not found"


def test_a_supervisor_sets_their_own_teams_strategy_only(api: Api) -> None:
    path = f"/api/v1/teams/{api.team_a}/strategy"
    changed = put(api, "supervisor_a", path, {"strategy": "least_loaded"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["events"] == ["Team.StrategyChosen"]
    assert api.desk.get_team(api.team_a).strategy == "least_loaded"
    same = put(api, "supervisor_a", path, {"strategy": "least_loaded"})
    assert same.status_code == 200 and same.json()["events"] == [] and same.json()["version"] == changed.json()["version"]
    assert put(api, "supervisor_a", f"/api/v1/teams/{api.team_b}/strategy", {"strategy": "skills"}).status_code == 404
    assert put(api, "agent_a", path, {"strategy": "skills"}).status_code == 403
    assert put(api, "admin", path, {"strategy": "fastest"}).status_code == 422
    assert put(api, "admin", path, {"strategy": "skills"}, **{"If-Match": '"1"'}).status_code == 412
    assert put(api, "admin", path, {"strategy": "skills"}).status_code == 200


def test_an_auditor_reads_the_routing_version_a_ticket_was_decided_with(api: Api) -> None:
    from uuid import UUID

    from ticketflow.commands import OpenTicket
    from ticketflow.commands.workflow import RouteTicket
    from ticketflow.domain import Ticket
    from ticketflow.domain.values import Channel, Role
    from ticketflow.metadata import Caller

    put(api, "admin", "/api/v1/routing-rules", rules(api, "第一版"))
    customer = Caller(str(api.customer), Role.CUSTOMER, Channel.WEB_FORM)
    ticket_id = api.desk.open_ticket(OpenTicket(subject="请重开发票", requester_id=api.customer), customer).object_id
    api.desk.route_ticket(RouteTicket(ticket_id=ticket_id), Caller("automation", Role.SYSTEM, Channel.SYSTEM))
    put(api, "admin", "/api/v1/routing-rules", {"rules": [], "default_team_id": str(api.team_a), "note": "全部到技术支持"})

    routed = next(e for e in api.desk.history(ticket_id) if isinstance(e, Ticket.Routed))
    assert routed.policy_version == 1 and api.desk.get_ticket(ticket_id).team_id == UUID(str(api.team_b))
    then = api.get("auditor", "/api/v1/routing-rules", params={"version": routed.policy_version}).json()
    assert then["rules"][0]["name"] == routed.rule == "发票到财务"
    assert api.get("auditor", "/api/v1/routing-rules").json()["rules"] == []
