"""Views carry a schema version: after an upgrade that changed a view (its tables, or what it writes
into them), the desk refuses to serve it until ``ticketflow rebuild VIEW`` has built it anew."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from projections import readside
from projections.readside import ReadSide
from projections.sql import Batch, Table
from projections.tickets import TicketsView
from projections.view import View
from tests.support import Desk, run_cli
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow.domain import Ticket
from ticketflow.errors import ValidationFailed

PROBE_V1 = Table("tf_probe", ("ticket_id TEXT NOT NULL", "priority TEXT"), ("ticket_id",))
# Version 2 adds a column and an index on it: its statements cannot run on version 1's table.
PROBE_V2 = Table("tf_probe", ("ticket_id TEXT NOT NULL", "priority TEXT", "channel TEXT"), ("ticket_id",),
                 indexes=(("channel",),))


class ProbeV1(View):
    name = "probe"
    tables = (PROBE_V1,)

    def apply(self, batch: Batch, event: Any, position: int) -> None:
        if isinstance(event, Ticket.Opened):
            batch.put(PROBE_V1, {"ticket_id": str(event.originator_id), "priority": event.priority})


class ProbeV2(View):
    name = "probe"
    tables = (PROBE_V2,)
    version: ClassVar[int] = 2

    def apply(self, batch: Batch, event: Any, position: int) -> None:
        if isinstance(event, Ticket.Opened):
            batch.put(PROBE_V2, {"ticket_id": str(event.originator_id), "priority": event.priority,
                                 "channel": event.channel})


@pytest.fixture
def desk(shared_store_settings: Settings) -> Iterator[TicketDesk]:
    app = TicketDesk(shared_store_settings)
    yield app
    app.close()


def _rows(read_side: ReadSide) -> list[dict[str, Any]]:
    return read_side.read("probe", lambda db: db.all("SELECT * FROM {p}tf_probe ORDER BY ticket_id"))


def _probe(desk: TicketDesk, view: type[View], monkeypatch: pytest.MonkeyPatch) -> ReadSide:
    monkeypatch.setitem(readside.VIEWS, "probe", view)
    return ReadSide(desk, ["probe"])


def test_a_view_whose_code_is_newer_than_its_store_is_refused_until_rebuilt(
    desk: TicketDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = Desk(desk)
    opened = sorted(str(setup.open()) for _ in range(3))
    old = _probe(desk, ProbeV1, monkeypatch)
    old.catch_up()
    assert [r["ticket_id"] for r in _rows(old)] == opened and old.outdated() == []
    old.close()

    upgraded = _probe(desk, ProbeV2, monkeypatch)  # opens although its new index cannot apply yet
    try:
        assert upgraded.outdated() == [("probe", 1, 2)]
        with pytest.raises(ValidationFailed) as refused:
            upgraded.refuse_outdated()
        assert str(refused.value) == (
            "views built by another version of ticketflow: probe (built by version 1, the code is version 2);"
            " run `ticketflow rebuild probe` first"
        )

        upgraded.rebuild("probe")

        assert upgraded.outdated() == []
        rows = _rows(upgraded)
        assert [r["ticket_id"] for r in rows] == opened and {r["channel"] for r in rows} == {"web_form"}
    finally:
        upgraded.close()
    reopened = _probe(desk, ProbeV2, monkeypatch)
    assert reopened.outdated() == [] and len(_rows(reopened)) == 3
    reopened.close()


def test_a_store_built_before_views_carried_versions_counts_as_version_1(
    desk: TicketDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    Desk(desk).open()
    old = _probe(desk, ProbeV1, monkeypatch)
    old.catch_up()
    old.stores["probe"].write(lambda db: db.execute("DELETE FROM {p}tf_view_versions"))
    old.close()

    upgraded = _probe(desk, ProbeV2, monkeypatch)
    assert upgraded.outdated() == [("probe", 1, 2)]
    upgraded.close()


def test_a_new_store_is_built_at_the_codes_version(desk: TicketDesk, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = _probe(desk, ProbeV2, monkeypatch)
    assert fresh.outdated() == [] and fresh.stores["probe"].stored_version() == 2
    fresh.close()


def test_serve_and_project_refuse_an_outdated_view_and_rebuild_clears_it(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    desk = TicketDesk(Settings(data_dir=data_dir))
    Desk(desk).open()
    ReadSide(desk).close()  # every view's store, at the current versions
    desk.close()
    built = TicketsView.version
    monkeypatch.setattr(TicketsView, "version", built + 1)  # the upgrade changed the tickets view

    for command in (["serve", "--port", "1"], ["project"]):
        code, _out, err = run_cli(command, capsys)
        assert code == 1
        assert err.strip() == (
            f"error: views built by another version of ticketflow: tickets (built by version {built}, the code is "
            f"version {built + 1}); run `ticketflow rebuild tickets` first"
        )
    code, out, _err = run_cli(["views"], capsys)
    assert code == 0 and f"{built} (code: {built + 1}; rebuild it)" in out

    code, out, err = run_cli(["rebuild", "tickets"], capsys)
    assert code == 0, err
    code, out, _err = run_cli(["views"], capsys)
    assert code == 0 and "rebuild it" not in out
    desk = TicketDesk(Settings(data_dir=data_dir))
    read_side = ReadSide(desk)
    assert read_side.outdated() == []
    read_side.catch_up()
    assert read_side.read("tickets", lambda db: db.scalar("SELECT count(*) FROM {p}tf_tickets")) == 1
    read_side.close()
    desk.close()
