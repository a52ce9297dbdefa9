"""The console in real Chromium: sign in, queues, the ticket page (part 1 of the console).

Each test looks at the page as a person would (visible text, what a click does) and takes a
screenshot into tests/console/screenshots/ for people to look at."""

from __future__ import annotations

import re
from typing import Any

from tests.console.conftest import PASSWORD, screenshot


def test_an_agent_signs_in_finds_a_ticket_in_the_queue_replies_and_solves_it(browsing: Any) -> None:
    tab = browsing("en-US")
    page = tab.new_page()
    tab.sign_in(page, "agent_a")
    page.click("text=My teams' tickets")
    screenshot(page, "queue-team-en")
    page.click("text=打印机卡纸，无法打印")
    page.wait_for_selector("h1:has-text('打印机卡纸')")
    assert page.inner_text("#ticket-status") == "New"
    page.fill("#reply-body", "您好，请先关闭打印机，取出卡住的纸张后再试。")
    page.click("#reply-form button[type=submit]")
    page.wait_for_selector("text=Reply sent.")
    assert "取出卡住的纸张" in page.inner_text("#timeline")
    page.click("summary:has-text('Solve')")
    page.fill("textarea[name=resolution]", "清除卡纸")
    page.click("form[action$='/solve'] button[type=submit]")
    page.wait_for_selector("text=Solved.")
    assert page.inner_text("#ticket-status") == "Solved"
    screenshot(page, "ticket-solved-en")


def test_a_second_agents_stale_change_is_refused_and_says_so(browsing: Any) -> None:
    first, second = browsing("en-US"), browsing("en-US")
    page_a, page_b = first.new_page(), second.new_page()
    first.sign_in(page_a, "agent_a")
    second.sign_in(page_b, "agent_a2")
    ticket = first.served.seeded.tickets["printer"]
    for page in (page_a, page_b):
        page.goto(f"{first.served.base_url}/tickets/{ticket}")
    page_b.fill("#reply-body", "I am on it.")
    page_b.click("#reply-form button[type=submit]")
    page_b.wait_for_selector("text=Reply sent.")
    page_a.fill("#reply-body", "Another answer written on the old version")
    page_a.click("#reply-form button[type=submit]")
    message = page_a.wait_for_selector("#reply-form .field-error")
    assert "Someone else changed this ticket" in message.inner_text()
    assert page_a.input_value("#reply-body") == "Another answer written on the old version"  # the text is kept
    assert "I am on it." in page_a.inner_text("#timeline")  # and the page shows the newer version
    screenshot(page_a, "ticket-stale-refused-en")


def test_a_team_b_agent_cannot_open_a_team_a_ticket_page(browsing: Any) -> None:
    tab = browsing("en-US")
    page = tab.new_page()
    tab.sign_in(page, "agent_b")
    response = page.goto(f"{tab.served.base_url}/tickets/{tab.served.seeded.tickets['printer']}")
    assert response is not None and response.status == 404
    assert "Not found, or not in your teams." in page.inner_text("h1")
    assert "打印机" not in page.content()
    screenshot(page, "ticket-other-team-404-en")


def test_the_language_switch_shows_chinese_labels_and_times_in_the_desks_zone(browsing: Any) -> None:
    tab = browsing("en-US")
    tab.served.seeded.open_ticket("财务部三楼的彩色激光打印机从昨天下午开始一直卡纸并且显示硒鼓错误，重启之后仍然无法打印任何文件")
    tab.served.caught_up()
    page = tab.new_page()
    tab.sign_in(page, "agent_a")
    assert page.inner_text("nav.mainnav").split() == ["Queues", "Dashboard", "Search"]
    page.click("nav.langs >> text=中文")
    page.wait_for_selector("nav.mainnav >> text=队列")
    page.click("text=我所在服务组的工单")
    body = page.inner_text("body")
    for label in ("我所在服务组的工单", "未分配", "新建", "状态", "优先级", "退出登录"):
        assert label in body
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日 \d{2}:\d{2}", body), "dates in the zh-CN format"
    assert "Asia/Shanghai" in page.inner_text("footer")
    screenshot(page, "queue-team-zh")
    page.set_viewport_size({"width": 390, "height": 844})  # a phone
    screenshot(page, "queue-team-zh-narrow")
    page.set_viewport_size({"width": 1360, "height": 900})
    page.click("text=打印机卡纸，无法打印")
    page.wait_for_selector("text=时间线")
    assert "公开回复" in page.inner_text("body")
    screenshot(page, "ticket-zh")


