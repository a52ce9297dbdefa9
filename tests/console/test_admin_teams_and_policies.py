"""The admin pages for teams and desk-wide policy, in process: members, rotation and skills; the
routing rules, service standards and calendars with their versions; stale forms refused; the same
access rules as the API (supervisors: their own teams; policy: admins)."""

from __future__ import annotations

import re
from uuid import UUID

from tests.console.conftest import Console
from ticketflow.domain import ROUTING_POLICY_ID


def _errors(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>|\s+", " ", e).strip() for e in re.findall(r'class="field-error"[^>]*>(.*?)</div>', html, re.S)]


def test_a_supervisor_adds_a_member_changes_skills_and_takes_them_out_of_rotation(console: Console) -> None:
    client = console.sign_in("supervisor_a")
    team = console.seeded.team_a
    csrf = console.csrf(f"/admin/teams/{team}")
    version = int(re.search(r'name="version" value="(\d+)"', client.get(f"/admin/teams/{team}").text).group(1))  # type: ignore[union-attr]
    added = client.post(f"/admin/teams/{team}/members", data={
        "csrf_token": csrf, "version": version, "agent_id": "zhao.lei", "role": "agent", "skills": "打印机，billing"})
    assert added.status_code == 200 and "Member added." in added.text
    members = console.desk.get_team(team).members
    assert sorted(members["zhao.lei"]["skills"]) == ["billing", "打印机"]
    changed = client.post(f"/admin/teams/{team}/members/zhao.lei", data={
        "csrf_token": csrf, "version": version + 1, "role": "lead", "skills": "billing"})
    assert "Member changed." in changed.text and console.desk.get_team(team).members["zhao.lei"]["role"] == "lead"
    stale = client.post(f"/admin/teams/{team}/members/zhao.lei/deactivate", data={
        "csrf_token": csrf, "version": version, "reason": "on leave"})
    assert stale.status_code == 412 and "Someone else changed this" in stale.text
    out = client.post(f"/admin/teams/{team}/members/zhao.lei/deactivate", data={
        "csrf_token": csrf, "version": version + 2, "reason": "休假至 12-15"})
    assert "Taken out of rotation" in out.text and not console.desk.get_team(team).members["zhao.lei"]["active"]
    assert re.search(r'data-member="zhao.lei">.*?Out of rotation', out.text, re.S)


def test_a_supervisor_cannot_reach_another_team_or_form_one(console: Console) -> None:
    client = console.sign_in("supervisor_a")
    assert client.get(f"/admin/teams/{console.seeded.team_b}").status_code == 404
    listed = client.get("/admin/teams").text
    assert "技术支持" in listed or str(console.seeded.team_a) in listed
    assert str(console.seeded.team_b) not in listed
    assert client.post("/admin/teams", data={"csrf_token": console.csrf("/admin/teams"), "name": "x"}).status_code == 403
    agent = console.sign_in("agent_a")
    assert agent.get("/admin/teams").status_code == 403


def test_an_admin_publishes_routing_rules_and_reads_an_earlier_version(console: Console) -> None:
    client = console.sign_in("admin")
    seeded = console.seeded
    csrf = console.csrf("/admin/routing")
    assert "No rule yet" in client.get("/admin/routing").text  # the empty state
    first = client.post("/admin/routing", data={
        "csrf_token": csrf, "action": "add", "name": "打印机故障", "team_id": str(seeded.team_b),
        "default_team_id": str(seeded.team_a), "keywords": "打印机，卡纸", "channels": ["email", "chat"],
        "set_priority": "high", "note": "打印机归账务组"})
    assert first.status_code == 200 and "New version of the routing rules published." in first.text
    client.post("/admin/routing", data={"csrf_token": csrf, "action": "add", "name": "VIP", "team_id": str(seeded.team_a),
                                        "tiers": "vip", "position": "1", "version": "1"})
    policy = console.desk.routing_policy()
    assert policy is not None and [r["name"] for r in policy.rules] == ["VIP", "打印机故障"]
    assert policy.rules[1]["keywords"] == ["打印机", "卡纸"] and policy.rules[1]["set_priority"] == "high"
    client.post("/admin/routing", data={"csrf_token": csrf, "action": "down", "index": "0", "version": "2"})
    assert [r["name"] for r in console.desk.routing_policy().rules] == ["打印机故障", "VIP"]  # type: ignore[union-attr]
    stale = client.post("/admin/routing", data={"csrf_token": csrf, "action": "remove", "index": "0", "version": "2"})
    assert stale.status_code == 412 and console.desk.routing_policy().version == 3  # type: ignore[union-attr]
    old = client.get("/admin/routing", params={"version": 1}).text
    assert "You are looking at version 1" in old and 'data-rule="VIP"' not in old and 'data-rule="打印机故障"' in old
    history = client.get("/admin/routing").text
    assert "打印机归账务组" in history and str(ROUTING_POLICY_ID) not in history


def test_an_admin_defines_a_calendar_and_a_service_standard_then_revises_and_retires_it(console: Console) -> None:
    client = console.sign_in("admin")
    csrf = console.csrf("/admin/calendars")
    bad = client.post("/admin/calendars", data={"csrf_token": csrf, "name": "北京", "timezone": "Asia/Shanghai", "day-0": "9点"})
    assert bad.status_code == 422 and "write opening hours as 09:00-18:00" in " ".join(_errors(bad.text))
    assert 'value="9点"' in bad.text  # the typed value is kept
    made = client.post("/admin/calendars", data={
        "csrf_token": csrf, "name": "北京工作日", "timezone": "Asia/Shanghai", "day-0": "09:00-12:00, 13:00-18:00",
        "day-1": "09:00-18:00", "holidays": "2026-10-01 2026-10-02", "workdays": "2026-10-11 0"})
    assert made.status_code == 200 and "Calendar saved." in made.text
    calendar = next(c for c in console.desk.calendars() if c.name == "北京工作日")
    assert calendar.weekly["0"] == [["09:00", "12:00"], ["13:00", "18:00"]] and calendar.workdays == {"2026-10-11": 0}
    defined = client.post("/admin/sla", data={
        "csrf_token": csrf, "name": "标准服务", "position": "10", "priorities": ["urgent", "high"],
        "target-urgent-first_reply_time": "30", "target-high-resolution_time": "480", "business_hours": "1",
        "calendar_id": str(calendar.id), "warn_at_percent": "75"})
    assert defined.status_code == 200 and "Service standard saved." in defined.text
    policy = next(p for p in console.desk.sla_policies() if p.name == "标准服务")
    assert policy.targets["urgent"]["first_reply_time"]["minutes"] == 30 and policy.conditions == {"priorities": ["high", "urgent"]}
    edit = client.get("/admin/sla", params={"edit": str(policy.id)}).text
    assert 'name="target-urgent-first_reply_time" inputmode="numeric" size="6"' in edit and 'value="30"' in edit
    revised = client.post("/admin/sla", data={
        "csrf_token": csrf, "name": "标准服务", "position": "10", "version": "1", "target-urgent-first_reply_time": "20",
        "business_hours": "1", "calendar_id": str(calendar.id)})
    assert revised.status_code == 200 and console.desk.get_sla_policy(policy.id).version == 2
    page = client.get(f"/admin/sla/{policy.id}", params={"version": 1}).text
    assert "You are looking at version 1" in page and "30 min" in page
    assert client.post(f"/admin/sla/{policy.id}/retire", data={"csrf_token": csrf, "reason": "被新标准取代", "version": "2"}).status_code == 200
    assert console.desk.get_sla_policy(policy.id).retired


def test_policy_pages_are_read_only_for_agents_and_refuse_their_forms(console: Console) -> None:
    client = console.sign_in("agent_a")
    page = client.get("/admin/routing")
    assert page.status_code == 200 and 'action="/admin/routing"' not in page.text
    assert client.get("/admin/sla").status_code == 200 and client.get("/admin/calendars").status_code == 200
    csrf = console.csrf("/admin/routing")
    assert client.post("/admin/routing", data={"csrf_token": csrf, "action": "default",
                                               "default_team_id": str(console.seeded.team_a)}).status_code == 403
    assert client.get(f"/admin/sla/{UUID(int=5)}").status_code == 404


def test_a_stale_service_standard_form_is_refused_once_then_saves_against_the_version_in_force(console: Console) -> None:
    client = console.sign_in("admin")
    csrf = console.csrf("/admin/sla")
    fields = {"csrf_token": csrf, "name": "标准服务", "position": "10", "target-urgent-first_reply_time": "30"}
    client.post("/admin/sla", data=fields)
    client.post("/admin/sla", data={**fields, "version": "1", "target-urgent-first_reply_time": "25"})
    stale = client.post("/admin/sla", data={**fields, "version": "1", "target-urgent-first_reply_time": "20"})
    assert stale.status_code == 412 and "Revise 标准服务 (version 2)" in stale.text
    again = re.search(r'<input type="hidden" name="version" value="(\d+)">', stale.text[stale.text.index('id="define"'):])
    assert again and again.group(1) == "2" and 'value="20"' in stale.text  # the typed target is kept
    saved = client.post("/admin/sla", data={**fields, "version": again.group(1), "target-urgent-first_reply_time": "20"})
    assert saved.status_code == 200
    policy = next(p for p in console.desk.sla_policies() if p.name == "标准服务")
    assert policy.version == 3 and policy.targets["urgent"]["first_reply_time"]["minutes"] == 20


def test_a_change_without_the_version_it_showed_is_refused(console: Console) -> None:
    client = console.sign_in("supervisor_a")
    team = console.seeded.team_a
    answer = client.post(f"/admin/teams/{team}/members/li.wei/deactivate", data={
        "csrf_token": console.csrf(f"/admin/teams/{team}"), "reason": "x"})
    assert answer.status_code == 422 and console.desk.get_team(team).members["li.wei"]["active"]
