"""``serve`` hands uvicorn a liveness timeout a starting worker can meet on a loaded machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.support import run_cli as run


def test_serve_gives_a_starting_worker_far_more_than_uvicorns_five_seconds_to_answer_its_ping(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvicorn kills a worker that misses its supervisor's ping (5 s by default) and starts another; on a
    busy machine a worker still importing the app missed it every time, so `serve --workers 2` never came
    up. The server itself is not started here: uvicorn.run is replaced by a recorder of what serve asks."""
    asked: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: asked.append({"app": app, **options}))
    monkeypatch.setenv("TICKETFLOW_VIEWS_PROCESS", "0")  # the views in threads: serve starts no child here
    code, _out, err = run(["serve", "--port", "8765"], capsys)
    assert code == 0, err
    (options,) = asked
    assert options["app"] == "api.app:create_served_app" and options["port"] == 8765
    assert options["timeout_worker_healthcheck"] >= 60