def test_a_chinese_browser_gets_chinese_from_its_accept_language(browsing: Any) -> None:
    tab = browsing("zh-CN")
    page = tab.new_page()
    page.goto(tab.served.base_url + "/signin")
    assert page.inner_text("h1") == "登录服务台"


def test_new_tickets_appear_in_the_queue_without_reloading(browsing: Any) -> None:
    tab = browsing("en-US")
    page = tab.new_page()
    tab.sign_in(page, "agent_a")
    page.click("text=My teams' tickets")
    page.wait_for_selector("table.tickets")
    page.evaluate("window.__sameDocument = true")
    tab.served.seeded.open_ticket("新工单：邮箱无法收信")
    page.wait_for_selector("text=新工单：邮箱无法收信", timeout=20_000)
    assert page.evaluate("window.__sameDocument === true"), "the page was not reloaded"
    assert page.is_visible("#live-note")


def test_a_wrong_password_is_refused_next_to_the_field_and_an_empty_queue_says_so(browsing: Any) -> None:
    tab = browsing("en-US")
    page = tab.new_page()
    page.goto(tab.served.base_url + "/queues")
    page.wait_for_url("**/signin?next=**")
    page.fill("#username", "wang.fang")
    page.fill("#password", "not the password")
    page.click("button[type=submit].primary")
    error = page.wait_for_selector("#signin-error")
    assert "not right" in error.inner_text()
    assert page.get_attribute("#password", "aria-invalid") == "true"
    screenshot(page, "signin-refused-en")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit].primary")
    page.wait_for_url("**/queues**")
    page.click("text=Waiting on customer")
    assert "This queue is empty" in page.inner_text(".empty")
    screenshot(page, "queue-empty-en")


def test_an_admin_creates_an_account_the_person_signs_in_and_disabling_it_ends_their_session(browsing: Any) -> None:
    admin_tab, person_tab = browsing("en-US"), browsing("en-US")
    admin = admin_tab.new_page()
    admin_tab.sign_in(admin, "admin")
    admin.click("nav.mainnav >> text=Administration")
    admin.fill("#username", "sun.new")
    admin.fill("#display_name", "孙新")
    admin.select_option("#role", "auditor")
    admin.fill("form[action='/admin/accounts'] #password", "short")
    admin.click("text=Create account")
    assert "at least 10 characters" in admin.inner_text("form[action='/admin/accounts'] .field-error")
    admin.fill("form[action='/admin/accounts'] #password", "a-long-enough-password")
    admin.click("text=Create account")
    admin.wait_for_selector("text=Account created.")
    screenshot(admin, "accounts-en")
    person = person_tab.new_page()
    person.goto(person_tab.served.base_url + "/signin")
    person.fill("#username", "sun.new")
    person.fill("#password", "a-long-enough-password")
    person.click("button[type=submit].primary")
    person.wait_for_url("**/queues**")
    row = admin.locator("tr", has_text="sun.new")
    asked: list[str] = []
    admin.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    row.locator("button:has-text('Disable')").click()
    admin.wait_for_selector("text=Account disabled")
    assert asked == ["Disable sun.new? Their sessions end at once."]  # asked before disabling
    person.goto(person_tab.served.base_url + "/queues")
    person.wait_for_url("**/signin?next=**")


def test_every_console_page_makes_no_request_outside_the_server(browsing: Any) -> None:
    tab = browsing("zh-CN")
    page = tab.new_page()
    tab.sign_in(page, "admin")
    for path in ("/queues", "/queues?queue=unassigned", f"/tickets/{tab.served.seeded.tickets['billing']}",
                 "/admin/accounts", "/account", "/docs", "/redoc"):
        page.goto(tab.served.base_url + path)
        page.wait_for_load_state("networkidle")
    assert tab.requests and not tab.outside()

