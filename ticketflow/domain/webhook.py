"""Webhook subscriptions: which events an outside system wants delivered, and where.

The signing secret is never stored in the log: it is derived from the desk's secret key
and the subscription id, and shown once when the subscription is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.domain import event

from ticketflow.domain.base import TicketflowAggregate
from ticketflow.errors import NotFound, RuleViolation


class Webhook(TicketflowAggregate):
    @dataclass(frozen=True)
    class Subscribed(TicketflowAggregate.Created):
        name: str
        url: str
        event_types: list[str]  # e.g. "Ticket.Opened", "Ticket.SlaBreached"; "*" for every event
        scopes: list[str]  # v2: "tickets:text" = payloads carry ticket text unmasked (each delivery recorded)

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Subscriptions before v2 had no scopes: their payloads stay masked."""
            state["scopes"] = []

    @dataclass(frozen=True)
    class Changed(TicketflowAggregate.Event):
        url: str
        event_types: list[str]

    @dataclass(frozen=True)
    class Paused(TicketflowAggregate.Event):
        reason: str

    @dataclass(frozen=True)
    class Resumed(TicketflowAggregate.Event):
        pass

    @dataclass(frozen=True)
    class Removed(TicketflowAggregate.Event):
        """The subscription is gone: nothing more is delivered to it, pending deliveries are dropped."""

        reason: str

    @event(Subscribed)
    def __init__(self, name: str, url: str, event_types: list[str], scopes: list[str]) -> None:
        self.name = name
        self.url = url
        self.event_types = sorted(set(event_types))
        self.scopes = sorted(set(scopes))
        self.active = True
        self.removed = False

    def wants(self, event_type: str) -> bool:
        return self.active and ("*" in self.event_types or event_type in self.event_types)

    def _exists(self) -> None:
        """A removed subscription answers as if it never was (404), whatever is asked of it."""
        if getattr(self, "removed", False):
            raise NotFound("webhook", self.id)

    def remove(self, reason: str) -> None:
        self._exists()
        self._removed(reason=reason)

    def change(self, url: str, event_types: list[str]) -> None:
        self._exists()
        if url == self.url and sorted(set(event_types)) == self.event_types:
            raise RuleViolation(f"webhook {self.name!r} already has this url and these event types")
        self._changed(url=url, event_types=sorted(set(event_types)))

    def pause(self, reason: str) -> None:
        self._exists()
        if not self.active:
            raise RuleViolation(f"webhook {self.name!r} is already paused")
        self._paused(reason=reason)

    def resume(self) -> None:
        self._exists()
        if self.active:
            raise RuleViolation(f"webhook {self.name!r} is not paused")
        self._resumed()

    @event(Changed)
    def _changed(self, url: str, event_types: list[str]) -> None:
        self.url = url
        self.event_types = list(event_types)

    @event(Paused)
    def _paused(self, reason: str) -> None:
        self.active = False

    @event(Resumed)
    def _resumed(self) -> None:
        self.active = True

    @event(Removed)
    def _removed(self, reason: str) -> None:
        self.active = False
        self.removed = True
