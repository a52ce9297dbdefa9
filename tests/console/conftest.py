"""A served console on a fresh store with two teams, a customer, and an account per role;
and real Chromium (Debian's package, driven by Playwright) for the browser tests.

Browser tests need ``/usr/bin/chromium`` and the ``playwright`` package: under ``CI=true`` they
fail without them (``.ci/run`` installs Chromium); elsewhere they skip, saying why. Every page a
test opens is watched: a request to anywhere but this server fails the test."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import IN_CI
from tests.support import ADMIN, two_teams
from ticketflow.application import TicketDesk
from ticketflow.commands import OpenTicket, RegisterCustomer
from ticketflow.commands.accounts import CreateAccount
from ticketflow.config import Settings
from ticketflow.domain.values import Role

SCREENSHOTS = Path(__file__).parent / "screenshots"
#: Every role's account: (sign-in name, display name, role, team member).
ACCOUNTS = {
    "admin": ("zhang.admin", "张管理", Role.ADMIN, None),
    "agent_a": ("li.wei", "李伟", Role.AGENT, "li.wei"),
    "agent_a2": ("emma.clark", "Emma Clark", Role.AGENT, "emma.clark"),
    "supervisor_a": ("gao.sup", "高主管", Role.SUPERVISOR, "gao.sup"),
    "agent_b": ("wang.fang", "王芳", Role.AGENT, "wang.fang"),
    "auditor": ("chen.audit", "陈审计", Role.AUDITOR, None),
    "compliance": ("zhou.comp", "周合规", Role.COMPLIANCE, None),
}
PASSWORD = "correct-horse-电池-staple"


@dataclass
class Seeded:
    desk: TicketDesk
    team_a: UUID
    team_b: UUID
    customer: UUID
    customer_b: UUID  # only team B has tickets for them
    tickets: dict[str, str] = field(default_factory=dict)

    def open_ticket(self, subject: str, team: str = "a", customer: UUID | None = None, **extra: Any) -> str:
        team_id = self.team_a if team == "a" else self.team_b
        requester = customer or (self.customer if team == "a" else self.customer_b)
        result = self.desk.open_ticket(OpenTicket(subject=subject, requester_id=requester, team_id=team_id, **extra), ADMIN)
        return str(result.object_id)


def seed(desk: TicketDesk) -> Seeded:
    team_a, team_b = two_teams(desk)
    customer = desk.register_customer(
        RegisterCustomer(name="王小明", email="xiaoming@example.cn", phone="+86 13800000000"), ADMIN).object_id
    customer_b = desk.register_customer(
        RegisterCustomer(name="Alice Moreau", email="alice@example.fr", company="Moreau SARL"), ADMIN).object_id
    for username, name, role, agent in ACCOUNTS.values():
        desk.create_account(CreateAccount(username=username, display_name=name, role=role, agent_id=agent), ADMIN, PASSWORD)
    seeded = Seeded(desk, team_a, team_b, customer, customer_b)
    seeded.tickets["printer"] = seeded.open_ticket("打印机卡纸，无法打印")
    seeded.tickets["billing"] = seeded.open_ticket("Invoice shows the wrong amount", team="b")
    return seeded


# ------------------------------------------------------------------ in-process (TestClient)
@dataclass
class Console:
    client: TestClient
    seeded: Seeded

    @property
    def desk(self) -> TicketDesk:
        return self.seeded.desk

    def sign_in(self, who: str, client: TestClient | None = None) -> TestClient:
        client = client or self.client
        client.cookies.clear()
        response = client.post("/signin", data={"username": ACCOUNTS[who][0], "password": PASSWORD, "next": "/queues"},
                               follow_redirects=False)
        assert response.status_code == 303, response.text[:300]
        return client

    def csrf(self, path: str = "/queues") -> str:
        import re

        found = re.search(r'name="csrf_token" value="([^"]+)"', self.client.get(path).text)
        assert found, f"no form token on {path}"
        return found.group(1)

    def caught_up(self) -> None:
        assert self.client.app.state.services.read_side.wait(self.desk.log_position(), timeout=10)  # type: ignore[attr-defined]


@pytest.fixture
def app_settings() -> dict[str, Any]:
    """Extra settings of the console's app (a test module may override this fixture)."""
    return {}


@pytest.fixture
def console(tmp_path: Path, app_settings: dict[str, Any]) -> Iterator[Console]:
    app = create_app(Settings(data_dir=tmp_path / "data", time_zone="Asia/Shanghai", **app_settings))
    with TestClient(app) as client:
        seeded = seed(app.state.services.desk)
        made = Console(client, seeded)
        made.caught_up()
        yield made


# ------------------------------------------------------------------ served (for the browser)
@dataclass
class Served:
    base_url: str
    seeded: Seeded
    app: Any

    def caught_up(self) -> None:
        desk = self.seeded.desk
        assert self.app.state.services.read_side.wait(desk.log_position(), timeout=10)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path, app_settings: dict[str, Any]) -> Iterator[Served]:
    import uvicorn

    app = create_app(Settings(data_dir=tmp_path / "data", time_zone="Asia/Shanghai", **app_settings))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console server did not start")
        time.sleep(0.05)
    try:
        made = Served(f"http://127.0.0.1:{port}", seed(app.state.services.desk), app)
        made.caught_up()
        yield made
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _chromium() -> str:
    path = os.environ.get("TICKETFLOW_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        reason = "no Chromium at /usr/bin/chromium (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if IN_CI:
            pytest.fail("CI=true but the playwright package is missing (pip install -e '.[test]')")
        pytest.skip("the playwright package is not installed")
    executable = _chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
        ])
        yield launched
        launched.close()


@dataclass
class Browsing:
    """A browser context on the served console that records every request its pages make."""

    served: Served
    context: Any
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # stopped in the browser by the page's CSP: never sent

    def new_page(self) -> Any:
        page = self.context.new_page()
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("requestfailed", lambda request: self.blocked.append(request.url)
                if "BLOCKED_BY_CSP" in (request.failure or "").upper() or "csp" in (request.failure or "").lower() else None)
        page.set_default_timeout(15_000)
        return page

    def sign_in(self, page: Any, who: str) -> None:
        page.goto(self.served.base_url + "/signin")
        page.fill("#username", ACCOUNTS[who][0])
        page.fill("#password", PASSWORD)
        page.click("button[type=submit].primary")
        page.wait_for_url("**/queues**")

    def outside(self) -> list[str]:
        base = self.served.base_url + "/"
        return [url for url in self.requests
                if not (url.startswith(base) or url.startswith(("data:", "blob:"))) and url not in self.blocked]


@pytest.fixture
def browsing(served: Served, browser: Any) -> Iterator[Any]:
    """Open contexts with ``browsing(lang)``; each must make no request outside the server."""
    opened: list[Browsing] = []

    def open_context(lang: str = "en-US") -> Browsing:
        context = browser.new_context(locale=lang, extra_http_headers={"Accept-Language": lang},
                                      viewport={"width": 1360, "height": 900})
        made = Browsing(served, context)
        opened.append(made)
        return made

    yield open_context
    for made in opened:
        made.context.close()
    outside = [url for made in opened for url in made.outside()]
    assert not outside, f"pages requested outside the server: {outside}"


def screenshot(page: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
