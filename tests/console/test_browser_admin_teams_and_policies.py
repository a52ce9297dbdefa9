"""In real Chromium: an admin manages a team's members and rotation, publishes a routing rule (from
the empty state), and is told next to the form what is wrong with a calendar — in Chinese."""

from __future__ import annotations

from typing import Any

from tests.console.conftest import screenshot


def test_an_admin_manages_members_and_routing_rules_in_chinese(browsing: Any) -> None:
    tab = browsing("zh-CN")
    served = tab.served
    page = tab.new_page()
    tab.sign_in(page, "admin")
    page.click("nav.mainnav a[href='/admin/teams']")
    page.click(f"a[href='/admin/teams/{served.seeded.team_a}']")
    page.fill("#agent_id", "zhao.lei")
    page.fill("#skills", "打印机，网络")
    page.click("form[action$='/members'] button[type=submit]")
    page.wait_for_selector("tr[data-member='zhao.lei']")
    assert "打印机" in page.input_value("tr[data-member='zhao.lei'] input[name=skills]")
    page.click("tr[data-member='zhao.lei'] summary")
    page.fill("tr[data-member='zhao.lei'] input[name=reason]", "休假至 12-15")
    page.click("tr[data-member='zhao.lei'] form[action$='/deactivate'] button[type=submit]")
    page.wait_for_selector("p.notice")
    assert not served.seeded.desk.get_team(served.seeded.team_a).members["zhao.lei"]["active"]
    screenshot(page, "admin-team-zh")

    page.click("nav.tabs-nav a[href='/admin/routing']")
    assert page.inner_text("p.empty")  # the empty state: no rule yet
    page.fill("#rule-name", "打印机故障")
    page.select_option("#rule-team", str(served.seeded.team_b))
    page.fill("#rule-keywords", "打印机，卡纸")
    page.check("input[name=channels][value=email]")
    page.click("#add-rule button[type=submit]")
    page.wait_for_selector("tr[data-rule='打印机故障']")
    assert "卡纸" in page.inner_text("tr[data-rule='打印机故障']")
    screenshot(page, "admin-routing-zh")

    page.click("nav.tabs-nav a[href='/admin/calendars']")
    page.fill("#cal-name", "北京工作日")
    page.fill("#day-0", "九点到六点")
    page.click("form[action='/admin/calendars'] button[type=submit]")
    assert page.inner_text("form[action='/admin/calendars'] .field-error")  # the error state, next to the form
    assert page.input_value("#day-0") == "九点到六点"
