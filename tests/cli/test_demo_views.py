"""The demo feeds the views the automation reads as it writes (not from the log): afterwards every view
is where the log ends and equals a rebuild, and the automation's bookkeeping is kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from projections.readside import ReadSide
from tests.projections.support import dump_all
from tests.support import run_cli as run
from ticketflow.application import TicketDesk
from ticketflow.config import Settings


def test_after_a_seeded_demo_every_view_is_at_the_end_of_the_log_and_equals_a_rebuild(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["demo", "--tickets", "25", "--customers", "8", "--days", "3", "--seed", "11"], capsys)
    assert code == 0, err
    desk = TicketDesk(Settings(data_dir=data_dir))
    read_side = ReadSide(desk)
    try:
        assert {status.position for status in read_side.status()} == {desk.log_position()}
        worked = read_side.read("workflow", lambda db: db.scalar("SELECT COUNT(*) FROM {p}tf_work_marks"))
        assert worked  # what the automation did is marked: a desk served after the demo does not redo it
        live = dump_all(read_side)
        read_side.rebuild_all()
        assert dump_all(read_side) == live
    finally:
        read_side.close()
        desk.close()
