"""The console's what-if (假设分析): the form starts a job, the job's page refreshes until it is done, then
shows recorded vs candidate side by side — tables, inline SVG charts, ticket links — in English and Chinese.

The desk is a live desk's recorded history (tests/whatif); the job is run by the worker's own step in the
test's thread (no automation, so no background worker), so each page is looked at in a known state.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from projections import operations
from tests.console.conftest import PASSWORD
from tests.whatif.desks import ADMIN
from tests.whatif.test_identity import PERIOD
from tests.whatif.test_whatif_api import recorded_store  # noqa: F401 - the module's fixture
from tests.whatif.test_whatif_cli import CANDIDATE
from ticketflow.application import TicketDesk
from ticketflow.commands.accounts import CreateAccount
from ticketflow.config import Settings
from ticketflow.domain.values import Role
from ticketflow.whatif.jobs import Worker

PEOPLE = {"admin": ("zhang.admin", Role.ADMIN, None), "supervisor": ("gao.sup", Role.SUPERVISOR, "gao.sup"),
          "agent": ("li.wei", Role.AGENT, "li.wei")}
#: The period as the form's datetime-local fields give it, in the desk's zone (Asia/Shanghai).
SINCE, UNTIL = (m.astimezone(PERIOD.since.tzinfo).strftime("%Y-%m-%dT%H:%M") for m in (PERIOD.since, PERIOD.until))


@dataclass
class WhatifConsole:
    client: TestClient
    desk: TicketDesk

    def sign_in(self, who: str) -> str:
        username, role, agent = PEOPLE[who]
        if self.desk.find_account(username) is None:  # each account only when a test signs in with it (argon2id)
            self.desk.create_account(CreateAccount(username=username, display_name=who, role=role, agent_id=agent),
                                     ADMIN, PASSWORD)
        self.client.cookies.clear()
        response = self.client.post("/signin", data={"username": PEOPLE[who][0], "password": PASSWORD,
                                                     "next": "/queues"}, follow_redirects=False)
        assert response.status_code == 303, response.text[:300]
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.client.get("/whatif").text)
        return found.group(1) if found else ""

    def start(self, csrf: str, fields: dict[str, str] | None = None, files: dict[str, Any] | None = None) -> Any:
        data = {"csrf_token": csrf, "since": SINCE, "until": UNTIL, "team": "", "candidate_text": CANDIDATE,
                **(fields or {})}
        return self.client.post("/whatif", data=data, files=files, follow_redirects=False)

    def work(self) -> None:
        services = self.client.app.state.services  # type: ignore[attr-defined]
        Worker(self.desk, services.whatif.existing_store).run_pending()


@pytest.fixture
def console(recorded_store: Path, tmp_path: Path) -> Iterator[WhatifConsole]:  # noqa: F811
    directory = tmp_path / "desk"
    shutil.copytree(recorded_store, directory)
    app = create_app(Settings(data_dir=directory, automation=False, time_zone="Asia/Shanghai"))
    with TestClient(app) as client:
        desk: TicketDesk = app.state.services.desk
        yield WhatifConsole(client, desk)


def test_a_supervisor_starts_a_whatif_sees_it_refresh_and_then_the_comparison_with_charts_in_both_languages(
    console: WhatifConsole,
) -> None:
    csrf = console.sign_in("supervisor")
    assert 'href="/whatif"' in console.client.get("/queues").text  # in the main navigation
    started = console.start(csrf)
    assert started.status_code == 303
    job_page = started.headers["location"]
    waiting = console.client.get(job_page)
    assert '<meta http-equiv="refresh" content="2">' in waiting.text and "<progress" in waiting.text
    console.work()
    done = console.client.get(job_page).text
    assert 'http-equiv="refresh"' not in done
    assert done.count('<svg class="wi-chart"') == 3  # attainment bars, tickets per team, open load over time
    assert '<polyline points="' in done and 'class="wi-mini"' in done
    newly = re.findall(r'<a href="/tickets/([0-9a-f-]{36})">', done.split('id="breaches"')[1].split("</section>")[0])
    assert newly, "the newly / no longer breached tickets link to their pages"
    assert "技术支持" in done and "Resolution time" in done
    kept = done.split('id="automation"')[1].split("</section>")[0]
    assert "Auto-closes" in kept and "Follow-ups scheduled" in kept and "Reminders fired" in kept
    console.client.cookies.set("tf_lang", "zh-CN")
    chinese = console.client.get(job_page).text
    for term in ("假设分析", "服务标准达成率", "新增超时", "不再超时", "未结工单随时间变化", "已完成", "自动关闭", "回访", "提醒"):
        assert term in chinese, term


BAD_FIELDS: list[tuple[dict[str, str], str]] = [
    ({"candidate_text": ""}, "Give the candidate policies"),
    ({"candidate_text": "[routing]\ndefault_team_id = \"无此团队\"\nrules = []\n"}, "no team is called"),
    ({"candidate_text": "not toml = = 1"}, "Not valid TOML"),
    ({"since": "yesterday"}, "Give a date and time"),
    ({"since": UNTIL, "until": SINCE}, "must be after"),
    ({"candidate_text": '[[rotation]]\nteam_id = "技术支持"\nagent_id = "wang.fang"\nactive = false\n'},
     "wang.fang is not a member of team"),
]


def test_a_form_with_a_bad_field_says_so_next_to_it_and_an_uploaded_toml_file_starts_a_whatif(
    console: WhatifConsole,
) -> None:
    csrf = console.sign_in("admin")
    for fields, message in BAD_FIELDS:
        response = console.start(csrf, fields)
        assert response.status_code == 422
        errors = re.findall(r'<p class="field-error" role="alert">([^<]*)</p>', response.text)
        assert any(message in e for e in errors), (message, errors)
    assert console.client.app.state.services.whatif.store.jobs() == []  # type: ignore[attr-defined]
    files = {"candidate_file": ("shanghai.toml", CANDIDATE.encode(), "application/toml")}
    started = console.start(csrf, {"candidate_text": ""}, files)
    assert started.status_code == 303
    console.work()
    assert "wi-chart" in console.client.get(started.headers["location"]).text


def test_a_supervisor_may_not_ask_for_another_team_nor_see_a_desk_wide_job_and_agents_get_no_page(
    console: WhatifConsole,
) -> None:
    store = console.client.app.state.services.whatif.store  # type: ignore[attr-defined]
    desk_wide = f"/whatif/{store.submit({'period': {}, 'candidate': {}}, 'zhang.admin', 'admin', None, PERIOD.since).id}"
    names = console.client.app.state.services.read_side.read(  # type: ignore[attr-defined]
        "directory", operations.team_names)
    billing = next(t for t, name in names.items() if name == "账务")
    csrf = console.sign_in("supervisor")
    refused = console.start(csrf, {"team": billing})
    assert refused.status_code == 403 and "covers only their own teams" in refused.text
    assert console.client.get(desk_wide).status_code == 404
    assert desk_wide.removeprefix("/whatif/") not in console.client.get("/whatif").text  # not listed either
    console.sign_in("agent")
    assert console.client.get("/whatif").status_code == 403
    assert 'href="/whatif"' not in console.client.get("/queues").text


def test_a_pasted_rotation_shows_each_agent_whose_share_changes_and_the_tickets_reassigned(
    console: WhatifConsole,
) -> None:
    csrf = console.sign_in("supervisor")
    rotation = '[[rotation]]\nteam_id = "技术支持"\nagent_id = "chen.jie"\nactive = false\nreason = "休假"\n'
    started = console.start(csrf, {"candidate_text": rotation, "team": ""})
    assert started.status_code == 303, started.text[:500]
    console.work()
    page = console.client.get(started.headers["location"]).text
    routing = page.split('id="routing"')[1].split("</section>")[0]
    agents = routing.split('class="tickets whatif-agents"')[1].split("</table>")[0]
    assert re.search(r"<td>chen\.jie</td><td>[1-9]\d*</td><td>0</td><td>-[1-9]\d*</td>", agents), agents
    reassigned = routing.split('class="tickets whatif-reassigned"')[1].split("</table>")[0]
    assert re.findall(r"<td>chen\.jie</td>", reassigned)  # the tickets chen.jie had, each with its new agent
    assert '<th scope="col">Agent</th>' in agents
    console.client.cookies.set("tf_lang", "zh-CN")
    assert "各客服工单数" in console.client.get(started.headers["location"]).text
