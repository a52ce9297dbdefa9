"""Commands refuse malformed input at the boundary and accept any script."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

from ticketflow.commands import (
    AddNote, LinkTicket, LogInteraction, OpenTicket, PostReply, RecategoriseTicket, RegisterCustomer,
    UpdateCustomerProfile,
)
from ticketflow.domain.values import Channel, Direction, InteractionKind, LinkKind

CUSTOMER = uuid.uuid4()
TICKET = uuid.uuid4()


def test_chinese_and_other_scripts_are_ordinary_input() -> None:
    command = OpenTicket(subject="  打印机无法连接 — Ошибка ☕ ", description="第一行\n第二行\tи ещё", requester_id=CUSTOMER)
    assert command.subject == "打印机无法连接 — Ошибка ☕"
    assert command.description == "第一行\n第二行\tи ещё"
    assert RegisterCustomer(name="欧阳娜娜", im_handle="微信号").name == "欧阳娜娜"


def test_text_is_nfc_normalised() -> None:
    assert OpenTicket(subject="Cafe\u0301", requester_id=CUSTOMER).subject == "Café"


@pytest.mark.parametrize("bad", ["", "   ", "a" * 201, "tab\there", "line\nbreak", "bell\x07", "nul\x00"])
def test_a_subject_must_be_one_clean_line_of_at_most_200_characters(bad: str) -> None:
    with pytest.raises(ValidationError):
        OpenTicket(subject=bad, requester_id=CUSTOMER)


@pytest.mark.parametrize("bad", ["", "esc\x1b[31m", "del\x7f", "x" * 20_001])
def test_a_body_refuses_control_characters_emptiness_and_excess(bad: str) -> None:
    with pytest.raises(ValidationError):
        AddNote(ticket_id=TICKET, body=bad)


def test_unknown_fields_and_values_are_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        OpenTicket(subject="x", requester_id=CUSTOMER, colour="red")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="priority"):
        OpenTicket(subject="x", requester_id=CUSTOMER, priority="critical")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="not a way customers reach the desk"):
        OpenTicket(subject="x", requester_id=CUSTOMER, channel=Channel.SYSTEM)


def test_commands_are_immutable() -> None:
    command = OpenTicket(subject="x", requester_id=CUSTOMER)
    with pytest.raises(ValidationError):
        command.subject = "y"  # type: ignore[misc]


def test_contact_points_are_checked() -> None:
    with pytest.raises(ValidationError, match="email"):
        RegisterCustomer(name="A", email="not-an-email")
    with pytest.raises(ValidationError, match="phone"):
        RegisterCustomer(name="A", phone="call me")
    with pytest.raises(ValidationError, match="preferred_language"):
        RegisterCustomer(name="A", preferred_language="chinese please")
    assert UpdateCustomerProfile(customer_id=CUSTOMER, email="").email == ""


def test_command_shapes_that_make_no_sense_are_refused() -> None:
    with pytest.raises(ValidationError, match="own command"):
        LogInteraction(ticket_id=TICKET, kind=InteractionKind.NOTE, direction=Direction.INBOUND, body="x")
    with pytest.raises(ValidationError, match="inbound or outbound"):
        PostReply(ticket_id=TICKET, body="x", direction=Direction.INTERNAL)
    with pytest.raises(ValidationError, match="merging"):
        LinkTicket(ticket_id=TICKET, other_ticket_id=CUSTOMER, kind=LinkKind.DUPLICATE_OF)
    with pytest.raises(ValidationError, match="category"):
        RecategoriseTicket(ticket_id=TICKET)
    with pytest.raises(ValidationError, match="at least one field"):
        UpdateCustomerProfile(customer_id=CUSTOMER)
    with pytest.raises(ValidationError, match="expected_version"):
        AddNote(ticket_id=TICKET, body="x", expected_version=0)
    with pytest.raises(ValidationError, match="occurred_at"):
        AddNote(ticket_id=TICKET, body="x", occurred_at="2024-01-01T10:00:00")  # naive time
