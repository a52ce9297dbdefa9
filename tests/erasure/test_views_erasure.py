"""Erasure on the read side: after ``Customer.Erased`` no view holds the customer's plaintext.

A canary customer's unique text goes everywhere a view copies personal data (profile,
ticket subject and description, replies, notes, work entries, resolution, rating comment,
resolution summary, customer note, reminder note and outcome, profile changes). After the
erasure every table of every view (the search and problem indexes included) is free of
it, searches for it find nothing, and on SQLite not even the raw bytes of the view files
(after VACUUM) contain it; the other customers' rows are untouched.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from projections.problems import search_problems
from projections.readside import VIEWS, ReadSide, views_dir
from projections.search import search
from projections.sql import Dialect
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import OpenTicket, PostReply, RegisterCustomer
from ticketflow.commands.customer import AddCustomerNote, UpdateCustomerProfile
from ticketflow.commands.ticket import AddNote, LogWork, RateSatisfaction, SolveTicket
from ticketflow.commands.workflow import CompleteReminder, RecordResolution, ScheduleReminder, SubscribeWebhook
from ticketflow.config import Settings, StorageKind
from ticketflow.domain.customer import ERASED
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller, context_for, recording
from tests.projections.support import dump
from tests.support import ADMIN, AGENT, Desk

COMPLIANCE = Caller("dpo.zhang", Role.COMPLIANCE, Channel.API)
#: Views that copy personal data (each must have held the canary before the erasure).
HOLDERS = ("tickets", "timeline", "customers", "audit", "search", "problems", "reminders")
#: Raw index tables beside the views' declared tables.
INDEX_TABLES = {
    Dialect.SQLITE: {"search": ("tf_search_fts",), "problems": ("tf_problems_fts",)},
    Dialect.POSTGRES: {"search": ("tf_search_terms",), "problems": ("tf_problems_terms",)},
}


@dataclass
class Canary:
    word: str  # an English word found nowhere else
    han: str  # three rare characters: "龘靐齉"-like, unique to this test

    @property
    def pieces(self) -> list[str]:
        """Every form the text may take in a view: as written, lower-cased terms, CJK bigrams."""
        return [self.word, self.word.lower(), self.han, self.han[:2], self.han[1:]]

    def text(self, what: str) -> str:
        return f"{what} {self.han}{self.word} {self.word} {self.han}"


@dataclass
class Scenario:
    desk: TicketDesk
    setup: Desk
    customer_id: uuid.UUID
    ticket_id: uuid.UUID
    other_ticket_id: uuid.UUID
    canary: Canary


def _caller_for(customer_id: uuid.UUID) -> Caller:
    return Caller(str(customer_id), Role.CUSTOMER, Channel.WEB_FORM)


@pytest.fixture
def scenario(shared_store_settings: Settings, clock: FakeClock) -> Iterator[Scenario]:
    desk = TicketDesk(shared_store_settings, clock=clock)
    try:
        yield _seed(desk, clock)
    finally:
        desk.close()


def _seed(desk: TicketDesk, clock: FakeClock) -> Scenario:
    setup = Desk(desk)
    tag = uuid.uuid4().hex[:10]
    canary = Canary(word=f"Qvexomir{tag}", han="龘靐齉")
    desk.subscribe_webhook(
        SubscribeWebhook(name="all events", url="https://hooks.example.com/tf", event_types=["*"]), ADMIN
    )
    customer_id = desk.register_customer(
        RegisterCustomer(
            name=canary.text("客户"), email=f"{canary.word.lower()}@example.org", phone="+86 13912345678",
            company=canary.text("公司"), job_title=canary.text("title"),
        ),
        ADMIN,
    ).object_id
    desk.update_customer_profile(
        UpdateCustomerProfile(customer_id=customer_id, company=canary.text("新公司"), im_handle=canary.text("im")), ADMIN
    )
    desk.add_customer_note(AddCustomerNote(customer_id=customer_id, note=canary.text("note")), AGENT)
    caller = _caller_for(customer_id)
    ticket_id = desk.open_ticket(
        OpenTicket(
            subject=canary.text("subject"), description=canary.text("description"), requester_id=customer_id,
            team_id=setup.team_id,
        ),
        caller,
    ).object_id
    desk.post_reply(PostReply(ticket_id=ticket_id, body=canary.text("reply")), AGENT)
    desk.add_note(AddNote(ticket_id=ticket_id, body=canary.text("internal")), AGENT)
    desk.log_work(LogWork(ticket_id=ticket_id, action=canary.text("action"), minutes=5, result=canary.text("result")), AGENT)
    reminder_id = desk.schedule_reminder(
        ScheduleReminder(ticket_id=ticket_id, agent_id="li.wei", due_at=clock.now() + timedelta(hours=1),
                         note=canary.text("reminder")),
        AGENT,
    ).object_id
    desk.complete_reminder(CompleteReminder(reminder_id=reminder_id, outcome=canary.text("outcome")), AGENT)
    desk.solve_ticket(SolveTicket(ticket_id=ticket_id, resolution=canary.text("resolution")), AGENT)
    desk.rate_satisfaction(RateSatisfaction(ticket_id=ticket_id, score=4, comment=canary.text("comment")), caller)
    desk.record_resolution(RecordResolution(ticket_id=ticket_id, summary=canary.text("summary")), AGENT)
    # Someone else's ticket, which the erasure must leave alone.
    other = setup.open("打印机卡纸 printer jammed")
    desk.post_reply(PostReply(ticket_id=other, body="已更换硒鼓 toner replaced"), AGENT)
    desk.solve_ticket(SolveTicket(ticket_id=other, resolution="更换硒鼓 replaced the toner"), AGENT)
    return Scenario(desk, setup, customer_id, ticket_id, other, canary)


def erase(s: Scenario, *, command: bool = False) -> None:
    """Erase the canary customer.

    The view tests record the completion event directly: they test what the views do with
    ``Customer.Erased``, whatever state the erasure command is in. ``command=True`` runs the
    whole command (key destroyed, so the events read back erased), when it exists.
    """
    if command and hasattr(s.desk, "erase_customer"):
        from ticketflow.commands.privacy import EraseCustomer

        s.desk.erase_customer(
            EraseCustomer(customer_id=s.customer_id, basis="customer_request", reference="case-1"), COMPLIANCE
        )
        return
    with recording(context_for(COMPLIANCE, uuid.uuid4(), s.desk.clock.now())):  # type: ignore[attr-defined]
        customer = s.desk.get_customer(s.customer_id)
        customer.complete_erasure("customer_request", 1)
        s.desk.save(customer)


def raw_tables(read_side: ReadSide, name: str) -> dict[str, list[tuple[Any, ...]]]:
    """The view's declared tables and its full-text index tables (as text)."""
    tables = dump(read_side, name)
    dialect = read_side.stores[name].dialect
    for table in INDEX_TABLES[dialect].get(name, ()):
        column = "*" if dialect is Dialect.SQLITE else "*, terms::text AS terms_text"
        rows = read_side.read(name, lambda db, t=table, c=column: db.all(f"SELECT {c} FROM {{p}}{t}"))
        tables[table] = [tuple(r.values()) for r in rows]
    return tables


