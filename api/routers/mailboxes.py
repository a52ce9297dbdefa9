"""/api/v1/mailboxes: where the desk receives mail (admins only).

A mailbox is an address the desk receives for, the team its mail opens tickets in, and how mail
arrives (``lmtp``: piped in by the mail server; ``imap``: fetched). An IMAP password is never sent
here: the mailbox names the environment variable or the file the fetcher reads it from.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.pagination import PagerDep
from api.deps import CommandsDep
from api.problems import responses
from api.schemas import CommandOut, request_model
from ticketflow.commands.mailbox import AddMailbox, RemoveMailbox
from ticketflow.domain.mailbox import Mailbox

router = APIRouter(prefix="/api/v1/mailboxes", tags=["mailboxes"])
BOX = "5b0e0c1a-8f7d-5a34-9f0e-2b7c4d1e6a90"

MailboxCreate = request_model(
    AddMailbox,
    "MailboxCreate",
    keep=frozenset({"team_id"}),
    example={
        "name": "技术支持邮箱",
        "address": "support@desk.example",
        "team_id": "2d6a38ad-69a4-5afd-bb89-1c7fae547dde",
        "protocol": "imap",
        "imap_host": "imap.desk.example",
        "imap_username": "support",
        "imap_security": "ssl",
        "password_env": "TICKETFLOW_IMAP_SUPPORT",
    },
)


class ImapOut(BaseModel):
    host: str
    port: int
    username: str
    folder: str
    tls: bool
    security: str = Field(default="ssl", description="ssl, starttls or plain.")
    password_env: str | None = Field(
        default=None, description="Where the password is read (never the password)."
    )
    password_file: str | None = None


class MailboxOut(BaseModel):
    mailbox_id: UUID = Field(examples=[BOX])
    name: str = Field(examples=["技术支持邮箱"])
    address: str = Field(examples=["support@desk.example"])
    team_id: UUID | None = None
    protocol: str = Field(examples=["lmtp"])
    imap: ImapOut | None = None
    active: bool = Field(examples=[True])
    version: int = Field(examples=[1])


def mailbox_out(mailbox: Mailbox) -> dict[str, Any]:
    return MailboxOut(
        mailbox_id=mailbox.id,
        name=mailbox.name,
        address=mailbox.address,
        team_id=mailbox.team_id,
        protocol=mailbox.protocol,
        imap=ImapOut(**{**mailbox.imap, "security": mailbox.imap_security}) if mailbox.imap else None,
        active=mailbox.active,
        version=mailbox.version,
    ).model_dump(mode="json")


@router.post(
    "",
    status_code=201,
    summary="Add a mailbox the desk receives mail for",
    response_model=CommandOut,
    responses=responses(403, 404, 409, 422),
)
def add(body: MailboxCreate, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """The desk takes in mail for this address (LMTP or IMAP intake) and opens or continues tickets from it."""
    result = cmd.run(AddMailbox, **body.model_dump())
    return cmd.respond(result, 201, location=f"/api/v1/mailboxes/{result.object_id}")


@router.get("", summary="List the mailboxes", response_model=list[MailboxOut], responses=responses(403))
def mailboxes(pager: PagerDep, cmd: CommandsDep) -> list[dict[str, Any]]:
    """Every mailbox the desk receives mail for. Paged with `limit` and `cursor`."""
    return pager.page([mailbox_out(m) for m in cmd.svc.desk.mailboxes()])


@router.get("/{mailbox_id}", summary="One mailbox", response_model=MailboxOut, responses=responses(403, 404))
def mailbox(mailbox_id: UUID, cmd: CommandsDep) -> dict[str, Any]:
    """One mailbox; 404 when there is none with this id."""
    return mailbox_out(cmd.svc.desk.get_mailbox(mailbox_id))


@router.delete(
    "/{mailbox_id}",
    summary="Remove a mailbox (its mail is no longer taken in)",
    response_model=CommandOut,
    responses=responses(403, 404, 409, 412, 422),
)
def remove(mailbox_id: UUID, cmd: CommandsDep) -> JSONResponse:
    """Mail to this address is no longer taken in; tickets already opened from it stay."""
    return cmd.respond(cmd.run(RemoveMailbox, mailbox_id=mailbox_id))
