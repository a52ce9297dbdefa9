"""Test helpers: named callers and a small ready-made desk."""

from __future__ import annotations

import uuid
from typing import Any

from ticketflow.application import TicketDesk
from ticketflow.commands import AddTeamMember, FormTeam, OpenTicket, RegisterCustomer
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller

ADMIN = Caller("admin.root", Role.ADMIN, Channel.CLI)
AGENT = Caller("li.wei", Role.AGENT, Channel.API)
SUPERVISOR = Caller("gao.sup", Role.SUPERVISOR, Channel.API)



def two_teams(app: TicketDesk) -> tuple[uuid.UUID, uuid.UUID]:
    """Team A 技术支持 (agents li.wei and emma.clark, supervisor gao.sup) and team B Billing (wang.fang)."""
    from ticketflow.domain.values import MemberRole

    team_a = app.form_team(FormTeam(name="技术支持"), ADMIN).object_id
    team_b = app.form_team(FormTeam(name="Billing"), ADMIN).object_id
    for agent in ("li.wei", "emma.clark"):
        app.add_team_member(AddTeamMember(team_id=team_a, agent_id=agent), ADMIN)
    app.add_team_member(AddTeamMember(team_id=team_a, agent_id="gao.sup", role=MemberRole.SUPERVISOR), ADMIN)
    app.add_team_member(AddTeamMember(team_id=team_b, agent_id="wang.fang"), ADMIN)
    return team_a, team_b


class Desk:
    """A small desk set up for a test: one customer, one team with two agents."""

    def __init__(self, app: TicketDesk) -> None:
        self.app = app
        self.customer_id = app.register_customer(
            RegisterCustomer(name="王小明", email="xiaoming@example.cn", phone="+86 13800000000"), ADMIN
        ).object_id
        self.team_id = app.form_team(FormTeam(name="技术支持"), ADMIN).object_id
        for agent in ("li.wei", "emma.clark"):
            app.add_team_member(AddTeamMember(team_id=self.team_id, agent_id=agent), ADMIN)
        self.other_team_id = app.form_team(FormTeam(name="Billing"), ADMIN).object_id
        app.add_team_member(AddTeamMember(team_id=self.other_team_id, agent_id="wang.fang"), ADMIN)

    def open(self, subject: str = "无法登录账户") -> uuid.UUID:
        return self.app.open_ticket(
            OpenTicket(subject=subject, requester_id=self.customer_id, team_id=self.team_id), self.customer_caller
        ).object_id

    @property
    def customer_caller(self) -> Caller:
        return Caller(str(self.customer_id), Role.CUSTOMER, Channel.WEB_FORM)


def run_cli(argv: list[str], capsys: Any) -> tuple[int, str, str]:
    """Run the `ticketflow` command in-process: exit code, stdout, stderr."""
    from ticketflow_cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err
