"""Vocabulary of the desk: the closed sets a ticket, customer or team draws from.

Values are stored in events as their plain string form, so the stored schema does
not depend on these Python classes.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"  # waiting on the customer
    ON_HOLD = "on_hold"  # waiting on a third party
    SOLVED = "solved"
    CLOSED = "closed"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class TicketType(StrEnum):
    INQUIRY = "inquiry"
    COMPLAINT = "complaint"
    SUGGESTION = "suggestion"
    INCIDENT = "incident"
    SERVICE_REQUEST = "service_request"


class Channel(StrEnum):
    """How something reached the desk (a ticket, an interaction, a command)."""

    EMAIL = "email"
    PHONE = "phone"
    WEB_FORM = "web_form"
    CHAT = "chat"
    IM = "im"  # WeChat and other instant messengers
    API = "api"
    WALK_IN = "walk_in"
    CLI = "cli"  # an operator at the command line
    CONSOLE = "console"  # a person signed in to the web console
    SYSTEM = "system"  # automation and the demo
    IMPORT = "import"  # history migrated from another desk


#: Channels a customer can use to reach the desk (a ticket's origin).
CUSTOMER_CHANNELS = frozenset(
    {
        Channel.EMAIL,
        Channel.PHONE,
        Channel.WEB_FORM,
        Channel.CHAT,
        Channel.IM,
        Channel.API,
        Channel.WALK_IN,
    }
)


class Direction(StrEnum):
    INBOUND = "inbound"  # from the customer to the desk
    OUTBOUND = "outbound"  # from the desk to the customer
    INTERNAL = "internal"  # inside the desk (notes)


class InteractionKind(StrEnum):
    REPLY = "reply"  # public reply, visible to the customer
    NOTE = "note"  # internal note, never shown to the customer
    CALL = "call"
    EMAIL = "email"
    CHAT = "chat"
    MEETING = "meeting"


class Role(StrEnum):
    """Who an actor is to the desk; access rules are keyed on it."""

    CUSTOMER = "customer"
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    AUDITOR = "auditor"
    COMPLIANCE = "compliance"
    INTEGRATION = "integration"  # another system: a mail gateway, a BI export
    SYSTEM = "system"

    @property
    def a(self) -> str:
        """The role with its article, for messages: "an integration", "a supervisor"."""
        return f"{'an' if self.value[0] in 'aeiou' else 'a'} {self.value}"


#: Roles that work tickets on behalf of the desk.
STAFF_ROLES = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN, Role.SYSTEM})


class MemberRole(StrEnum):
    """An agent's role inside a team."""

    AGENT = "agent"
    LEAD = "lead"
    SUPERVISOR = "supervisor"


class CustomerTier(StrEnum):
    VIP = "vip"
    STANDARD = "standard"
    BASIC = "basic"


class Consent(StrEnum):
    """Purposes a customer may allow their data to be used for."""

    SERVICE = "service"  # handling their requests
    MARKETING = "marketing"
    SURVEYS = "surveys"  # satisfaction surveys and follow-up visits
    ANALYTICS = "analytics"


class LinkKind(StrEnum):
    RELATED = "related"
    FOLLOW_UP_OF = "follow_up_of"
    DUPLICATE_OF = "duplicate_of"
