"""Time-travel reads for the routers: ``?version=`` / ``?as_of=`` on the single-object reads, and the
temporary views behind ``GET /api/v1/tickets?as_of=``.

As of T means what the desk had *recorded* at T (``as_of_basis=recorded``, the default);
``as_of_basis=business`` uses the events' business time instead (see :mod:`ticketflow.timetravel`).
An as-of read answers from the aggregate at that version, in the body of the current read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Query, Request

from projections.asof import ViewsAsOf
from ticketflow.application import TicketDesk
from ticketflow.errors import NotFound, ValidationFailed
from ticketflow.timetravel import TimeBasis, check_version, version_at


class AsOf:
    """The ``version`` / ``as_of`` / ``as_of_basis`` query parameters of a read."""

    def __init__(
        self,
        version: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Read the object at this version (from its aggregate).")] = None,
        as_of: Annotated[datetime | None, Query(description="Read the object as the desk had recorded it at this instant (ISO 8601).")] = None,
        as_of_basis: Annotated[TimeBasis, Query(description="recorded (default): when the desk stored each event; business: when it happened.")] = TimeBasis.RECORDED,
    ) -> None:
        if version is not None and as_of is not None:
            raise ValidationFailed("send version or as_of, not both")
        self.version, self.as_of, self.basis = version, as_of, as_of_basis

    @property
    def requested(self) -> bool:
        return self.version is not None or self.as_of is not None

    def resolve(self, desk: TicketDesk, object_id: UUID, not_found: type[NotFound] | Any) -> int:
        """The version to read; ``not_found(object_id)`` when the object is unknown."""
        try:
            if self.version is not None:
                return check_version(desk, object_id, self.version)
            assert self.as_of is not None
            return version_at(desk, object_id, self.as_of, self.basis)
        except NotFound:
            raise not_found(object_id) from None


AsOfDep = Annotated[AsOf, Depends(AsOf)]


def views_as_of(request: Request, desk: TicketDesk) -> ViewsAsOf:
    """The app's cache of temporary views (built on first use)."""
    state = request.app.state
    views: ViewsAsOf | None = getattr(state, "views_as_of", None)
    if views is None or views.desk is not desk:
        views = state.views_as_of = ViewsAsOf(desk)
    return views
