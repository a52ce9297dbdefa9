"""A view declares the event classes it reacts to (``View.event_types``): it is given only those,
and a read that feeds only such views decodes nothing else (a rebuild of the team directory
decodes the team events, not the whole log)."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import pytest

from projections import readside
from projections.readside import VIEWS, ReadSide
from projections.view import View
from tests.erasure.test_views_erasure import _seed, erase
from tests.projections.support import dump_all
from tests.support import ADMIN, AGENT
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands.access import RecordDataAccess
from ticketflow.commands.reply_template import CreateReplyTemplate
from ticketflow.commands.ticket import PostReply
from ticketflow.config import Settings
from ticketflow.simulation import DeskSimulation


def _rich_log(desk: TicketDesk, clock: FakeClock) -> None:
    """Every kind of object and change the views follow: tickets through their whole life, customers,
    teams, reminders, a webhook, a reply template used in a reply, a data access, an erasure."""
    scenario = _seed(desk, clock)
    simulation = DeskSimulation(desk, clock, tickets=8, customers=4, seed=11)
    simulation.setup()
    simulation.run()
    template = desk.handle(
        CreateReplyTemplate(team_id=scenario.setup.team_id, title="重置密码", body="请点击链接重置密码"),
        ADMIN,
    ).object_id
    desk.post_reply(
        PostReply(ticket_id=scenario.other_ticket_id, body="请点击链接重置密码", template_id=template), AGENT
    )
    desk.record_data_access(
        RecordDataAccess(
            customer_id=scenario.customer_id,
            fields=["phone"],
            purpose="回电",
            request_id="r-1",
            resource="customer",
        ),
        AGENT,
    )
    erase(scenario)
    desk.post_reply(PostReply(ticket_id=scenario.ticket_id, body="we closed your case"), AGENT)


def test_every_view_fed_only_its_declared_events_equals_the_view_fed_every_event(
    shared_store_settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = TicketDesk(shared_store_settings, clock=clock)
    _rich_log(desk, clock)
    narrowed = [name for name, view_class in VIEWS.items() if view_class.event_types is not None]
    assert len(narrowed) >= 10  # the views that declare their events, all compared below
    read_side = ReadSide(desk)
    filtered = {}
    for name in VIEWS:
        read_side.rebuild(name)  # one view alone: fed (and decoding) only its declared events
        filtered[name] = dump_all(read_side)[name]
    for view_class in VIEWS.values():
        monkeypatch.setattr(view_class, "event_types", None)
    read_side.rebuild_all()  # every view fed every event
    unfiltered = dump_all(read_side)
    for name in VIEWS:
        assert filtered[name] == unfiltered[name], name
    for name in ("access", "reply_templates", "reminders", "directory", "problems"):
        assert any(rows for rows in unfiltered[name].values()), (
            f"the log gave the {name} view nothing to show"
        )
    read_side.close()
    desk.close()


def test_rebuilding_one_view_decodes_only_the_events_it_reacts_to(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = TicketDesk(Settings(data_dir=tmp_path / "data"), clock=clock)
    _rich_log(desk, clock)
    topics = [n.topic for n in desk.recorder.select_notifications(1, 10**6)]
    decoded: list[str] = []
    original = desk.mapper.to_domain_event

    def counting(notification: Any) -> Any:
        decoded.append(notification.topic)
        return original(notification)

    monkeypatch.setattr(desk.mapper, "to_domain_event", counting)
    read_side = ReadSide(desk, ["directory", "access"])
    read_side.rebuild("directory")
    assert decoded and all(":Team." in topic for topic in decoded)
    assert len(decoded) == sum(":Team." in topic for topic in topics) < len(topics) // 2
    assert read_side.position("directory") == desk.log_position()  # moved past every event, decoded or not
    decoded.clear()
    read_side.rebuild_all()  # both views: the union of what they react to
    assert sorted(decoded) == sorted(t for t in topics if ":Team." in t or t.endswith(":DataAccess.Recorded"))
    assert {s.lag for s in read_side.status()} == {0}
    read_side.close()
    desk.close()


def test_a_view_without_declared_event_types_takes_every_event() -> None:
    class Everything(View):
        name = "everything"
        tables = ()

        def apply(self, batch: Any, event: Any, position: int) -> None:
            """Nothing to write."""

    assert Everything().wants(object) and Everything().wants(type)
    assert VIEWS["audit"].event_types is None  # the audit trail records every event


def test_catching_up_collects_garbage_less_often_never_inside_a_batch_and_restores_the_collector_after(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = TicketDesk(Settings(data_dir=tmp_path / "data"), clock=clock)
    _rich_log(desk, clock)
    read_side = ReadSide(desk, ["tickets"])
    before = gc.get_threshold()
    during: list[int] = []
    step_all = read_side.step_all

    paused: list[bool] = []

    def watching(positions: dict[str, int], limit: int) -> int:
        during.append(gc.get_threshold()[0])
        paused.append(not gc.isenabled())
        return step_all(positions, limit)

    monkeypatch.setattr(read_side, "step_all", watching)
    read_side.rebuild("tickets")
    read_side.catch_up()
    read_side.rebuild_all()
    assert during and min(during) >= readside.BULK_GC_THRESHOLD
    assert all(paused)  # no collection inside a batch: its objects are freed by reference counts when it ends
    assert gc.get_threshold() == before and gc.isenabled()
    read_side.close()
    desk.close()
