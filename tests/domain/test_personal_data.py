"""Every event declares which of its fields hold personal data and whose data it is.

Encryption and erasure (a later issue) act through this declaration, so an
undeclared personal field would leak. The heuristic below fails the build when
a new field *looks* personal and is not declared; a field that only looks
personal (a team's name) must be listed in NOT_PERSONAL with the reason.
"""

from __future__ import annotations

from dataclasses import fields

import pytest

from ticketflow.commands import AddCustomerNote, LogWork, PostReply, RateSatisfaction, SolveTicket, UpdateCustomerProfile
from ticketflow.domain import AGGREGATES, TicketflowAggregate, event_classes
from ticketflow.domain.base import METADATA_FIELDS
from tests.support import AGENT, Desk

PERSONAL_WORDS = {
    "name", "email", "phone", "mobile", "handle", "address", "company", "title", "body", "comment",
    "note", "description", "subject", "resolution", "action", "result", "contact", "birth",
}
PERSONAL_NAMES = {"changes", "previous"}  # profile change sets


def looks_personal(field_name: str) -> bool:
    if field_name.endswith("_id"):
        return False  # identifiers, not the data itself
    return field_name in PERSONAL_NAMES or bool(PERSONAL_WORDS & set(field_name.split("_")))

NOT_PERSONAL = {
    ("Team.Formed", "name"): "a team's name is organisational, not personal",
    ("Team.Formed", "description"): "a team's description is organisational",
    ("Team.Renamed", "name"): "a team's name is organisational",
    ("Team.Renamed", "previous_name"): "a team's name is organisational",
    ("ApiToken.Issued", "name"): "a token is named after the staff member or system holding it, not a customer",
    ("Ticket.SlaApplied", "policy_name"): "an SLA policy's name is organisational",
    ("SlaPolicy.Defined", "name"): "an SLA policy's name is organisational",
    ("SlaPolicy.Revised", "name"): "an SLA policy's name is organisational",
    ("ServiceCalendar.Defined", "name"): "a business calendar's name is organisational",
    ("ServiceCalendar.Revised", "name"): "a business calendar's name is organisational",
    ("RoutingPolicy.Adopted", "note"): "a policy revision's note is about the rules, written by an admin",
    ("RoutingPolicy.Revised", "note"): "a policy revision's note is about the rules, written by an admin",
    ("Webhook.Subscribed", "name"): "a webhook is named after the receiving system",
    ("Mailbox.Added", "name"): "a mailbox is named after the desk's inbox (support, 技术支持邮箱)",
    ("Mailbox.Added", "address"): "the desk's own address that receives the mail, not a customer's",
    **{(f"ReplyTemplate.{event}", name): "a saved reply template is the team's canned text: placeholders such as"
                                         " {{customer.name}} stand for a customer's data, filled only in the reply"
       for event in ("Created", "Revised") for name in ("title", "body")},
    ("StaffAccount.Created", "display_name"): "a staff member's name as colleagues see it on what they write;"
                                              " staff are not the customers whose data erasure destroys",
}

ALL_EVENTS = [cls for aggregate in AGGREGATES for cls in event_classes(aggregate)]


def own_fields(cls: type) -> list[str]:
    skip = {"originator_id", "originator_version", "timestamp", "originator_topic", *METADATA_FIELDS}
    return [f.name for f in fields(cls) if f.name not in skip]


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=lambda c: c.__qualname__)
def test_fields_that_look_personal_are_declared(cls: type[TicketflowAggregate.Event]) -> None:
    undeclared = [
        name
        for name in own_fields(cls)
        if looks_personal(name)
        and name not in cls.personal_fields
        and (cls.__qualname__, name) not in NOT_PERSONAL
    ]
    assert not undeclared, f"{cls.__qualname__} has undeclared personal-looking fields {undeclared}"


@pytest.mark.parametrize("cls", ALL_EVENTS, ids=lambda c: c.__qualname__)
def test_declared_personal_fields_exist_and_name_their_subject(cls: type[TicketflowAggregate.Event]) -> None:
    names = set(own_fields(cls)) | {"originator_id"}
    assert cls.personal_fields <= names, f"{cls.__qualname__} declares fields it does not have"
    if cls.personal_fields:
        assert cls.data_subject in names, f"{cls.__qualname__} holds personal data but names no data subject"


def test_the_heuristic_is_not_vacuous() -> None:
    declared = {(cls.__qualname__, f) for cls in ALL_EVENTS for f in cls.personal_fields}
    assert ("Customer.Registered", "email") in declared
    assert ("Ticket.Replied", "body") in declared
    assert ("Ticket.Opened", "subject") in declared
    assert looks_personal("im_handle") and looks_personal("previous") and not looks_personal("interaction_id")


def test_stored_events_name_the_customer_whose_data_they_hold(setup: Desk) -> None:
    ticket_id = setup.open()
    setup.app.post_reply(PostReply(ticket_id=ticket_id, body="您好"), AGENT)
    setup.app.log_work(LogWork(ticket_id=ticket_id, action="排查", minutes=5), AGENT)
    setup.app.solve_ticket(SolveTicket(ticket_id=ticket_id, resolution="重置密码"), AGENT)
    setup.app.rate_satisfaction(RateSatisfaction(ticket_id=ticket_id, score=5), setup.customer_caller)
    setup.app.update_customer_profile(UpdateCustomerProfile(customer_id=setup.customer_id, company="华信"), AGENT)
    setup.app.add_customer_note(AddCustomerNote(customer_id=setup.customer_id, note="VIP"), AGENT)
    events = setup.app.history(ticket_id) + setup.app.history(setup.customer_id)
    holding = [e for e in events if e.personal_fields]
    assert len(holding) == 8  # opened, replied, work, solved, rated, registered, updated, note
    assert {e.subject_id() for e in holding} == {setup.customer_id}
    assert all(e.subject_id() is None for e in events if not e.personal_fields)
