"""Commands on personal data: the right to erasure."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field

from ticketflow.commands.base import Command, Line


class EraseCustomer(Command):
    """Erase a customer's personal data everywhere (their key is destroyed; history stays complete)."""

    customer_id: UUID
    basis: Literal["customer_request", "retention"] = "customer_request"
    reference: Line = Field(description="the compliance case number (no personal data)", examples=["DSR-2026-0042"])
