"""/api/v1/customers/{id}/erasure: the right to erasure (compliance)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api import schemas as s
from api.pagination import PagerDep
from api.asof import views_as_of
from api.deps import CommandsDep, ServicesDep
from api.problems import responses
from ticketflow.commands.privacy import EraseCustomer
from ticketflow.privacy.report import erasure_log

router = APIRouter(prefix="/api/v1", tags=["customers"])

ERASURE_LOG_EXAMPLE = [{
    "customer_id": "3f48ed36-58ec-588a-b86a-5a1e72322108", "basis": "customer_request", "reference": "DSR-2026-0042",
    "requested_at": "2026-11-02T09:00:00+00:00", "requested_by": "comp.lee", "requested_by_role": "compliance",
    "completed_at": "2026-11-02T09:00:00+00:00", "tickets": 3,
}]


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reference": "DSR-2026-0042"}]})

    reference: str = Field(min_length=1, max_length=200, description="the compliance case number (no personal data)")
    basis: EraseCustomer.model_fields["basis"].annotation = "customer_request"  # type: ignore[valid-type]


@router.post(
    "/customers/{customer_id}/erasure", summary="Erase a customer's personal data (crypto-shredding)", response_model=s.CommandOut,
    responses=responses(403, 404, 409, 422),
)
def erase(customer_id: UUID, body: ErasureRequest, cmd: CommandsDep) -> JSONResponse:
    """Records the request, destroys the customer's key, drops snapshots holding their data and records
    completion; neither event holds personal data. The customer's tickets stay, their personal fields read
    `[erased]`, and every view purges its plaintext copies. Erasing twice answers 409."""
    response = cmd.respond(cmd.run(EraseCustomer, customer_id=customer_id, **body.model_dump()))
    views_as_of(cmd.request, cmd.svc.desk).forget()  # past-instant views built before hold plaintext
    return response


@router.get(
    "/reports/erasures", summary="The erasure and retention log",
    responses={**responses(403, 503), 200: {"content": {"application/json": {"example": ERASURE_LOG_EXAMPLE}}}},
)
def erasures(pager: PagerDep, svc: ServicesDep) -> list[dict[str, Any]]:
    """Every erasure (on request or by the retention rule): basis, case reference, who, when requested and
    completed, and how many tickets now show the customer's personal fields as erased."""
    return pager.page(erasure_log(svc.desk))
