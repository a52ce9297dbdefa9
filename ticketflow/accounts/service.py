"""Staff accounts and sign-in: a mixin of :class:`~ticketflow.application.TicketDesk`.

Admins create accounts, reset passwords, disable and enable them (CLI and console); the holder
may change their own password. Each is an event on the :class:`StaffAccount` (never the hash).
A session is opened by :meth:`sign_in` and checked at each request by :meth:`session_principal`:
a disabled account, or an agent who left every team, is refused at once.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.persistence import IntegrityError

from ticketflow import metadata
from ticketflow.access import PERSON_ROLES, Principal
from ticketflow.accounts import passwords
from ticketflow.accounts.store import AccountStore, Session
from ticketflow.commands.accounts import CreateAccount, DisableAccount, EnableAccount, SetPassword
from ticketflow.domain import StaffAccount
from ticketflow.domain.values import Role
from ticketflow.errors import NotFound, PermissionDenied, RuleViolation
from ticketflow.metadata import Caller

if TYPE_CHECKING:
    from ticketflow.application import CommandResult, TicketDesk

    _Base = TicketDesk
else:
    _Base = object

ACCOUNT_NAMESPACE = uuid5(NAMESPACE_URL, "https://ticketflow.dev/accounts")
#: Roles a staff account may hold (integrations use API tokens, never a console account).
ACCOUNT_ROLES = (Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.AUDITOR, Role.COMPLIANCE)
#: A session's last-seen time is written at most this often (not on every request).
TOUCH_EVERY_US = 60_000_000


def account_id_for(username: str) -> UUID:
    """One account per sign-in name: the id derives from the (lower-cased) name."""
    return uuid5(ACCOUNT_NAMESPACE, username.strip().lower())


class AccountExists(RuleViolation):
    """The sign-in name is taken."""

    code = "account_exists"


@dataclass(frozen=True)
class SignedIn:
    """A new session: the cookie's token (shown once) and the form token that guards its writes."""

    token: str
    csrf: str
    principal: Principal
    expires_us: int


