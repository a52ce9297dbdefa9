"""Nothing unsealed passes for proven, a forged row is never sealed, and every writing command
ends with a checkpoint covering its last event."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from projections.integrity.sealer import TamperDetected
from projections.integrity.verifier import verify_store
from tests.integrity.support import Sealed, event_at, populate, raw
from tests.support import run_cli
from ticketflow.writer_mac import MAC_BYTES, MAGIC


def _forge_next_event(sealed: Sealed, with_mac_of_another_row: bool) -> int:
    """Append a row to the event table the way someone with database access would: the next version
    of a ticket, its bytes copied from a genuine event (with that event's MAC, or none)."""
    desk = sealed.desk
    ticket = sealed.tickets[0]
    last = desk.get_ticket(ticket).version
    genuine = event_at(desk, desk.log_position())
    state = bytes(genuine["state"])
    if not with_mac_of_another_row:
        state = state[len(MAGIC) + MAC_BYTES:]
    postgres = hasattr(desk.recorder.datastore, "schema")
    raw(desk.recorder, "INSERT INTO {t} (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)",
        (ticket if postgres else ticket.hex, last + 1, genuine["topic"], state))
    return desk.log_position()


@pytest.mark.parametrize("with_mac", [False, True], ids=["no-mac", "copied-mac"])
def test_a_row_forged_before_the_sealer_reaches_it_is_refused_and_named(sealed: Sealed, with_mac: bool) -> None:
    populate(sealed.desk, tickets=1, notes=1)  # genuine events, not sealed yet
    forged = _forge_next_event(sealed, with_mac)
    report = verify_store(sealed.desk, sealed.sealer.store, snapshots=False)
    assert not report.ok
    assert report.problems[0].startswith(f"unsealed event at position {forged}: stored event {sealed.tickets[0]} ")
    with pytest.raises(TamperDetected, match=f"cannot seal event at position {forged}: .*writer MAC"):
        sealed.sealer.catch_up()
    assert sealed.sealer.position() < forged  # nothing from the forged row on was sealed


def test_verifying_a_store_with_unsealed_events_never_says_plain_ok(sealed: Sealed) -> None:
    assert verify_store(sealed.desk, sealed.sealer.store, snapshots=False).summary().startswith("OK: ")
    populate(sealed.desk, tickets=1, notes=1)
    report = verify_store(sealed.desk, sealed.sealer.store, snapshots=False)
    assert report.ok and not report.complete
    assert report.summary().startswith("INCOMPLETE: ") and "not sealed yet" in report.summary()
    sealed.sealer.catch_up(checkpoint=True)
    assert verify_store(sealed.desk, sealed.sealer.store, snapshots=False).complete


def test_sealed_events_no_signed_checkpoint_covers_yet_are_not_plain_ok(sealed: Sealed) -> None:
    populate(sealed.desk, tickets=1, notes=1)
    sealed.sealer.catch_up()  # chained and hashed, but no checkpoint signed over them yet
    report = verify_store(sealed.desk, sealed.sealer.store, snapshots=False)
    assert report.ok and report.unsealed == 0 and report.unsigned > 0 and not report.complete
    assert report.summary().startswith("INCOMPLETE: ") and "not under a signed checkpoint" in report.summary()
    sealed.sealer.checkpoint(force=False)
    assert verify_store(sealed.desk, sealed.sealer.store, snapshots=False).summary().startswith("OK: ")


def test_right_after_the_demo_the_log_is_sealed_to_its_last_event_and_exports(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = run_cli(["demo", "--tickets", "15", "--customers", "5", "--days", "2", "--seed", "3"], capsys)
    assert code == 0, err
    code, out, err = run_cli(["audit", "verify", "--workers", "1"], capsys)
    assert code == 0 and out.startswith("OK: ") and "every event is sealed" in out, out + err
    code, out, err = run_cli(["audit", "export", str(tmp_path / "export")], capsys)
    assert code == 0, err
    key = out.split("--key ")[-1].strip()
    assert key.startswith("SHA256:") and len(key) == 7 + 64
    code, printed, _ = run_cli(["audit", "fingerprint"], capsys)
    assert printed.strip() == key
    from ticketflow_verify.cli import main as verify

    assert verify([str(tmp_path / "export"), "--key", key]) == 0


def test_a_cli_command_that_writes_ends_with_a_checkpoint_and_audit_verify_exits_3_while_unsealed(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from ticketflow.application import TicketDesk
    from ticketflow.config import Settings
    from tests.support import Desk

    desk = TicketDesk(Settings(data_dir=data_dir))
    Desk(desk).open("written without the CLI")  # nothing seals these
    desk.close()
    code, out, _ = run_cli(["audit", "verify", "--workers", "1"], capsys)
    assert code == 3 and out.startswith("INCOMPLETE: ")
    code, _, err = run_cli(["policy", "calendar", "define", str(_calendar(tmp_path))], capsys)
    assert code == 0, err
    code, out, _ = run_cli(["audit", "verify", "--workers", "1"], capsys)
    assert code == 0 and out.startswith("OK: ")


def _calendar(tmp_path: Path) -> Path:
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps({"name": "上海工作日", "timezone": "Asia/Shanghai",
                                "weekly": {"0": [["09:00", "18:00"]]}}), encoding="utf-8")
    return path


def test_audit_seal_appends_to_the_configured_anchor_file_and_a_bad_anchor_is_one_line(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ticketflow.application import TicketDesk
    from ticketflow.config import Settings
    from tests.support import Desk

    anchor = tmp_path / "anchors" / "desk.ndjson"
    monkeypatch.setenv("TICKETFLOW_ANCHOR_FILE", str(anchor))
    desk = TicketDesk(Settings(data_dir=data_dir))
    Desk(desk).open("to seal")
    desk.close()
    code, _, err = run_cli(["audit", "seal"], capsys)
    assert code == 0, err
    assert [json.loads(line)["seq"] for line in anchor.read_text().splitlines()] == [1]
    code, out, _ = run_cli(["audit", "verify", "--workers", "1", "--anchor", str(anchor)], capsys)
    assert code == 0, out
    for bad in (tmp_path / "missing.ndjson", _write(tmp_path / "bad.ndjson", "{not json\n")):
        code, _, err = run_cli(["audit", "verify", "--anchor", str(bad)], capsys)
        assert code == 1 and err.startswith("error: anchor file ") and len(err.strip().splitlines()) == 1


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_audit_seal_refuses_an_anchor_it_cannot_append_to_in_one_line_and_seals_nothing(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tests.support import Desk
    from ticketflow.application import TicketDesk
    from ticketflow.config import Settings

    desk = TicketDesk(Settings(data_dir=data_dir))
    Desk(desk).open("to seal")
    desk.close()
    malformed = _write(tmp_path / "bad.ndjson", "{not json\n")
    for bad in (malformed, tmp_path):  # not checkpoints; a directory
        code, _, err = run_cli(["audit", "seal", "--anchor", str(bad)], capsys)
        assert code == 1 and err.startswith("error: anchor file ") and len(err.strip().splitlines()) == 1, err
    assert malformed.read_text(encoding="utf-8") == "{not json\n"  # nothing appended to what no verifier could read
    code, out, _ = run_cli(["audit", "verify", "--workers", "1"], capsys)
    assert code == 3 and out.startswith("INCOMPLETE: ")  # refused before sealing, not after


def test_serve_refuses_a_bad_anchor_file_in_one_line_before_it_starts(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    started: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: started.append(args))
    monkeypatch.setenv("TICKETFLOW_ANCHOR_FILE", str(_write(tmp_path / "bad.ndjson", "{not json\n")))
    code, _, err = run_cli(["serve"], capsys)
    assert code == 1 and err.startswith("error: anchor file ") and len(err.strip().splitlines()) == 1, err
    assert started == []


def test_a_history_read_with_a_purpose_is_recorded_and_sealed_before_the_command_exits(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support import ADMIN
    from ticketflow.application import TicketDesk
    from ticketflow.commands import RegisterCustomer
    from ticketflow.config import Settings

    desk = TicketDesk(Settings(data_dir=data_dir))
    customer = desk.register_customer(RegisterCustomer(name="王秀英", email="xiuying@example.cn"), ADMIN).object_id
    desk.close()
    assert run_cli(["audit", "seal"], capsys)[0] == 0
    code, out, err = run_cli(["history", str(customer), "--purpose", "DSR-2026-0042"], capsys)
    assert code == 0 and "王秀英" in out, err
    code, out, _ = run_cli(["audit", "verify", "--workers", "1"], capsys)
    assert code == 0 and out.startswith("OK: "), out  # the access record it wrote is sealed too


def test_rotate_key_appends_its_announcement_to_the_configured_anchor_file(
    data_dir: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.support import Desk
    from ticketflow.application import TicketDesk
    from ticketflow.config import Settings

    anchor = tmp_path / "desk.ndjson"
    monkeypatch.setenv("TICKETFLOW_ANCHOR_FILE", str(anchor))
    desk = TicketDesk(Settings(data_dir=data_dir))
    Desk(desk).open("before the rotation")
    desk.close()
    assert run_cli(["audit", "seal"], capsys)[0] == 0
    code, _, err = run_cli(["audit", "rotate-key"], capsys)
    assert code == 0, err
    announced = [json.loads(json.loads(line)["body"]) for line in anchor.read_text().splitlines()]
    assert len(announced) == 2 and "next_key" in announced[-1]


def test_when_serve_stops_a_signed_checkpoint_covers_its_last_event(tmp_path: Path) -> None:
    from projections.integrity.sealer import Sealer, load_checkpoints
    from tests.api.conftest import build_api
    from ticketflow.application import TicketDesk
    from ticketflow.config import Settings

    settings = Settings(data_dir=tmp_path / "data", automation=False)
    for api in build_api(settings):  # the app's lifespan: what `ticketflow serve` runs
        for name in ("客户甲", "客户乙", "客户丙"):
            assert api.post("admin", "/api/v1/customers", {"name": name}).status_code == 201
    desk = TicketDesk(settings)
    sealer = Sealer(desk)
    try:
        last = json.loads(sealer.read(load_checkpoints)[-1].body)
        assert last["log_position"] == desk.log_position()  # an export right after proves every event
    finally:
        sealer.close()
        desk.close()
