"""``ticketflow webhook ...``: subscribe, list, pause, resume, deliveries and send, errors in one line."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from uuid import UUID

import pytest

from tests.outbox.receiver import Receiver
from tests.support import Desk
from tests.support import run_cli as run
from ticketflow.application import TicketDesk
from ticketflow.clock import SystemClock
from ticketflow.config import Settings


def test_an_operator_subscribes_pauses_resumes_and_sees_deliveries(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    desk = TicketDesk(Settings(data_dir=data_dir))
    receiver = Receiver(lambda webhook_id: desk.webhook_secret(UUID(webhook_id)), SystemClock())
    try:
        code, out, err = run(["webhook", "subscribe", "CRM sync", receiver.url, "--event", "Ticket.Opened"], capsys)
        assert code == 0, err
        secrets = json.loads(out)
        assert '"name": "CRM sync"' in err and len(secrets["secret"]) == 64
        assert secrets["standard_webhooks_secret"] == "whsec_" + base64.b64encode(secrets["secret"].encode()).decode()
        assert secrets["secret"] == desk.webhook_secret(UUID(json.loads(err)["webhook_id"]))
        code, out, _ = run(["webhook", "list"], capsys)
        assert code == 0 and "CRM sync" in out and "Ticket.Opened" in out

        assert run(["webhook", "pause", "CRM sync", "--reason", "maintenance"], capsys)[0] == 0
        code, out, _ = run(["webhook", "list"], capsys)
        assert "paused" in out
        code, _, err = run(["webhook", "pause", "CRM sync"], capsys)
        assert code == 1 and err.startswith("error: ") and err.count("\n") == 1
        assert run(["webhook", "resume", "CRM sync"], capsys)[0] == 0

        Desk(desk).open()
        code, _, err = run(["webhook", "send"], capsys)
        assert code == 0 and "1 deliveries attempted" in err
        assert [r.signature_ok for r in receiver.received] == [True]
        code, out, _ = run(["webhook", "deliveries", "CRM sync"], capsys)
        assert code == 0 and "Ticket.Opened" in out and "delivered" in out
    finally:
        receiver.stop()
        desk.close()


def test_an_unknown_event_type_or_webhook_is_one_line_error(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["webhook", "subscribe", "x", "https://x.example.com", "--event", "Ticket.Opend"], capsys)
    assert code == 1 and out == ""
    assert err == "error: unknown event type 'Ticket.Opend' (did you mean 'Ticket.Opened'?): use types such as 'Ticket.Opened' or '*'\n"
    code, _, err = run(["webhook", "deliveries", "nobody"], capsys)
    assert code == 1 and "no single webhook 'nobody'" in err


def test_an_operator_removes_a_webhook_and_it_is_gone_from_the_list(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["webhook", "subscribe", "CRM sync", "https://crm.example.com/hooks", "--event", "*"], capsys)[0] == 0
    code, _, err = run(["webhook", "remove", "CRM sync", "--reason", "retired"], capsys)
    assert code == 0 and err == "removed CRM sync\n"
    code, out, _ = run(["webhook", "list"], capsys)
    assert code == 0 and "CRM sync" not in out
    code, _, err = run(["webhook", "remove", "CRM sync"], capsys)
    assert code == 1 and "no single webhook 'CRM sync'" in err and err.count("\n") == 1


def test_an_operator_subscribes_with_the_ticket_text_scope_or_is_told_the_scope_is_unknown(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "https://crm.example.com/hooks"
    assert run(["webhook", "subscribe", "CRM", url, "--event", "*", "--scope", "tickets:text"], capsys)[0] == 0
    desk = TicketDesk(Settings(data_dir=data_dir))
    try:
        [hook] = desk.webhooks()
        assert hook.scopes == ["tickets:text"]
    finally:
        desk.close()
    code, _, err = run(["webhook", "subscribe", "CRM2", url, "--event", "*", "--scope", "pii"], capsys)
    assert code == 1 and err == "error: unknown scope 'pii'; the one scope is 'tickets:text'\n"
