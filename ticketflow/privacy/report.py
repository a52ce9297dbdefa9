"""The erasure and retention log: every erasure request and its completion, from the event log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ticketflow.domain import Customer

_TOPICS = [
    "ticketflow.domain.customer:Customer.ErasureRequested",
    "ticketflow.domain.customer:Customer.Erased",
]


def erasure_log(desk: Any, limit: int = 10_000, as_of: datetime | None = None, business: bool = False) -> list[dict[str, Any]]:
    """One row per erasure: who asked, on what basis and case, when it was requested and completed.

    With ``as_of``: the log as it stood then, from the events the desk had recorded by then (or, with
    ``business``, that had happened by then): a later request is not listed, a later completion not shown."""
    rows: dict[str, dict[str, Any]] = {}
    start = 1
    while True:
        page = desk.recorder.select_notifications(start, 1000, topics=_TOPICS)
        for notification in page:
            event: Any = desk.mapper.to_domain_event(notification)
            if as_of is not None and (event.occurred_at if business else event.timestamp) > as_of:
                continue
            key = str(event.originator_id)
            if isinstance(event, Customer.ErasureRequested):
                rows[key] = {
                    "customer_id": key, "basis": event.basis, "reference": event.reference,
                    "requested_at": event.occurred_at.isoformat(), "requested_by": event.actor_id,
                    "requested_by_role": event.actor_role, "completed_at": None, "tickets": None,
                }
            elif key in rows:
                rows[key].update(completed_at=event.occurred_at.isoformat(), tickets=event.tickets)
        if len(page) < 1000 or len(rows) >= limit:
            return list(rows.values())[:limit]
        start = page[-1].id + 1
