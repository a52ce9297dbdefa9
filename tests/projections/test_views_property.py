"""Property: after any sequence of commands, every view equals a straightforward recomputation."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from projections.audit import audit_trail
from projections.customers import customer_overview
from projections.readside import ReadSide
from projections.search import search
from projections.sql import Db
from projections.timeline import ticket_timeline
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.config import Settings
from tests.projections import expected
from tests.property.test_replay_equals_state import operation, run_and_check
from tests.property.test_replay_equals_state import RecordingDesk


def all_ticket_rows(db: Db) -> dict[str, dict[str, Any]]:
    return {row["ticket_id"]: row for row in db.all("SELECT * FROM {p}tf_tickets")}


def check_views(desk: TicketDesk, read_side: ReadSide) -> None:
    read_side.catch_up()
    position = desk.log_position()
    assert all(s.position == position for s in read_side.status())

    want = expected.expected_tickets(desk)
    rows = read_side.read("tickets", all_ticket_rows)
    assert set(rows) == set(want)
    for ticket_id, fields in want.items():
        row = {**rows[ticket_id], "tags": json.loads(rows[ticket_id]["tags"])}
        assert {k: row[k] for k in fields} == fields, ticket_id

    for ticket_id, entries in expected.expected_timeline(desk).items():
        got = read_side.read("timeline", lambda db, t=ticket_id: ticket_timeline(db, t))
        assert [(r["version"], r["entry_type"], r["body"]) for r in got] == entries

    audit = read_side.read("audit", lambda db: audit_trail(db, limit=10**6))
    assert [(r["position"], r["object_id"], r["version"], r["event_type"], r["actor_id"], r["via"]) for r in audit] == (
        expected.expected_audit(desk)
    )

    for customer_id, fields in expected.expected_customers(desk).items():
        overview = read_side.read("customers", lambda db, c=customer_id: customer_overview(db, c))
        assert overview is not None
        profile = overview["profile"]
        assert (profile["name"], profile["company"], profile["tier"], profile["consents"]) == (
            fields["name"], fields["company"], fields["tier"], fields["consents"],
        )
        assert {t["ticket_id"]: t["status"] for t in overview["tickets"]} == fields["ticket_statuses"]
        assert overview["figures"]["interaction_count"] == fields["interaction_count"]

    for ticket_id in want:
        subject = desk.get_ticket(__import__("uuid").UUID(ticket_id)).subject
        if any(ch.isalnum() for ch in subject):
            hits = read_side.read("search", lambda db, s=subject: search(db, s, limit=10**4))
            assert ticket_id in {h["ticket_id"] for h in hits}, subject


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(operation, min_size=1, max_size=30))
def test_every_view_equals_a_recomputation_from_the_events(ops: list[tuple[Any, ...]]) -> None:
    clock = FakeClock()
    desk = RecordingDesk(Settings(database_url="memory://", snapshot_interval=3), clock=clock)
    run_and_check(desk, clock, ops)
    read_side = ReadSide(desk)
    try:
        check_views(desk, read_side)
    finally:
        read_side.close()


def test_every_view_equals_a_recomputation_after_a_simulated_desk(store_settings: Settings) -> None:
    from ticketflow.simulation import DeskSimulation

    clock = FakeClock()
    desk = TicketDesk(store_settings, clock=clock)
    simulation = DeskSimulation(desk, clock, tickets=150, customers=20, seed=12)
    simulation.setup()
    summary = simulation.run()
    assert not summary.refused
    names = [type(e).__qualname__ for e, _ in expected.all_events(desk)]
    for needed in ("Ticket.Reopened", "Ticket.Transferred", "Ticket.MergedInto", "Ticket.Rated", "Ticket.CallLogged"):
        assert needed in names, f"the simulation should exercise {needed}"
    read_side = ReadSide(desk)
    try:
        check_views(desk, read_side)
    finally:
        read_side.close()
        desk.close()
