"""The domain model: aggregates, their events and rules. No I/O, no framework."""

from ticketflow.domain.access import DataAccess
from ticketflow.domain.account import StaffAccount
from ticketflow.domain.base import TicketflowAggregate, event_classes
from ticketflow.domain.customer import Customer
from ticketflow.domain.mailbox import Mailbox
from ticketflow.domain.policy import ROUTING_POLICY_ID, RoutingPolicy, ServiceCalendar, SlaPolicy
from ticketflow.domain.reminder import Reminder
from ticketflow.domain.reply_template import ReplyTemplate
from ticketflow.domain.team import Team
from ticketflow.domain.ticket import Ticket
from ticketflow.domain.token import ApiToken
from ticketflow.domain.webhook import Webhook

AGGREGATES: tuple[type[TicketflowAggregate], ...] = (
    Ticket, Customer, Team, ApiToken, DataAccess, RoutingPolicy, SlaPolicy, ServiceCalendar, Reminder, Webhook,
    StaffAccount, ReplyTemplate, Mailbox,
)

__all__ = [
    "AGGREGATES", "ApiToken", "Customer", "DataAccess", "Mailbox", "ROUTING_POLICY_ID", "Reminder", "ReplyTemplate", "RoutingPolicy",
    "ServiceCalendar", "SlaPolicy", "StaffAccount", "Team", "Ticket", "TicketflowAggregate", "Webhook", "event_classes",
]
