"""/api/v1/teams/{team_id}/reply-templates and the reply composer's preview: status codes, team scope,
If-Match, placeholders, the customer's name, and a reply sent from a template (Chinese throughout)."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api

BODY = "{{customer.name}}您好：您的工单 {{ticket.reference}}「{{ticket.subject}}」已处理。{{team.name}} {{agent.name}}"
PROBLEM = "application/problem+json"


def create(api: Api, who: str = "supervisor_a", **fields: Any) -> Any:
    body = {"title": "密码重置完成", "body": BODY, "kind": "reply", **fields}
    return api.post(who, f"/api/v1/teams/{api.team_a}/reply-templates", body)


def test_a_supervisor_writes_the_teams_templates_and_its_agents_read_them(api: Api) -> None:
    created = create(api)
    assert created.status_code == 201, created.text
    template = created.json()["id"]
    path = f"/api/v1/teams/{api.team_a}/reply-templates/{template}"
    assert (created.headers["Location"], created.headers["ETag"]) == (path, '"1"')

    listed = api.get("agent_a", f"/api/v1/teams/{api.team_a}/reply-templates",
                     params={"min_position": created.json()["position"]})
    assert listed.status_code == 200
    assert [(t["title"], t["body"], t["kind"], t["use_count"]) for t in listed.json()] == [("密码重置完成", BODY, "reply", 0)]

    one = api.get("agent_a", path)
    assert (one.status_code, one.headers["ETag"], one.json()["body"]) == (200, '"1"', BODY)
    assert [h["event_type"] for h in one.json()["history"]] == ["ReplyTemplate.Created"]
    assert "customer.name" in one.json()["placeholders"]


def test_who_may_write_and_unknown_placeholders(api: Api) -> None:
    refused = create(api, "agent_a")
    assert (refused.status_code, refused.headers["content-type"]) == (403, PROBLEM)
    unknown = create(api, body="{{customer.name}}您好，订单 {{order.number}}")
    assert (unknown.status_code, unknown.headers["content-type"]) == (422, PROBLEM)
    assert "{{order.number}}" in unknown.json()["detail"]
    assert create(api, "admin", title="管理员写的").status_code == 201
    other_team = api.post("admin", f"/api/v1/teams/{api.team_b}/reply-templates", {"title": "账单", "body": "您好"})
    assert other_team.status_code == 201


def test_another_teams_staff_get_404_and_a_template_is_reached_only_under_its_team(api: Api) -> None:
    template = create(api).json()["id"]
    ticket = api.open_ticket()
    for path in (f"/api/v1/teams/{api.team_a}/reply-templates", f"/api/v1/teams/{api.team_a}/reply-templates/{template}",
                 f"/api/v1/tickets/{ticket}/reply-templates/{template}/preview"):
        response = api.get("agent_b", path)
        assert (response.status_code, response.headers["content-type"]) == (404, PROBLEM), path
    assert api.get("admin", f"/api/v1/teams/{api.team_b}/reply-templates/{template}").status_code == 404
    put = api.client.put(f"/api/v1/teams/{api.team_b}/reply-templates/{template}", json={"title": "x", "body": "y"},
                         headers=api.headers("admin"))
    assert put.status_code == 404
    ticket_b = api.open_ticket("admin", team="b")
    wrong_team = api.get("admin", f"/api/v1/tickets/{ticket_b}/reply-templates/{template}/preview")
    assert wrong_team.status_code == 409  # the admin sees both, but team A's template is not for team B's ticket


def test_revising_needs_the_current_version_and_keeps_every_version(api: Api) -> None:
    template = create(api).json()["id"]
    path = f"/api/v1/teams/{api.team_a}/reply-templates/{template}"
    new = {"title": "密码已重置", "body": "{{customer.name}}，您好！密码已重置。", "kind": None}
    revised = api.client.put(path, json=new, headers=api.headers("supervisor_a", **{"If-Match": '"1"'}))
    assert (revised.status_code, revised.headers["ETag"]) == (200, '"2"'), revised.text
    stale = api.client.put(path, json={**new, "title": "别的"}, headers=api.headers("supervisor_a", **{"If-Match": '"1"'}))
    assert (stale.status_code, stale.headers["content-type"]) == (412, PROBLEM)
    agent = api.client.put(path, json=new, headers=api.headers("agent_a"))
    assert agent.status_code == 403
    current = api.get("agent_a", path).json()
    assert (current["version"], current["title"], current["kind"]) == (2, "密码已重置", None)
    assert [(h["version"], h["actor_id"], h["content"]["title"]) for h in current["history"]] == [
        (1, "gao.sup", "密码重置完成"), (2, "gao.sup", "密码已重置")]
    assert api.get("agent_a", path, params={"version": 1}).json()["body"] == BODY

    retired = api.post("supervisor_a", path + "/retire", {"reason": "流程变更"})
    assert retired.status_code == 200
    listed = api.get("agent_a", f"/api/v1/teams/{api.team_a}/reply-templates",
                     params={"min_position": retired.json()["position"]})
    assert listed.json() == []
    assert api.post("supervisor_a", path + "/retire", {}).status_code == 409


def test_the_composer_previews_without_the_name_and_the_reply_is_filled_and_recorded(api: Api) -> None:
    template = create(api).json()["id"]
    ticket = api.open_ticket(subject="无法登录账户")
    preview = api.get("agent_a", f"/api/v1/tickets/{ticket}/reply-templates/{template}/preview")
    assert preview.status_code == 200, preview.text
    shown = preview.json()
    assert shown["unfilled"] == ["customer.name"] and "王小明" not in preview.text
    assert shown["body"] == f"{{{{customer.name}}}}您好：您的工单 #{ticket[:8]}「无法登录账户」已处理。技术支持 li.wei"

    sent = api.post("agent_a", f"/api/v1/tickets/{ticket}/replies",
                    {"body": shown["body"] + "\n祝好", "template_id": template, "template_version": shown["version"]})
    assert sent.status_code == 200, sent.text
    position = sent.json()["position"]
    timeline = api.get("agent_a", f"/api/v1/tickets/{ticket}/timeline", params={"min_position": position}).json()
    assert timeline[-1]["body"].startswith("王小明您好：您的工单 #") and timeline[-1]["body"].endswith("祝好")
    audit = api.get("agent_a", f"/api/v1/tickets/{ticket}/audit", params={"min_position": position}).json()
    assert any(f"from reply template {template} v1" in row["summary"] for row in audit)
    used = api.get("agent_a", f"/api/v1/teams/{api.team_a}/reply-templates", params={"min_position": position})
    assert used.json()[0]["use_count"] == 1

    unmasked = api.get("agent_a", f"/api/v1/tickets/{ticket}/reply-templates/{template}/preview",
                       headers={"X-Access-Purpose": "reply to the customer"})
    assert unmasked.json()["unfilled"] == [] and unmasked.json()["body"].startswith("王小明您好")
    api.caught_up()
    log = api.get("compliance", "/api/v1/access-log", params={"customer_id": str(api.customer)}).json()
    assert [(e["actor_id"], e["fields"]) for e in log] == [("li.wei", ["name"]), ("li.wei", ["name"])]
    assert log[1]["purpose"] == "reply to the customer" and log[1]["resource"].endswith("/preview")
