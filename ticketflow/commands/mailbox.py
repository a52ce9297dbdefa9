"""Commands on mailboxes (admins only). There is no password field: a password is read from the
environment variable or the file the mailbox names, so it never reaches an event."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import Field, StringConstraints, model_validator

from ticketflow.commands.base import ChangeCommand, Command, Email, Line, ShortText


class MailProtocol(StrEnum):
    LMTP = "lmtp"
    IMAP = "imap"


class ImapSecurity(StrEnum):
    """How the IMAP connection is protected: ``ssl`` (IMAPS, port 993), ``starttls`` (upgraded on port
    143) or ``plain`` (no TLS: only for a server on the same host or a trusted network)."""

    SSL = "ssl"
    STARTTLS = "starttls"
    PLAIN = "plain"


#: The port of each security mode when the mailbox names none.
DEFAULT_IMAP_PORTS = {ImapSecurity.SSL: 993, ImapSecurity.STARTTLS: 143, ImapSecurity.PLAIN: 143}


EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
SecretPath = Annotated[str, StringConstraints(pattern=r"^/[^\x00]{1,1000}$")]
Host = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9.\-\[\]:]{1,253}$")]


class AddMailbox(Command):
    name: Line = Field(description="Unique, e.g. 'support' or '技术支持邮箱'.")
    address: Email = Field(description="The desk address this mailbox receives for (the From of replies).")
    team_id: UUID | None = Field(default=None, description="The team whose tickets its mail opens.")
    protocol: MailProtocol = MailProtocol.LMTP
    imap_host: Host | None = None
    imap_port: int | None = Field(
        default=None, ge=1, le=65535, description="Default: 993 for ssl, 143 for starttls and plain."
    )
    imap_username: Line | None = None
    imap_folder: Line = "INBOX"
    imap_security: ImapSecurity = ImapSecurity.SSL
    password_env: EnvName | None = Field(
        default=None, description="The environment variable holding the password."
    )
    password_file: SecretPath | None = Field(
        default=None, description="An absolute path to a file holding it."
    )

    @model_validator(mode="after")
    def _imap_settings(self) -> AddMailbox:
        if self.protocol is MailProtocol.IMAP:
            missing = [n for n in ("imap_host", "imap_username") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"an IMAP mailbox needs {' and '.join(missing)}")
            if (self.password_env is None) == (self.password_file is None):
                raise ValueError(
                    "an IMAP mailbox names its password's source: password_env or password_file (one)"
                )
        elif (
            self.imap_host or self.imap_username or self.password_env or self.password_file or self.imap_port
        ):
            raise ValueError(
                "IMAP settings are for protocol imap; an LMTP mailbox receives what is piped to it"
            )
        return self

    def imap_settings(self) -> dict[str, object] | None:
        if self.protocol is not MailProtocol.IMAP:
            return None
        return {
            "host": self.imap_host,
            "port": self.imap_port or DEFAULT_IMAP_PORTS[self.imap_security],
            "username": self.imap_username,
            "folder": self.imap_folder,
            "tls": self.imap_security is not ImapSecurity.PLAIN,
            "security": str(self.imap_security),
            "password_env": self.password_env,
            "password_file": self.password_file,
        }


class RemoveMailbox(ChangeCommand):
    mailbox_id: UUID
    reason: ShortText = ""
