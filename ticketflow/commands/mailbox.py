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


EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
SecretPath = Annotated[str, StringConstraints(pattern=r"^/[^\x00]{1,1000}$")]
Host = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9.\-\[\]:]{1,253}$")]


class AddMailbox(Command):
    name: Line = Field(description="Unique, e.g. 'support' or '技术支持邮箱'.")
    address: Email = Field(description="The desk address this mailbox receives for (the From of replies).")
    team_id: UUID | None = Field(default=None, description="The team whose tickets its mail opens.")
    protocol: MailProtocol = MailProtocol.LMTP
    imap_host: Host | None = None
    imap_port: int = Field(default=993, ge=1, le=65535)
    imap_username: Line | None = None
    imap_folder: Line = "INBOX"
    imap_tls: bool = True
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
        elif self.imap_host or self.imap_username or self.password_env or self.password_file:
            raise ValueError(
                "IMAP settings are for protocol imap; an LMTP mailbox receives what is piped to it"
            )
        return self

    def imap_settings(self) -> dict[str, object] | None:
        if self.protocol is not MailProtocol.IMAP:
            return None
        return {
            "host": self.imap_host,
            "port": self.imap_port,
            "username": self.imap_username,
            "folder": self.imap_folder,
            "tls": self.imap_tls,
            "password_env": self.password_env,
            "password_file": self.password_file,
        }


class RemoveMailbox(ChangeCommand):
    mailbox_id: UUID
    reason: ShortText = ""
