"""A desk with two teams and every kind of object in each, and a token per role.

Own side: team A (li.wei agent, gao.sup supervisor); other side: team B (wang.fang). Each side
has a ticket, a customer whose only ticket is there, a reminder and a reply template.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.conftest import Api, build_api
from tests.support import ADMIN
from ticketflow.access import Permission, Principal
from ticketflow.commands import CreateReplyTemplate, OpenTicket, RegisterCustomer
from ticketflow.commands import workflow as wf
from ticketflow.commands.access import IssueToken
from ticketflow.config import Settings
from ticketflow.domain.values import Role


@dataclass
class Desk:
    api: Api
    own: dict[str, str] = field(default_factory=dict)
    other: dict[str, str] = field(default_factory=dict)
    webhook: str = ""
    sla_policy: str = ""
    calendar: str = ""

    @property
    def app(self) -> FastAPI:
        return self.api.client.app  # type: ignore[return-value]

    @property
    def client(self) -> TestClient:
        return self.api.client

    def headers(self, role: str) -> dict[str, str]:
        return self.api.headers(role)

    def principal(self, role: str) -> Principal:
        principal = self.api.desk.authenticate(self.api.tokens[role])
        assert principal is not None
        return principal


def _side(api: Api, team: Any, agent: str, name: str) -> dict[str, str]:
    desk = api.desk
    customer = desk.register_customer(RegisterCustomer(name=name), ADMIN).object_id
    ticket = desk.open_ticket(OpenTicket(subject=f"{name}的工单", requester_id=customer, team_id=team), ADMIN).object_id
    due = datetime.now(timezone.utc) + timedelta(days=3)
    reminder = desk.schedule_reminder(wf.ScheduleReminder(ticket_id=ticket, agent_id=agent, due_at=due), ADMIN).object_id
    template = desk.create_reply_template(
        CreateReplyTemplate(team_id=team, title="问候", body="{{customer.name}}您好，{{team.name}}已收到。"), ADMIN).object_id
    return {"ticket_id": str(ticket), "customer_id": str(customer), "team_id": str(team), "agent_id": agent,
            "reminder_id": str(reminder), "template_id": str(template)}


@pytest.fixture
def desk(tmp_path: Any) -> Iterator[Desk]:
    settings = Settings(data_dir=tmp_path / "access-data", rate_limit_burst=100_000, rate_limit_per_second=100_000,
                        automation=False)
    for api in build_api(settings):
        grantable = [Permission.TICKETS_READ, Permission.TICKETS_OPEN, Permission.TICKETS_MESSAGE,
                     Permission.TICKETS_WRITE, Permission.CUSTOMERS_READ, Permission.CUSTOMERS_REGISTER,
                     Permission.CUSTOMERS_WRITE, Permission.EVENTS_READ, Permission.METRICS_READ]
        _, token = api.desk.issue_token(
            IssueToken(name="crm-bridge-a", role=Role.INTEGRATION, team_ids=[api.team_a], permissions=grantable), ADMIN)
        assert token is not None
        api.tokens["integration_a"] = token
        desk = Desk(api, own=_side(api, api.team_a, "li.wei", "甲客户"), other=_side(api, api.team_b, "wang.fang", "乙客户"))
        calendar = api.desk.define_calendar(wf.DefineCalendar(
            name="上海工作日", timezone="Asia/Shanghai", weekly={str(d): [("09:00", "18:00")] for d in range(5)}), ADMIN)
        desk.calendar = str(calendar.object_id)
        policy = api.desk.define_sla_policy(wf.DefineSlaPolicy(
            name="标准", position=1, targets={"normal": {"first_reply_time": {"minutes": 60}}}), ADMIN)
        desk.sla_policy = str(policy.object_id)
        api.desk.publish_routing_rules(wf.PublishRoutingRules(rules=[], default_team_id=api.team_a), ADMIN)
        response = api.post("admin", "/api/v1/webhooks", {"name": "CRM", "url": "https://crm.example.com/hook",
                                                           "event_types": ["Ticket.Opened"]})
        assert response.status_code == 201, response.text
        desk.webhook = response.json()["id"]
        api.caught_up()
        yield desk
