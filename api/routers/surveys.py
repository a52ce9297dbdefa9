"""/api/v1/surveys: the public end of satisfaction surveys (满意度调查).

The requester answers through the link they were sent: the survey token in the path is
the only credential (no account, no bearer token). The answer records ``Ticket.Rated``,
which feeds the tickets view, the customer 360 and the satisfaction report.

Abuse: the gatekeeper rate-limits every request by its caller, which for a request without
a bearer token is its client address; a made-up bearer token would buy a fresh bucket
there, so this route also takes from a per-address bucket of its own (a tenth of the
configured rate and burst), whatever headers are sent. Tokens are HMAC-signed (128 bits):
guessing one is hopeless, and each can be answered once.
"""

from __future__ import annotations

import hashlib
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse

from api import schemas as s
from api.deps import ServicesDep, Services
from api.middleware import TokenBuckets
from api.problems import ApiProblem, Problem, responses
from ticketflow.commands import workflow as wf
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller

router = APIRouter(prefix="/api/v1/surveys", tags=["surveys"])
_buckets_lock = threading.Lock()

ANSWER_ERRORS: dict[int | str, dict[str, Any]] = {
    **responses(409, 422),
    401: {"model": Problem, "description": "Never sent: this endpoint takes no bearer token (the survey token authenticates)"},
    409: {"model": Problem, "description": 'Already answered ("this survey was already answered") or expired '
                                           '("this survey expired at ..."): answers are final'},
    422: {"model": Problem, "description": 'The survey link is not valid ("this survey link is not valid"), or the '
                                           "score is not 1-5"},
}


def _survey_buckets(request: Request, svc: Services) -> TokenBuckets:
    state = request.app.state
    with _buckets_lock:
        buckets: TokenBuckets | None = getattr(state, "survey_buckets", None)
        if buckets is None:
            settings = svc.settings
            buckets = TokenBuckets(settings.rate_limit_per_second / 10, max(1, settings.rate_limit_burst // 10))
            state.survey_buckets = buckets
        return buckets


def _throttle(request: Request, svc: Services) -> None:
    """Limit answers per client address, whatever Authorization header comes with them."""
    address = request.client.host if request.client else ""
    wait = _survey_buckets(request, svc).take(hashlib.sha256(f"survey:{address}".encode()).hexdigest()[:32])
    if wait > 0:
        retry = str(max(1, int(wait + 0.999)))
        raise ApiProblem(429, "rate_limited", f"too many survey answers from this address; retry after {retry} s",
                         {"Retry-After": retry})


@router.post("/{token}", summary="Answer a satisfaction survey (public: the survey link is the credential)",
             response_model=s.SurveyReceipt, responses=ANSWER_ERRORS, openapi_extra={"security": []})
def answer(
    token: Annotated[str, Path(min_length=10, max_length=200, description="The token from the survey link.",
                               examples=["sv_6457ba06ac255a5e83554547dfa4b8531c2d3e4f5a6b5c7d8e9f0a1b2c3d4e5f_0123456789abcdef0123456789abcdef"])],
    body: s.SurveyAnswerBody,  # type: ignore[valid-type]
    request: Request,
    svc: ServicesDep,
) -> JSONResponse:
    """Record the requester's score (1-5) and comment, once, before the survey expires. No bearer
    token is needed or used. A repeated or late answer is refused with 409 and a precise
    `detail`; a link that is not valid with 422."""
    _throttle(request, svc)
    fields = body.model_dump()  # type: ignore[attr-defined]
    command = wf.AnswerSurvey(token=token, **fields)
    caller = Caller("survey-link", Role.CUSTOMER, Channel.WEB_FORM, request.state.request_id)
    result = svc.desk.handle(command, caller)  # answered as the ticket's requester
    headers = {"X-Log-Position": str(result.position)} if result.position is not None else {}
    return JSONResponse({"recorded": True, "score": fields["score"]}, headers=headers)
