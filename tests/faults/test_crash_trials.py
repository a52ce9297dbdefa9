"""The CI subset of the crash trials (bench/faults.py): one SIGKILL trial per store, under load."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_faults", REPO / "bench" / "faults.py")
assert spec is not None and spec.loader is not None
faults = importlib.util.module_from_spec(spec)
sys.modules["bench_faults"] = faults  # dataclasses look their module up
spec.loader.exec_module(faults)


def _check(trial: object) -> None:
    assert trial.acknowledged > 0, trial  # type: ignore[attr-defined]
    assert (trial.lost, trial.missing_from_api, trial.duplicated, trial.stuck_keys, trial.errors_5xx_after_recovery) == (0, 0, 0, 0, 0), trial  # type: ignore[attr-defined]
    assert trial.views_equal_rebuild and trial.audit_ok, trial  # type: ignore[attr-defined]


def test_serve_killed_mid_load_on_sqlite_loses_nothing_and_recovers(tmp_path: Path) -> None:
    _check(faults.run_trial(tmp_path, None, seed=1))


@pytest.mark.postgres
def test_the_postgres_serve_group_killed_mid_load_loses_nothing_and_recovers(tmp_path: Path, postgres_url: str) -> None:
    _check(faults.run_trial(tmp_path, postgres_url, seed=2))