def hits(tables: dict[str, list[tuple[Any, ...]]], canary: Canary) -> list[tuple[str, Any]]:
    found = []
    for table, rows in tables.items():
        for row in rows:
            for value in row:
                text = str(value)
                if any(piece in text for piece in canary.pieces):
                    found.append((table, row))
                    break
    return found


def _searches(read_side: ReadSide, canary: Canary) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if "search" in read_side.stores:
        for query in (canary.han[:2], canary.word, canary.word.lower()):
            found[f"search {query}"] = read_side.read("search", lambda db, q=query: search(db, q))
    if "problems" in read_side.stores:
        for query in (canary.han[:2], canary.word):
            found[f"problems {query}"] = read_side.read("problems", lambda db, q=query: search_problems(db, q))
    return {k: v for k, v in found.items() if v}


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_each_view_drops_the_erased_customers_plaintext(scenario: Scenario, view: str) -> None:
    s, canary = scenario, scenario.canary
    read_side = ReadSide(s.desk, [view])
    try:
        read_side.catch_up()
        before = raw_tables(read_side, view)
        if view in HOLDERS:
            assert hits(before, canary), f"the scenario put no canary into the {view} view"
        erase(s)
        read_side.catch_up()
        # A new interaction on the erased customer's ticket must not bring the old text back.
        s.desk.post_reply(PostReply(ticket_id=s.ticket_id, body="we closed your case"), AGENT)
        read_side.catch_up()
        after = raw_tables(read_side, view)
        assert hits(after, canary) == []
        assert _searches(read_side, canary) == {}
        # Rows stay (ids, counts, states), only the personal text is gone; others are untouched.
        assert sum(map(len, after.values())) >= sum(map(len, before.values()))
        if view == "outbox":  # every event was enqueued for the "*" webhook, masked from the start
            assert len(after["tf_webhook_deliveries"]) == len(before["tf_webhook_deliveries"]) + 2
            assert hits(before, canary) == []
        if view == "tickets":
            rows = {r[0]: r for r in after["tf_tickets"]}
            assert rows[str(s.ticket_id)][1] == ERASED
            assert rows[str(s.other_ticket_id)][1] == "打印机卡纸 printer jammed"
        if view == "customers":
            profile = read_side.read("customers", lambda db: db.one(
                "SELECT * FROM {p}tf_customers WHERE customer_id = ?", (str(s.customer_id),)))
            assert profile is not None and profile["name"] == ERASED and profile["tier"] == "standard"
        if view == "search":
            assert [h["ticket_id"] for h in read_side.read("search", lambda db: search(db, "硒鼓"))] == [
                str(s.other_ticket_id)
            ]
        if view == "problems":
            assert [p["ticket_id"] for p in read_side.read("problems", lambda db: search_problems(db, "硒鼓"))] == [
                str(s.other_ticket_id)
            ]
    finally:
        read_side.close()


