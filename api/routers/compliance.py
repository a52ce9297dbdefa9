"""Compliance reports: who read whose personal data (from the access log).

Service-standard compliance is ``GET /api/v1/reports/sla`` (api/routers/reads.py).
The erasure and retention log will join these once erasure is built.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.pagination import PagerDep
from api.deps import ReadsDep, encode
from api.problems import responses
from projections.compliance import data_access_report
from projections.sql import ts

router = APIRouter(prefix="/api/v1", tags=["reads"])

DATA_ACCESS_EXAMPLE = {
    "period": "2026-11", "actor_id": "li.wei", "actor_role": "agent", "customer_id": None, "reads": 12,
    "customers": 5, "fields": {"email": 7, "phone": 12}, "purposes": {"calling back about a ticket": 12},
}


class DataAccessRowOut(BaseModel):
    """One period and actor (and customer, when asked): unmasked reads of personal data."""

    model_config = ConfigDict(json_schema_extra={"example": DATA_ACCESS_EXAMPLE})

    period: str = Field(description="`2026-11-25` (day), `2026-11` (month) or `2026` (year), UTC.")
    actor_id: str | None
    actor_role: str | None
    customer_id: str | None = Field(None, description="Only with `by_customer=true`.")
    reads: int = Field(description="Recorded unmasked reads.")
    customers: int = Field(description="Distinct customers whose data was read.")
    fields: dict[str, int] = Field(description="Reads that showed each personal field.")
    purposes: dict[str, int] = Field(description="Reads per stated purpose.")


@router.get(
    "/reports/data-access",
    summary="Data-access report: unmasked reads of personal data per period and actor (and customer)",
    response_model=list[DataAccessRowOut],
    responses={**responses(400, 403, 422, 503),
               200: {"content": {"application/json": {"example": [DATA_ACCESS_EXAMPLE]}}}},
)
def data_access(
    pager: PagerDep, reads: ReadsDep,
    period: Annotated[Literal["day", "month", "year"], Query()] = "month",
    since: Annotated[datetime | None, Query(description="Reads at or after this time.")] = None,
    until: Annotated[datetime | None, Query(description="Reads before this time.")] = None,
    by_customer: Annotated[bool, Query(description="One row per customer too.")] = False,
    actor_id: Annotated[str | None, Query(max_length=200)] = None,
    customer_id: UUID | None = None,
) -> Any:
    """Counts, field names and purposes from the access log (`GET /api/v1/access-log`), never the values
    that were seen. For compliance and admin tokens. Periods are days, months or years in the desk's time
    zone (`TICKETFLOW_TIME_ZONE`)."""
    rows = reads.read("access", lambda db: data_access_report(
        db, period, ts(since), ts(until), by_customer=by_customer, actor_id=actor_id,
        customer_id=str(customer_id) if customer_id else None, zone=reads.svc.settings.time_zone))
    return pager.page(encode(DataAccessRowOut, rows))
