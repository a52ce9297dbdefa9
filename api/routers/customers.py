"""/api/v1/customers: register and update customers; profile and customer 360 (masked by default)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel
from fastapi.responses import JSONResponse

from api import schemas as s
from api.asof import AsOfDep
from api.deps import CommandsDep, ReadsDep, customer_visible
from api.problems import ApiProblem, responses
from projections.asof import customer_row
from projections.customers import customer_overview, figures
from projections.sql import loads
from ticketflow import commands as c
from ticketflow.access import MASK
from ticketflow.errors import CustomerNotFound

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])


@router.post("", status_code=201, summary="Register a customer", response_model=s.CommandOut,
             responses=responses(403, 409, 422))
def register(body: s.CustomerCreate, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """Registers a customer; the profile fields are personal data, encrypted per customer and masked on reads.
    Answers the new id in `Location`."""
    result = cmd.run(c.RegisterCustomer, **body.model_dump())
    return cmd.respond(result, 201, location=f"/api/v1/customers/{result.object_id}",
                       represent=_represent(result.object_id))


@router.patch("/{customer_id}", summary="Update profile fields", response_model=s.CommandOut,
              responses=responses(403, 404, 409, 412, 422))
def update(customer_id: UUID, body: s.CustomerPatch, cmd: CommandsDep) -> JSONResponse:  # type: ignore[valid-type]
    """Only the fields sent change; `""` clears an optional field. `If-Match` guards against stale writes."""
    return cmd.respond(cmd.run(c.UpdateCustomerProfile, customer_id=customer_id, **body.model_dump(exclude_unset=True)),
                       represent=_represent(customer_id))


def _profile_row(reads: Any, customer_id: UUID) -> dict[str, Any]:
    row = reads.read("customers", lambda db: db.one("SELECT * FROM {p}tf_customers WHERE customer_id = ?", (str(customer_id),)))
    if row is None:
        raise CustomerNotFound(customer_id)
    return {**row, "consents": loads(row["consents"]) if isinstance(row["consents"], str) else row["consents"]}


class CustomerMatches(BaseModel):
    items: list[s.CustomerOut]
    next_cursor: str | None = None


@router.get("", summary="Find a customer by email address (through a keyed blind index)",
            response_model=CustomerMatches, responses=responses(403, 422, 503))
def find_by_email(
    reads: ReadsDep,
    email: Annotated[str, Query(min_length=3, max_length=320, description="The address, any case.")],
) -> JSONResponse:
    """Email fields are encrypted per customer, so the address is looked up in a blind index (an HMAC
    under a desk key, erased with the customer), never by reading every profile. Looking a person up by
    their address is a use of their personal data: send `X-Access-Purpose` (it is recorded with the
    profile shown). Answers the customer when they are in your scope, else no match (`items: []`)."""
    if reads.purpose is None:
        raise ApiProblem(422, "purpose_required", "finding a customer by email needs X-Access-Purpose (the read is recorded)")
    reads.check_purpose()
    customer_id = reads.svc.desk.find_customer_by_email(email.strip())
    items = []
    if customer_id is not None and customer_visible(reads.svc, reads.principal, customer_id):
        reads.min_position = reads.min_position or reads.svc.desk.log_position()  # the profile as registered
        try:
            row = _profile_row(reads, customer_id)
        except CustomerNotFound:
            row = None
        if row is not None:
            items.append(s.CustomerOut.model_validate(
                reads.profile(row, "GET /api/v1/customers?email=")).model_dump(mode="json"))
    return JSONResponse({"items": items, "next_cursor": None})


@router.get("/{customer_id}", summary="A customer's profile (personal fields masked unless a purpose is given)",
            response_model=s.CustomerOut, responses=responses(403, 404, 422, 503))
def get_customer(customer_id: UUID, reads: ReadsDep, at: AsOfDep) -> JSONResponse:
    """Send `X-Access-Purpose` to see personal fields; the read is recorded in the access log.

    With `version` or `as_of`, the profile as it was then (from the customer's events), masked the same way."""
    if at.requested:
        desk = reads.svc.desk
        row = customer_row(desk.get_customer(customer_id, at.resolve(desk, customer_id, CustomerNotFound)))
    else:
        row = _profile_row(reads, customer_id)
    body = _profile_out(reads, row, customer_id)
    return JSONResponse(body, headers={"ETag": f'"{body["version"]}"'})


def _profile_out(reads: Any, row: dict[str, Any], customer_id: UUID) -> dict[str, Any]:
    profile = reads.profile(row, f"GET /api/v1/customers/{customer_id}")
    body: dict[str, Any] = s.CustomerOut.model_validate(profile).model_dump(mode="json")
    return body


def _represent(customer_id: UUID) -> Any:
    """The profile as ``GET /customers/{id}`` answers it, for a write with ``Prefer: return=representation``."""
    return lambda reads: _profile_out(reads, _profile_row(reads, customer_id), customer_id)


@router.get("/{customer_id}/overview", summary="Customer 360: profile, tickets, interactions and figures",
            response_model=s.CustomerOverviewOut, responses=responses(403, 404, 503))
def overview(customer_id: UUID, reads: ReadsDep) -> Any:
    """Tickets of teams outside the caller's scope are left out, and the figures computed without them."""
    return customer_360(reads, customer_id, f"GET /api/v1/customers/{customer_id}/overview")


def customer_360(reads: Any, customer_id: UUID, resource: str) -> dict[str, Any]:
    """Profile (masked unless the reads carry a purpose; then recorded), tickets, interactions and
    figures, without the tickets of teams outside the caller's scope. The API and the console both
    answer from here."""
    data = reads.read("customers", lambda db: customer_overview(db, str(customer_id)))
    if data is None:
        raise CustomerNotFound(customer_id)
    tickets, interactions = data["tickets"], data["interactions"]
    principal = reads.principal
    if not principal.all_teams:
        visible = reads.visible([t["ticket_id"] for t in tickets])
        tickets = [t for t in tickets if t["ticket_id"] in visible]
        interactions = [i for i in interactions if i["ticket_id"] in visible]
        times = [i["occurred_at"] for i in interactions]
        data["figures"] = figures(tickets, {"first": min(times, default=None), "last": max(times, default=None), "n": len(interactions)})
    if not reads.free_text():
        tickets = [{**t, "subject": MASK} for t in tickets]
        interactions = [{**i, "body": MASK} for i in interactions]
    elif tickets or interactions:
        reads.text_shown({str(customer_id)}, ["subject", "body"], resource)
    profile = reads.profile(data["profile"], resource)
    return {"profile": profile, "tickets": tickets, "interactions": interactions, "figures": data["figures"]}
