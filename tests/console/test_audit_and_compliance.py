"""The auditor's and compliance reviewer's pages, in process: a record as of any instant, the diff
between two instants, its proof and a one-click verification (which names tampering), audit exports
an offline verifier accepts, and the compliance reports with their CSV downloads."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path
from uuid import UUID

from ticketflow_verify.bundle import verify_export

from projections.integrity.sealer import seal_to_end
from tests.console.conftest import Console
from tests.integrity.support import oid, raw
from tests.support import ADMIN
from ticketflow.commands import AssignTicket, ChangePriority, SolveTicket
from ticketflow.commands.privacy import EraseCustomer


def _worked_ticket(console: Console) -> str:
    """The printer ticket: assigned, made urgent, solved — then sealed."""
    desk, ticket = console.desk, UUID(console.seeded.tickets["printer"])
    desk.assign_ticket(AssignTicket(ticket_id=ticket, assignee_id="li.wei"), ADMIN)
    desk.change_priority(ChangePriority(ticket_id=ticket, priority="urgent"), ADMIN)
    desk.solve_ticket(SolveTicket(ticket_id=ticket, resolution="更换了搓纸轮"), ADMIN)
    seal_to_end(desk)
    console.caught_up()
    return str(ticket)


def _cell(html: str, field: str) -> str:
    found = re.search(rf'data-field="{field}">([^<]*)<', html)
    assert found, f"no {field} on the page"
    return found.group(1).strip()


def test_an_auditor_sees_a_ticket_as_of_an_earlier_version_and_the_diff_to_now(console: Console) -> None:
    ticket = _worked_ticket(console)
    client = console.sign_in("auditor")
    now = client.get(f"/audit/tickets/{ticket}")
    assert now.status_code == 200
    assert _cell(now.text, "status") == "Solved" and _cell(now.text, "priority") == "Urgent"
    assert _cell(now.text, "subject") == "***"  # auditors read no ticket text
    last = int(re.search(r'max="(\d+)"', now.text).group(1))  # type: ignore[union-attr]
    first = client.get(f"/audit/tickets/{ticket}", params={"version": 1, "compare": last})
    assert _cell(first.text, "status") == "New" and _cell(first.text, "priority") == "Normal"
    diff = first.text[first.text.index('id="diff"'):]
    assert re.search(r"Status</th><td class=\"old\">New</td>\s*<td class=\"new\">Solved", diff)
    assert re.search(r"Assignee</th><td class=\"old\">—</td>\s*<td class=\"new\">li.wei", diff)


def test_an_instant_before_the_ticket_existed_is_refused_next_to_the_field(console: Console) -> None:
    ticket = _worked_ticket(console)
    client = console.sign_in("auditor")
    answer = client.get(f"/audit/tickets/{ticket}", params={"at": "2001-01-01T08:00", "basis": "business"})
    assert answer.status_code == 422
    assert 'id="at-error"' in answer.text and "did not exist yet" in answer.text
    assert client.get(f"/audit/tickets/{ticket}", params={"at": "not a time"}).status_code == 422
    later = client.get(f"/audit/tickets/{ticket}", params={"at": "2999-01-01T00:00"})
    assert later.status_code == 200 and _cell(later.text, "status") == "Solved"


def test_one_click_verification_proves_the_record_and_names_a_tampered_event(console: Console) -> None:
    ticket = _worked_ticket(console)
    client = console.sign_in("auditor")
    page = client.get(f"/audit/tickets/{ticket}").text
    assert re.search(r"Tree size</dt><dd>\d+", page) and 'id="fingerprint">SHA256:' in page
    csrf = console.csrf(f"/audit/tickets/{ticket}")
    verified = client.post(f"/audit/tickets/{ticket}/verify", data={"csrf_token": csrf})
    assert verified.status_code == 200 and 'class="verdict ok"' in verified.text
    desk = console.desk
    raw(desk.recorder, "UPDATE {t} SET state = ? WHERE originator_id = ? AND originator_version = 2",
        (b"forged", oid(desk, UUID(ticket))))
    tampered = client.post(f"/audit/tickets/{ticket}/verify", data={"csrf_token": csrf})
    assert 'class="verdict bad"' in tampered.text and "Tampering detected" in tampered.text
    whole = client.post("/audit/verify", data={"csrf_token": csrf})
    assert 'class="verdict bad"' in whole.text


def test_nothing_sealed_yet_is_said_on_the_proof_and_the_export(console: Console) -> None:
    client = console.sign_in("auditor")
    ticket = console.seeded.tickets["billing"]
    page = client.get(f"/audit/tickets/{ticket}")
    assert page.status_code == 200 and "Nothing is sealed yet" in page.text
    assert client.get(f"/audit/tickets/{ticket}/export.zip").status_code == 409
    assert client.get("/audit").status_code == 200


def test_the_audit_export_download_verifies_offline(console: Console, tmp_path: Path) -> None:
    ticket = _worked_ticket(console)
    client = console.sign_in("auditor")
    for url in (f"/audit/tickets/{ticket}/export.zip", "/audit/export.zip"):
        answer = client.get(url)
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
        target = tmp_path / url.strip("/").replace("/", "-")
        with zipfile.ZipFile(io.BytesIO(answer.content)) as packed:
            packed.extractall(target)
        assert verify_export(target / "ticketflow-export", None) == []
    assert client.get("/audit/export.zip", params={"since": "2026-12-02T10:00", "until": "2026-12-01T10:00"}).status_code == 422


def test_history_pages_keep_team_scope_and_desk_wide_actions_to_desk_wide_roles(console: Console) -> None:
    ticket = _worked_ticket(console)
    client = console.sign_in("agent_b")
    assert client.get(f"/audit/tickets/{ticket}").status_code == 404
    assert client.get(f"/audit/customers/{console.seeded.customer}").status_code == 404
    assert client.get(f"/audit?ref=%23{ticket[:8]}").status_code == 404
    assert client.get("/audit/export.zip").status_code == 403
    client = console.sign_in("agent_a")
    mine = client.get(f"/audit/tickets/{ticket}")
    assert mine.status_code == 200 and _cell(mine.text, "subject") == "打印机卡纸，无法打印"  # agents read their tickets' text
    assert client.post("/audit/verify", data={"csrf_token": console.csrf("/audit")}).status_code == 403


def test_a_customer_history_masks_personal_fields(console: Console) -> None:
    client = console.sign_in("auditor")
    page = client.get(f"/audit?ref={console.seeded.customer}", follow_redirects=True)
    assert page.status_code == 200 and "/audit/customers/" in str(page.url)
    assert _cell(page.text, "email") == "***" and "xiaoming" not in page.text


def test_the_compliance_reviewer_finds_a_reveal_in_the_access_log_and_its_csv(console: Console) -> None:
    client = console.sign_in("agent_a")
    customer = console.seeded.customer
    client.post(f"/customers/{customer}/reveal", data={"csrf_token": console.csrf(), "purpose": "回电确认地址"})
    console.caught_up()
    client = console.sign_in("compliance")
    page = client.get("/compliance/access-log", params={"actor": "li.wei"})
    assert page.status_code == 200 and "回电确认地址" in page.text and "xiaoming" not in page.text
    assert "回电确认地址" not in client.get("/compliance/access-log", params={"actor": "nobody"}).text
    bad = client.get("/compliance/access-log", params={"customer": "not-an-id"})
    assert bad.status_code == 422 and 'id="customer-error"' in bad.text
    answer = client.get("/compliance/access-log.csv")
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert [(r["actor_id"], r["customer_id"], r["purpose"]) for r in rows] == [("li.wei", str(customer), "回电确认地址")]
    assert "xiaoming" not in answer.text


def test_erasures_and_retention_are_reported(console: Console) -> None:
    client = console.sign_in("compliance")
    assert "No customer has been erased yet." in client.get("/compliance/erasures").text
    assert "No retention rule is set" in client.get("/compliance/retention").text
    console.desk.erase_customer(EraseCustomer(customer_id=console.seeded.customer_b, reference="DSR-2026-0042"), ADMIN)
    page = client.get("/compliance/erasures")
    assert "DSR-2026-0042" in page.text and "Customer request" in page.text
    rows = list(csv.DictReader(io.StringIO(client.get("/compliance/erasures.csv").content.decode("utf-8-sig"))))
    assert [(r["customer_id"], r["reference"], r["basis"]) for r in rows] == [
        (str(console.seeded.customer_b), "DSR-2026-0042", "customer_request")]
    assert client.get("/compliance/access-log").status_code == 200
    auditor = console.sign_in("auditor")
    assert auditor.get("/compliance/erasures").status_code == 403  # the access log's readers only


def test_the_sla_report_names_teams_and_refuses_a_bad_date(console: Console) -> None:
    client = console.sign_in("supervisor_a")
    page = client.get("/compliance/sla")
    assert page.status_code == 200
    bad = client.get("/compliance/sla", params={"since": "2026-13-01"})
    assert bad.status_code == 422 and "Give a date like" in bad.text
    answer = client.get("/compliance/sla.csv")
    assert answer.status_code == 200 and answer.text.lstrip("\ufeff").startswith("period,team,team_id")


def test_odd_numbers_and_ids_in_addresses_are_answered_never_a_server_error(console: Console) -> None:
    ticket = _worked_ticket(console)
    client = console.sign_in("admin")
    for path in (f"/audit/tickets/{ticket}?version=²", f"/audit/tickets/{ticket}?compare={'9' * 30}",
                 "/compliance/access-log?after=²", f"/compliance/access-log?after={'9' * 30}",
                 "/compliance/sla?until=9999-12-31", "/admin/teams?at=²", f"/tickets/{ticket}?template=not-an-id"):
        assert client.get(path).status_code in (200, 422), path


def test_verifying_or_exporting_a_record_is_for_the_roles_that_see_every_team(console: Console) -> None:
    ticket = _worked_ticket(console)
    client = console.sign_in("agent_a")
    assert client.post(f"/audit/tickets/{ticket}/verify", data={"csrf_token": console.csrf()}).status_code == 403
    assert client.get(f"/audit/tickets/{ticket}/export.zip").status_code == 403
    assert "Verify this record" not in client.get(f"/audit/tickets/{ticket}").text
    other = console.sign_in("agent_b")
    assert other.get(f"/audit?ref={ticket}", follow_redirects=False).status_code == 404  # a full id tells nothing
