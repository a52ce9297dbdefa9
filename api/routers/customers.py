"""/api/v1/customers: register and update customers; profile and customer 360 (masked by default)."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api import schemas as s
from api.asof import AsOfDep
from api.deps import CommandsDep, ReadsDep, customer_visible
from api.pagination import Pager, PagerDep, encode_cursor, link_headers
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
    return _decoded(row)


class CustomerMatches(BaseModel):
    items: list[s.CustomerOut]
    next_cursor: str | None = None


@router.get("", summary="List customers, or find one by email address or phone number",
            response_model=CustomerMatches, responses=responses(400, 403, 422, 503))
def list_customers(
    reads: ReadsDep,
    pager: PagerDep,
    email: Annotated[str | None, Query(
        min_length=3, max_length=320,
        description="Find the customer with this address (any case), through the keyed blind index. "
                    "Needs `X-Access-Purpose`.")] = None,
    phone: Annotated[str | None, Query(
        min_length=5, max_length=40,
        description="Find the customer with this phone number, through the keyed blind index; compared "
                    "as digits with a leading `+` kept (`+86 138-0013-8000` = `+8613800138000`). "
                    "Needs `X-Access-Purpose`.")] = None,
) -> JSONResponse:
    """Without `email` or `phone`: every customer in your scope, oldest registration first, paginated
    (`limit`, `cursor`, `next_cursor`, `Link`); personal fields are masked unless you send
    `X-Access-Purpose` with a role that may see them, and each profile then shown is recorded in the
    access log.

    Email and phone fields are encrypted per customer, so `email` and `phone` are looked up in a blind
    index (an HMAC under a desk key, erased with the customer), never by reading every profile. Looking
    a person up by their address or number is a use of their personal data: send `X-Access-Purpose` (it
    is recorded with the profile shown). Answers the customer when they are in your scope, else no match
    (`items: []`)."""
    if email is not None and phone is not None:
        raise ApiProblem(422, "one_filter", "find a customer by email or by phone, not both at once")
    if email is None and phone is None:
        return _list_page(reads, pager)
    if reads.purpose is None:
        by = "email" if email is not None else "phone"
        raise ApiProblem(422, "purpose_required", f"finding a customer by {by} needs X-Access-Purpose (the read is recorded)")
    reads.check_purpose()
    desk = reads.svc.desk
    if email is not None:
        customer_id, resource = desk.find_customer_by_email(email.strip()), "GET /api/v1/customers?email="
    else:
        customer_id, resource = desk.find_customer_by_phone(phone or ""), "GET /api/v1/customers?phone="
    items = []
    if customer_id is not None and customer_visible(reads.svc, reads.principal, customer_id):
        reads.min_position = reads.min_position or desk.log_position()  # the profile as registered
        try:
            row = _profile_row(reads, customer_id)
        except CustomerNotFound:
            row = None
        if row is not None:
            items.append(s.CustomerOut.model_validate(reads.profile(row, resource)).model_dump(mode="json"))
    return JSONResponse({"items": items, "next_cursor": None})


def _list_page(reads: Any, pager: Pager) -> JSONResponse:
    """One page of the customers in the caller's scope (roles that see every team: a page read from the
    view; otherwise the customers judged visible one by one, the rule of `GET /customers/{id}`)."""
    order = "SELECT * FROM {p}tf_customers ORDER BY registered_at, customer_id"
    start = pager.offset()
    if reads.principal.all_teams:
        rows = reads.read("customers", lambda db: db.all(order + " LIMIT ? OFFSET ?", (pager.limit + 1, start)))
        more, rows = len(rows) > pager.limit, rows[: pager.limit]
    else:
        svc, principal = reads.svc, reads.principal
        everyone = reads.read("customers", lambda db: db.all(order))
        shown = [r for r in everyone if _still_visible(svc, principal, r["customer_id"])]
        more, rows = start + pager.limit < len(shown), shown[start : start + pager.limit]
    next_cursor = encode_cursor({"offset": start + pager.limit}) if more else None
    items = [
        s.CustomerOut.model_validate(reads.profile(_decoded(row), "GET /api/v1/customers")).model_dump(mode="json")
        for row in rows
    ]
    response = JSONResponse({"items": items, "next_cursor": next_cursor})
    link_headers(pager.request, response, next_cursor)
    return response


def _still_visible(svc: Any, principal: Any, customer_id: str) -> bool:
    try:
        return customer_visible(svc, principal, UUID(customer_id))
    except CustomerNotFound:  # in the view, not yet (or no longer) on the write side
        return False


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "consents": loads(row["consents"]) if isinstance(row["consents"], str) else row["consents"]}


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
