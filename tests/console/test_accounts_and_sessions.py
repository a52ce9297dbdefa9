"""Accounts and sessions: argon2id hashes outside the log, cookies that behave, sessions that end
on sign-out, on disabling, on a password reset and when a person leaves their team; throttled
sign-in; the CLI that creates the first admin."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from tests.console.conftest import ACCOUNTS, PASSWORD, Console
from tests.support import ADMIN
from ticketflow.commands import DeactivateTeamMember
from ticketflow.commands.accounts import CreateAccount, DisableAccount, SetPassword
from ticketflow.domain import StaffAccount
from ticketflow.errors import PermissionDenied, RuleViolation
from ticketflow_cli import main as cli_main


def _sign_in(console: Console, who: str, password: str = PASSWORD) -> int:
    response = console.client.post("/signin", data={"username": ACCOUNTS[who][0], "password": password},
                                   follow_redirects=False)
    return int(response.status_code)


def test_the_session_cookie_is_httponly_samesite_and_expires(console: Console) -> None:
    response = console.client.post("/signin", data={"username": "li.wei", "password": PASSWORD}, follow_redirects=False)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("tf_session=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie


def test_signing_out_ends_the_session_on_the_server(console: Console) -> None:
    console.sign_in("agent_a")
    token = console.client.cookies.get("tf_session")
    console.client.post("/signout", data={"csrf_token": console.csrf()})
    console.client.cookies.set("tf_session", token)  # a copied cookie is worth nothing after sign-out
    assert console.client.get("/queues", follow_redirects=False).status_code == 303


def test_disabling_an_account_ends_its_sessions_at_once(console: Console) -> None:
    console.sign_in("agent_a")
    assert console.client.get("/queues", follow_redirects=False).status_code == 200
    account = console.desk.find_account("li.wei")
    assert account is not None
    console.desk.disable_account(DisableAccount(account_id=account.id, reason="left the company"), ADMIN)
    assert console.client.get("/queues", follow_redirects=False).status_code == 303
    assert _sign_in(console, "agent_a") == 401


def test_a_password_reset_ends_sessions_and_only_the_new_password_works(console: Console) -> None:
    console.sign_in("agent_a")
    account = console.desk.find_account("li.wei")
    assert account is not None
    console.desk.set_password(SetPassword(account_id=account.id), ADMIN, "a-brand-new-password")
    assert console.client.get("/queues", follow_redirects=False).status_code == 303
    assert _sign_in(console, "agent_a") == 401
    assert _sign_in(console, "agent_a", "a-brand-new-password") == 303


def test_an_agent_who_leaves_their_team_loses_the_console_at_once(console: Console) -> None:
    console.sign_in("agent_a")
    console.desk.deactivate_team_member(DeactivateTeamMember(team_id=console.seeded.team_a, agent_id="li.wei"), ADMIN)
    assert console.client.get("/queues", follow_redirects=False).status_code == 303


def test_failed_sign_ins_are_throttled_per_name_then_429_even_with_the_right_password(console: Console) -> None:
    for _ in range(5):
        assert _sign_in(console, "agent_a", "wrong password") == 401
    response = console.client.post("/signin", data={"username": "li.wei", "password": PASSWORD})
    assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
    assert "Too many failed sign-ins" in response.text
    assert _sign_in(console, "agent_a2") == 303  # another person is not locked out


def test_an_unknown_name_and_a_wrong_password_get_the_same_answer(console: Console) -> None:
    unknown = console.client.post("/signin", data={"username": "nobody.here", "password": PASSWORD})
    wrong = console.client.post("/signin", data={"username": "li.wei", "password": "wrong password"})
    assert unknown.status_code == wrong.status_code == 401
    assert "The name or the password is not right" in unknown.text and "The name or the password is not right" in wrong.text


def test_sign_in_only_follows_a_next_address_on_this_server(console: Console) -> None:
    for bad in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = console.client.post("/signin", data={"username": "li.wei", "password": PASSWORD, "next": bad},
                                       follow_redirects=False)
        assert response.headers["location"] == "/queues"


def test_the_log_records_that_a_password_was_set_but_never_the_password_or_its_hash(console: Console, tmp_path: Path) -> None:
    account = console.desk.find_account("li.wei")
    assert account is not None
    events = console.desk.history(account.id)
    assert [type(e).__name__ for e in events] == ["Created", "PasswordSet"]
    stored = console.desk.accounts.credential(str(account.id))
    assert stored is not None and stored.hash.startswith("$argon2id$")
    store = Path(console.desk.settings.sqlite_path)
    raw = b"".join(p.read_bytes() for p in store.parent.glob(store.name + "*"))
    assert PASSWORD.encode() not in raw and stored.hash.encode() not in raw
    with sqlite3.connect(store) as db:
        assert not db.execute("SELECT 1 FROM stored_events WHERE state LIKE '%argon2%'").fetchall()


def test_only_an_admin_creates_accounts_and_an_agents_account_must_belong_to_a_member(console: Console) -> None:
    agent = console.desk.account_principal(console.desk.find_account("li.wei"))  # type: ignore[arg-type]
    assert agent is not None
    with pytest.raises(PermissionDenied):
        console.desk.create_account(CreateAccount(username="x.y", display_name="X", role="admin"), agent.caller(), PASSWORD)
    with pytest.raises(RuleViolation, match="not an active member"):
        console.desk.create_account(CreateAccount(username="ghost", display_name="Ghost", role="agent", agent_id="ghost"),
                                    ADMIN, PASSWORD)
    with pytest.raises(RuleViolation, match="exists already"):
        console.desk.create_account(CreateAccount(username="LI.WEI", display_name="Li", role="agent", agent_id="li.wei"),
                                    ADMIN, PASSWORD)
    with pytest.raises(RuleViolation, match="at least 10"):
        console.desk.create_account(CreateAccount(username="short.pw", display_name="S", role="auditor"), ADMIN, "short")
    assert console.desk.find_account("short.pw") is None  # nothing half-written


def test_a_person_changes_their_own_password_in_the_console(console: Console) -> None:
    console.sign_in("agent_a")
    csrf = console.csrf("/account")
    differ = console.client.post("/account/password", data={"csrf_token": csrf, "current": PASSWORD,
                                                            "password": "new-password-1", "again": "new-password-2"})
    assert differ.status_code == 422 and "The two new passwords differ." in differ.text
    wrong = console.client.post("/account/password", data={"csrf_token": csrf, "current": "nope",
                                                           "password": "new-password-1", "again": "new-password-1"})
    assert wrong.status_code == 422 and "This is not your current password." in wrong.text
    done = console.client.post("/account/password", data={"csrf_token": csrf, "current": PASSWORD,
                                                          "password": "new-password-1", "again": "new-password-1"},
                               follow_redirects=False)
    assert done.status_code == 303
    assert _sign_in(console, "agent_a", "new-password-1") == 303
    account = console.desk.find_account("li.wei")
    assert account is not None
    assert [e.reason for e in console.desk.history(account.id) if isinstance(e, StaffAccount.PasswordSet)] == ["created", "changed"]


def test_the_cli_creates_the_first_admin_who_then_signs_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TICKETFLOW_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr("sys.stdin", io.StringIO("first-admin-password\n"))
    assert cli_main(["account", "create", "zhang.admin", "--role", "admin", "--name", "张管理", "--password-stdin"]) == 0
    assert '"username": "zhang.admin"' in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert cli_main(["account", "reset-password", "zhang.admin", "--password-stdin"]) == 1
    assert "at least 10 characters" in capsys.readouterr().err
    assert cli_main(["account", "disable", "nobody"]) == 1
    assert cli_main(["account", "list"]) == 0
    listed = capsys.readouterr().out
    assert "张管理" in listed and "argon2" not in listed
    from ticketflow.application import TicketDesk
    from ticketflow.config import Settings

    desk = TicketDesk(Settings(data_dir=tmp_path / "data"))
    try:
        assert desk.sign_in("zhang.admin", "first-admin-password", hours=1) is not None
    finally:
        desk.close()


@pytest.mark.postgres
def test_accounts_and_sessions_are_shared_by_every_process_on_postgresql(postgres_url: str) -> None:
    from ticketflow.application import TicketDesk
    from ticketflow.config import Settings

    settings = Settings(database_url=postgres_url)
    first, second = TicketDesk(settings), TicketDesk(settings)  # two API workers on one database
    try:
        first.create_account(CreateAccount(username="zhang.admin", display_name="张管理", role="admin"), ADMIN, PASSWORD)
        signed = second.sign_in("zhang.admin", PASSWORD, hours=1)
        assert signed is not None
        assert first.session_principal(signed.token, idle_minutes=60) is not None
        account = first.find_account("zhang.admin")
        assert account is not None
        first.disable_account(DisableAccount(account_id=account.id), ADMIN)
        assert second.session_principal(signed.token, idle_minutes=60) is None
        assert second.sign_in("zhang.admin", PASSWORD, hours=1) is None
    finally:
        first.close()
        second.close()


def test_trivial_passwords_are_refused(console: Console) -> None:
    account = console.desk.find_account("li.wei")
    assert account is not None
    for weak in ("1111111111", "1234567890", "0987654321", "abcdefghijk", "li.wei"):
        with pytest.raises(RuleViolation):
            console.desk.set_password(SetPassword(account_id=account.id), ADMIN, weak)


def test_guessing_the_current_password_on_my_account_is_throttled(console: Console) -> None:
    console.sign_in("agent_a")
    csrf = console.csrf("/account")
    answers = [console.client.post("/account/password", data={"csrf_token": csrf, "current": f"guess {n}",
                                                                "password": "new-password-1", "again": "new-password-1"}).text
               for n in range(6)]
    assert "This is not your current password." in answers[0]
    assert "Too many failed sign-ins" in answers[-1]
