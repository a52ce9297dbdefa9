"""The formats ``ticketflow import`` reads, by name."""

from __future__ import annotations

from ticketflow.errors import ValidationFailed
from ticketflow.importing import bpic2013, helpdesk
from ticketflow.importing.plan import Format

FORMATS: dict[str, Format] = {fmt.name: fmt for fmt in (bpic2013.FORMAT, helpdesk.FORMAT)}


def get_format(name: str) -> Format:
    """The format called ``name``, or a one-line error listing the valid names."""
    try:
        return FORMATS[name.strip().lower()]
    except KeyError:
        raise ValidationFailed(
            f"unknown import format {name!r}; formats are: {', '.join(sorted(FORMATS))}"
        ) from None
