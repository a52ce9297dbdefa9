"""Every console page and form x every role x own/other team, against the one table of rules
(:data:`ticketflow.access.CONSOLE_ROUTES`): the API's permissions and scopes hold in the console."""

from __future__ import annotations

import re
from uuid import uuid4

import pytest

from tests.access.test_route_access_matrix import served_routes
from tests.console.conftest import ACCOUNTS, Console
from ticketflow.access import CONSOLE_ROUTES, Scope


def _path(template: str, console: Console, other: bool) -> str:
    ticket = console.seeded.tickets["billing" if other else "printer"]
    customer = console.seeded.customer_b if other else console.seeded.customer
    team = console.seeded.team_b if other else console.seeded.team_a
    return template.format(ticket_id=ticket, account_id=str(uuid4()), customer_id=customer, chart="volume",
                           webhook_id=str(uuid4()), delivery_id=str(uuid4()), token_id=str(uuid4()), team_id=team,
                           agent_id="nobody.here", template_id=str(uuid4()), policy_id=str(uuid4()),
                           calendar_id=str(uuid4()), digest="0" * 64, whatif_id=str(uuid4()))


def _expected(console: Console, who: str, method: str, template: str, other: bool) -> str:
    rule = CONSOLE_ROUTES[f"{method} {template}"]
    if rule.public:
        return "pass"
    principal = console.desk.account_principal(console.desk.find_account(ACCOUNTS[who][0]))  # type: ignore[arg-type]
    assert principal is not None
    if rule.permission is not None and not principal.may(rule.permission):
        return "403"
    if rule.scope is Scope.DESK and not principal.all_teams:
        return "403"
    if other and rule.scope in (Scope.TICKET, Scope.CUSTOMER, Scope.TEAM) and not principal.all_teams:
        return "404"
    return "pass"


def _observed(status: int) -> str:
    return {403: "403", 404: "404"}.get(status, "pass")


@pytest.mark.parametrize("who", ["admin", "agent_a", "supervisor_a", "auditor", "compliance"])
def test_each_console_route_answers_each_role_as_its_rule_says(console: Console, who: str) -> None:
    console.sign_in(who)
    csrf = console.csrf()
    wrong = []
    for method, template in served_routes(console.client.app, console=True):  # type: ignore[arg-type]
        if template in ("/signout", "/queues/updates", "/signin"):
            continue  # signing out ends the session the loop uses; the stream never ends by itself
        for other in (False, True):
            expected = _expected(console, who, method, template, other)
            path = _path(template, console, other)
            if method == "GET":
                response = console.client.get(path, follow_redirects=False)
            else:
                response = console.client.post(path, data={"csrf_token": csrf}, follow_redirects=False)
            observed = _observed(response.status_code)
            if expected == "pass" and observed == "404" and any(
                    f"{{{name}}}" in template for name in (
                        "account_id", "webhook_id", "token_id", "agent_id", "template_id", "policy_id", "calendar_id",
                        "whatif_id")):
                continue  # no such account, webhook, token, member, template or policy: past the access check
            if expected == "pass" and "{digest}" in template and (
                    observed == "404" or (observed == "403" and "attachments are ticket text" in response.text)):
                continue  # no such attachment, or ticket text this role sees masked: past the route's own rule
            if observed != expected:
                wrong.append(f"{method} {template} ({'other' if other else 'own'} team): expected {expected},"
                             f" got {response.status_code}")
    assert not wrong, "\n".join(wrong)


def test_without_a_session_every_page_but_sign_in_sends_you_to_sign_in(console: Console) -> None:
    console.client.cookies.clear()
    for method, template in served_routes(console.client.app, console=True):  # type: ignore[arg-type]
        rule = CONSOLE_ROUTES[f"{method} {template}"]
        response = console.client.request(method, _path(template, console, False), follow_redirects=False)
        if rule.public:
            assert response.status_code in (200, 303, 401), f"{method} {template}"
            continue
        assert response.status_code == 303, f"{method} {template}: {response.status_code}"
        assert response.headers["location"].startswith("/signin")


def test_a_form_without_its_token_is_refused_and_writes_nothing(console: Console) -> None:
    console.sign_in("agent_a")
    ticket = console.seeded.tickets["printer"]
    before = console.desk.log_position()
    for token in (None, "forged", console.csrf() + "x"):
        data = {"body": "hello", **({"csrf_token": token} if token else {})}
        response = console.client.post(f"/tickets/{ticket}/note", data=data, follow_redirects=False)
        assert response.status_code == 403
        assert "This form has expired" in response.text
    assert console.desk.log_position() == before


