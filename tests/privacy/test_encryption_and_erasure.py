"""Personal data is sealed per customer in the store, and erasure makes it unreadable everywhere in the desk."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest
from eventsourcing.persistence import MapperDeserialisationError

from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import AddCustomerNote, OpenTicket, PostReply, RegisterCustomer, SolveTicket
from ticketflow.commands.privacy import EraseCustomer
from ticketflow.config import Settings
from ticketflow.domain.customer import ERASED
from ticketflow.domain.values import Channel, Direction, Role
from ticketflow.errors import PermissionDenied, RuleViolation
from ticketflow.metadata import Caller
from tests.support import ADMIN, AGENT

CANARY = "金丝雀Canary7Q"
COMPLIANCE = Caller("comp.lee", Role.COMPLIANCE, Channel.API)


@pytest.fixture
def desk(store_settings: Settings, clock: FakeClock) -> Iterator[TicketDesk]:
    app = TicketDesk(store_settings.model_copy(update={"snapshot_interval": 2}), clock=clock)
    yield app
    app.close()


def seed(desk: TicketDesk) -> tuple[UUID, UUID]:
    customer = desk.register_customer(
        RegisterCustomer(name=f"王{CANARY}", email="canary7q@example.cn", company=f"{CANARY} Ltd"), ADMIN
    ).object_id
    caller = Caller(str(customer), Role.CUSTOMER, Channel.EMAIL)
    ticket = desk.open_ticket(OpenTicket(subject=f"无法登录 {CANARY}", description=CANARY, requester_id=customer), caller).object_id
    desk.post_reply(PostReply(ticket_id=ticket, body=f"again {CANARY}", direction=Direction.INBOUND), caller)
    desk.add_customer_note(AddCustomerNote(customer_id=customer, note=f"VIP {CANARY}"), AGENT)
    desk.solve_ticket(SolveTicket(ticket_id=ticket, resolution=f"reset {CANARY}"), AGENT)
    return customer, ticket


def test_personal_fields_are_stored_sealed_and_read_back_whole(desk: TicketDesk) -> None:
    customer, ticket = seed(desk)
    stored = desk.recorder.select_notifications(1, 1000)
    assert stored and all(CANARY.encode() not in n.state for n in stored)
    assert desk.get_customer(customer).name == f"王{CANARY}"
    assert desk.get_ticket(ticket).subject == f"无法登录 {CANARY}"


def test_erasure_makes_the_customers_data_read_as_erased_and_keeps_the_history(desk: TicketDesk) -> None:
    customer, ticket = seed(desk)
    before = len(desk.history(ticket))
    with pytest.raises(PermissionDenied):
        desk.erase_customer(EraseCustomer(customer_id=customer, reference="DSR-1"), AGENT)
    desk.erase_customer(EraseCustomer(customer_id=customer, reference="DSR-1"), COMPLIANCE)
    assert desk.get_customer(customer).name == ERASED and desk.get_customer(customer).email is None
    t = desk.get_ticket(ticket)
    assert (t.subject, t.description, t.status) == (ERASED, ERASED, "solved")
    events = desk.history(ticket)
    assert len(events) == before
    assert all(CANARY not in repr(e) for e in events + desk.history(customer))
    names = [type(e).__name__ for e in desk.history(customer)][-2:]
    assert names == ["ErasureRequested", "Erased"]
    with pytest.raises(RuleViolation, match="already erased"):
        desk.erase_customer(EraseCustomer(customer_id=customer, reference="DSR-1b"), COMPLIANCE)


def test_a_new_reply_on_an_erased_customers_ticket_keeps_no_plaintext(desk: TicketDesk) -> None:
    customer, ticket = seed(desk)
    desk.erase_customer(EraseCustomer(customer_id=customer, reference="DSR-2"), COMPLIANCE)
    desk.post_reply(PostReply(ticket_id=ticket, body=f"late {CANARY}"), AGENT)
    assert all(CANARY.encode() not in n.state for n in desk.recorder.select_notifications(1, 1000))
    assert desk.history(ticket)[-1].body == ERASED


def test_a_sealed_field_moved_into_another_event_does_not_open(tmp_path: Path, clock: FakeClock) -> None:
    desk = TicketDesk(Settings(data_dir=tmp_path / "data"), clock=clock)
    customer, ticket = seed(desk)
    desk.close()
    db = sqlite3.connect(tmp_path / "data" / "ticketflow.sqlite")
    rows = db.execute("SELECT originator_id, originator_version, state FROM stored_events ORDER BY rowid").fetchall()
    ticket_rows = [r for r in rows if r[0] == ticket.hex]
    import json

    from ticketflow.writer_mac import MAC_BYTES, MAGIC

    def inner(state: bytes) -> bytes:  # the mapper's bytes, behind the writer MAC
        return state[len(MAGIC) + MAC_BYTES:] if state.startswith(MAGIC) else state

    first, second = json.loads(inner(ticket_rows[0][2])), json.loads(inner(ticket_rows[1][2]))
    second["body"] = first["subject"]  # a sealed subject copied over the reply's sealed body
    db.execute("UPDATE stored_events SET state = ? WHERE originator_id = ? AND originator_version = ?",
               (json.dumps(second).encode(), ticket.hex, ticket_rows[1][1]))
    db.commit()
    db.close()
    reopened = TicketDesk(Settings(data_dir=tmp_path / "data", aggregate_cache_size=0), clock=clock)
    try:
        with pytest.raises(MapperDeserialisationError, match="does not open"):
            reopened.history(ticket)
    finally:
        reopened.close()


def test_the_raw_store_files_hold_no_plaintext_after_erasure(tmp_path: Path, clock: FakeClock) -> None:
    data = tmp_path / "data"
    desk = TicketDesk(Settings(data_dir=data, snapshot_interval=2), clock=clock)
    customer, _ = seed(desk)
    desk.erase_customer(EraseCustomer(customer_id=customer, reference="DSR-3"), COMPLIANCE)
    desk.close()
    for name in ("ticketflow.sqlite", "ticketflow-keys.sqlite"):
        db = sqlite3.connect(data / name)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
        db.close()
    for path in data.glob("*.sqlite*"):
        assert CANARY.encode() not in path.read_bytes(), path


def test_the_cli_erases_once_and_refuses_a_second_time(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ticketflow_cli import main

    desk = TicketDesk(Settings(data_dir=data_dir))
    customer, _ = seed(desk)
    desk.close()
    assert main(["customer", "erase", str(customer), "--reference", "DSR-7"]) == 1  # not a terminal, no --yes
    err = " ".join(capsys.readouterr().err.split())
    assert "profile fields name, email" in err and "1 ticket(s)" in err and "add --yes" in err
    assert TicketDesk(Settings(data_dir=data_dir)).erasure_scope(customer).already_erased is False
    assert main(["customer", "erase", str(customer), "--reference", "DSR-7", "--yes"]) == 0
    assert "1 ticket(s) now show personal fields as [erased]" in " ".join(capsys.readouterr().out.split())
    assert main(["customer", "erase", str(customer), "--reference", "DSR-7", "--yes"]) == 1
    assert "already erased" in capsys.readouterr().err


def test_the_cli_asks_before_erasing_and_a_no_erases_nothing(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io

    from ticketflow_cli import main

    desk = TicketDesk(Settings(data_dir=data_dir))
    customer, _ = seed(desk)
    desk.close()
    for answer, code in (("n\n", 1), ("y\n", 0)):
        stdin = io.StringIO(answer)
        stdin.isatty = lambda: True  # type: ignore[method-assign]
        monkeypatch.setattr("sys.stdin", stdin)
        assert main(["customer", "erase", str(customer), "--reference", "DSR-8"]) == code
        erased = TicketDesk(Settings(data_dir=data_dir))
        assert erased.erasure_scope(customer).already_erased is (code == 0)
        erased.close()
        err = capsys.readouterr().err
        assert "erase this customer's personal data?" in err
        assert ("not erased: customer" in err) is (code == 1)  # a "no" says so, in one line


def test_the_erasure_endpoint_is_for_compliance_only(tmp_path: Path) -> None:
    from tests.api.conftest import build_api

    for api in build_api(Settings(data_dir=tmp_path / "data", automation=False)):
        path = f"/api/v1/customers/{api.customer}/erasure"
        assert api.post("supervisor_a", path, {"reference": "DSR-8"}).status_code == 403
        done = api.post("compliance", path, {"reference": "DSR-8"})
        assert done.status_code == 200, done.text
        assert done.json()["events"] == ["Customer.Erased"]
        again = api.post("compliance", path, {"reference": "DSR-8"})
        assert again.status_code == 409 and "already erased" in again.json()["detail"]


def test_retention_erases_inactive_customers_and_the_erasure_log_lists_them(store_settings: Settings) -> None:
    from datetime import timedelta

    from projections.automation import Automation
    from projections.readside import ReadSide
    from ticketflow.commands import CloseTicket
    from ticketflow.privacy.report import erasure_log

    clock = FakeClock()
    desk = TicketDesk(store_settings.model_copy(update={"retention_days": 365, "automation": True}), clock=clock)
    read_side = ReadSide(desk, ["customers", "tickets", "workflow"])
    try:
        gone, ticket = seed(desk)
        desk.close_ticket(CloseTicket(ticket_id=ticket), AGENT)
        kept = desk.register_customer(RegisterCustomer(name="李四"), ADMIN).object_id
        desk.open_ticket(OpenTicket(subject="still open", requester_id=kept),
                         Caller(str(kept), Role.CUSTOMER, Channel.EMAIL))
        clock.advance(timedelta(days=366))
        read_side.catch_up()
        assert Automation(desk, read_side).retention(clock.now()) == 1
        assert desk.get_customer(gone).name == ERASED and desk.get_customer(kept).name == "李四"
        (entry,) = erasure_log(desk)
        assert (entry["customer_id"], entry["basis"], entry["tickets"]) == (str(gone), "retention", 1)
        assert entry["requested_by"] == "automation" and entry["completed_at"] is not None
    finally:
        read_side.close()
        desk.close()


def test_the_erasure_log_exports_as_csv(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ticketflow_cli import main

    desk = TicketDesk(Settings(data_dir=data_dir))
    customer, _ = seed(desk)
    desk.erase_customer(EraseCustomer(customer_id=customer, reference="DSR-10"), COMPLIANCE)
    desk.close()
    assert main(["report", "erasures", "--csv", "-"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("customer_id,basis,reference")
    assert lines[1].startswith(f"{customer},customer_request,DSR-10,") and CANARY not in "\n".join(lines)


def test_audit_verification_still_passes_after_an_erasure(store_settings: Settings, tmp_path: Path) -> None:
    from projections.integrity.sealer import Sealer
    from projections.integrity.verifier import verify_store

    settings = store_settings.model_copy(update={"snapshot_interval": 2, "data_dir": tmp_path / "data"})
    desk = TicketDesk(settings, clock=FakeClock())
    sealer = Sealer(desk, every_events=5)
    try:
        customer, ticket = seed(desk)
        sealer.catch_up(checkpoint=True)
        desk.erase_customer(EraseCustomer(customer_id=customer, reference="DSR-11"), COMPLIANCE)
        sealer.catch_up(checkpoint=True)
        report = verify_store(desk, sealer.store)
        assert report.ok, report.problems
        assert report.sealed == desk.log_position()
        assert verify_store(desk, sealer.store, ticket=ticket).ok
    finally:
        sealer.close()
        desk.close()
