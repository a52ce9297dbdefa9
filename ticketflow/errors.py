"""The one error hierarchy of ticketflow.

Every failure a caller can act on is a :class:`TicketflowError`. Library errors
(eventsourcing, pydantic, psycopg) are translated into these where they cross into
the application, so the CLI and the HTTP layer each map errors in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID


class TicketflowError(Exception):
    """Base class: a refused or failed request. ``str(err)`` is a readable sentence."""

    code = "ticketflow_error"


class ValidationFailed(TicketflowError):
    """The command's input is malformed (lengths, enums, control characters...)."""

    code = "validation_failed"


class NotFound(TicketflowError):
    code = "not_found"

    def __init__(self, kind: str, object_id: UUID | str) -> None:
        self.kind = kind
        self.object_id = str(object_id)
        super().__init__(f"{kind} {object_id} not found")


class TicketNotFound(NotFound):
    def __init__(self, ticket_id: UUID | str) -> None:
        super().__init__("ticket", ticket_id)


class CustomerNotFound(NotFound):
    def __init__(self, customer_id: UUID | str) -> None:
        super().__init__("customer", customer_id)


class TeamNotFound(NotFound):
    def __init__(self, team_id: UUID | str) -> None:
        super().__init__("team", team_id)


class RuleViolation(TicketflowError):
    """The command is well-formed but the domain refuses it in the current state.

    ``field`` names the command's field the refusal is about, when there is one (a form shows
    the refusal beside that field)."""

    code = "rule_violation"
    field: str | None = None

    def __init__(self, *args: object, field: str | None = None) -> None:
        super().__init__(*args)
        if field is not None:
            self.field = field


class InvalidTransition(RuleViolation):
    """A status change not in the lifecycle table."""

    code = "invalid_transition"

    def __init__(self, ticket_id: UUID, action: str, status: str, allowed: Iterable[str]) -> None:
        self.ticket_id = ticket_id
        self.action = action
        self.status = status
        self.allowed = tuple(allowed)
        allowed_text = ", ".join(self.allowed) if self.allowed else "none (the status is final)"
        super().__init__(
            f"cannot {action} ticket {ticket_id}: it is {status}; allowed from {status}: {allowed_text}"
        )


class ConcurrencyConflict(TicketflowError):
    """The object changed since the caller read it (stale expected version or a lost race)."""

    code = "concurrency_conflict"

    def __init__(self, object_id: UUID, expected: int | None, actual: int | None) -> None:
        self.object_id = object_id
        self.expected = expected
        self.actual = actual
        if expected is None:
            text = f"{object_id} was changed by another writer at the same time; reload and retry"
        else:
            text = (
                f"{object_id} is at version {actual}, not the expected version {expected}; "
                "reload and retry"
            )
        super().__init__(text)


class PermissionDenied(TicketflowError):
    code = "permission_denied"


class StorageUnavailable(TicketflowError):
    """The event store cannot be reached or opened."""

    code = "storage_unavailable"
