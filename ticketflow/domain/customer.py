"""The Customer aggregate: who the desk serves, their contact points and consents.

Every field but the tier, language and consents is personal data, declared on the
events so later encryption and erasure can find it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar
from uuid import UUID

from eventsourcing.domain import event

from ticketflow.domain.base import TicketflowAggregate
from ticketflow.domain.values import Consent, CustomerTier
from ticketflow.errors import RuleViolation

#: Profile fields that hold personal data (all optional except the name).
PROFILE_FIELDS = ("name", "email", "phone", "im_handle", "company", "job_title")


#: What a personal field reads once its owner's key is destroyed.
ERASED = "[erased]"


class Customer(TicketflowAggregate):
    @dataclass(frozen=True)
    class Registered(TicketflowAggregate.Created):
        personal_fields: ClassVar[frozenset[str]] = frozenset(PROFILE_FIELDS)
        data_subject: ClassVar[str | None] = "originator_id"

        name: str
        email: str | None
        phone: str | None
        im_handle: str | None
        company: str | None
        job_title: str | None
        preferred_language: str
        tier: str
        consents: list[str]

    @dataclass(frozen=True)
    class ProfileUpdated(TicketflowAggregate.Event):
        """Only the changed fields, each with its new value (``""`` clears an optional one)."""

        personal_fields: ClassVar[frozenset[str]] = frozenset({"changes", "previous"})
        data_subject: ClassVar[str | None] = "originator_id"

        changes: dict[str, str]
        previous: dict[str, str | None]

    @dataclass(frozen=True)
    class LanguageChanged(TicketflowAggregate.Event):
        preferred_language: str
        previous_language: str

    @dataclass(frozen=True)
    class TierChanged(TicketflowAggregate.Event):
        tier: str
        previous_tier: str
        reason: str

    @dataclass(frozen=True)
    class ConsentGiven(TicketflowAggregate.Event):
        purpose: str

    @dataclass(frozen=True)
    class ConsentWithdrawn(TicketflowAggregate.Event):
        purpose: str

    @dataclass(frozen=True)
    class NoteAdded(TicketflowAggregate.Event):
        personal_fields: ClassVar[frozenset[str]] = frozenset({"note"})
        data_subject: ClassVar[str | None] = "originator_id"

        note_id: UUID
        note: str

    @dataclass(frozen=True)
    class ErasureRequested(TicketflowAggregate.Event):
        """The right to erasure was invoked (no personal data here: the basis and a case reference)."""

        basis: str  # "customer_request" or "retention"
        reference: str  # the compliance case number, or the retention rule

    @dataclass(frozen=True)
    class Erased(TicketflowAggregate.Event):
        """The customer's key is destroyed: their personal data in every event is unreadable from now on,
        and every view has dropped its plaintext copies (they act on this event)."""

        basis: str
        tickets: int  # how many of their tickets now show personal fields as erased

    #: The customer's personal data is unreadable (key destroyed); later commands are refused.
    erased: bool = False

    @event(Registered)
    def __init__(
        self,
        name: str,
        email: str | None,
        phone: str | None,
        im_handle: str | None,
        company: str | None,
        job_title: str | None,
        preferred_language: str,
        tier: str,
        consents: list[str],
    ) -> None:
        self.name = name
        self.email = email
        self.phone = phone
        self.im_handle = im_handle
        self.company = company
        self.job_title = job_title
        self.preferred_language = preferred_language
        self.tier = CustomerTier(tier)
        self.consents = sorted(set(consents))
        self.note_count = 0

    def update_profile(self, changes: dict[str, str | None]) -> None:
        """Change profile fields; ``None`` means unchanged, ``""`` clears an optional field."""
        unknown = set(changes) - set(PROFILE_FIELDS)
        if unknown:
            raise RuleViolation(f"not a profile field: {', '.join(sorted(unknown))}")
        if changes.get("name") == "":
            raise RuleViolation("a customer's name cannot be cleared")
        effective = {
            name: value
            for name, value in changes.items()
            if value is not None and value != (getattr(self, name) or "")
        }
        if not effective:
            raise RuleViolation(f"customer {self.id}: the profile already has these values")
        previous = {name: getattr(self, name) for name in effective}
        self._profile_updated(changes=effective, previous=previous)

    def change_language(self, language: str) -> None:
        if language == self.preferred_language:
            raise RuleViolation(f"customer {self.id} already prefers {language}")
        self._language_changed(preferred_language=language, previous_language=self.preferred_language)

    def change_tier(self, tier: CustomerTier, reason: str = "") -> None:
        if tier == self.tier:
            raise RuleViolation(f"customer {self.id} is already in tier {tier}")
        self._tier_changed(tier=str(tier), previous_tier=str(self.tier), reason=reason)

    def give_consent(self, purpose: Consent) -> None:
        if purpose in self.consents:
            raise RuleViolation(f"customer {self.id} already consents to {purpose}")
        self._consent_given(purpose=str(purpose))

    def withdraw_consent(self, purpose: Consent) -> None:
        if purpose not in self.consents:
            raise RuleViolation(f"customer {self.id} has not consented to {purpose}")
        self._consent_withdrawn(purpose=str(purpose))

    def add_note(self, note_id: UUID, note: str) -> None:
        self._note_added(note_id=note_id, note=note)

    @event(ProfileUpdated)
    def _profile_updated(self, changes: dict[str, str], previous: dict[str, str | None]) -> None:
        for name, value in changes.items():
            setattr(self, name, value or None)

    @event(LanguageChanged)
    def _language_changed(self, preferred_language: str, previous_language: str) -> None:
        self.preferred_language = preferred_language

    @event(TierChanged)
    def _tier_changed(self, tier: str, previous_tier: str, reason: str) -> None:
        self.tier = CustomerTier(tier)

    @event(ConsentGiven)
    def _consent_given(self, purpose: str) -> None:
        self.consents = sorted({*self.consents, purpose})

    @event(ConsentWithdrawn)
    def _consent_withdrawn(self, purpose: str) -> None:
        self.consents = [c for c in self.consents if c != purpose]

    @event(NoteAdded)
    def _note_added(self, note_id: UUID, note: str) -> None:
        self.note_count += 1

    def request_erasure(self, basis: str, reference: str) -> None:
        if self.erased:
            raise RuleViolation(f"customer {self.id} is already erased")
        self._erasure_requested(basis=basis, reference=reference)

    def complete_erasure(self, basis: str, tickets: int) -> None:
        self._erased(basis=basis, tickets=tickets)

    @event(ErasureRequested)
    def _erasure_requested(self, basis: str, reference: str) -> None:
        pass

    @event(Erased)
    def _erased(self, basis: str, tickets: int) -> None:
        self.erased = True
        for name in ("name", "email", "phone", "im_handle", "company", "job_title"):
            setattr(self, name, ERASED if name == "name" else None)
