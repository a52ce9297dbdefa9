"""The commands' progress displays (demo, import, export, views rebuild) redraw on a terminal only: into a
pipe or a log nothing is drawn until the end, so no refresh thread competes with the work for the GIL."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import BarColumn, TextColumn

from ticketflow_cli import output


def test_a_progress_display_into_a_pipe_runs_no_refresh_thread_and_prints_its_end_once() -> None:
    piped = io.StringIO()
    with output.progress(TextColumn("simulating tickets"), BarColumn(), console=Console(file=piped)) as progress:
        task = progress.add_task("tickets", total=3)
        assert progress.live._refresh_thread is None
        for n in range(1, 4):
            progress.update(task, completed=n)
    assert piped.getvalue().count("simulating tickets") == 1


def test_a_progress_display_on_a_terminal_redraws_itself() -> None:
    terminal = Console(file=io.StringIO(), force_terminal=True)
    with output.progress(TextColumn("rebuilding"), console=terminal) as progress:
        assert progress.live._refresh_thread is not None
