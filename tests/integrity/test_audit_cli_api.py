"""``ticketflow audit ...`` and ``GET /api/v1/audit/verify``: exit codes, one-line errors, the report."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from projections.integrity.keys import KeyRing
from projections.integrity.sealer import Sealer
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from tests.api.conftest import Api, build_api
from tests.integrity.support import event_at, flip, populate, set_state
from tests.support import run_cli as run


def test_seal_verify_export_and_a_tampered_event_from_the_command_line(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    desk = TicketDesk(Settings(data_dir=data_dir))
    tickets = populate(desk)
    desk.close()
    anchor = tmp_path / "anchor.ndjson"
    code, _, err = run(["audit", "seal", "--every-events", "4", "--anchor", str(anchor)], capsys)
    assert code == 0, err
    assert anchor.read_text().count("\n") >= 4
    code, out, err = run(["audit", "verify", "--anchor", str(anchor)], capsys)
    assert code == 0 and out.startswith("OK: "), err
    code, parallel, err = run(["audit", "verify", "--anchor", str(anchor), "--workers", "2"], capsys)
    assert code == 0 and parallel == out, err
    code, out, err = run(["audit", "verify", "--ticket", str(tickets[0])], capsys)
    assert code == 0 and out.startswith("OK: "), err
    code, out, err = run(["audit", "export", str(tmp_path / "x"), "--ticket", str(tickets[0])], capsys)
    assert code == 0 and "exported 5 events" in out, err
    code, out, err = run(["audit", "rotate-key"], capsys)
    assert code == 0 and "signing key is now" in out, err

    desk = TicketDesk(Settings(data_dir=data_dir))
    sealer = Sealer(desk)
    position = int(sealer.read(lambda db: db.scalar(
        "SELECT position FROM {p}integrity_events WHERE originator_id = ? AND version = 3", (str(tickets[1]),))))
    sealer.close()
    set_state(desk, position, flip(bytes(event_at(desk, position)["state"])))
    desk.close()
    code, out, err = run(["audit", "verify"], capsys)
    assert code == 1
    assert err.startswith(f"error: tampering detected: event at position {position} ({tickets[1]} v3): stored bytes do not match")
    assert err.count("\n") == 1
    assert run(["audit", "verify", "--workers", "2"], capsys) == (code, out, err)
    code, out, err = run(["audit", "verify", "--ticket", str(tickets[1])], capsys)
    assert code == 1 and f"event at position {position} ({tickets[1]} v3, line 3): stored bytes" in err


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from build_api(Settings(data_dir=tmp_path / "api-data", rate_limit_burst=10_000, rate_limit_per_second=10_000))


def test_the_verify_endpoint_reports_the_first_problem(api: Api) -> None:
    ticket = api.open_ticket()
    sealer = Sealer(api.desk, keys=KeyRing(api.desk.settings.data_dir / "keys"))
    sealer.catch_up(checkpoint=True)
    sealer.close()
    response = api.get("auditor", "/api/v1/audit/verify")
    assert response.status_code == 200, response.text
    assert response.json()["ok"] is True and response.json()["sealed"] == api.desk.log_position()
    assert api.get("auditor", "/api/v1/audit/verify", params={"ticket_id": ticket}).json()["ok"] is True
    assert api.get("agent_a", "/api/v1/audit/verify").status_code == 403
    assert api.get("integration", "/api/v1/audit/verify").status_code == 403

    position = api.desk.log_position()
    set_state(api.desk, position, flip(bytes(event_at(api.desk, position)["state"])))
    body = api.get("auditor", "/api/v1/audit/verify").json()
    assert body["ok"] is False
    assert body["first_problem"].startswith(f"event at position {position} (")


def test_an_export_says_when_the_log_has_gone_on_past_its_checkpoint(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ticketflow.commands import AddNote
    from tests.integrity.support import AGENT

    desk = TicketDesk(Settings(data_dir=data_dir))
    tickets = populate(desk, tickets=1, notes=1)
    desk.close()
    assert run(["audit", "seal"], capsys)[0] == 0
    code, out, err = run(["audit", "export", str(tmp_path / "sealed")], capsys)
    assert code == 0 and "exported" in out and "not in this export" not in err, err

    desk = TicketDesk(Settings(data_dir=data_dir))
    desk.add_note(AddNote(ticket_id=tickets[0], body="written after the checkpoint"), AGENT)  # not sealed yet
    end = desk.log_position()
    desk.close()
    code, out, err = run(["audit", "export", str(tmp_path / "behind")], capsys)
    assert code == 0 and "exported" in out
    assert f"it has gone on to position {end}" in err and "run `ticketflow audit seal`" in err
