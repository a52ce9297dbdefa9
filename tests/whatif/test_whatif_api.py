"""``/api/v1/whatif``: a what-if as a job kept in the database, scoped to a supervisor's teams, run by a worker.

The worker is run in the test's own thread (``run_pending``: what the background worker does at each
wake-up), so every job ends before the test looks; no test sleeps.
"""

from __future__ import annotations

import shutil
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.whatif.desks import ADMIN, LiveDesk
from tests.whatif.test_identity import FIXED, PERIOD
from tests.whatif.test_whatif_cli import CANDIDATE
from ticketflow.application import TicketDesk
from ticketflow.commands import AddTeamMember
from ticketflow.commands.access import IssueToken
from ticketflow.config import Settings
from ticketflow.domain.values import MemberRole, Role
from ticketflow.whatif import run_whatif, to_json
from ticketflow.whatif.jobs import LEASE_SECONDS, JobStore, WhatifJobs, Worker, open_job_store

BODY_PERIOD = {"from": PERIOD.since.isoformat(), "to": PERIOD.until.isoformat()}
CANDIDATE_JSON: dict[str, Any] = tomllib.loads(CANDIDATE)


@pytest.fixture(scope="module")
def recorded_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A live desk's history (FIXED), with gao.sup supervising 技术支持; each test works on a copy."""
    directory = tmp_path_factory.mktemp("whatif-api") / "desk"
    world = LiveDesk(Settings(data_dir=directory))
    try:
        world.run(FIXED)
        world.desk.add_team_member(
            AddTeamMember(team_id=world.teams["技术支持"], agent_id="gao.sup", role=MemberRole.SUPERVISOR), ADMIN
        )
    finally:
        world.close()
    return directory


@dataclass
class WhatifApi:
    client: TestClient
    desk: TicketDesk
    tokens: dict[str, str]
    teams: dict[str, str]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def start(self, who: str, **body: Any) -> Any:
        return self.client.post("/api/v1/whatif", json={"period": BODY_PERIOD, "candidate": CANDIDATE_JSON, **body},
                                headers=self.headers(who))

    def get(self, who: str, path: str) -> Any:
        return self.client.get(path, headers=self.headers(who))

    def work(self) -> list[Any]:
        """What the worker does when woken: run every queued job, here."""
        services = self.client.app.state.services  # type: ignore[attr-defined]
        return Worker(self.desk, services.whatif.existing_store).run_pending()


@contextmanager
def whatif_api(recorded_store: Path, tmp_path: Path) -> Iterator[WhatifApi]:
    directory = tmp_path / "desk"
    shutil.copytree(recorded_store, directory)
    # no automation: no background worker either (the test runs the jobs itself)
    app = create_app(Settings(data_dir=directory, automation=False, rate_limit_burst=10_000,
                              rate_limit_per_second=10_000))
    with TestClient(app) as client:
        desk: TicketDesk = app.state.services.desk
        tokens = {}
        for who, name, role in [("admin", "root", Role.ADMIN), ("supervisor", "gao.sup", Role.SUPERVISOR),
                                ("agent", "li.wei", Role.AGENT), ("auditor", "audit.kim", Role.AUDITOR)]:
            person = role in (Role.AGENT, Role.SUPERVISOR)
            _, token = desk.issue_token(IssueToken(name=name, role=role, agent_id=name if person else None), ADMIN)
            assert token is not None
            tokens[who] = token
        teams = {t["name"]: t["team_id"] for t in client.get("/api/v1/teams", headers={
            "Authorization": f"Bearer {tokens['admin']}"}).json()}
        yield WhatifApi(client, desk, tokens, teams)


@pytest.fixture
def api(recorded_store: Path, tmp_path: Path) -> Iterator[WhatifApi]:
    with whatif_api(recorded_store, tmp_path) as api:
        yield api


def test_a_supervisors_whatif_answers_202_with_the_job_and_once_run_the_report_the_cli_prints(api: WhatifApi) -> None:
    response = api.start("supervisor", team="技术支持")
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/api/v1/whatif/{job['id']}"
    assert (job["status"], job["progress"], job["report"]) == ("queued", {"done": 0, "total": 0}, None)
    assert job["team_ids"] == [api.teams["技术支持"]] and job["requested_by"] == "gao.sup"

    polled = api.get("supervisor", response.headers["location"])
    assert polled.json()["status"] == "queued" and polled.headers["retry-after"] == "2"
    [ended] = api.work()
    assert ended.status == "done"

    done = api.get("supervisor", response.headers["location"]).json()
    assert done["status"] == "done" and done["error"] is None
    # every ticket of the period replayed (the report's figures are the team's share of them)
    assert done["progress"]["done"] == done["progress"]["total"] >= done["report"]["tickets"]["replayed"] > 0
    expected = run_whatif(api.desk, PERIOD, CANDIDATE_JSON, teams=[api.teams["技术支持"]])
    assert to_json(done["report"]) == to_json(expected)  # the JSON `ticketflow whatif --json` prints
    assert done["report"]["team"] == "技术支持" and done["report"]["tickets"]["replayed"] > 0
    # the candidate sends 发票 to 技术支持: 账务 had open tickets as recorded, none under the candidate
    load = {t["team"]: t for t in done["report"]["routing"]["open_load"]["teams"]}
    assert any(load["账务"]["recorded"]) and not any(load["账务"]["candidate"])
    assert all(now >= was for was, now in zip(load["技术支持"]["recorded"], load["技术支持"]["candidate"], strict=True))


