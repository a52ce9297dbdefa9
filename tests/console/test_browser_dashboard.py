"""The supervisor dashboard in real Chromium: every chart drawn by plotly.js (an SVG with marks),
with the numbers the reports give, as a table and as CSV; its empty and error states."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from projections import reports, workflow
from tests.console.conftest import screenshot
from tests.support import ADMIN
from ticketflow.commands import PostReply, RateSatisfaction, SolveTicket
from ticketflow.commands import workflow as wf
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller

AGENT = Caller("li.wei", Role.AGENT, Channel.CONSOLE)


def _desk_with_history(served: Any) -> None:
    seeded = served.seeded
    desk = seeded.desk
    desk.define_sla_policy(wf.DefineSlaPolicy(name="标准", position=1, targets={
        "normal": {"first_reply_time": {"minutes": 600, "business_hours": False}}}), ADMIN)
    served.caught_up()
    for n, score in enumerate((5, 3, None)):
        ticket = UUID(seeded.open_ticket(f"网络故障 {n}"))
        served.caught_up()
        desk.post_reply(PostReply(ticket_id=ticket, body="正在处理"), AGENT)
        if score is not None:
            desk.solve_ticket(SolveTicket(ticket_id=ticket, resolution="重启路由器"), AGENT)
            desk.rate_satisfaction(RateSatisfaction(ticket_id=ticket, score=score), AGENT)
    deadline = time.monotonic() + 30
    while not served.app.state.services.read_side.read("workflow", lambda db: workflow.sla_compliance(db, "year")):
        assert time.monotonic() < deadline, "the SLA clock did not record the first replies"
        time.sleep(0.2)
    served.caught_up()


def test_a_supervisor_sees_every_chart_drawn_with_the_numbers_of_the_reports(browsing: Any) -> None:
    tab = browsing("zh-CN")
    _desk_with_history(tab.served)
    page = tab.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    tab.sign_in(page, "supervisor_a")
    page.click("nav.mainnav >> text=仪表盘")
    for chart in ("volume", "backlog", "sla", "satisfaction", "response_times"):
        page.wait_for_selector(f"#chart-{chart} svg.main-svg")
        marks = page.locator(f"#chart-{chart} .trace path, #chart-{chart} .slice path, #chart-{chart} .point path")
        assert marks.count() > 0, f"{chart}: nothing drawn"
    assert errors == [], errors
    screenshot(page, "dashboard-zh")
    read = tab.served.app.state.services.read_side.read
    team_a = str(tab.served.seeded.team_a)
    backlog = {r["status"]: r["tickets"] for r in read("tickets", lambda db: reports.backlog(db, {team_a}))}
    page.click("#figure-backlog summary")
    shown = {cells[1]: int(cells[2]) for cells in (row.split("\t") for row in
             page.inner_text("#table-backlog tbody").splitlines())}
    assert shown == {{"new": "新建", "open": "处理中", "pending": "等待客户", "on_hold": "挂起"}[s]: n
                     for s, n in backlog.items() if s in ("new", "open", "pending", "on_hold")}
    ratings = read("tickets", lambda db: reports.satisfaction(db, None, None, {team_a}))
    page.click("#figure-satisfaction summary")
    table = page.inner_text("#table-satisfaction tbody")
    assert f"5 ★\t{ratings[0]['scores']['5']}" in table and f"3 ★\t{ratings[0]['scores']['3']}" in table
    csv = page.request.get(f"{tab.served.base_url}/dashboard/satisfaction.csv")
    assert csv.status == 200 and csv.headers["content-type"].startswith("text/csv")
    body = csv.body().decode("utf-8-sig")
    assert body.splitlines()[0] == "评分,评价数" and "5 ★,1" in body


def test_a_period_without_tickets_shows_empty_charts_and_a_bad_date_says_so(browsing: Any) -> None:
    tab = browsing("en-US")
    page = tab.new_page()
    tab.sign_in(page, "supervisor_a")
    page.goto(f"{tab.served.base_url}/dashboard?since=2020-01-01&until=2020-01-31")
    assert page.locator("text=No data for this period.").count() >= 4
    response = page.goto(f"{tab.served.base_url}/dashboard?since=yesterday")
    assert response is not None and response.status == 422
    assert "was not valid" in page.inner_text("[role=alert]")
    screenshot(page, "dashboard-error-en")
