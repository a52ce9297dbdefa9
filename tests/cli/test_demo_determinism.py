"""A seeded demo is the same run every time: the same events, the same SLA decisions at the same instants."""

from __future__ import annotations

import re
from collections import Counter
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from tests.support import run_cli as run
from ticketflow.application import TicketDesk
from ticketflow.config import Settings
from ticketflow_cli.demo import SEEDED_END

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Written by the event store or drawn at random per desk, not by the run: the wall-clock ``timestamp``
#: and event ids; ids that are random per desk (the few commands without a fixed id) are compared by order.
NOT_OF_THE_RUN = ("id", "timestamp")


def event_stream(data_dir: Path) -> list[tuple[Any, ...]]:
    desk = TicketDesk(Settings(data_dir=data_dir))
    names: dict[str, str] = {}

    def rename(match: re.Match[str]) -> str:
        return names.setdefault(match.group(0), f"id{len(names)}")

    try:
        stream = []
        for notification in desk.recorder.select_notifications(1, 1_000_000):
            event = desk.mapper.to_domain_event(notification)
            payload = sorted((k, v) for k, v in vars(event).items() if k not in NOT_OF_THE_RUN)
            stream.append((notification.topic.rsplit(":", 1)[1], UUID_TEXT.sub(rename, repr(payload))))
        return stream
    finally:
        desk.close()


def demo(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> list[tuple[Any, ...]]:
    monkeypatch.setenv("TICKETFLOW_DATA_DIR", str(data_dir))
    code, _, err = run(["demo", "--tickets", "25", "--customers", "8", "--days", "3", "--seed", "11"], capsys)
    assert code == 0, err
    return event_stream(data_dir)


def test_two_runs_with_the_same_seed_write_the_same_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    first = demo(tmp_path / "one", monkeypatch, capsys)
    second = demo(tmp_path / "two", monkeypatch, capsys)
    counts = Counter(topic for topic, _ in first)
    assert counts == Counter(topic for topic, _ in second)
    sla = [e for e in first if e[0].startswith("Ticket.Sla")]
    assert sla == [e for e in second if e[0].startswith("Ticket.Sla")]
    assert counts["Ticket.SlaWarned"] and counts["Ticket.SlaBreached"] and counts["Ticket.SlaFulfilled"]
    assert first == second
    # The seeded month ends at a fixed instant, not at the wall clock's now.
    assert f"'occurred_at', datetime.datetime({SEEDED_END.year}, 10, " in "".join(text for _, text in sla)


def test_the_demo_writes_the_same_events_with_its_aggregate_cache_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    """The demo keeps every aggregate it writes in its cache (and a batch's saved aggregates replace the
    cached ones), and trusts it without the library's fast-forward (a query per load): what is decided from
    the cache is what is decided from the log."""
    cached = demo(tmp_path / "cached", monkeypatch, capsys)
    monkeypatch.setenv("TICKETFLOW_AGGREGATE_CACHE_SIZE", "0")  # 0 is kept: no cache at all
    assert demo(tmp_path / "uncached", monkeypatch, capsys) == cached


def test_a_pass_after_one_that_wrote_only_events_making_no_work_would_find_nothing_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_dir: Path
) -> None:
    """The demo's tick stops at an instant after a pass that wrote only events making no work (SLA marks, a
    survey issued, a reminder fired: ``makes_work``): run with that stop off, every pass it saves acts on
    nothing and writes nothing, and the log is the same either way."""
    from projections.automation import Automation
    from projections.workflow import DUE_LIMIT, makes_work
    from ticketflow.simulation import DeskSimulation
    from ticketflow_cli import demo as demo_cmd

    with_stop = demo(tmp_path / "stop", monkeypatch, capsys)
    passes: list[tuple[Any, int, int, bool, int]] = []  # (instant, steps done, actions, workless, events written)
    steps = [0]
    run_once, step = Automation.run_once, DeskSimulation._step

    def recording_run_once(self: Automation) -> Counter[str]:
        written = len(self.desk.batched_events())
        acted = run_once(self)
        events = list(self.desk.batched_events()[written:])
        workless = max(acted.values()) < DUE_LIMIT and not any(makes_work(e) for e in events)
        passes.append((self.clock.now(), steps[0], sum(acted.values()), workless, len(events)))
        return acted

    def counting_step(self: DeskSimulation, *args: Any) -> None:
        steps[0] += 1
        step(self, *args)

    monkeypatch.setattr(Automation, "run_once", recording_run_once)
    monkeypatch.setattr(DeskSimulation, "_step", counting_step)
    monkeypatch.setattr(demo_cmd, "SKIP_AFTER_WORKLESS", False)
    without_stop = demo(tmp_path / "no-stop", monkeypatch, capsys)
    saved = [
        after for before, after in pairwise(passes)
        if before[:2] == after[:2] and before[3] and before[4] > 0
    ]
    assert len(saved) > 20  # the run has many (SLA marks, surveys, reminders fired)
    assert all(actions == 0 and written == 0 for _, _, actions, _, written in saved)
    assert without_stop == with_stop