def test_an_erasure_in_the_same_batch_as_the_plaintext_drops_it(scenario: Scenario) -> None:
    """The views first see the customer's events, their erasure and a later reply in one batch:
    the rows pending in the batch and its row cache must not write the plaintext back."""
    s, canary = scenario, scenario.canary
    erase(s)
    s.desk.post_reply(PostReply(ticket_id=s.ticket_id, body="we closed your case"), AGENT)
    s.desk.rate_satisfaction(RateSatisfaction(ticket_id=s.ticket_id, score=5, comment=ERASED), AGENT)
    read_side = ReadSide(s.desk)
    try:
        read_side.catch_up()
        assert {name: found for name in read_side.stores if (found := hits(raw_tables(read_side, name), canary))} == {}
        assert _searches(read_side, canary) == {}
        row = read_side.read("tickets", lambda db: db.one(
            "SELECT * FROM {p}tf_tickets WHERE ticket_id = ?", (str(s.ticket_id),)))
        assert row is not None and row["subject"] == ERASED and row["satisfaction"] == 5
    finally:
        read_side.close()


def test_no_view_file_keeps_the_canary(scenario: Scenario, shared_store_settings: Settings) -> None:
    """Every view together; on SQLite, the raw bytes of every view file after VACUUM."""
    s, canary = scenario, scenario.canary
    read_side = ReadSide(s.desk)
    try:
        read_side.catch_up()
        erase(s)
        read_side.catch_up()
        assert {name: found for name in read_side.stores if (found := hits(raw_tables(read_side, name), canary))} == {}
        assert _searches(read_side, canary) == {}
    finally:
        read_side.close()
    if shared_store_settings.storage is not StorageKind.SQLITE:
        return
    directory = views_dir(shared_store_settings)
    for path in sorted(directory.glob("*.sqlite")):
        with sqlite3.connect(path) as conn:
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
    needles = {piece.encode() for piece in canary.pieces}
    leaked = {
        path.name: sorted(n.decode() for n in needles if n in data)
        for path in sorted(directory.iterdir())
        if path.is_file() and any(n in (data := path.read_bytes()) for n in needles)
    }
    assert leaked == {}


def test_a_rebuild_after_erasure_holds_no_plaintext(scenario: Scenario) -> None:
    s, canary = scenario, scenario.canary
    read_side = ReadSide(s.desk)
    try:
        read_side.catch_up()
        erase(s, command=True)
        read_side.catch_up()
        read_side.rebuild_all()
        assert {name: found for name in read_side.stores if (found := hits(raw_tables(read_side, name), canary))} == {}
        assert _searches(read_side, canary) == {}
    finally:
        read_side.close()

