"""Customer 360 and search in real Chromium (part 2 of the console): the main action, the empty
state and the error state of each, in English and Chinese."""

from __future__ import annotations

from typing import Any

from tests.console.conftest import screenshot
from ticketflow.commands import RegisterCustomer
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller

RECORDED = "ticketflow.domain.access:DataAccess.Recorded"


def _access_records(desk: Any) -> list[Any]:
    found = desk.recorder.select_notifications(1, 10**6, topics=[RECORDED])
    return [desk.mapper.to_domain_event(n) for n in found]


def test_an_agent_opens_the_customer_360_and_reveals_personal_data_for_a_recorded_purpose(browsing: Any) -> None:
    tab = browsing("en-US")
    page = tab.new_page()
    tab.sign_in(page, "agent_a")
    page.goto(f"{tab.served.base_url}/tickets/{tab.served.seeded.tickets['printer']}")
    page.click("#customer-link")
    page.wait_for_selector("h1:has-text('Customer 360')")
    assert page.inner_text("dd[data-field=email]") == "***"
    assert "打印机卡纸" in page.inner_text("table.tickets")
    page.click("summary:has-text('Show personal data')")
    page.fill("#purpose", "   ")
    page.click("form[action$='/reveal'] button[type=submit]")
    assert "Say why you need to see" in page.inner_text("#purpose-error")  # the error state, next to the field
    assert page.inner_text("dd[data-field=email]") == "***"
    page.fill("#purpose", "回电确认打印机型号")
    page.click("form[action$='/reveal'] button[type=submit]")
    page.wait_for_selector("text=this view is recorded in the access log")
    assert page.inner_text("dd[data-field=email]") == "xiaoming@example.cn"
    screenshot(page, "customer-revealed-en")
    records = _access_records(tab.served.seeded.desk)
    assert [(r.purpose, r.actor_id, sorted(r.fields)) for r in records] == [
        ("回电确认打印机型号", "li.wei", ["email", "name", "phone"])]


def test_a_customer_without_tickets_in_your_teams_shows_an_empty_state_in_chinese(browsing: Any) -> None:
    tab = browsing("zh-CN")
    desk = tab.served.seeded.desk
    agent = Caller("li.wei", Role.AGENT, Channel.CONSOLE, permissions=None, team_ids=frozenset({tab.served.seeded.team_a}))
    new = desk.register_customer(RegisterCustomer(name="赵新客户"), agent).object_id
    tab.served.caught_up()
    page = tab.new_page()
    tab.sign_in(page, "agent_a")
    page.goto(f"{tab.served.base_url}/customers/{new}")
    assert "该客户在您所在服务组中没有工单。" in page.inner_text("body")
    assert "暂无互动记录。" in page.inner_text("body")
    screenshot(page, "customer-empty-zh")


def test_another_teams_customer_is_not_found(browsing: Any) -> None:
    tab = browsing("en-US")
    page = tab.new_page()
    tab.sign_in(page, "agent_a")
    response = page.goto(f"{tab.served.base_url}/customers/{tab.served.seeded.customer_b}")
    assert response is not None and response.status == 404
    assert "Alice" not in page.content()


def test_search_finds_chinese_text_highlights_it_and_stays_in_your_teams(browsing: Any) -> None:
    tab = browsing("zh-CN")
    page = tab.new_page()
    tab.sign_in(page, "agent_a")
    page.click("nav.mainnav >> text=搜索")
    page.fill("#q", "打印机")
    page.click("form.searchbar button[type=submit]")
    page.wait_for_selector("ol.hits mark")
    assert page.inner_text("ol.hits mark") == "打印机"
    screenshot(page, "search-zh")
    page.click("ol.hits a.ref")
    page.wait_for_selector("h1:has-text('打印机卡纸')")
    other = browsing("en-US")
    page_b = other.new_page()
    other.sign_in(page_b, "agent_b")
    page_b.goto(f"{tab.served.base_url}/search?q=打印机")
    assert "No ticket in your teams matches" in page_b.inner_text("body")  # team B's agent: the empty state
    page_b.goto(f"{tab.served.base_url}/search?q=Invoice")
    assert "Invoice shows the wrong amount" in page_b.inner_text("ol.hits")


def test_a_search_that_is_too_long_is_refused_next_to_the_field(browsing: Any) -> None:
    tab = browsing("en-US")
    page = tab.new_page()
    tab.sign_in(page, "agent_a")
    response = page.goto(f"{tab.served.base_url}/search?q={'长' * 201}")
    assert response is not None and response.status == 422
    assert "at most 200 characters" in page.inner_text("#q-error")
