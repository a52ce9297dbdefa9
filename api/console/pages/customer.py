"""Customer 360 (客户全景): the profile — masked until "show personal data" is asked for with a
purpose, which is recorded in the access log — every ticket and interaction of the customer in the
caller's teams, satisfaction and consent. The same read the API's /customers/{id}/overview answers."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.console.page import Page, PageDep
from api.routers.customers import customer_360
from ticketflow.access import Permission

router = APIRouter()
PURPOSE_MAX = 200


def _render(page: Page, customer_id: UUID, purpose: str | None, status: int = 200, error: str | None = None) -> HTMLResponse:
    reads = page.reads(purpose=purpose)
    data = customer_360(reads, customer_id, f"console /customers/{customer_id}")
    may_reveal = page.principal is not None and page.principal.may(Permission.PII_UNMASK)
    return page.render("customer.html", status=status, data=data, customer_id=str(customer_id), revealed=purpose is not None,
                       purpose=purpose or "", may_reveal=may_reveal, error=error, free_text=reads.free_text())


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
def customer_page(customer_id: UUID, page: PageDep) -> HTMLResponse:
    return _render(page, customer_id, None)


@router.post("/customers/{customer_id}/reveal", response_class=HTMLResponse)
async def reveal(customer_id: UUID, request: Request, page: PageDep) -> HTMLResponse:
    """Show the personal fields for a stated purpose: answered in this response only (never a URL to
    bookmark or a cached page), and recorded in the access log like the API's X-Access-Purpose."""
    form = await request.form()
    page.return_to = f"/customers/{customer_id}"
    purpose = " ".join(str(form.get("purpose") or "").split())
    if not purpose or len(purpose) > PURPOSE_MAX:
        return _render(page, customer_id, None, 422, page._("Say why you need to see this customer's personal data."))
    return _render(page, customer_id, purpose)
