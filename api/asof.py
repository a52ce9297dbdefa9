"""Time-travel reads for the routers: ``?version=`` / ``?as_of=`` on the single-object reads, and the
temporary views behind ``GET /api/v1/tickets?as_of=``.

As of T means what the desk had *recorded* at T (``as_of_basis=recorded``) or what had *happened* by T
(``as_of_basis=business``, the events' business time; see :mod:`ticketflow.timetravel`). A read that does
not say goes by the desk's ``TICKETFLOW_AS_OF_BASIS`` (default ``recorded``). A single-object read answers
from the aggregate at that version, in the body of the current read (404 with a sentence when the object
did not exist yet then); a list or report answers from a temporary view, with ``X-As-Of-Basis`` saying
which basis it went by and ``X-As-Of-Note`` when the log holds nothing by then on that basis.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

from fastapi import Depends, Query, Request, Response

from projections.asof import ViewsAsOf, empty_note
from projections.sql import Db
from ticketflow.application import TicketDesk
from ticketflow.errors import NotFound, ValidationFailed
from ticketflow.timetravel import DidNotExistYet, TimeBasis, check_version, default_basis, version_at

BASIS_DESCRIPTION = ("recorded: what the desk had stored by then; business: what had happened by then (imported "
                     "history). Default: the desk's TICKETFLOW_AS_OF_BASIS (recorded unless set).")

R = TypeVar("R")


class AsOf:
    """The ``version`` / ``as_of`` / ``as_of_basis`` query parameters of a read."""

    def __init__(
        self,
        request: Request,
        version: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="Read the object at this version (from its aggregate).")] = None,
        as_of: Annotated[datetime | None, Query(description="Read the object as it was at this instant (ISO 8601; without an offset, UTC), on `as_of_basis`.")] = None,
        as_of_basis: Annotated[TimeBasis | None, Query(description=BASIS_DESCRIPTION)] = None,
    ) -> None:
        if version is not None and as_of is not None:
            raise ValidationFailed("send version or as_of, not both")
        self.version, self.as_of = version, as_of
        self.basis = as_of_basis or default_basis(request.app.state.services.settings)

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
        except DidNotExistYet:
            raise  # 404, saying when the object began on this basis (and on the other)
        except NotFound:
            raise not_found(object_id) from None


AsOfDep = Annotated[AsOf, Depends(AsOf)]


class ListAsOf:
    """The ``as_of`` / ``as_of_basis`` query parameters of a list or report (a temporary view)."""

    def __init__(
        self,
        response: Response,
        request: Request,
        as_of: Annotated[datetime | None, Query(description=(
            "The list as it was at this instant (ISO 8601; without an offset, UTC), on `as_of_basis`, from a temporary "
            "copy of its view (422 when building it replays too much). `X-As-Of-Note` says when the log holds "
            "nothing by then on that basis."))] = None,
        as_of_basis: Annotated[TimeBasis | None, Query(description=BASIS_DESCRIPTION)] = None,
    ) -> None:
        self.response, self.request, self.as_of = response, request, as_of
        self.basis = as_of_basis or default_basis(request.app.state.services.settings)
        self.note: str | None = None

    def read(self, desk: TicketDesk, view: str, query: Callable[[Db], R]) -> R:
        """``query`` on the view as of ``as_of`` (which must be set); sets the as-of headers."""
        assert self.as_of is not None
        result, horizon = views_as_of(self.request, desk).read_as_of(self.as_of, self.basis, view, query)
        self.response.headers["X-As-Of-Basis"] = self.basis.value
        self.note = empty_note(self.as_of, horizon)
        if self.note is not None:
            self.response.headers["X-As-Of-Note"] = self.note
        return result


ListAsOfDep = Annotated[ListAsOf, Depends(ListAsOf)]


def views_as_of(request: Request, desk: TicketDesk) -> ViewsAsOf:
    """The app's cache of temporary views (built on first use)."""
    state = request.app.state
    views: ViewsAsOf | None = getattr(state, "views_as_of", None)
    if views is None or views.desk is not desk:
        views = state.views_as_of = ViewsAsOf(desk)
    return views
