"""A process keeps the tokens it authenticated; revocations reach it through the log: at once when the
revocation is saved in this process, within the poll interval when another process saved it."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import pytest

from tests.support import ADMIN
from ticketflow import application
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.commands import AddTeamMember, DeactivateTeamMember, FormTeam, RevokeToken
from ticketflow.commands.access import IssueToken
from ticketflow.config import Settings
from ticketflow.domain.values import Role
from ticketflow.tokens import REVOCATION_POLL_SECONDS


class Ticks:
    """A monotonic clock moved by the test."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def issue(desk: TicketDesk, name: str) -> tuple[UUID, str]:
    _, token = desk.issue_token(IssueToken(name=name, role=Role.ADMIN), ADMIN)
    assert token is not None
    principal = desk.authenticate(token)
    assert principal is not None
    return principal.token_id, token


@pytest.fixture
def one_desk(clock: FakeClock) -> Iterator[TicketDesk]:
    desk = TicketDesk(Settings(database_url="memory://"), clock=clock)
    yield desk
    desk.close()


def test_a_token_revoked_in_this_process_stops_working_at_once(one_desk: TicketDesk) -> None:
    desk = one_desk
    ticks = Ticks()
    desk.tokens.clock = ticks  # the poll interval never passes: only the save itself can tell the cache
    token_id, token = issue(desk, "ops")
    assert desk.authenticate(token) is not None  # now served from the cache
    desk.revoke_token(RevokeToken(token_id=token_id, reason="left"), ADMIN)
    assert desk.authenticate(token) is None


def test_a_cached_token_is_checked_against_its_secret(one_desk: TicketDesk) -> None:
    desk = one_desk
    _, token = issue(desk, "ops")
    assert desk.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert desk.authenticate(token) is not None


@pytest.fixture
def two_processes(shared_store_settings: Settings, clock: FakeClock) -> Iterator[tuple[TicketDesk, TicketDesk]]:
    """Two desks on one store, as two API processes are."""
    first = TicketDesk(shared_store_settings, clock=clock)
    second = TicketDesk(shared_store_settings, clock=clock)
    yield first, second
    second.close()
    first.close()


def test_a_token_revoked_by_another_process_stops_working_within_the_poll_interval(
    two_processes: tuple[TicketDesk, TicketDesk],
) -> None:
    writer, server = two_processes
    ticks = Ticks()
    server.tokens.clock = ticks
    token_id, token = issue(writer, "ops")
    assert server.authenticate(token) is not None  # cached by the serving process
    writer.revoke_token(RevokeToken(token_id=token_id, reason="left"), ADMIN)
    ticks.now += REVOCATION_POLL_SECONDS
    assert server.authenticate(token) is None
    ticks.now += REVOCATION_POLL_SECONDS
    assert server.authenticate(token) is None  # remembered, not loaded again


def test_a_token_revoked_elsewhere_before_it_was_first_used_here_is_refused(
    two_processes: tuple[TicketDesk, TicketDesk],
) -> None:
    writer, server = two_processes
    server.tokens.clock = Ticks()
    _, used = issue(writer, "first")
    assert server.authenticate(used) is not None  # the serving process is following the log
    token_id, token = issue(writer, "second")
    writer.revoke_token(RevokeToken(token_id=token_id, reason="leaked"), ADMIN)
    assert server.authenticate(token) is None  # loaded now: its stored state says revoked


def test_a_token_seen_again_is_answered_with_its_principal_without_hashing_its_secret_again(
    one_desk: TicketDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    desk = one_desk
    _, token = issue(desk, "ops")
    first = desk.authenticate(token)
    hashed: list[str] = []
    original = application._hash_secret
    monkeypatch.setattr(application, "_hash_secret", lambda secret: hashed.append(secret) or original(secret))
    assert desk.authenticate(token) is first
    assert hashed == []
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")  # the same token id, another secret
    assert desk.authenticate(wrong) is None and desk.authenticate(wrong) is None
    assert len(hashed) == 2  # a wrong token is judged every time, never remembered
    assert desk.authenticate(token) is first


def test_a_token_forgotten_by_the_token_cache_is_judged_again(one_desk: TicketDesk, monkeypatch: pytest.MonkeyPatch) -> None:
    desk = one_desk
    token_id, token = issue(desk, "ops")
    first = desk.authenticate(token)
    desk.tokens._tokens.clear()  # (as when the cache is full: the next lookup loads a new copy)
    hashed: list[str] = []
    original = application._hash_secret
    monkeypatch.setattr(application, "_hash_secret", lambda secret: hashed.append(secret) or original(secret))
    again = desk.authenticate(token)
    assert again == first and len(hashed) == 1
    desk.revoke_token(RevokeToken(token_id=token_id, reason="left"), ADMIN)
    assert desk.authenticate(token) is None


def test_a_remembered_persons_token_reaches_the_teams_the_person_is_in_now(one_desk: TicketDesk) -> None:
    desk = one_desk
    team_a = desk.form_team(FormTeam(name="技术支持"), ADMIN).object_id
    team_b = desk.form_team(FormTeam(name="Billing"), ADMIN).object_id
    desk.add_team_member(AddTeamMember(team_id=team_a, agent_id="li.wei"), ADMIN)
    _, token = desk.issue_token(IssueToken(role=Role.AGENT, agent_id="li.wei"), ADMIN)
    assert token is not None
    first = desk.authenticate(token)
    assert first is not None and first.team_ids == {team_a}
    assert desk.authenticate(token) is first
    desk.add_team_member(AddTeamMember(team_id=team_b, agent_id="li.wei"), ADMIN)
    joined = desk.authenticate(token)
    assert joined is not None and joined.team_ids == {team_a, team_b}
    desk.deactivate_team_member(DeactivateTeamMember(team_id=team_a, agent_id="li.wei"), ADMIN)
    left = desk.authenticate(token)
    assert left is not None and left.team_ids == {team_b}
    assert desk.authenticate(token) is left
