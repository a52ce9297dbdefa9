"""The erasure canary, scanned the hard way: unique strings (Chinese and ASCII) in every personal
field and every kind of ticket text, used by search, reports and exports, then erased; then every
file under the data dir is read *while the server still runs*, in every encoding a copy could take."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from projections.automation import Automation
from tests.api.conftest import Api, build_api
from tests.privacy.scan import scan_tree
from ticketflow.config import Settings
from ticketflow.export.xes import export_xes

CN, EN = "琥珀潜艇七号", "Quokka7Zeta"
PHONE = "+86 139 7531 8642"
#: Each canary as written, the ASCII one also case-folded (a search index keeps its terms
#: lower-cased), and the phone number as given and as its digits alone.
CANARIES = [CN, EN, EN.lower(), PHONE, "8613975318642"]


def use_everywhere(api: Api, tmp_path: Path) -> str:
    """Every personal field and every kind of ticket text carries the canaries; then the desk reads them."""
    both = f"{CN} {EN}"
    customer = api.post("admin", "/api/v1/customers", {
        "name": f"王{CN}", "email": f"{EN}@example.cn", "phone": PHONE, "im_handle": f"wx_{EN}",
        "company": f"{CN}有限公司", "job_title": f"{EN} 经理", "consents": ["service", "surveys"],
    }).json()["id"]
    assert api.client.patch(f"/api/v1/customers/{customer}", json={"job_title": f"高级 {both}"},
                            headers=api.headers("admin")).status_code == 200
    ticket = api.post("agent_a", "/api/v1/tickets", {
        "subject": f"无法登录 {both}", "description": f"描述 {both}", "requester_id": customer, "team_id": str(api.team_a),
    }).json()["id"]
    for path, body in [
        ("replies", {"body": f"回复 {both}"}),
        ("replies", {"body": f"客户来信 {both}", "direction": "inbound"}),
        ("notes", {"body": f"备注 {both}"}),
        ("interactions", {"kind": "call", "direction": "inbound", "body": f"来电 {both}", "duration_minutes": 3}),
        ("interactions", {"kind": "chat", "direction": "outbound", "body": f"聊天 {both}"}),
        ("work-entries", {"action": f"处理 {both}", "minutes": 5, "result": f"结果 {both}"}),
        ("solve", {"resolution": f"解决 {both}"}),
        ("resolution", {"summary": f"总结 {both}"}),
    ]:
        response = api.post("agent_a", f"/api/v1/tickets/{ticket}/{path}", body)
        assert response.status_code in (200, 201), (path, response.text)
    assert api.post("admin", f"/api/v1/tickets/{ticket}/satisfaction", {"score": 5, "comment": f"好评 {both}"}).status_code == 200
    reminder = api.post("agent_a", "/api/v1/reminders", {"ticket_id": ticket, "agent_id": "li.wei", "kind": "follow_up",
                                                         "due_at": "2030-01-01T09:00:00+08:00", "note": f"回访 {both}"})
    assert reminder.status_code == 201, reminder.text
    api.caught_up()
    for q in (CN[:2], EN):
        assert any(h["ticket_id"] == ticket for h in api.get("agent_a", "/api/v1/search", params={"q": q}).json())
    purpose = {"X-Access-Purpose": "DSR check"}
    assert CN in api.get("compliance", f"/api/v1/customers/{customer}", headers=purpose).text
    assert EN in api.get("compliance", f"/api/v1/customers/{customer}/overview", headers=purpose).text
    for path in ("/api/v1/reports/volume", "/api/v1/reports/backlog", "/api/v1/reports/satisfaction", "/api/v1/problems"):
        assert api.get("admin", path).status_code == 200, path
    assert EN in api.get("admin", "/api/v1/events", params={"limit": 1000}, headers=purpose).text
    services = api.client.app.state.services  # type: ignore[attr-defined]
    Automation(services.desk, services.read_side).run_once()  # surveys, follow-ups, outbox: the text reaches them too
    export_xes(services.desk, tmp_path / "before.xes")
    return customer


def erase(api: Api, customer: str) -> None:
    response = api.post("compliance", f"/api/v1/customers/{customer}/erasure", {"reference": "DSR-2026-0042"})
    assert response.status_code == 200, response.text
    api.caught_up()


def test_after_erasure_no_file_of_a_running_sqlite_desk_holds_the_customers_data(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for api in build_api(Settings(data_dir=data, automation=False)):
        customer = use_everywhere(api, tmp_path)
        assert scan_tree(data, CANARIES)  # the scan does find them before the erasure
        keys = sqlite3.connect(data / "ticketflow-keys.sqlite")
        [(key,)] = keys.execute("SELECT key FROM tf_subject_keys WHERE subject_id = ?", (customer,)).fetchall()
        keys.close()
        erase(api, customer)
        leaks = scan_tree(data, CANARIES)  # the server is still running: WAL files included
        assert leaks == {}, "\n".join(f"{k}: {v}" for k, v in leaks.items())
        holding_key = [str(p) for p in data.rglob("*") if p.is_file() and bytes(key) in p.read_bytes()]
        assert holding_key == []  # nor the destroyed key, in the key store or its WAL
        assert api.get("agent_a", "/api/v1/search", params={"q": EN}).json() == []
        events = api.get("admin", "/api/v1/events", params={"limit": 1000}).text
        assert CN not in events and EN not in events


def _relation_files(conn: object, schema: str) -> list[Path]:
    """Every file of every relation of ``schema``: tables, indexes, TOAST, all forks and segments."""
    data_directory = Path(conn.execute("SHOW data_directory").fetchone()[0])  # type: ignore[attr-defined]
    rows = conn.execute(  # type: ignore[attr-defined]
        "SELECT pg_relation_filepath(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND pg_relation_filepath(c.oid) IS NOT NULL"
        " UNION SELECT pg_relation_filepath(t.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_class t ON t.oid = c.reltoastrelid WHERE n.nspname = %s"
        " UNION SELECT pg_relation_filepath(i.indexrelid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " JOIN pg_index i ON i.indrelid = c.reltoastrelid WHERE n.nspname = %s", (schema, schema, schema)).fetchall()
    files = []
    for (relative,) in rows:
        base = data_directory / relative
        files.extend(p for p in base.parent.glob(base.name + "*") if p.name == base.name or p.name[len(base.name)] in "._")
    return files


@pytest.mark.postgres
def test_after_erasure_and_the_documented_procedure_no_postgres_relation_file_or_dump_holds_it(
    postgres_url: str, tmp_path: Path
) -> None:
    import subprocess

    import psycopg

    settings = Settings(database_url=postgres_url, data_dir=tmp_path / "data", automation=False, embedded_projections=True)
    schema = postgres_url.split("schema=")[1]
    server = postgres_url.split("?")[0]
    for api in build_api(settings):
        customer = use_everywhere(api, tmp_path)
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
            before = {str(p): found for p in _relation_files(conn, schema) if (found := _file_hits(p))}
        assert before  # the scan does find the text in the relation files before the erasure
        erase(api, customer)
        # The documented procedure (README "Erasure"): the views rewrote their tables by themselves;
        # the operator runs CHECKPOINT so the dropped files go and the WAL moves on.
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
            leaks = {str(p): found for p in _relation_files(conn, schema) if (found := _file_hits(p))}
        assert leaks == {}
        dump = subprocess.run(["pg_dump", "--data-only", "-n", schema, server], capture_output=True, check=True).stdout
        from tests.privacy.scan import hits

        assert hits(dump, CANARIES) == []
        assert scan_tree(tmp_path / "data", CANARIES) == {}


def _file_hits(path: Path) -> list[str]:
    from tests.privacy.scan import hits

    try:
        return hits(path.read_bytes(), CANARIES)
    except FileNotFoundError:
        return []


@pytest.mark.postgres
def test_a_transaction_open_during_the_erasure_leaves_no_old_row_or_key_in_the_rewritten_files(
    postgres_url: str, tmp_path: Path
) -> None:
    """VACUUM FULL copies the row versions an open transaction may still see (a report, a pg_dump, the
    sealer's batch): the rewrites wait for the transactions begun before the purge to end."""
    import threading

    import psycopg

    settings = Settings(database_url=postgres_url, data_dir=tmp_path / "data", automation=False, embedded_projections=True)
    schema = postgres_url.split("schema=")[1]
    server = postgres_url.split("?")[0]
    for api in build_api(settings):
        customer = use_everywhere(api, tmp_path)
        with psycopg.connect(server, autocommit=True) as conn:
            [(key,)] = conn.execute(f'SELECT key FROM "{schema}".tf_subject_keys WHERE subject_id = %s', (customer,))
        report = psycopg.connect(server)
        report.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        report.execute(f'SELECT count(*) FROM "{schema}".tf_timeline').fetchone()  # its snapshot predates the erasure
        ends = threading.Timer(1.0, report.commit)  # the report ends a moment later
        ends.start()
        erase(api, customer)
        ends.join()
        report.close()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
            files = _relation_files(conn, schema)
        leaks = {str(p): found for p in files if (found := _file_hits(p))}
        assert leaks == {}
        assert [str(p) for p in files if p.exists() and bytes(key) in p.read_bytes()] == []  # the destroyed key
