"""The erasure canary: one unique piece of personal data, used everywhere, then erased.

Afterwards no database file (after VACUUM), no view, no search, no export and no log line
holds it, on SQLite; on PostgreSQL no table of the desk's schema does.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import psycopg
import pytest

from projections.automation import Automation
from tests.api.conftest import Api, build_api
from tests.email.corpus import plain
from ticketflow.config import Settings
from ticketflow.export.xes import export_xes

CANARY_CN = "鹦鹉螺号"
CANARY_EN = "Nautilus9X"
CANARY = f"{CANARY_CN}{CANARY_EN}"
NEEDLES = [CANARY_CN.encode(), CANARY_EN.encode(), CANARY_CN[:2].encode() + CANARY_CN[2:].encode()]


def use_everywhere(api: Api) -> str:
    """Register, open, reply, note, solve, rate, search and export with the canary in every personal field."""
    customer = api.post("admin", "/api/v1/customers", {
        "name": f"王{CANARY}", "email": "nautilus9x@example.cn", "company": f"{CANARY} 有限公司",
        "job_title": CANARY, "consents": ["service", "surveys"],
    }).json()["id"]
    ticket = api.post("agent_a", "/api/v1/tickets", {
        "subject": f"无法登录 {CANARY}", "description": f"描述 {CANARY}", "requester_id": customer,
        "team_id": str(api.team_a),
    }).json()["id"]
    for path, body in [
        (f"/api/v1/tickets/{ticket}/replies", {"body": f"回复 {CANARY}"}),
        (f"/api/v1/tickets/{ticket}/notes", {"body": f"备注 {CANARY}"}),
        (f"/api/v1/tickets/{ticket}/work-entries", {"action": f"处理 {CANARY}", "minutes": 5, "result": CANARY}),
        (f"/api/v1/tickets/{ticket}/solve", {"resolution": f"解决 {CANARY}"}),
        (f"/api/v1/tickets/{ticket}/resolution", {"summary": f"总结 {CANARY}"}),
    ]:
        response = api.post("agent_a", path, body)
        assert response.status_code in (200, 201), (path, response.text)
    api.post("admin", f"/api/v1/tickets/{ticket}/satisfaction", {"score": 5, "comment": f"好评 {CANARY}"})
    # Mail: the customer writes in (found by the blind index of their address), an agent answers by mail.
    raw = plain(f"邮件正文 {CANARY}", subject=f"邮件 {CANARY}", sender=f"王{CANARY} <Nautilus9X@example.cn>",
                message_id="<canary.1@mail.example.cn>")
    by_mail = api.desk.receive_mail(raw, mailbox="support", team_id=api.team_a)
    assert (by_mail.action, str(by_mail.customer_id)) == ("opened", customer)
    answered = api.post("agent_a", f"/api/v1/tickets/{by_mail.ticket_id}/replies", {"body": f"邮件回复 {CANARY}"})
    assert answered.status_code == 200, answered.text
    api.caught_up()
    hits = api.get("agent_a", "/api/v1/search", params={"q": CANARY_CN[:2]}).json()
    assert any(h["ticket_id"] == ticket for h in hits)
    api.get("compliance", f"/api/v1/customers/{customer}", headers={"X-Access-Purpose": "DSR check"})
    api.get("admin", "/api/v1/events", params={"limit": 500})
    return customer


def erase(api: Api, customer: str) -> None:
    response = api.post("compliance", f"/api/v1/customers/{customer}/erasure", {"reference": "DSR-CANARY"})
    assert response.status_code == 200, response.text
    api.caught_up()


def leaked_in(text: str) -> list[str]:
    return [n.decode() for n in NEEDLES if n.decode() in text]


def test_an_erased_customers_data_is_nowhere_on_sqlite(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    data = tmp_path / "data"
    for api in build_api(Settings(data_dir=data, automation=False)):
        customer = use_everywhere(api)
        services = api.client.app.state.services  # type: ignore[attr-defined]
        Automation(services.desk, services.read_side).run_once()  # surveys, outbox: the data reaches them too
        erase(api, customer)
        assert api.get("agent_a", "/api/v1/search", params={"q": CANARY_CN[:2]}).json() == []
        assert api.get("agent_a", "/api/v1/search", params={"q": CANARY_EN}).json() == []
        events = api.get("admin", "/api/v1/events", params={"limit": 1000}).text
        assert leaked_in(events) == [], events[max(0, events.find(CANARY_EN) - 600):events.find(CANARY_EN) + 100]
        export_xes(services.desk, tmp_path / "log.xes")
    assert leaked_in((tmp_path / "log.xes").read_text(encoding="utf-8")) == []
    service_log = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("ticketflow"))
    assert service_log and leaked_in(service_log) == []  # the test client's own request log is not the service's
    for path in sorted(data.rglob("*.sqlite")):
        db = sqlite3.connect(path)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
        db.close()
    leaks = {str(p.relative_to(data)): [n.decode() for n in NEEDLES if n in p.read_bytes()]
             for p in data.rglob("*") if p.is_file()}
    assert {p: found for p, found in leaks.items() if found} == {}


@pytest.mark.postgres
def test_an_erased_customers_data_is_in_no_postgres_table(postgres_url: str) -> None:
    for api in build_api(Settings(database_url=postgres_url, automation=False, embedded_projections=True)):
        customer = use_everywhere(api)
        erase(api, customer)
    schema = postgres_url.split("schema=")[1]
    with psycopg.connect(postgres_url.split("?")[0]) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,))]
        leaks = {}
        for table in tables:
            rows = conn.execute(f'SELECT t::text FROM "{schema}"."{table}" t').fetchall()
            found = sorted({n for row in rows for n in leaked_in(row[0])})
            if found:
                leaks[table] = found
    assert tables and leaks == {}
