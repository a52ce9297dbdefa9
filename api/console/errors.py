"""What the console says when a command is refused: a translated sentence per kind of refusal,
with the engine's own detail beside it (the same refusal the API answers as problem+json)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from api.console.labels import N_
from api.problems import status_for
from ticketflow.accounts.passwords import MIN_LENGTH, WeakPassword
from ticketflow.errors import (
    ConcurrencyConflict, InvalidTransition, NotFound, PermissionDenied, RuleViolation, TicketflowError,
)

_FIELD_PROBLEMS = {
    "missing": N_("This field is required."),
    "string_too_short": N_("This field is required."),
    "string_too_long": N_("This text is too long."),
    "string_pattern_mismatch": N_("Use letters, digits and . _ @ : - only."),
    "enum": N_("Choose one of the listed values."),
    "uuid_parsing": N_("This is not a ticket reference."),
    "too_long": N_("Too many values."),
}


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str  # translated
    detail: str  # the engine's words (English), shown small
    fields: dict[str, str]  # field -> translated message


def refusal(exc: Exception, gettext: object) -> Refusal:
    _ = gettext  # type: ignore[assignment]
    if isinstance(exc, ValidationError):
        fields = {}
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "form"
            fields[name] = _(_FIELD_PROBLEMS.get(error["type"], N_("This value is not valid.")))  # type: ignore[operator]
        return Refusal(422, _(N_("Some fields need attention.")), "", fields)  # type: ignore[operator]
    if isinstance(exc, ConcurrencyConflict):
        text = N_("Someone else changed this ticket after you opened it. Nothing was saved: "
                  "the page now shows the latest version — check it and try again (your text is kept).")
        return Refusal(412 if exc.expected is not None else 409, _(text), str(exc), {})  # type: ignore[operator]
    if isinstance(exc, InvalidTransition):
        return Refusal(409, _(N_("This action is not possible in the ticket's current status.")), str(exc), {})  # type: ignore[operator]
    if isinstance(exc, NotFound):
        return Refusal(404, _(N_("Not found, or not in your teams.")), str(exc), {})  # type: ignore[operator]
    if isinstance(exc, PermissionDenied):
        return Refusal(403, _(N_("Your role may not do this.")), str(exc), {})  # type: ignore[operator]
    if isinstance(exc, WeakPassword):
        text = N_("A password needs at least %(n)s characters and may not be the sign-in name.")
        return Refusal(422, _(text) % {"n": MIN_LENGTH}, str(exc), {"password": _(text) % {"n": MIN_LENGTH}})  # type: ignore[operator]
    if isinstance(exc, RuleViolation):
        return Refusal(409, _(N_("The desk's rules refuse this change.")), str(exc), {})  # type: ignore[operator]
    if isinstance(exc, TicketflowError):
        return Refusal(status_for(exc), _(N_("The change was refused.")), str(exc), {})  # type: ignore[operator]
    raise exc
