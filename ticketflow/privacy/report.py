"""The erasure and retention log: every erasure request and its completion, from the event log."""

from __future__ import annotations

from typing import Any

from ticketflow.domain import Customer

_TOPICS = [
    "ticketflow.domain.customer:Customer.ErasureRequested",
    "ticketflow.domain.customer:Customer.Erased",
]


def erasure_log(desk: Any, limit: int = 10_000) -> list[dict[str, Any]]:
    """One row per erasure: who asked, on what basis and case, when it was requested and completed."""
    rows: dict[str, dict[str, Any]] = {}
    start = 1
    while True:
        page = desk.recorder.select_notifications(start, 1000, topics=_TOPICS)
        for notification in page:
            event: Any = desk.mapper.to_domain_event(notification)
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
