"""The demo's automation decides as a live desk's does: right after each change and at each instant work
falls due. So the what-if's recorded replay, which looks at exactly those instants, gives back every one
of its decisions at the same instants (the identity property, on the demo desk)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import run_cli as run


def test_the_recorded_replay_gives_back_every_decision_of_a_seeded_demo_at_the_same_instants(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(["demo", "--tickets", "25", "--customers", "8", "--days", "3", "--seed", "11"], capsys)
    assert code == 0, err
    unchanged = tmp_path / "as-it-was.toml"  # a candidate that changes nothing: the recorded policies
    unchanged.write_text("", encoding="utf-8")
    code, out, err = run(
        ["whatif", "--from", "2026-10-01", "--to", "2026-11-02", "--json", str(unchanged)], capsys
    )
    assert code == 0, err
    fidelity = json.loads(out)["fidelity"]
    assert fidelity["live_tickets"] == 25
    assert fidelity["differing"] == []
    assert fidelity["same_decisions_and_instants"] == 25
