"""Command models: frozen, strict, validated at the boundary.

Text is NFC-normalised, stripped, length-limited and refused if it carries
control characters (a single-line field also refuses line breaks). Any script is
accepted: Chinese names and bodies are ordinary input.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID, uuid4

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

_ALLOWED_IN_BODY = {"\n", "\t"}


def _normalise(value: str) -> str:
    return unicodedata.normalize("NFC", value.replace("\r\n", "\n"))


def _refuse_controls(value: str, allowed: set[str]) -> str:
    if value.isprintable():  # no character of category C* (nor a separator but the space): nothing to refuse
        return value
    for ch in value:
        if ch not in allowed and unicodedata.category(ch) in {"Cc", "Cs", "Co", "Cn"}:
            raise ValueError(f"contains the control or unassigned character U+{ord(ch):04X}")
    return value


def _single_line(value: str) -> str:
    return _refuse_controls(_normalise(value), set())


def _multi_line(value: str) -> str:
    return _refuse_controls(_normalise(value), _ALLOWED_IN_BODY)


def _lower(value: str) -> str:
    return value.lower()


#: A non-empty single line of up to 200 characters (a subject, a name).
Line = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(_single_line)]
#: An optional short single line; empty means "none".
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500), AfterValidator(_single_line)]
#: A non-empty body of up to 20,000 characters; line breaks and tabs allowed.
Body = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000), AfterValidator(_multi_line)]
#: An optional body (may be empty).
OptionalBody = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20_000), AfterValidator(_multi_line)]
#: An identifier chosen by people: agent ids, categories (letters of any script, digits, ._@:-).
Name = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[\w.@:\-]{1,64}$")]
#: A tag: like a name, lower-cased.
Tag = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[\w.:\-]{1,40}$"), AfterValidator(_lower)]
Email = Annotated[str, StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9][0-9 ()\-]{4,30}$")]
Language = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")]

#: The earliest business time history may carry (earlier is a mistake, and near year 1 a time
#: with an offset cannot even be converted to UTC).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


def _not_before_1970(value: datetime) -> datetime:
    if value < EARLIEST:
        raise ValueError("a historical time is 1970-01-01 or later")
    return value


#: A business time of history: timezone-aware, 1970 or later (the desk refuses the future).
HistoricalTime = Annotated[AwareDatetime, AfterValidator(_not_before_1970)]


class Command(BaseModel):
    """Base of every command. ``command_id`` identifies it across retries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command_id: UUID = Field(default_factory=uuid4, description="Stable across retries of the same request.")
    occurred_at: HistoricalTime | None = Field(
        default=None,
        description="Business time of a historical action (history imports only: over HTTP, a token granted "
        "`import`; the events are then marked imported).",
    )


class ChangeCommand(Command):
    """A command on an existing aggregate, optionally guarded by the version the caller saw."""

    expected_version: int | None = Field(default=None, ge=1)

