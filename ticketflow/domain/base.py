"""The base aggregate: metadata on every event, declared personal data, command memory.

Every event class of ticketflow derives from :class:`TicketflowAggregate.Event`
and so carries, as keyword-only fields filled from the current
:class:`~ticketflow.metadata.RecordingContext`:

``actor_id``, ``actor_role``
    who caused the event;
``via``
    the channel the command came through (api, cli, email, system...);
``correlation_id``, ``command_id``
    the conversation and the command that caused it;
``occurred_at``
    business time from the application's clock (an import may supply history);
``imported``
    true for history migrated from another desk.

The library's own ``timestamp`` stays the time the event was recorded.

Personal data is declared per event class: ``personal_fields`` names the fields
holding personal data and ``data_subject`` names the field holding the id of the
customer the data belongs to. Encryption and erasure are keyed on this
declaration; ``tests/domain/test_personal_data.py`` keeps it complete.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from ticketflow import metadata

#: How many recent command ids an aggregate remembers, to recognise a retried command.
REMEMBERED_COMMANDS = 64

METADATA_FIELDS = (
    "actor_id",
    "actor_role",
    "via",
    "correlation_id",
    "command_id",
    "occurred_at",
    "imported",
)


def _from_context(name: str) -> Any:
    def factory() -> Any:
        return getattr(metadata.current(), name)

    return factory


class _StampsAggregate:
    """Mixin for events: keep the aggregate's business times and recent command ids.

    ``updated_at`` is set *before* the event applies, so a mutator can read the
    business time of the event it is applying as ``self.updated_at``.
    """

    command_id: str
    occurred_at: datetime

    def mutate(self, aggregate: Any) -> Any:
        if aggregate is not None:
            aggregate.updated_at = self.occurred_at
        aggregate = super().mutate(aggregate)  # type: ignore[misc]
        if "created_at" not in aggregate.__dict__:
            aggregate.created_at = self.occurred_at
            aggregate.updated_at = self.occurred_at
        aggregate._remember_command(self.command_id)
        return aggregate


class TicketflowAggregate(Aggregate):
    """Base of Ticket, Customer and Team.

    ``created_at`` and ``updated_at`` are business times (``occurred_at`` of the
    first and latest events); ``created_on`` and ``modified_on`` stay the
    library's recorded times.
    """

    created_at: datetime
    updated_at: datetime

    @dataclass(frozen=True)
    class Event(_StampsAggregate, Aggregate.Event):
        personal_fields: ClassVar[frozenset[str]] = frozenset()
        data_subject: ClassVar[str | None] = None

        actor_id: str = field(default_factory=_from_context("actor_id"), kw_only=True)
        actor_role: str = field(default_factory=_from_context("actor_role"), kw_only=True)
        via: str = field(default_factory=_from_context("via"), kw_only=True)
        correlation_id: str = field(default_factory=_from_context("correlation_id"), kw_only=True)
        command_id: str = field(default_factory=_from_context("command_id"), kw_only=True)
        occurred_at: datetime = field(default_factory=_from_context("occurred_at"), kw_only=True)
        imported: bool = field(default_factory=_from_context("imported"), kw_only=True)

        def subject_id(self) -> UUID | None:
            """The customer whose personal data this event holds, if any."""
            if self.data_subject is None:
                return None
            value = getattr(self, self.data_subject)
            return value if value is None or isinstance(value, UUID) else UUID(str(value))

        def payload(self) -> dict[str, Any]:
            """The event's own fields, without identity and metadata."""
            skip = {"originator_id", "originator_version", "timestamp", "originator_topic"}
            skip.update(METADATA_FIELDS)
            return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}

    @dataclass(frozen=True)
    class Created(Event, Aggregate.Created):
        pass

    def __deepcopy__(self, memo: dict[int, Any]) -> TicketflowAggregate:
        """A copy for the repository cache's readers: containers are copied, values are shared.

        Aggregate state holds only immutable values (str, int, UUID, datetime, enums, frozen
        events) inside lists, dicts and sets, so copying the containers is a full copy, and
        far cheaper than the generic ``copy.deepcopy`` walk.
        """
        clone = object.__new__(type(self))
        clone.__dict__.update({key: _copy_containers(value) for key, value in self.__dict__.items()})
        return clone

    def _remember_command(self, command_id: str) -> None:
        recent: list[str] = self.__dict__.setdefault("recent_commands", [])
        recent.append(command_id)
        del recent[:-REMEMBERED_COMMANDS]

    def has_handled(self, command_id: UUID) -> bool:
        """True when a command with this id already changed this aggregate (a retry)."""
        return str(command_id) in self.__dict__.get("recent_commands", ())


def _copy_containers(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_containers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_containers(v) for v in value]
    if isinstance(value, set):
        return set(value)
    return value


def event_classes(aggregate: type[TicketflowAggregate]) -> Iterator[type[TicketflowAggregate.Event]]:
    """The event classes declared in an aggregate's body (its published schema)."""
    for value in vars(aggregate).values():
        if (
            isinstance(value, type)
            and issubclass(value, TicketflowAggregate.Event)
            and value.__qualname__.startswith(aggregate.__name__ + ".")
        ):
            yield value
