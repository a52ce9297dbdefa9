"""What the console says when a command is refused: a translated sentence per kind of refusal,
with the engine's own detail beside it (the same refusal the API answers as problem+json)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from api.console.labels import N_
from api.problems import status_for
from ticketflow.accounts.passwords import MIN_LENGTH, WeakPassword
from ticketflow.accounts.service import AccountExists
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
    "too_short": N_("Choose at least one."),
}


#: What a field whose pattern a value missed expects, when it is not a name (letters, digits, ._@:-).
_PATTERNS = {"url": N_("Give an address starting with https:// or http://.")}


#: What a form field is called on the page (the command's field name -> its label).
FIELD_NAMES = {
    "body": N_("Text"), "reason": N_("Reason"), "resolution": N_("Resolution"), "assignee_id": N_("Assignee"),
    "team_id": N_("Team"), "priority": N_("Priority"), "add": N_("Tags"), "remove": N_("Tags"),
    "ticket": N_("Ticket (#reference)"), "other_ticket_id": N_("Ticket (#reference)"), "into_ticket_id": N_("Ticket (#reference)"),
    "username": N_("Sign-in name"), "display_name": N_("Name"), "role": N_("Role"), "agent_id": N_("Team member"),
    "kind": N_("Link"), "version": N_("Version"), "name": N_("System name"), "url": N_("URL"),
    "event_types": N_("Event types"), "team_ids": N_("Teams"), "permissions": N_("Permissions"),
}


def missing_version() -> ValidationError:
    """A form that changes something without the version it showed: refused (it would pass a stale write)."""
    return ValidationError.from_exception_data("form", [{"type": "missing", "loc": ("version",), "input": ""}])


@dataclass(frozen=True)
class Refusal:
    status: int
    message: str  # translated
    detail: str  # the engine's words (English), shown small
    fields: dict[str, str]  # field -> translated message
    field: str | None = None  # the field a domain refusal is about (the form shows it there)


def refusal(exc: Exception, gettext: object) -> Refusal:
    _ = gettext  # type: ignore[assignment]
    if isinstance(exc, ValidationError):
        fields = {}
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "form"
            problem = _(_FIELD_PROBLEMS.get(error["type"], N_("This value is not valid.")))  # type: ignore[operator]
            if error["type"] == "string_pattern_mismatch" and name in _PATTERNS:
                problem = _(_PATTERNS[name])  # type: ignore[operator]
            limit = (error.get("ctx") or {}).get("max_length")
            if error["type"] in ("string_too_long", "too_long") and limit:
                problem = _(N_("At most %(n)s characters.")) % {"n": limit}  # type: ignore[operator]
            label = _(FIELD_NAMES[name]) if name in FIELD_NAMES else name  # type: ignore[operator]
            fields[name] = f"{label}: {problem}"
        return Refusal(422, _(N_("Some fields need attention.")), "", fields)  # type: ignore[operator]
    if isinstance(exc, ConcurrencyConflict):
        text = N_("Someone else changed this ticket after you opened it. Nothing was saved: "
                  "the page now shows the latest version — check it and try again (your text is kept).")
        return Refusal(412 if exc.expected is not None else 409, _(text), "", {})  # type: ignore[operator]
    if isinstance(exc, InvalidTransition):
        return Refusal(409, _(N_("This action is not possible in the ticket's current status.")), str(exc), {})  # type: ignore[operator]
    if isinstance(exc, NotFound):
        return Refusal(404, _(N_("Not found, or not in your teams.")), str(exc), {})  # type: ignore[operator]
    if isinstance(exc, PermissionDenied):
        return Refusal(403, _(N_("Your role may not do this.")), str(exc), {})  # type: ignore[operator]
    if isinstance(exc, WeakPassword):
        text = N_("A password needs at least %(n)s characters, several different ones, and may not be the sign-in name.")
        return Refusal(422, _(text) % {"n": MIN_LENGTH}, str(exc), {"password": _(text) % {"n": MIN_LENGTH}})  # type: ignore[operator]
    if isinstance(exc, AccountExists):
        text = N_("An account with this sign-in name exists already.")
        return Refusal(409, _(text), str(exc), {"username": _(text)})  # type: ignore[operator]
    if isinstance(exc, RuleViolation):
        return Refusal(409, _(N_("The desk's rules refuse this change.")), str(exc), {}, exc.field)  # type: ignore[operator]
    if isinstance(exc, TicketflowError):
        return Refusal(status_for(exc), _(N_("The change was refused.")), str(exc), {})  # type: ignore[operator]
    raise exc
