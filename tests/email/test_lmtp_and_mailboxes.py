"""Mailboxes configured by admins (API and domain), and the LMTP receiver tested with a real client."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Api, build_api
from tests.email import corpus
from tests.support import ADMIN, AGENT
from ticketflow.application import TicketDesk
from ticketflow.commands import FormTeam
from ticketflow.commands.mailbox import AddMailbox, RemoveMailbox
from ticketflow.config import Settings
from ticketflow.domain import Mailbox, Ticket
from ticketflow.email.lmtp import LmtpReceiver
from ticketflow.email.mailboxes import imap_password
from ticketflow.errors import PermissionDenied, RuleViolation


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from build_api(
        Settings(data_dir=tmp_path / "api-data", rate_limit_burst=10_000, rate_limit_per_second=10_000)
    )


def test_admins_add_list_and_remove_mailboxes_through_the_api(api: Api) -> None:
    body = {
        "name": "技术支持邮箱",
        "address": "Support@Desk.example",
        "team_id": str(api.team_a),
        "protocol": "imap",
        "imap_host": "imap.desk.example",
        "imap_username": "support",
        "password_env": "TF_IMAP_SUPPORT",
    }
    created = api.post("admin", "/api/v1/mailboxes", body)
    assert created.status_code == 201, created.text
    mailbox_id = created.json()["id"]
    listed = api.get("admin", "/api/v1/mailboxes").json()
    assert [(m["name"], m["address"], m["imap"]["password_env"]) for m in listed] == [
        ("技术支持邮箱", "support@desk.example", "TF_IMAP_SUPPORT")
    ]
    one = api.get("admin", f"/api/v1/mailboxes/{mailbox_id}").json()
    assert one["team_id"] == str(api.team_a)
    assert (one["imap"]["security"], one["imap"]["port"], one["imap"]["tls"]) == ("ssl", 993, True)
    starttls = api.post(
        "admin",
        "/api/v1/mailboxes",
        {**body, "name": "b", "address": "b@desk.example", "imap_security": "starttls"},
    )
    assert starttls.status_code == 201, starttls.text
    shown = api.get("admin", f"/api/v1/mailboxes/{starttls.json()['id']}").json()["imap"]
    assert (shown["security"], shown["port"]) == ("starttls", 143)
    bad = api.post("admin", "/api/v1/mailboxes", {**body, "name": "c", "imap_security": "tls1.0"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    api.client.delete(f"/api/v1/mailboxes/{starttls.json()['id']}", headers=api.headers("admin"))
    again = api.post("admin", "/api/v1/mailboxes", {**body, "name": "other"})
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    assert "receives for support@desk.example already" in again.json()["detail"]
    removed = api.client.delete(f"/api/v1/mailboxes/{mailbox_id}", headers=api.headers("admin"))
    assert removed.status_code == 200 and api.get("admin", "/api/v1/mailboxes").json() == []


def test_a_password_is_never_accepted_and_bad_settings_are_problems(api: Api) -> None:
    base = {
        "name": "m",
        "address": "m@desk.example",
        "protocol": "imap",
        "imap_host": "h",
        "imap_username": "u",
    }
    with_password = api.post(
        "admin", "/api/v1/mailboxes", {**base, "password_env": "X", "password": "hunter2"}
    )
    assert (
        with_password.status_code == 422
        and with_password.headers["content-type"] == "application/problem+json"
    )
    neither = api.post("admin", "/api/v1/mailboxes", base)
    assert neither.status_code == 422 and "password_env or password_file" in neither.text
    lmtp_with_imap = api.post(
        "admin", "/api/v1/mailboxes", {"name": "l", "address": "l@desk.example", "imap_host": "h"}
    )
    assert lmtp_with_imap.status_code == 422
    assert (
        api.post("agent_a", "/api/v1/mailboxes", {"name": "x", "address": "x@desk.example"}).status_code
        == 403
    )
    assert api.get("agent_a", "/api/v1/mailboxes").status_code == 403


def test_the_password_comes_from_the_environment_or_a_file(desk: TicketDesk, tmp_path: Path) -> None:
    secret = tmp_path / "imap.secret"
    secret.write_text("s3cret\n", encoding="utf-8")
    by_file = desk.get_mailbox(
        desk.add_mailbox(
            AddMailbox(
                name="a",
                address="a@desk.example",
                protocol="imap",
                imap_host="h",
                imap_username="u",
                password_file=str(secret),
            ),
            ADMIN,
        ).object_id
    )
    by_env = desk.get_mailbox(
        desk.add_mailbox(
            AddMailbox(
                name="b",
                address="b@desk.example",
                protocol="imap",
                imap_host="h",
                imap_username="u",
                password_env="TF_B",
            ),
            ADMIN,
        ).object_id
    )
    assert imap_password(by_file) == "s3cret"
    assert imap_password(by_env, {"TF_B": "from-env"}) == "from-env"
    with pytest.raises(RuleViolation, match="TF_B is not set"):
        imap_password(by_env, {})
    secret.unlink()
    with pytest.raises(RuleViolation, match="cannot read the password file"):
        imap_password(by_file)
    for event in desk.history(by_file.id) + desk.history(by_env.id):
        assert "s3cret" not in repr(event) and "from-env" not in repr(event)


def test_only_admins_configure_mailboxes_and_names_are_unique(desk: TicketDesk) -> None:
    with pytest.raises(PermissionDenied):
        desk.add_mailbox(AddMailbox(name="a", address="a@desk.example"), AGENT)
    mailbox_id = desk.add_mailbox(AddMailbox(name="a", address="a@desk.example"), ADMIN).object_id
    with pytest.raises(RuleViolation, match="named 'a' exists"):
        desk.add_mailbox(AddMailbox(name="a", address="b@desk.example"), ADMIN)
    desk.remove_mailbox(RemoveMailbox(mailbox_id=mailbox_id), ADMIN)
    assert desk.mailboxes() == [] and isinstance(desk.mailboxes(include_removed=True)[0], Mailbox)
    with pytest.raises(RuleViolation, match="already removed"):
        desk.remove_mailbox(RemoveMailbox(mailbox_id=mailbox_id), ADMIN)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[TicketDesk, Any, int]]:
    desk = TicketDesk(Settings(data_dir=tmp_path / "desk"))
    team_id = desk.form_team(FormTeam(name="技术支持"), ADMIN).object_id
    desk.add_mailbox(AddMailbox(name="support", address="support@desk.example", team_id=team_id), ADMIN)
    port = _free_port()
    server = LmtpReceiver(desk, port=port)
    server.start()
    try:
        yield desk, team_id, port
    finally:
        server.stop()
        desk.close()


def test_mail_piped_over_lmtp_opens_a_ticket_for_the_mailbox_team(
    receiver: tuple[TicketDesk, Any, int],
) -> None:
    desk, team_id, port = receiver
    raw = corpus.gbk_labelled_gb2312()
    with smtplib.LMTP("127.0.0.1", port) as client:
        refused = client.sendmail("zhe@example.cn", ["Support@desk.example"], raw)
    assert refused == {}
    customer_id = desk.find_customer_by_email("zhe@example.cn")
    assert customer_id is not None
    (ticket_id,) = [i for i in desk._ids_of(Ticket)]
    ticket = desk.get_ticket(ticket_id)
    assert (ticket.subject, ticket.team_id, ticket.channel, ticket.requester_id) == (
        "朱镕基的喆字显示乱码",
        team_id,
        "email",
        customer_id,
    )
    with smtplib.LMTP("127.0.0.1", port) as client:  # delivered again (the MTA retried): still one ticket
        client.sendmail("zhe@example.cn", ["support@desk.example"], raw)
    assert desk._ids_of(Ticket) == [ticket_id]


def test_lmtp_refuses_unknown_recipients_and_swallows_loops(receiver: tuple[TicketDesk, Any, int]) -> None:
    desk, _, port = receiver
    with smtplib.LMTP("127.0.0.1", port) as client, pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        client.sendmail("a@example.cn", ["nobody@desk.example"], corpus.plain("x"))
    assert refused.value.recipients["nobody@desk.example"][0] == 550
    before = desk.log_position()
    with smtplib.LMTP("127.0.0.1", port) as client:
        assert client.sendmail("", ["support@desk.example"], corpus.bounce()) == {}
    assert desk.log_position() == before


def test_the_cli_adds_lists_receives_and_removes(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import json

    from tests.support import run_cli

    code, out, err = run_cli(
        [
            "mailbox",
            "add",
            "support",
            "support@desk.example",
            "--protocol",
            "imap",
            "--imap-host",
            "imap.desk.example",
            "--imap-username",
            "support",
            "--imap-security",
            "starttls",
            "--password-env",
            "TF_IMAP",
        ],
        capsys,
    )
    assert code == 0, err
    assert json.loads(out)["address"] == "support@desk.example"
    code, out, _ = run_cli(["mailbox", "list"], capsys)
    assert code == 0 and "support@desk.example" in out and "$TF_IMAP" in out
    assert "starttls imap.desk.example:143" in out
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(corpus.big5_mail())))
    code, out, err = run_cli(["mailbox", "receive", "support"], capsys)
    assert code == 0, err
    assert json.loads(out)["action"] == "opened"
    code, _, err = run_cli(["mailbox", "add", "x", "y@desk.example", "--imap-host", "h"], capsys)
    assert code != 0 and err.count("\n") == 1 and "IMAP settings are for protocol imap" in err
    code, out, _ = run_cli(["mailbox", "reindex"], capsys)
    assert code == 0 and json.loads(out) == {"indexed": 1}  # the customer the mail registered
    assert run_cli(["mailbox", "remove", "support"], capsys)[0] == 0
    code, _, err = run_cli(["mailbox", "remove", "support"], capsys)
    assert code != 0 and "mailbox" in err


@pytest.mark.parametrize(("tls", "security"), [(True, "ssl"), (False, "plain")])
def test_a_mailbox_recorded_before_the_security_mode_reads_it_from_its_tls_flag(
    tls: bool, security: str
) -> None:
    from datetime import UTC, datetime
    from uuid import uuid4

    from ticketflow.metadata import context_for, recording

    old = {"host": "h", "port": 993, "username": "u", "folder": "INBOX", "tls": tls, "password_env": "X"}
    with recording(context_for(ADMIN, uuid4(), datetime.now(UTC))):
        mailbox = Mailbox._create(
            Mailbox.Added,
            id=uuid4(),
            name="old",
            address="old@desk.example",
            team_id=None,
            protocol="imap",
            imap=old,
        )
    assert mailbox.imap_security == security
