"""The what-if (假设分析) in real Chromium, in Chinese: a supervisor fills the form, the job's page refreshes
itself until the background worker is done, then shows the comparison drawn as inline SVG — with no
request outside the server and no script error."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from tests.console.conftest import PASSWORD, Browsing, _free_port, screenshot
from tests.console.test_whatif_pages import SINCE, UNTIL
from tests.whatif.desks import ADMIN
from tests.whatif.test_whatif_api import recorded_store  # noqa: F401 - the module's fixture
from tests.whatif.test_whatif_cli import CANDIDATE
from ticketflow.commands.accounts import CreateAccount
from ticketflow.config import Settings
from ticketflow.domain.values import Role


class Served:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url


@pytest.fixture
def served_history(recorded_store: Path, tmp_path: Path) -> Iterator[tuple[Served, Any]]:  # noqa: F811
    import uvicorn

    directory = tmp_path / "desk"
    shutil.copytree(recorded_store, directory)
    app = create_app(Settings(data_dir=directory, automation=False, time_zone="Asia/Shanghai"))
    desk = app.state.services.desk
    desk.create_account(CreateAccount(username="gao.sup", display_name="高主管", role=Role.SUPERVISOR,
                                      agent_id="gao.sup"), ADMIN, PASSWORD)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # the same start-up wait as tests/console/conftest.py's served desk
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console server did not start")
        time.sleep(0.05)
    worker = app.state.services.whatif.start_worker()  # what `serve` runs beside the automation
    try:
        yield Served(f"http://127.0.0.1:{port}"), worker
    finally:
        app.state.services.whatif.close()
        server.should_exit = True
        thread.join(timeout=30)


def test_a_supervisor_runs_a_whatif_in_chinese_and_sees_the_comparison_drawn_as_svg(
    served_history: tuple[Served, Any], browser: Any
) -> None:
    served, _worker = served_history
    context = browser.new_context(locale="zh-CN", extra_http_headers={"Accept-Language": "zh-CN"},
                                  viewport={"width": 1360, "height": 900})
    tab = Browsing(served, context)  # type: ignore[arg-type]
    try:
        page = tab.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.goto(served.base_url + "/signin")
        page.fill("#username", "gao.sup")
        page.fill("#password", PASSWORD)
        page.click("button[type=submit].primary")
        page.wait_for_url("**/queues**")
        page.click("nav.mainnav >> text=假设分析")
        page.fill("input[name=since]", SINCE)
        page.fill("input[name=until]", UNTIL)
        page.fill("textarea[name=candidate_text]", CANDIDATE)
        screenshot(page, "whatif-form-zh")
        page.click("button[type=submit].primary")
        page.wait_for_url("**/whatif/*")
        page.wait_for_selector("#load svg.wi-chart polyline", timeout=120_000)  # the page refreshed until done
        assert "已完成" in page.inner_text(".whatif-status")
        assert page.locator("#sla svg.wi-chart rect.wi-candidate").count() > 0
        assert page.locator("#breaches a[href^='/tickets/']").count() > 0
        assert errors == [], errors
        screenshot(page, "whatif-comparison-zh")
        assert tab.outside() == []
    finally:
        context.close()
