"""Over HTTP: a routed ticket, its SLA clocks with time left, and the SLA compliance report."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from projections.automation import Automation
from ticketflow.commands.workflow import DefineSlaPolicy, PublishRoutingRules
from ticketflow.config import Settings
from tests.api.conftest import Api, build_api
from tests.support import ADMIN


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from build_api(Settings(data_dir=tmp_path / "data"))


def settle(api: Api) -> None:
    services = api.client.app.state.services  # type: ignore[attr-defined]
    automation = Automation(services.desk, services.read_side)
    for _ in range(10):
        api.caught_up()
        done = sum(automation.run_once().values())
        api.caught_up()  # the views also take in what the app's own automation thread wrote meanwhile
        if done == 0:
            return


def route_to_team_a_with_a_4h_first_reply_target(api: Api) -> None:
    api.desk.publish_routing_rules(PublishRoutingRules(rules=[], default_team_id=api.team_a), ADMIN)
    api.desk.define_sla_policy(DefineSlaPolicy.model_validate({
        "name": "24x7", "position": 1,
        "targets": {"normal": {"first_reply_time": {"minutes": 240, "business_hours": False}}},
    }), ADMIN)


def test_a_ticket_shows_its_sla_clocks_and_the_report_counts_outcomes(api: Api) -> None:
    route_to_team_a_with_a_4h_first_reply_target(api)
    response = api.post("agent_a", "/api/v1/tickets", {"subject": "打印机卡纸", "requester_id": str(api.customer)})
    ticket_id = response.json()["id"]
    settle(api)
    ticket = api.get("supervisor_a", f"/api/v1/tickets/{ticket_id}").json()
    assert ticket["team_id"] == str(api.team_a) and ticket["assignee_id"] in {"li.wei", "emma.clark"}
    (clock,) = ticket["sla"]
    assert (clock["metric"], clock["state"], clock["policy"], clock["policy_version"]) == ("first_reply_time", "active", "24x7", 1)
    assert 0 < clock["remaining_seconds"] <= 240 * 60
    reply = api.post("agent_a", f"/api/v1/tickets/{ticket_id}/replies", {"body": "您好, 请重启打印机"})
    assert reply.status_code in (200, 201), reply.text
    settle(api)
    report = api.get("supervisor_a", "/api/v1/reports/sla", params={"period": "day"}).json()
    assert [(r["metric"], r["fulfilled"], r["breached"], r["compliance"]) for r in report] == [
        ("first_reply_time", 1, 0, 1.0)
    ]
    assert api.get("agent_b", "/api/v1/reports/sla").json() == []  # another team's figures are not theirs


def test_the_sla_report_as_of_a_past_instant_counts_only_what_was_measured_then(api: Api) -> None:
    route_to_team_a_with_a_4h_first_reply_target(api)

    def answered_ticket() -> None:
        ticket_id = api.post("agent_a", "/api/v1/tickets", {"subject": "打印机卡纸", "requester_id": str(api.customer)}).json()["id"]
        settle(api)
        assert api.post("agent_a", f"/api/v1/tickets/{ticket_id}/replies", {"body": "您好"}).status_code in (200, 201)
        settle(api)

    answered_ticket()
    then = api.get("supervisor_a", "/api/v1/reports/sla", params={"period": "day"}).json()
    assert [r["fulfilled"] for r in then] == [1]
    moment = api.recorded_now()
    answered_ticket()
    assert [r["fulfilled"] for r in api.get("supervisor_a", "/api/v1/reports/sla", params={"period": "day"}).json()] == [2]
    past = api.get("supervisor_a", "/api/v1/reports/sla", params={"period": "day", "as_of": moment.isoformat()})
    assert past.status_code == 200, past.text
    assert past.json() == then