def test_a_job_takes_the_candidates_assignment_and_rotation_and_reports_each_agents_share(api: WhatifApi) -> None:
    candidate = {"rotation": [{"team_id": "技术支持", "agent_id": "chen.jie", "active": False, "reason": "休假"}],
                 "assignment": [{"team_id": api.teams["技术支持"], "strategy": "round_robin"}]}
    response = api.start("supervisor", team="技术支持", candidate=candidate)
    assert response.status_code == 202, response.text
    api.work()
    report = api.get("supervisor", response.headers["location"]).json()["report"]
    assert to_json(report) == to_json(run_whatif(api.desk, PERIOD, candidate, teams=[api.teams["技术支持"]]))
    share = {row["agent"]: row for row in report["routing"]["per_agent"]}
    assert share["chen.jie"]["recorded"] > 0 and share["chen.jie"]["candidate"] == 0
    assert sum(row["difference"] for row in share.values()) == 0  # the same tickets, other agents


def test_without_a_team_a_supervisors_whatif_covers_their_teams_and_an_admins_the_whole_desk(api: WhatifApi) -> None:
    own = api.start("supervisor", candidate={}).json()  # as recorded: 账务's tickets stay 账务's
    desk_wide = api.start("admin", candidate={}).json()
    assert own["team_ids"] == [api.teams["技术支持"]]
    assert desk_wide["team_ids"] is None
    api.work()
    mine = api.get("supervisor", f"/api/v1/whatif/{own['id']}").json()["report"]
    everything = api.get("admin", f"/api/v1/whatif/{desk_wide['id']}").json()["report"]
    assert mine["team"] == "技术支持" and everything["team"] is None
    assert everything["tickets"]["replayed"] == len(FIXED.tickets) > mine["tickets"]["replayed"]


