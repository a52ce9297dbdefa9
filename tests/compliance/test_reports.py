"""Compliance reports: the data-access report (API JSON, CLI CSV) and SLA compliance as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from projections.compliance import data_access_report
from projections.operations import team_names
from projections.readside import ReadSide
from projections.workflow import sla_compliance
from tests.api.conftest import Api, build_api
from tests.support import ADMIN
from tests.support import run_cli as run
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import RecordDataAccess, RegisterCustomer
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller

LI = Caller("li.wei", Role.AGENT, Channel.API)
KIM = Caller("comp.kim", Role.COMPLIANCE, Channel.API)


def record(desk: TicketDesk, caller: Caller, customer: UUID, fields: list[str], purpose: str) -> None:
    desk.record_data_access(RecordDataAccess(customer_id=customer, fields=fields, purpose=purpose,
                                             request_id="req-1", resource=f"GET /api/v1/customers/{customer}"), caller)


@pytest.fixture
def accesses(any_desk: TicketDesk, clock: FakeClock) -> Iterator[tuple[ReadSide, UUID, UUID]]:
    """li.wei reads two customers in March (three reads) and one in April; comp.kim one in April.
    On each store (memory, SQLite, PostgreSQL): the report's SQL is portable."""
    desk = any_desk
    one = desk.register_customer(RegisterCustomer(name="王小明", email="a@example.cn"), ADMIN).object_id
    two = desk.register_customer(RegisterCustomer(name="Emma Clark", phone="+44 7700 900123"), ADMIN).object_id
    record(desk, LI, one, ["email", "name"], "calling back")
    clock.advance(timedelta(hours=2))
    record(desk, LI, one, ["email"], "calling back")
    record(desk, LI, two, ["phone"], "sending a replacement")
    clock.set(datetime(2026, 4, 3, 10, 0, tzinfo=UTC))
    record(desk, LI, two, ["phone", "name"], "calling back")
    record(desk, KIM, one, ["email"], "audit of a complaint")
    read_side = ReadSide(desk, ["access"])
    read_side.catch_up()
    yield read_side, one, two
    read_side.close()


def test_reads_per_month_and_actor_count_customers_fields_and_purposes(
    accesses: tuple[ReadSide, UUID, UUID],
) -> None:
    read_side, _, _ = accesses
    rows = read_side.read("access", lambda db: data_access_report(db, "month"))
    assert rows == [
        {"period": "2026-03", "actor_id": "li.wei", "actor_role": "agent", "reads": 3, "customers": 2,
         "fields": {"email": 2, "name": 1, "phone": 1}, "purposes": {"calling back": 2, "sending a replacement": 1}},
        {"period": "2026-04", "actor_id": "comp.kim", "actor_role": "compliance", "reads": 1, "customers": 1,
         "fields": {"email": 1}, "purposes": {"audit of a complaint": 1}},
        {"period": "2026-04", "actor_id": "li.wei", "actor_role": "agent", "reads": 1, "customers": 1,
         "fields": {"name": 1, "phone": 1}, "purposes": {"calling back": 1}},
    ]
    yearly = read_side.read("access", lambda db: data_access_report(db, "year", actor_id="li.wei"))
    assert [(r["period"], r["reads"], r["customers"]) for r in yearly] == [("2026", 4, 2)]
    april = read_side.read("access", lambda db: data_access_report(db, "day", since="2026-04-01", until="2026-05-01"))
    assert [(r["period"], r["actor_id"]) for r in april] == [("2026-04-03", "comp.kim"), ("2026-04-03", "li.wei")]


def test_per_customer_on_request(accesses: tuple[ReadSide, UUID, UUID]) -> None:
    read_side, one, two = accesses
    rows = read_side.read("access", lambda db: data_access_report(db, "year", by_customer=True))
    assert [(r["actor_id"], r["customer_id"], r["reads"]) for r in rows] == sorted(
        [("comp.kim", str(one), 1), ("li.wei", str(one), 2), ("li.wei", str(two), 2)],
        key=lambda r: (r[0], r[1]),
    )
    only = read_side.read("access", lambda db: data_access_report(db, "year", customer_id=str(two)))
    assert [(r["actor_id"], r["reads"], r["fields"]) for r in only] == [("li.wei", 2, {"name": 1, "phone": 2})]
    with pytest.raises(ValueError):
        read_side.read("access", lambda db: data_access_report(db, "week"))


# ------------------------------------------------------------------------------- API
@pytest.fixture
def api(tmp_path: Any) -> Iterator[Api]:
    yield from build_api(Settings(data_dir=tmp_path / "api-data", rate_limit_burst=10_000, rate_limit_per_second=10_000))


