"""An API on a fresh store, with a team setup and a token per role."""

from __future__ import annotations

from collections.abc import Iterator
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from ticketflow.application import TicketDesk
from ticketflow.clock import Clock
from ticketflow.commands import RegisterCustomer
from ticketflow.commands.access import IssueToken
from ticketflow.config import Settings
from ticketflow.access import PERSON_ROLES
from ticketflow.domain.values import Role
from tests.support import ADMIN, two_teams


@dataclass
class Api:
    client: TestClient
    desk: TicketDesk
    team_a: UUID
    team_b: UUID
    customer: UUID
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}

    def post(self, who: str, path: str, json: Any = None, **headers: str) -> Any:
        return self.client.post(path, json=json if json is not None else {}, headers=self.headers(who, **headers))

    def get(self, who: str, path: str, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        return self.client.get(path, headers=self.headers(who, **headers), **kwargs)

    def open_ticket(self, who: str = "agent_a", team: str = "a", subject: str = "无法登录账户") -> str:
        team_id = self.team_a if team == "a" else self.team_b
        response = self.post(who, "/api/v1/tickets", {"subject": subject, "requester_id": str(self.customer), "team_id": str(team_id)})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def wait(self, position: int) -> None:
        assert self.client.app.state.services.read_side.wait(position, timeout=10)  # type: ignore[attr-defined]

    def caught_up(self) -> None:
        self.wait(self.desk.log_position())

    def recorded_now(self) -> datetime:
        """The recorded time of the newest event in the log (what "now" is to an as-of read)."""
        notification = self.desk.recorder.select_notifications(self.desk.log_position(), 1)[0]
        moment: datetime = self.desk.mapper.to_domain_event(notification).timestamp  # type: ignore[attr-defined]
        time.sleep(0.005)  # whatever comes next is recorded strictly later
        return moment


def build_api(settings: Settings, clock: Clock | None = None) -> Iterator[Api]:
    app = create_app(settings, clock=clock)
    with TestClient(app) as client:
        desk: TicketDesk = app.state.services.desk
        team_a, team_b = two_teams(desk)
        customer = desk.register_customer(
            RegisterCustomer(name="王小明", email="xiaoming@example.cn", phone="+86 13800000000", company="华信科技"), ADMIN
        ).object_id
        api = Api(client, desk, team_a, team_b, customer)
        for key, name, role, teams in [
            ("admin", "root", Role.ADMIN, []),
            ("agent_a", "li.wei", Role.AGENT, [team_a]),
            ("agent_a2", "emma.clark", Role.AGENT, [team_a]),
            ("agent_b", "wang.fang", Role.AGENT, [team_b]),
            ("supervisor_a", "gao.sup", Role.SUPERVISOR, [team_a]),
            ("auditor", "audit.kim", Role.AUDITOR, []),
            ("compliance", "comp.lee", Role.COMPLIANCE, []),
            ("integration", "mail-gateway", Role.INTEGRATION, []),
        ]:
            person = role in PERSON_ROLES  # bound to a team member: the teams come from the directory
            command = IssueToken(name=name, role=role, agent_id=name if person else None, team_ids=[] if person else teams)
            _, token = desk.issue_token(command, ADMIN)
            assert token is not None
            api.tokens[key] = token
        yield api


@pytest.fixture
def api(tmp_path: Any) -> Iterator[Api]:
    yield from build_api(Settings(data_dir=tmp_path / "api-data", rate_limit_burst=10_000, rate_limit_per_second=10_000))