def test_a_supervisor_is_refused_another_teams_whatif_and_agents_and_auditors_any(api: WhatifApi) -> None:
    for who, team in [("supervisor", "账务"), ("agent", "技术支持"), ("agent", None), ("auditor", None)]:
        response = api.start(who, team=team)
        assert response.status_code == 403, (who, team, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert api.get("agent", "/api/v1/whatif").status_code == 403
    assert api.get("admin", "/api/v1/whatif").json() == []  # nothing was queued


def test_an_auditors_refusal_says_in_a_sentence_who_may_run_a_whatif(api: WhatifApi) -> None:
    detail = api.start("auditor", team=None).json()["detail"]
    assert detail == (
        "an auditor token may not run what-if replays (supervisors may, for their own teams; admins may, desk-wide)"
    )


INVALID: list[tuple[dict[str, Any], str]] = [
    ({"candidate": {"routing": {"default_team_id": "无此团队", "rules": []}}}, "body.candidate.routing.default_team_id"),
    ({"candidate": {"sla_policies": [{"name": "x", "position": 0, "targets": {"normal": {"first_reply_time": 5}}}]}},
     "body.candidate.sla_policies[0].targets.normal.first_reply_time"),
    ({"candidate": {"surprise": {}}}, "body.candidate"),
    ({"candidate": {"assignment": [{"team_id": "技术支持", "strategy": "fastest"}]}},
     "body.candidate.assignment[0].strategy"),
    ({"candidate": {"rotation": [{"team_id": "技术支持", "agent_id": "wang.fang", "active": False}]}},
     "body.candidate.rotation[0].agent_id"),  # a member of 账务, not of 技术支持 (the directory view says)
    ({"candidate": {"sla_policies": [{"name": "标准", "position": 0, "calendar_id": str(UUID(int=9)),
                                      "targets": {"normal": {"first_reply_time": {"minutes": 5}}}}]}},
     "body.candidate.sla_policies[0].calendar"),  # neither in the file nor on the desk: refused at once
    ({"candidate": {"calendars": [{"name": "火星", "timezone": "Mars/Base", "weekly": {"0": [["09:00", "18:00"]]}}]}},
     "body.candidate.calendars[0].timezone"),  # refused by the desk's calendar check, not the request model
    ({"team": "无此团队"}, "body.team"),
    ({"period": {"from": BODY_PERIOD["to"], "to": BODY_PERIOD["from"]}}, "body.period.to"),
    ({"period": {"from": "2026-03-01T00:00:00", "to": BODY_PERIOD["to"]}}, "body.period.from"),
]


def test_an_invalid_request_is_422_problem_json_naming_the_field_and_queues_nothing(api: WhatifApi) -> None:
    for change, field in INVALID:
        body = {"period": BODY_PERIOD, "candidate": CANDIDATE_JSON, **change}
        response = api.client.post("/api/v1/whatif", json=body, headers=api.headers("admin"))
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["errors"][0]["field"].startswith(field), (field, response.text)
    assert api.get("admin", "/api/v1/whatif").json() == []


def test_jobs_are_listed_newest_first_in_pages_each_only_to_whom_it_covers(api: WhatifApi) -> None:
    first = api.start("supervisor").json()["id"]
    second = api.start("supervisor", team="技术支持").json()["id"]
    desk_wide = api.start("admin").json()["id"]
    assert [j["id"] for j in api.get("admin", "/api/v1/whatif").json()] == [desk_wide, second, first]
    assert [j["id"] for j in api.get("supervisor", "/api/v1/whatif").json()] == [second, first]
    assert "report" not in api.get("admin", "/api/v1/whatif").json()[0]
    page = api.get("supervisor", "/api/v1/whatif?limit=1")
    assert [j["id"] for j in page.json()] == [second]
    rest = api.get("supervisor", f"/api/v1/whatif?limit=1&cursor={page.headers['x-next-cursor']}")
    assert [j["id"] for j in rest.json()] == [first] and "link" not in rest.headers
    assert api.get("supervisor", f"/api/v1/whatif/{desk_wide}").status_code == 404
    assert api.get("supervisor", f"/api/v1/whatif/{UUID(int=7)}").status_code == 404


def test_a_job_that_fails_in_the_worker_shows_why(api: WhatifApi) -> None:
    # a calendar named by id that neither the file nor the desk has: POST refuses it (422), so the job is
    # put in the store as an older desk might have queued it, and the worker's replay refuses it
    policy = {"name": "标准", "position": 0, "calendar_id": str(UUID(int=9)),
              "targets": {"normal": {"first_reply_time": {"minutes": 5}}}}
    request = {"period": BODY_PERIOD, "team": None, "candidate": {"sla_policies": [policy]}}
    services = api.client.app.state.services  # type: ignore[attr-defined]
    job = services.whatif.store.submit(request, "root", "admin", None, api.desk.clock.now())
    api.work()
    failed = api.get("admin", f"/api/v1/whatif/{job.id}").json()
    assert failed["status"] == "failed" and failed["report"] is None
    assert "sla_policies[0].calendar: no calendar" in failed["error"]


# ------------------------------------------------------------------ the store: restarts, leases, both databases
class Clock:
    def __init__(self) -> None:
        self.us = 1_000_000_000

    def __call__(self) -> int:
        return self.us


def test_a_job_whose_worker_died_is_run_again_by_the_next_worker_once_its_lease_ran_out(
    shared_store_settings: Settings, recorded_store: Path, tmp_path: Path
) -> None:
    desk = TicketDesk(shared_store_settings)
    clock = Clock()
    store: JobStore = open_job_store(shared_store_settings, desk.recorder, clock)
    try:
        request = {"period": BODY_PERIOD, "team": None, "candidate": {}}
        job = store.submit(request, "root", "admin", None, PERIOD.since)
        dead = store.claim()  # a worker takes it ... and its process dies
        assert dead is not None and dead.job.id == job.id and store.claim() is None
        restarted = open_job_store(shared_store_settings, desk.recorder, clock)  # a new process, same table
        clock.us += int(LEASE_SECONDS * 1_000_000) - 1
        assert restarted.claim() is None  # the lease still runs
        clock.us += 2
        again = restarted.claim()
        assert again is not None and again.job.id == job.id and again.job.attempts == 2
        store.finish(dead, '{"late": true}', None)  # the first worker, had it lived on, cannot overwrite it
        assert restarted.get(job.id).status == "running"  # type: ignore[union-attr]
        restarted.finish(again, None, "stopped")
        ended = restarted.get(job.id)
        assert ended is not None and (ended.status, ended.error) == ("failed", "stopped")
        restarted.close()
    finally:
        store.close()
        desk.close()


def test_the_background_worker_runs_a_job_as_soon_as_it_is_asked_for(recorded_store: Path, tmp_path: Path) -> None:
    with whatif_api(recorded_store, tmp_path) as api:
        services = api.client.app.state.services  # type: ignore[attr-defined]
        finished = threading.Event()
        worker = services.whatif.start_worker(poll_seconds=3600)  # only a wake-up starts a job
        worker.on_finished = lambda job: finished.set()
        try:
            job = api.start("admin", team="账务").json()
            assert finished.wait(120)
        finally:
            services.whatif.close()
        assert api.get("admin", f"/api/v1/whatif/{job['id']}").json()["status"] == "done"


def test_a_desk_gets_its_job_table_only_when_a_first_job_is_asked_for(shared_store_settings: Settings) -> None:
    desk = TicketDesk(shared_store_settings)
    jobs = WhatifJobs(desk)
    try:
        assert jobs.existing_store() is None  # the worker polls without creating anything
        jobs.store.submit({"period": BODY_PERIOD, "team": None, "candidate": {}}, "root", "admin", None, PERIOD.since)
        store = jobs.existing_store()
        assert store is not None and [j.status for j in store.jobs()] == ["queued"]
        other = WhatifJobs(desk)  # another process sees it too
        assert other.existing_store() is not None
        other.close()
    finally:
        jobs.close()
        desk.close()
