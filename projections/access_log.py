"""The access log: every unmasked read of a customer's personal data (who, which fields, why)."""

from __future__ import annotations

from typing import Any

from projections.sql import Batch, Db, Table, dumps, loads, log_page, ts
from projections.view import Event, View
from ticketflow.domain import DataAccess

ACCESS = Table(
    "tf_access_log",
    columns=(
        "position BIGINT NOT NULL",
        "customer_id TEXT",
        "actor_id TEXT",
        "actor_role TEXT",
        "fields TEXT",
        "purpose TEXT",
        "request_id TEXT",
        "resource TEXT",
        "occurred_at TEXT",
    ),
    key=("position",),
    indexes=(("customer_id", "position"), ("actor_id", "position")),
)


class AccessLogView(View):
    name = "access"
    tables = (ACCESS,)
    event_types = (DataAccess.Recorded,)

    def apply(self, batch: Batch, event: Event, position: int) -> None:
        if isinstance(event, DataAccess.Recorded):
            batch.put(ACCESS, {
                "position": position, "customer_id": str(event.customer_id), "actor_id": event.actor_id,
                "actor_role": event.actor_role, "fields": dumps(event.fields), "purpose": event.purpose,
                "request_id": event.request_id, "resource": event.resource, "occurred_at": ts(event.occurred_at),
            })


def access_log(
    db: Db, *, customer_id: str | None = None, actor_id: str | None = None, after: int = 0, limit: int = 100
) -> list[dict[str, Any]]:
    rows = log_page(db, "tf_access_log", after, limit, {"customer_id =": customer_id, "actor_id =": actor_id})
    return [{**r, "fields": loads(r["fields"])} for r in rows]
