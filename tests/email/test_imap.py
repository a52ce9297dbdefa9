"""IMAP mailboxes fetched from a real Dovecot: every mail becomes a ticket once, marked \\Seen only after
it is committed; a poller killed in between loses nothing and duplicates nothing; a changed UIDVALIDITY
re-scans by Message-ID; an unreachable or refusing server is logged and retried, never fatal."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from tests.email import corpus, dovecot
from tests.support import ADMIN
from ticketflow.application import TicketDesk
from ticketflow.commands import FormTeam
from ticketflow.commands.mailbox import AddMailbox
from ticketflow.config import Settings
from ticketflow.domain import Mailbox, Ticket
from ticketflow.email.imap import MAX_BACKOFF_SECONDS, ImapPoller

PASSWORD = "d0ve-S3cret"


@pytest.fixture(scope="module")
def server() -> Iterator[dovecot.Dovecot]:
    """A Dovecot of this module's own; under CI=true its absence fails the run instead of skipping."""
    if not dovecot.available():
        if os.environ.get("CI") == "true":
            pytest.fail("dovecot is not installed: .ci/run installs dovecot-imapd under CI=true")
        pytest.skip("Debian's dovecot-imapd is not installed (apt-get install dovecot-imapd)")
    box = dovecot.Dovecot()
    for n in range(USERS):  # all written before start: Dovecot reads its passwd-file once a second at most
        box.add_user(f"desk{n}", PASSWORD)
    box.start()
    try:
        yield box
    finally:
        box.stop()


USERS = 40
_users = iter(range(USERS))


