"""In real Chromium: an auditor slides a ticket back in time, compares two instants and verifies the
record; a compliance reviewer finds a reveal in the access log; empty and error states."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from projections.integrity.sealer import seal_to_end
from tests.console.conftest import screenshot
from tests.support import ADMIN
from ticketflow.commands import AssignTicket, SolveTicket


def test_an_auditor_slides_a_ticket_back_in_time_and_verifies_it(browsing: Any) -> None:
    tab = browsing("en-US")
    served = tab.served
    ticket = served.seeded.tickets["printer"]
    desk = served.seeded.desk
    desk.assign_ticket(AssignTicket(ticket_id=UUID(ticket), assignee_id="li.wei"), ADMIN)
    desk.solve_ticket(SolveTicket(ticket_id=UUID(ticket), resolution="更换了搓纸轮"), ADMIN)
    seal_to_end(desk)
    page = tab.new_page()
    tab.sign_in(page, "auditor")
    page.click("nav.mainnav a:has-text('Audit')")
    page.fill("#ref", "#nothing0")
    page.click("form[action='/audit'] button[type=submit]")
    assert "No ticket or customer" in page.inner_text("#ref-error")  # the error state, next to the field
    page.fill("#ref", f"#{ticket[:8]}")
    page.click("form[action='/audit'] button[type=submit]")
    page.wait_for_selector("h1:has-text('History')")
    assert page.inner_text("td[data-field=status]") == "Solved"
    page.focus("#version")
    with page.expect_navigation():
        page.keyboard.press("Home")  # the slider to the first version; letting go shows it
    assert "version=1" in page.url
    assert page.inner_text("td[data-field=status]") == "New"
    assert page.inner_text("#version-shown").startswith("Version 1 of")
    diff = page.inner_text("#diff")
    assert "New" in diff and "Solved" in diff and "li.wei" in diff
    page.click("form[action*='/verify'] button[type=submit]")
    page.wait_for_selector(".verdict.ok")
    assert page.inner_text("#fingerprint").startswith("SHA256:")
    screenshot(page, "audit-ticket-en")


def test_a_compliance_reviewer_finds_a_reveal_in_the_access_log_in_chinese(browsing: Any) -> None:
    served = browsing("en-US").served
    agent = browsing("en-US")
    page = agent.new_page()
    agent.sign_in(page, "agent_a")
    page.goto(f"{served.base_url}/customers/{served.seeded.customer}")
    page.click("summary:has-text('Show personal data')")
    page.fill("#purpose", "回电确认打印机型号")
    page.click("form[action$='/reveal'] button[type=submit]")
    page.wait_for_selector("text=this view is recorded in the access log")
    served.caught_up()

    tab = browsing("zh-CN")
    page = tab.new_page()
    tab.sign_in(page, "compliance")
    page.click("nav.mainnav a:has-text('合规审查')")
    page.wait_for_selector("table.access")
    row = page.inner_text("table.access tbody tr")
    assert "li.wei" in row and "回电确认打印机型号" in row and "xiaoming" not in page.content()
    screenshot(page, "compliance-access-log-zh")
    page.click("nav.tabs-nav a[href='/compliance/erasures']")
    assert page.inner_text("p.empty")  # the empty state: nobody erased yet
    assert "Erasures" not in page.inner_text("main")  # translated
    page.goto(f"{served.base_url}/compliance/access-log?customer=bad")
    assert page.inner_text("#customer-error")  # the error state, next to the field
