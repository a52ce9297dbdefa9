"""API tokens as a list for the admin: each token folded from its own events (``ApiToken.Issued``,
``ApiToken.Revoked``) — who it is for, its teams and permissions, when and by whom it was issued and
revoked. Never its secret hash: the record has no field for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from ticketflow.access import PERSON_ROLES, Permission, granted
from ticketflow.domain import ApiToken
from ticketflow.domain.values import Role


@dataclass(frozen=True)
class TokenRecord:
    token_id: UUID
    name: str  # the actor on what it writes (an agent's or supervisor's: their agent id)
    role: str
    agent_id: str | None  # agents and supervisors: the team member it belongs to
    team_ids: tuple[str, ...]  # integrations: the teams it is limited to (none: every team)
    permissions: tuple[str, ...] | None  # integrations: what it carries (in Permission's order); others: None (the role's)
    issued_at: datetime
    issued_by: str
    issued_by_role: str
    version: int
    revoked_at: datetime | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def bound_to_person(self) -> bool:
        """Its teams come from the person's team membership at each request, not from the token."""
        return Role(self.role) in PERSON_ROLES


def token_record(events: Iterable[Any]) -> TokenRecord:
    """One token from its events, oldest first (the first is its ``Issued``)."""
    record: TokenRecord | None = None
    for event in events:
        if isinstance(event, ApiToken.Issued):
            role = Role(event.role)
            given = granted(role, event.permissions)
            permissions = tuple(str(p) for p in Permission if p in given) if role is Role.INTEGRATION else None
            record = TokenRecord(
                token_id=event.originator_id, name=event.name, role=event.role, agent_id=event.agent_id,
                team_ids=tuple(event.team_ids), permissions=permissions, issued_at=event.occurred_at,
                issued_by=event.actor_id, issued_by_role=event.actor_role, version=event.originator_version,
            )
        elif isinstance(event, ApiToken.Revoked) and record is not None:
            record = replace(record, revoked_at=event.occurred_at, revoked_by=event.actor_id, revoke_reason=event.reason,
                             version=event.originator_version)
    if record is None:
        raise ValueError("a token's events start with ApiToken.Issued")
    return record


#: How often a process reads the log for tokens revoked by another process (a revocation saved
#: in this process takes effect at once).
REVOCATION_POLL_SECONDS = 0.2
#: The log topic of a revocation (what the cache follows).
REVOKED_TOPICS = [f"{ApiToken.Revoked.__module__}:{ApiToken.Revoked.__qualname__}"]
#: Tokens kept per process; past it the cache starts again (tokens are few: this only bounds memory).
CACHE_LIMIT = 10_000
_PAGE = 500


@dataclass(frozen=True)
class StoredToken:
    """What authenticating a token needs from its stored state (a copy: the aggregate may change)."""

    secret_hash: str
    name: str
    role: str
    agent_id: str | None
    team_ids: tuple[str, ...]
    permissions: tuple[str, ...] | None
    revoked: bool

    @classmethod
    def of(cls, token: ApiToken) -> StoredToken:
        return cls(
            secret_hash=token.secret_hash, name=token.name, role=token.role, agent_id=token.agent_id,
            team_ids=tuple(token.team_ids), permissions=None if token.permissions is None else tuple(token.permissions),
            revoked=token.revoked,
        )


class TokenCache:
    """The tokens this process has authenticated, so a request does not load its token from the store.

    Revocations reach the cache through the log: one saved by this process drops the token at once
    (:meth:`saw`, called after every save); one saved by another process is read from the log at the
    first lookup ``poll_seconds`` after the previous read (one indexed query for the revocations written
    since). Tokens are never un-revoked, so a revoked id is remembered, and a load that raced with its
    revocation cannot put the token back.
    """

    def __init__(
        self,
        load: Callable[[UUID], ApiToken | None],
        select_revoked: Callable[[int, int, int], Sequence[Any]],
        log_position: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
        poll_seconds: float = REVOCATION_POLL_SECONDS,
    ) -> None:
        """``load(id)``: the token aggregate, None when there is none; ``select_revoked(start, limit, stop)``:
        the revocation notifications from log position ``start`` to ``stop``; ``log_position()``: the log's end."""
        self._load, self._select_revoked, self._log_position = load, select_revoked, log_position
        self.clock, self.poll_seconds = clock, poll_seconds
        self._tokens: dict[UUID, StoredToken] = {}
        self._revoked: set[UUID] = set()
        self._position: int | None = None  # the log position up to which revocations were read
        self._polled = 0.0
        self._lock = threading.Lock()

    def get(self, token_id: UUID) -> StoredToken | None:
        """The token as stored (None when there is no such token); a revoked one says so."""
        with self._lock:
            self._follow()
            if token_id in self._revoked:
                return None
            known = self._tokens.get(token_id)
        if known is not None:
            return known
        token = self._load(token_id)
        if token is None:
            return None  # not remembered: it may be issued later, and unknown ids are anyone's guess
        stored = StoredToken.of(token)
        with self._lock:
            if token_id in self._revoked:
                return None  # revoked while it loaded
            if len(self._tokens) >= CACHE_LIMIT:
                self._tokens.clear()
            self._tokens[token_id] = stored
        return stored

    def saw(self, events: Iterable[Any]) -> None:
        """Events this process just saved: a revocation among them takes effect now."""
        revoked = [e.originator_id for e in events if isinstance(e, ApiToken.Revoked)]
        if revoked:
            with self._lock:
                for token_id in revoked:
                    self._forget(token_id)

    def _forget(self, token_id: UUID) -> None:
        self._revoked.add(token_id)
        self._tokens.pop(token_id, None)

    def _follow(self) -> None:
        """Read the revocations written since the last read, if ``poll_seconds`` have passed (under the lock)."""
        now = self.clock()
        if self._position is None:
            # Before any token is loaded: whatever is revoked after this position is read from the log.
            self._position, self._polled = self._log_position(), now
            return
        if now - self._polled < self.poll_seconds:
            return
        top = self._log_position()
        while self._position < top:
            page = self._select_revoked(self._position + 1, _PAGE, top)
            for notification in page:
                self._forget(notification.originator_id)
            if len(page) < _PAGE:
                break
            self._position = page[-1].id
        self._position, self._polled = max(self._position, top), now
