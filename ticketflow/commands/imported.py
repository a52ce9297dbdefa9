"""Recording another desk's history: facts that happened, not commands to decide.

A :class:`RecordImportedFacts` carries what the source system recorded for one ticket,
each fact at its own original time and by its own person. The desk keeps them as they
happened (an assignee without a team, a reopen after closed, "new" with an assignee),
checking only their shape: known teams, names that are names, times that do not go back
and are not in the future. Native commands keep the lifecycle's rules.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from ticketflow.commands.base import Body, HistoricalTime, Name, ShortText
from ticketflow.commands.ticket import TicketCommand
from ticketflow.domain.values import Priority, Status

#: The most facts one command records (one ticket's history; the importer splits longer ones).
MAX_FACTS = 2_000


class FactKind(StrEnum):
    STATUS = "status"  # the ticket reached ``status``
    PLACEMENT = "placement"  # the ticket is with ``team_id`` (None: none) and ``assignee_id`` (None: nobody)
    PRIORITY = "priority"
    CATEGORY = "category"
    NOTE = "note"  # an internal note (``body``)
    CALL = "call"  # an inbound call from the customer (``body``)
    REPLY = "reply"  # a public message (``body``): from the desk (``direction`` outbound) or the customer (inbound)
    COUNTERS = "counters"  # an update that changed only the source's counters (``source_counters``)


_NEEDS: dict[FactKind, tuple[str, ...]] = {
    FactKind.STATUS: ("status",),
    FactKind.PRIORITY: ("priority",),
    FactKind.CATEGORY: ("category",),
    FactKind.NOTE: ("body",),
    FactKind.CALL: ("body",),
    FactKind.REPLY: ("body",),
    FactKind.COUNTERS: ("source_counters",),
}

#: A source counter: its name (the source's column, letters of any script: ``reopen_count``, ``重开次数``)
#: and a whole number of at least 0.
CounterName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w.\-]+$")]
#: The source system's own counters at one update, by name (at most 20).
SourceCounters = Annotated[dict[CounterName, Annotated[int, Field(ge=0, le=2**31 - 1, strict=True)]], Field(max_length=20)]


class ImportedFact(BaseModel):
    """One thing the source recorded, at its time, by its person (``actor_id``; None: the importer)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fact_id: UUID = Field(description="Stable across re-runs: a re-run recognises facts already recorded.")
    kind: FactKind
    occurred_at: HistoricalTime
    actor_id: Name | None = None
    status: Status | None = None
    team_id: UUID | None = None
    assignee_id: Name | None = None
    priority: Priority | None = None
    category: Name | None = None
    body: Body | None = None
    #: A reply's direction: outbound (the desk wrote it, the default) or inbound (the customer did).
    direction: Literal["inbound", "outbound"] = "outbound"
    reason: ShortText = ""
    #: The source system's own counters at this update (kept on the event as ``source_counters``).
    source_counters: SourceCounters | None = None

    @model_validator(mode="after")
    def _shape(self) -> ImportedFact:
        missing = [name for name in _NEEDS.get(self.kind, ()) if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind} fact needs {', '.join(missing)}")
        return self


class RecordImportedFacts(TicketCommand):
    """Record a ticket's imported history, in time order (import callers and admins only)."""

    facts: list[ImportedFact] = Field(min_length=1, max_length=MAX_FACTS)

    @model_validator(mode="after")
    def _in_time_order(self) -> RecordImportedFacts:
        for before, after in zip(self.facts, self.facts[1:]):
            if after.occurred_at < before.occurred_at:
                raise ValueError(
                    f"facts go back in time: {after.occurred_at.isoformat()} after {before.occurred_at.isoformat()}"
                )
        return self