def test_the_api_reports_unmasked_reads_to_compliance_only(api: Api) -> None:
    api.open_ticket()  # the customer has a ticket in agent_a's team
    api.caught_up()
    path = f"/api/v1/customers/{api.customer}"
    for _ in range(2):
        assert api.get("agent_a", path, headers={"X-Access-Purpose": "calling back"}).status_code == 200
    assert api.get("compliance", path, headers={"X-Access-Purpose": "complaint audit"}).status_code == 200
    assert api.get("agent_a", path).status_code == 200  # masked: not recorded, not counted
    api.caught_up()
    response = api.get("compliance", "/api/v1/reports/data-access", params={"period": "year"})
    assert response.status_code == 200, response.text
    rows = {r["actor_id"]: r for r in response.json()}
    assert set(rows) == {"li.wei", "comp.lee"}
    assert rows["li.wei"]["reads"] == 2 and rows["li.wei"]["customers"] == 1
    assert rows["li.wei"]["purposes"] == {"calling back": 2}
    assert set(rows["li.wei"]["fields"]) >= {"email", "name", "phone"}
    assert rows["li.wei"]["customer_id"] is None
    assert "xiaoming@example.cn" not in response.text  # names of fields, never their values

    per_customer = api.get("admin", "/api/v1/reports/data-access",
                           params={"by_customer": "true", "actor_id": "comp.lee"}).json()
    assert [(r["customer_id"], r["reads"]) for r in per_customer] == [(str(api.customer), 1)]
    for who in ("agent_a", "supervisor_a", "auditor"):
        denied = api.get(who, "/api/v1/reports/data-access")
        assert denied.status_code == 403
        assert denied.headers["content-type"].startswith("application/problem+json")
    assert api.get("compliance", "/api/v1/reports/data-access", params={"period": "week"}).status_code == 422


# ------------------------------------------------------------------------------- CLI
def test_sla_compliance_as_csv_matches_the_view(on_demo: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "sla.csv"
    code, _, err = run(["report", "sla", "--period", "month", "--csv", str(target)], capsys)
    assert code == 0, err
    with target.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    desk = TicketDesk(Settings(data_dir=on_demo))
    read_side = ReadSide(desk, ["workflow", "directory"])
    expected = read_side.read("workflow", lambda db: sla_compliance(db, "month"))
    names = read_side.read("directory", team_names)
    read_side.close()
    desk.close()
    assert rows, "the demo measured SLAs"
    assert list(rows[0]) == ["period", "team_id", "team_name", "priority", "metric", "fulfilled", "breached", "compliance"]
    assert [(r["period"], r["team_id"], r["metric"], int(r["fulfilled"]), int(r["breached"])) for r in rows] == [
        (e["period"], e["team_id"], e["metric"], e["fulfilled"], e["breached"]) for e in expected]
    assert [r["team_name"] for r in rows] == [names.get(r["team_id"], "") for r in rows]
    assert any(r["team_name"] == "技术支持 Technical Support" for r in rows)  # the names people know them by
    code, out, err = run(["report", "sla", "--period", "year", "--csv", "-"], capsys)
    assert code == 0, err
    assert out.splitlines()[0] == "period,team_id,team_name,priority,metric,fulfilled,breached,compliance"
    code, out, _ = run(["report", "sla"], capsys)
    assert code == 0 and "SLA compliance per month" in out and "team_name" in out


def test_data_access_as_csv(on_demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    desk = TicketDesk(Settings(data_dir=on_demo))
    customer = desk.register_customer(RegisterCustomer(name="CSV Person", email="csv@example.org"), ADMIN).object_id
    record(desk, LI, customer, ["email", "name"], "calling back, about \"ticket 7\"")
    record(desk, LI, customer, ["email"], "calling back, about \"ticket 7\"")
    desk.close()
    code, out, err = run(["report", "data-access", "--period", "year", "--actor", "li.wei", "--by-customer",
                          "--csv", "-"], capsys)
    assert code == 0, err
    rows = [r for r in csv.DictReader(io.StringIO(out)) if r["customer_id"] == str(customer)]
    assert len(rows) == 1
    assert rows[0]["reads"] == "2" and rows[0]["customers"] == "1"
    assert rows[0]["fields"] == "email=2; name=1"
    assert rows[0]["purposes"] == 'calling back, about "ticket 7"=2'
    assert "csv@example.org" not in out
    code, out, _ = run(["report", "data-access", "--csv", "-"], capsys)
    assert code == 0 and "customer_id" not in out.splitlines()[0]
    assert run(["report", "data-access", "--period", "week"], capsys)[0] == 1
    code, _, err = run(["report", "data-access", "--customer", "nobody"], capsys)
    assert code == 1 and "not a customer id" in err