def test_a_team_b_agent_cannot_act_on_a_team_a_ticket_through_a_form(console: Console) -> None:
    console.sign_in("agent_b")
    csrf = console.csrf()
    before = console.desk.log_position()
    ticket = console.seeded.tickets["printer"]
    for action in ("reply", "note", "solve", "priority", "tags"):
        response = console.client.post(f"/tickets/{ticket}/{action}", data={"csrf_token": csrf, "body": "x",
                                                                           "priority": "high", "add": "x"})
        assert response.status_code == 404, action
        assert "打印机" not in response.text
    assert console.desk.log_position() == before


def test_linking_or_merging_into_another_teams_ticket_is_refused_as_not_found(console: Console) -> None:
    console.sign_in("agent_a")
    csrf = console.csrf()
    mine, theirs = console.seeded.tickets["printer"], console.seeded.tickets["billing"]
    for action in ("link", "merge"):
        response = console.client.post(f"/tickets/{mine}/{action}", data={"csrf_token": csrf, "ticket": theirs})
        assert response.status_code == 404, action
        assert "Not found, or not in your teams." in response.text
        response = console.client.post(f"/tickets/{mine}/{action}", data={"csrf_token": csrf, "ticket": theirs[:8]})
        assert response.status_code == 404, action


def test_an_auditor_reads_a_ticket_with_its_text_masked_and_no_forms(console: Console) -> None:
    console.sign_in("auditor")
    page = console.client.get(f"/tickets/{console.seeded.tickets['printer']}")
    assert page.status_code == 200
    assert "打印机" not in page.text and "***" in page.text
    assert 'action="/tickets/' not in page.text
    queue = console.client.get("/queues?queue=team")
    assert "打印机" not in queue.text


def test_pages_carry_a_strict_content_security_policy_and_are_never_cached(console: Console) -> None:
    console.sign_in("agent_a")
    for path in ("/queues", f"/tickets/{console.seeded.tickets['printer']}", "/account"):
        response = console.client.get(path)
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"
        assert not re.search(r"<script(?![^>]*\bsrc=\"/static/)", response.text), "inline script"


def test_the_api_still_answers_problem_json_and_unknown_pages_answer_html(console: Console) -> None:
    api = console.client.get("/api/v1/tickets/not-a-uuid/nothing", headers={"Accept": "text/html"})
    assert api.headers["content-type"].startswith("application/problem+json")
    page = console.client.get("/no-such-page", headers={"Accept": "text/html"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")


def test_a_ticket_form_without_the_version_it_showed_is_refused(console: Console) -> None:
    console.sign_in("agent_a")
    ticket = console.seeded.tickets["printer"]
    before = console.desk.log_position()
    for version in (None, "abc", "0"):
        data = {"csrf_token": console.csrf(), "body": "no version", **({"version": version} if version else {})}
        response = console.client.post(f"/tickets/{ticket}/note", data=data)
        assert response.status_code == 422
    assert console.desk.log_position() == before


def test_an_address_that_does_not_parse_is_a_not_found_page(console: Console) -> None:
    console.sign_in("agent_a")
    response = console.client.get("/tickets/not-a-uuid", headers={"Accept": "text/html"})
    assert response.status_code == 404 and "Not found, or not in your teams." in response.text
    response = console.client.get(f"/tickets/{console.seeded.tickets['printer']}/reply", headers={"Accept": "text/html"})
    assert response.status_code == 405 and response.headers["content-type"].startswith("text/html")


def test_an_admin_cannot_disable_their_own_account(console: Console) -> None:
    console.sign_in("admin")
    me = console.desk.find_account("zhang.admin")
    assert me is not None
    response = console.client.post(f"/admin/accounts/{me.id}/disable", data={"csrf_token": console.csrf()})
    assert response.status_code == 409
    assert not console.desk.find_account("zhang.admin").disabled  # type: ignore[union-attr]


def test_a_transfer_out_of_your_teams_lands_on_the_queue_with_a_notice(console: Console) -> None:
    console.sign_in("agent_a")
    ticket = console.seeded.tickets["printer"]
    page = console.client.get(f"/tickets/{ticket}").text
    version = re.search(r'name="version" value="(\d+)"', page).group(1)  # type: ignore[union-attr]
    response = console.client.post(f"/tickets/{ticket}/transfer", follow_redirects=True, data={
        "csrf_token": console.csrf(), "version": version, "team_id": str(console.seeded.team_b), "reason": "账单问题"})
    assert response.status_code == 200 and response.url.path == "/queues"
    assert "The ticket has left your teams." in response.text
