"""Who did it, when, how and why: the metadata carried by every stored event.

eventsourcing 9.5 has no event metadata of its own. The application sets a
:class:`RecordingContext` for the duration of one command; every event created
while it is set copies it into keyword-only fields of the base event class
(see :mod:`ticketflow.domain.base`), so the metadata is stored with the event and
comes back unchanged on replay.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from ticketflow.domain.values import Channel, Role


@dataclass(frozen=True)
class Caller:
    """The authenticated actor on whose behalf a command runs, and the way it came in."""

    actor_id: str
    role: Role
    via: Channel = Channel.API
    correlation_id: str | None = None
    #: What the caller may do, as permission names; None: unrestricted (the desk itself, the CLI operator).
    permissions: frozenset[str] | None = None
    #: The teams the caller works in; None: every team.
    team_ids: frozenset[UUID] | None = None
    #: Whether team-less tickets (the triage queue) are in the caller's scope.
    triage: bool = True

    def may(self, permission: str) -> bool:
        return self.permissions is None or permission in self.permissions

    def sees_team(self, team_id: UUID | None) -> bool:
        if self.team_ids is None:
            return True
        return self.triage if team_id is None else team_id in self.team_ids

    @property
    def records_for_others(self) -> bool:
        """Whether the caller may name another person as the author of what it records: an admin
        correcting a record, the desk itself, and the migration import (the event keeps both)."""
        return self.role in (Role.ADMIN, Role.SYSTEM) or self.via is Channel.IMPORT


@dataclass(frozen=True)
class RecordingContext:
    actor_id: str
    actor_role: str
    via: str
    correlation_id: str
    command_id: str
    occurred_at: datetime
    imported: bool = False
    #: Imported history: the source system's own counters at the update being recorded.
    source_counters: dict[str, int] | None = None


_current: ContextVar[RecordingContext | None] = ContextVar("ticketflow_recording", default=None)


class NoRecordingContext(RuntimeError):
    """An event was created outside a command: its metadata would be unknown."""


def active() -> RecordingContext | None:
    """The command being recorded in this context, None outside one."""
    return _current.get()


def current() -> RecordingContext:
    ctx = _current.get()
    if ctx is None:
        raise NoRecordingContext(
            "domain events must be recorded inside ticketflow.metadata.recording(...)"
        )
    return ctx


class _Recording:
    """``with recording(ctx):`` — a class, not a generator: it is entered for every command and
    every imported fact, and a generator-based context manager costs several times as much."""

    __slots__ = ("ctx", "token")

    def __init__(self, ctx: RecordingContext) -> None:
        self.ctx = ctx

    def __enter__(self) -> RecordingContext:
        self.token = _current.set(self.ctx)
        return self.ctx

    def __exit__(self, *exc: object) -> None:
        _current.reset(self.token)


def recording(ctx: RecordingContext) -> _Recording:
    return _Recording(ctx)


def context_for(
    caller: Caller,
    command_id: UUID,
    occurred_at: datetime,
    *,
    imported: bool = False,
    source_counters: dict[str, int] | None = None,
) -> RecordingContext:
    command = str(command_id)
    return RecordingContext(
        actor_id=caller.actor_id,
        actor_role=str(caller.role),
        via=str(caller.via),
        correlation_id=caller.correlation_id or command,
        command_id=command,
        occurred_at=occurred_at,
        imported=imported,
        source_counters=source_counters,
    )
