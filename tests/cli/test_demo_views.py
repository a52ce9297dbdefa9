"""The demo feeds the views the automation reads as it writes (not from the log): afterwards every view
is where the log ends and equals a rebuild, and the automation's bookkeeping is kept."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest

from projections.readside import VIEWS, ReadSide
from tests.projections.support import dump_all
from tests.support import run_cli as run
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow_cli import demo as demo_module


def test_after_a_seeded_demo_every_view_is_at_the_end_of_the_log_and_equals_a_rebuild(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["demo", "--tickets", "25", "--customers", "8", "--days", "3", "--seed", "11"], capsys)
    assert code == 0, err
    with _views_of(data_dir) as read_side:
        worked = read_side.read("workflow", lambda db: db.scalar("SELECT COUNT(*) FROM {p}tf_work_marks"))
        assert worked  # what the automation did is marked: a desk served after the demo does not redo it
        _assert_at_the_log_end_and_equal_to_a_rebuild(read_side)


@contextmanager
def _views_of(data_dir: Path) -> Iterator[ReadSide]:
    desk = TicketDesk(Settings(data_dir=data_dir))
    read_side = ReadSide(desk)
    try:
        yield read_side
    finally:
        read_side.close()
        desk.close()


def _assert_at_the_log_end_and_equal_to_a_rebuild(read_side: ReadSide) -> None:
    assert {status.position for status in read_side.status()} == {read_side.desk.log_position()}
    live = dump_all(read_side)
    read_side.rebuild_all()
    assert dump_all(read_side) == live


class _RecordedProcess(demo_module.ViewProcess):
    """The real view process, its command and its end kept for the test."""

    made: ClassVar[list[_RecordedProcess]] = []

    def __init__(self, command: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(command, **kwargs)
        self.made.append(self)

    def stop(self) -> None:
        super().stop()
        self.exit_status = self._process.poll() if self._process is not None else None


def _applied_in_thread(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The views the run's own thread was given events (``ReadSide.apply``: the slices' feeding)."""
    applied: set[str] = set()
    original = ReadSide.apply

    def apply(self: ReadSide, names: Iterable[str], events: Sequence[tuple[Any, int]]) -> None:
        names = list(names)
        if events:
            applied.update(names)
        original(self, names, events)

    monkeypatch.setattr(ReadSide, "apply", apply)
    return applied


def test_on_sqlite_the_views_the_run_does_not_read_are_kept_by_a_child_process_that_ends_with_the_run(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _RecordedProcess.made = []
    monkeypatch.setattr(demo_module, "ViewProcess", _RecordedProcess)
    applied = _applied_in_thread(monkeypatch)
    code, out, err = run(["demo", "--tickets", "25", "--customers", "8", "--days", "3", "--seed", "11"], capsys)
    assert code == 0, err
    [child] = _RecordedProcess.made
    beside = [child.command[i + 1] for i, part in enumerate(child.command) if part == "--view"]
    read = demo_module.views_read_by_the_run(Settings(data_dir=data_dir))
    assert sorted(beside) == sorted(set(VIEWS) - read) and "audit" in beside
    assert applied and applied <= read  # the run's thread fed only the views its looks read
    assert child.exit_status == 0  # stopped by the end of its doorbell, after sealing: not killed
    assert "projecting" not in err + out  # a quiet child: no start or stop lines in the demo's terminal
    with _views_of(data_dir) as read_side:
        _assert_at_the_log_end_and_equal_to_a_rebuild(read_side)
    code, out, err = run(["audit", "verify"], capsys)  # sealed to its last event (by the child, then at close)
    assert code == 0 and "every event is sealed" in " ".join(out.split()), out + err


def test_with_the_view_process_turned_off_the_run_keeps_every_view_in_its_thread(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TICKETFLOW_VIEWS_PROCESS", "0")
    _RecordedProcess.made = []
    monkeypatch.setattr(demo_module, "ViewProcess", _RecordedProcess)
    applied = _applied_in_thread(monkeypatch)
    code, _, err = run(["demo", "--tickets", "10", "--customers", "5", "--days", "2", "--seed", "3"], capsys)
    assert code == 0, err
    assert _RecordedProcess.made == []
    assert "audit" in applied and "customers" in applied


def test_a_retention_period_keeps_the_customers_view_with_the_run_which_its_retention_reads(tmp_path: Path) -> None:
    assert "customers" not in demo_module.views_read_by_the_run(Settings(data_dir=tmp_path))
    assert "customers" in demo_module.views_read_by_the_run(Settings(data_dir=tmp_path, retention_days=30))


def test_views_an_older_version_built_keep_the_run_from_starting_a_child_that_would_refuse_them(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _RecordedProcess.made = []
    monkeypatch.setattr(demo_module, "ViewProcess", _RecordedProcess)
    monkeypatch.setattr(ReadSide, "outdated", lambda self: [("audit", 1, 2)])
    code, _, err = run(["demo", "--tickets", "5", "--customers", "3", "--days", "1", "--seed", "3"], capsys)
    assert code == 0, err
    assert _RecordedProcess.made == []


def test_a_view_process_that_cannot_be_started_leaves_every_view_to_the_run(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refused(self: demo_module.ViewProcess) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(demo_module.ViewProcess, "start", refused)
    applied = _applied_in_thread(monkeypatch)
    code, _, err = run(["demo", "--tickets", "10", "--customers", "5", "--days", "2", "--seed", "3"], capsys)
    assert code == 0, err
    assert "audit" in applied and "customers" in applied
    assert "could not be started" in caplog.text