class AccountCommands(_Base):
    @property
    def accounts(self) -> AccountStore:
        store: AccountStore | None = self.__dict__.get("_account_store")
        if store is None:
            store = self.__dict__["_account_store"] = AccountStore(self.settings, self.recorder)
            self.before_close(store.close)
        return store

    def _now_us(self) -> int:
        return int(self.clock.now().timestamp() * 1_000_000)

    # ------------------------------------------------------------------ commands
    def create_account(self, cmd: CreateAccount, caller: Caller, password: str) -> CommandResult:
        """Create an account with its first password (admins only)."""
        from ticketflow.application import CommandResult

        _admin_only(caller, "create accounts")
        if cmd.role not in ACCOUNT_ROLES:
            raise RuleViolation(f"accounts are for {', '.join(ACCOUNT_ROLES)}, not {cmd.role}")
        if cmd.role in PERSON_ROLES:
            if cmd.agent_id is None:
                raise RuleViolation(f"a {cmd.role}'s account belongs to a team member: give the agent id")
            if not self._person_teams(cmd.agent_id, cmd.role):
                what = "an active member" if cmd.role is Role.AGENT else "an active supervisor or lead"
                raise RuleViolation(f"{cmd.agent_id} is not {what} of any team")
        elif cmd.agent_id is not None:
            raise RuleViolation(f"only agent and supervisor accounts are bound to a team member, not {cmd.role}")
        else:
            self._require_unique_actor(cmd.username, account_id_for(cmd.username))
        passwords.check_rule(password, cmd.username)
        password_hash = passwords.hash_password(password)
        ctx = self._context(cmd, caller)
        account_id = account_id_for(cmd.username)
        with metadata.recording(ctx):
            account = StaffAccount._create(StaffAccount.Created, id=account_id, username=cmd.username,
                                           display_name=cmd.display_name, role=str(cmd.role), agent_id=cmd.agent_id)
            account.set_password("created")
            try:
                result = self._save(account, ())
            except IntegrityError:
                (first,) = self.events.get(account_id, limit=1)
                if getattr(first, "command_id", None) == str(cmd.command_id):
                    existing = self._load(StaffAccount, account_id)
                    return CommandResult(account_id, existing.version, None, (), replayed=True)
                raise AccountExists(f"an account named {cmd.username!r} exists already") from None
        self.accounts.set_credential(str(account_id), account.password_serial, password_hash, self._now_us())
        return result

    def set_password(self, cmd: SetPassword, caller: Caller, password: str) -> CommandResult:
        """An admin resets any account's password; a holder changes their own. Sessions of the
        account end (a reset is what an admin does when a password may be known to someone else)."""
        account = self._load(StaffAccount, cmd.account_id)
        own = caller.actor_id == _actor_of(account)
        if cmd.reason == "changed" and not own:
            raise PermissionDenied("only the account's holder changes their own password; an admin resets it")
        if cmd.reason == "reset":
            _admin_only(caller, "reset passwords")
        passwords.check_rule(password, account.username)
        if cmd.reason == "changed" and self.check_password(account.username, password) is not None:
            raise passwords.WeakPassword("the new password is the current one")
        password_hash = passwords.hash_password(password)
        result = self._change(StaffAccount, cmd.account_id, cmd, caller, lambda a: a.set_password(cmd.reason))
        if not result.replayed:
            serial = self._load(StaffAccount, cmd.account_id).password_serial
            self.accounts.set_credential(str(cmd.account_id), serial, password_hash, self._now_us())
            self.accounts.end_sessions_of(str(cmd.account_id))
        return result

    def disable_account(self, cmd: DisableAccount, caller: Caller) -> CommandResult:
        _admin_only(caller, "disable accounts")
        account = self._load(StaffAccount, cmd.account_id)
        if caller.actor_id == _actor_of(account):
            raise RuleViolation("you may not disable your own account; another admin can")
        result = self._change(StaffAccount, cmd.account_id, cmd, caller, lambda a: a.disable(cmd.reason))
        self.accounts.end_sessions_of(str(cmd.account_id))
        return result

    def enable_account(self, cmd: EnableAccount, caller: Caller) -> CommandResult:
        _admin_only(caller, "enable accounts")
        return self._change(StaffAccount, cmd.account_id, cmd, caller, lambda a: a.enable())

    # ------------------------------------------------------------------ reads
    def get_account(self, account_id: UUID) -> StaffAccount:
        return self._load(StaffAccount, account_id)

    def find_account(self, username: str) -> StaffAccount | None:
        try:
            return self._load(StaffAccount, account_id_for(username))
        except NotFound:
            return None

    def list_accounts(self) -> list[StaffAccount]:
        found = [self._peek(StaffAccount, account_id) for account_id in self._ids_of(StaffAccount)]
        return sorted(found, key=lambda a: a.username)

    def account_principal(self, account: StaffAccount) -> Principal | None:
        """Who a signed-in account is now (None: disabled, or a person no longer in any team)."""
        if account.disabled:
            return None
        role = Role(account.role)
        if role in PERSON_ROLES:
            assert account.agent_id is not None
            teams = frozenset(self._person_teams(account.agent_id, role))
            if not teams:
                return None
            return Principal(account.id, account.agent_id, role, teams, agent_id=account.agent_id)
        return Principal(account.id, account.username, role)

    # ------------------------------------------------------------------ sessions
    def check_password(self, username: str, password: str) -> StaffAccount | None:
        """The account when the name and password match (whether enabled or not); else None. The
        time taken does not tell whether the name exists."""
        account = self.find_account(username) if username.strip() else None
        credential = self.accounts.credential(str(account.id)) if account is not None else None
        current = credential is not None and account is not None and credential.serial == account.password_serial
        if not passwords.verify(credential.hash if current and credential else None, password):
            return None
        assert account is not None and credential is not None
        if passwords.needs_rehash(credential.hash):
            self.accounts.set_credential(str(account.id), credential.serial, passwords.hash_password(password),
                                         self._now_us())
        return account

    def sign_in(self, username: str, password: str, *, hours: float) -> SignedIn | None:
        """A new session when the name and password match an enabled account (else None)."""
        account = self.check_password(username, password)
        if account is None:
            return None
        principal = self.account_principal(account)
        if principal is None:
            return None
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        now = self._now_us()
        expires = now + int(timedelta(hours=hours).total_seconds() * 1_000_000)
        self.accounts.purge_expired(now)
        self.accounts.open_session(token, str(account.id), csrf, now, expires)
        return SignedIn(token, csrf, principal, expires)

    def session_principal(self, token: str, *, idle_minutes: float) -> tuple[Session, Principal] | None:
        """The session's holder now; None when the session ended, expired, sat idle too long, or its
        account was disabled (its sessions are then ended)."""
        session = self.accounts.session(token)
        if session is None:
            return None
        now = self._now_us()
        if now >= session.expires_us or now - session.last_seen_us > idle_minutes * 60_000_000:
            self.accounts.end_session(token)
            return None
        try:
            account = self._peek(StaffAccount, UUID(session.account_id))
        except NotFound:
            return None
        principal = self.account_principal(account)
        if principal is None:
            self.accounts.end_sessions_of(session.account_id)
            return None
        if now - session.last_seen_us > TOUCH_EVERY_US:
            self.accounts.touch(token, now)
        return session, principal

    def sign_out(self, token: str) -> None:
        self.accounts.end_session(token)


def _actor_of(account: StaffAccount) -> str:
    return account.agent_id if account.agent_id is not None and Role(account.role) in PERSON_ROLES else account.username


def _admin_only(caller: Caller, what: str) -> None:
    if caller.role not in (Role.ADMIN, Role.SYSTEM):
        raise PermissionDenied(f"only an admin may {what}")
