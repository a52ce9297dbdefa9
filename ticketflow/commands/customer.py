"""Commands on customers."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import Field, model_validator

from ticketflow.commands.base import Body, ChangeCommand, Command, Email, Language, Line, Phone, ShortText
from ticketflow.domain.values import Consent, CustomerTier


class RegisterCustomer(Command):
    name: Line
    email: Email | None = None
    phone: Phone | None = None
    im_handle: Line | None = None
    company: Line | None = None
    job_title: Line | None = None
    preferred_language: Language = "zh-CN"
    tier: CustomerTier = CustomerTier.STANDARD
    consents: list[Consent] = Field(default_factory=lambda: [Consent.SERVICE])


class CustomerCommand(ChangeCommand):
    customer_id: UUID


class UpdateCustomerProfile(CustomerCommand):
    """Change profile fields. Omitted fields stay as they are; ``""`` clears an optional one."""

    name: Line | None = None
    email: Email | Literal[""] | None = None
    phone: Phone | Literal[""] | None = None
    im_handle: ShortText | None = None
    company: ShortText | None = None
    job_title: ShortText | None = None
    preferred_language: Language | None = None

    @model_validator(mode="after")
    def _something(self) -> UpdateCustomerProfile:
        if not self.profile_changes() and self.preferred_language is None:
            raise ValueError("give at least one field to change")
        return self

    def profile_changes(self) -> dict[str, str | None]:
        fields = ("name", "email", "phone", "im_handle", "company", "job_title")
        return {name: getattr(self, name) for name in fields if getattr(self, name) is not None}


class ChangeCustomerTier(CustomerCommand):
    tier: CustomerTier
    reason: ShortText = ""


class GiveConsent(CustomerCommand):
    purpose: Consent


class WithdrawConsent(CustomerCommand):
    purpose: Consent


class AddCustomerNote(CustomerCommand):
    note: Body