@pytest.fixture
def user(server: dovecot.Dovecot, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh IMAP user (its own empty INBOX) whose password is in TF_IMAP_PASSWORD."""
    name = f"desk{next(_users)}"
    monkeypatch.setenv("TF_IMAP_PASSWORD", PASSWORD)
    return name


def _mailbox(desk: TicketDesk, server: dovecot.Dovecot, user: str, **extra: Any) -> Mailbox:
    settings: dict[str, Any] = {
        "name": f"imap-{user}",
        "address": f"{user}@desk.example",
        "protocol": "imap",
        "imap_host": "127.0.0.1",
        "imap_port": server.port,
        "imap_username": user,
        "imap_security": "plain",
        "password_env": "TF_IMAP_PASSWORD",
    }
    settings.update(extra)
    return desk.get_mailbox(desk.add_mailbox(AddMailbox(**settings), ADMIN).object_id)


def _mail(n: int) -> bytes:
    return corpus.plain(
        f"第{n}封：打印机又卡纸了。",
        subject=f"打印机故障 {n}",
        sender=f"客户{n} <customer{n}@example.cn>",
        message_id=f"<imap.{n}@mail.example.cn>",
    )


def _tickets(desk: TicketDesk) -> list[Ticket]:
    return [desk.get_ticket(i) for i in desk._ids_of(Ticket)]


@pytest.fixture
def shared_desk(shared_store_settings: Settings) -> Iterator[TicketDesk]:
    desk = TicketDesk(shared_store_settings)
    yield desk
    desk.close()


def test_mail_in_an_imap_mailbox_opens_tickets_once_and_is_marked_seen_after(
    shared_desk: TicketDesk, server: dovecot.Dovecot, user: str
) -> None:
    team_id = shared_desk.form_team(FormTeam(name="技术支持"), ADMIN).object_id
    mailbox = _mailbox(shared_desk, server, user, team_id=team_id)
    for n in (1, 2, 3):
        server.append(_mail(n), user)
    poller = ImapPoller(shared_desk, interval=60)
    assert poller.poll_once() == {"opened": 3}
    tickets = sorted(_tickets(shared_desk), key=lambda t: t.subject)
    assert [(t.subject, t.team_id, t.channel) for t in tickets] == [
        (f"打印机故障 {n}", team_id, "email") for n in (1, 2, 3)
    ]
    assert server.seen_uids(user) == [1, 2, 3]
    uidvalidity, last_uid = shared_desk.mail_store.imap_mark(mailbox.id) or (0, 0)
    assert uidvalidity > 0 and last_uid == 3
    assert poller.poll_once() == {}  # nothing above the high-water mark
    server.append(_mail(4), user)
    assert poller.poll_once() == {"opened": 1}
    assert len(_tickets(shared_desk)) == 4


def test_a_poller_failing_after_intake_and_before_the_record_fetches_again_without_a_duplicate(
    desk: TicketDesk, server: dovecot.Dovecot, user: str
) -> None:
    mailbox = _mailbox(desk, server, user)
    for n in (1, 2):
        server.append(_mail(n), user)

    def crash(_: Mailbox, uid: int) -> None:
        if uid == 2:
            raise ConnectionResetError("injected: the process died before recording UID 2")

    assert ImapPoller(desk, interval=60, after_intake=crash).poll_once() == {"opened": 1, "failed": 1}
    assert len(_tickets(desk)) == 2  # the second mail was committed ...
    assert server.seen_uids(user) == [1]  # ... but neither flagged nor recorded
    assert desk.mail_store.imap_mark(mailbox.id)[1] == 1  # type: ignore[index]
    assert ImapPoller(desk, interval=60).poll_once() == {"duplicate": 1}
    assert len(_tickets(desk)) == 2 and server.seen_uids(user) == [1, 2]


_KILLED_POLLER = textwrap.dedent(
    """
    import os, signal, sys
    from ticketflow.application import TicketDesk
    from ticketflow.config import Settings
    from ticketflow.email.imap import ImapPoller

    victim, moment = int(sys.argv[2]), sys.argv[3]
    desk = TicketDesk(Settings(data_dir=sys.argv[1]))
    take_in = desk.receive_mail

    def fetched(raw, *, uid, **kwargs):
        if moment == "fetched" and uid.endswith(f".{victim}"):
            print("fetched", uid, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # the mail is fetched, nothing of it committed
        return take_in(raw, uid=uid, **kwargs)

    def committed(mailbox, uid):
        if moment == "committed" and uid == victim:
            print("committed", uid, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)  # between the commit and the record, for real

    desk.receive_mail = fetched
    ImapPoller(desk, interval=60, after_intake=committed).poll_once()
    """
)


@pytest.mark.parametrize(
    ("moment", "committed_before_kill", "next_pass"),
    [("fetched", 2, {"opened": 3}), ("committed", 3, {"duplicate": 1, "opened": 2})],
    ids=["fetched-not-committed", "committed-not-recorded"],
)
def test_a_poller_process_killed_between_fetch_and_record_loses_no_mail_and_opens_no_ticket_twice(
    tmp_path: Path,
    server: dovecot.Dovecot,
    user: str,
    moment: str,
    committed_before_kill: int,
    next_pass: dict[str, int],
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    desk = TicketDesk(settings)
    _mailbox(desk, server, user)
    desk.close()
    for n in range(1, 6):
        server.append(_mail(n), user)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), "TF_IMAP_PASSWORD": PASSWORD}
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED_POLLER, str(settings.data_dir), "3", moment],
        env=env,
        capture_output=True,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    assert killed.stdout.decode().split()[0] == moment  # killed at the marker, not anywhere else
    assert server.seen_uids(user) == [1, 2]
    desk = TicketDesk(settings)
    try:
        assert len(_tickets(desk)) == committed_before_kill
        assert ImapPoller(desk, interval=60).poll_once() == next_pass
        subjects = sorted(t.subject for t in _tickets(desk))
        assert subjects == [f"打印机故障 {n}" for n in range(1, 6)]
        assert server.seen_uids(user) == [1, 2, 3, 4, 5]
    finally:
        desk.close()


def test_a_recreated_folder_is_scanned_again_and_its_known_mails_are_not_taken_twice(
    desk: TicketDesk, server: dovecot.Dovecot, user: str
) -> None:
    client = server.client(user)
    assert client.create("Support")[0] == "OK"
    client.logout()
    mailbox = _mailbox(desk, server, user, imap_folder="Support")
    server.append(_mail(1), user, folder="Support")
    server.append(_mail(2), user, folder="Support")
    poller = ImapPoller(desk, interval=60)
    assert poller.poll_once() == {"opened": 2}
    first_validity = desk.mail_store.imap_mark(mailbox.id)[0]  # type: ignore[index]
    client = server.client(user)
    assert client.delete("Support")[0] == "OK" and client.create("Support")[0] == "OK"
    client.logout()
    server.append(_mail(2), user, folder="Support")  # the same mail, under a new UIDVALIDITY and UID 1
    server.append(_mail(3), user, folder="Support")
    assert poller.poll_once() == {"duplicate": 1, "opened": 1}
    assert desk.mail_store.imap_mark(mailbox.id) not in (None, (first_validity, 2))
    assert len(_tickets(desk)) == 3


def test_an_unreachable_or_refusing_server_is_logged_without_secrets_and_retried_with_backoff(
    desk: TicketDesk,
    server: dovecot.Dovecot,
    user: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _mailbox(desk, server, user)
    server.append(_mail(1), user)
    monkeypatch.setenv("TF_IMAP_PASSWORD", "wrong-password")
    now = [1000.0]
    poller = ImapPoller(desk, interval=30, monotonic=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="ticketflow.email.imap"):
        assert poller.poll_once() == {"failed": 1}
        assert poller.poll_once() == {}  # backing off: not tried again yet
        now[0] += 30
        assert poller.poll_once() == {"failed": 1}
        now[0] += 30
        assert poller.poll_once() == {}  # the wait doubled to 60 s
        now[0] += 30
        assert poller.poll_once() == {"failed": 1}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"IMAP mailbox imap-{user}" in logged and "next try in 30 s" in logged and "in 120 s" in logged
    assert "wrong-password" not in logged and "customer1" not in logged and PASSWORD not in logged
    monkeypatch.setenv("TF_IMAP_PASSWORD", PASSWORD)
    now[0] += MAX_BACKOFF_SECONDS
    assert poller.poll_once() == {"opened": 1}  # recovered: the backoff is reset
    assert poller._health[str(desk.mailboxes()[0].id)].failures == 0


def test_a_mailbox_whose_server_is_down_does_not_stop_the_others(
    desk: TicketDesk, server: dovecot.Dovecot, user: str
) -> None:
    _mailbox(desk, server, user, name="down", address="down@desk.example", imap_port=dovecot.free_port())
    _mailbox(desk, server, user)
    server.append(_mail(1), user)
    assert ImapPoller(desk, interval=60).poll_once() == {"failed": 1, "opened": 1}


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_mailboxes_check_the_server_certificate(
    desk: TicketDesk, server: dovecot.Dovecot, user: str, security: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = server.ssl_port if security == "ssl" else server.port
    _mailbox(desk, server, user, imap_security=security, imap_port=port)
    server.append(_mail(1), user)
    refused = ImapPoller(desk, interval=60).poll_once()
    assert refused == {"failed": 1}  # the self-signed certificate is not trusted
    monkeypatch.setenv("SSL_CERT_FILE", str(server.ca_file))  # trusted now
    assert ImapPoller(desk, interval=60).poll_once() == {"opened": 1}


def test_the_automation_process_polls_imap_mailboxes_in_its_own_thread(
    tmp_path: Path, server: dovecot.Dovecot, user: str
) -> None:
    import threading

    from projections.automation import Automation
    from projections.readside import ReadSide

    desk = TicketDesk(Settings(data_dir=tmp_path / "data", imap_poll_seconds=0.05))
    read_side = ReadSide(desk)
    automation = Automation(desk, read_side)
    taken: threading.Event = threading.Event()
    automation.imap.after_intake = lambda mailbox, uid: taken.set()
    try:
        _mailbox(desk, server, user)
        server.append(_mail(1), user)
        automation.start()
        assert taken.wait(60), "the automation's poller never took the mail in"
    finally:
        automation.stop()
        read_side.close()
        desk.close()
    assert automation.imap._thread is None
    reopened = TicketDesk(Settings(data_dir=tmp_path / "data"))
    try:
        assert [t.subject for t in _tickets(reopened)] == ["打印机故障 1"]
    finally:
        reopened.close()


def test_a_mailbox_with_no_poll_interval_is_never_polled(tmp_path: Path) -> None:
    desk = TicketDesk(Settings(data_dir=tmp_path / "data", imap_poll_seconds=0))
    try:
        poller = ImapPoller(desk)
        poller.start()
        assert poller._thread is None
    finally:
        desk.close()


def test_customers_registered_by_polled_mail_are_found_by_address(
    desk: TicketDesk, server: dovecot.Dovecot, user: str
) -> None:
    _mailbox(desk, server, user)
    server.append(_mail(7), user)
    ImapPoller(desk, interval=60).poll_once()
    customer_id = desk.find_customer_by_email("customer7@example.cn")
    assert isinstance(customer_id, UUID)
    (ticket,) = _tickets(desk)
    assert ticket.requester_id == customer_id


def test_the_cli_polls_once_and_says_when_a_mailbox_failed(
    data_dir: Path,
    server: dovecot.Dovecot,
    user: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import json

    from tests.support import run_cli

    args = [
        "mailbox",
        "add",
        "imap",
        f"{user}@desk.example",
        "--protocol",
        "imap",
        "--imap-host",
        "127.0.0.1",
    ]
    args += ["--imap-port", str(server.port), "--imap-username", user, "--imap-security", "plain"]
    code, _, err = run_cli([*args, "--password-env", "TF_IMAP_PASSWORD"], capsys)
    assert code == 0, err
    server.append(_mail(1), user)
    code, out, err = run_cli(["mailbox", "poll"], capsys)
    assert code == 0, err
    assert json.loads(out) == {"opened": 1}
    monkeypatch.delenv("TF_IMAP_PASSWORD")
    code, out, err = run_cli(["mailbox", "poll"], capsys)
    assert code == 1 and json.loads(out) == {"failed": 1} and err.count("\n") == 1


def test_a_folder_with_a_chinese_name_is_selected_in_modified_utf7(
    desk: TicketDesk, server: dovecot.Dovecot, user: str
) -> None:
    from ticketflow.email.imap import utf7_folder

    assert utf7_folder("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"  # RFC 3501's example
    assert utf7_folder("R&D") == "R&-D"
    client = server.client(user)
    assert client.create('"&W6JnDQ-"')[0] == "OK"
    client.logout()
    _mailbox(desk, server, user, imap_folder="客服")
    server.append(_mail(1), user, folder='"&W6JnDQ-"')
    assert ImapPoller(desk, interval=60).poll_once() == {"opened": 1}
