"""A desk on disk with a simulated month (demo with workflow: routing, SLA clocks, surveys), shared by
the CLI tests of this package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ticketflow_cli import main


@pytest.fixture(scope="package")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("compliance") / "desk"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TICKETFLOW_DATA_DIR", str(directory))
        patch.delenv("TICKETFLOW_DATABASE_URL", raising=False)
        patch.setenv("COLUMNS", "200")
        assert main(["demo", "--tickets", "40", "--customers", "12", "--days", "4", "--seed", "5"]) == 0
        yield directory


@pytest.fixture
def on_demo(demo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI of the test talks to the demo desk."""
    monkeypatch.setenv("TICKETFLOW_DATA_DIR", str(demo_dir))
    monkeypatch.delenv("TICKETFLOW_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return demo_dir
