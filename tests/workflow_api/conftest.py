"""An API on a fake clock, without the automation loop (these tests drive reminders and
surveys by hand), with a team setup and a token per role."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from ticketflow.application import TicketDesk
from ticketflow.automation import survey_id_for
from ticketflow.clock import FakeClock
from ticketflow.commands import GiveConsent
from ticketflow.commands.workflow import IssueSurvey
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Consent, Role
from ticketflow.errors import RuleViolation
from ticketflow.metadata import Caller
from tests.api.conftest import Api, build_api

SYSTEM = Caller("automation", Role.SYSTEM, Channel.SYSTEM)


def build(settings: Settings, clock: FakeClock) -> Iterator[Api]:
    """The shared API set-up on a fake clock, its customer consenting to surveys."""
    for api in build_api(settings, clock):
        api.desk.give_consent(GiveConsent(customer_id=api.customer, purpose=Consent.SURVEYS),
                              Caller(str(api.customer), Role.CUSTOMER, Channel.WEB_FORM))
        yield api


@pytest.fixture
def api(tmp_path: Path, clock: FakeClock) -> Iterator[Api]:
    settings = Settings(data_dir=tmp_path / "data", automation=False, rate_limit_burst=10_000, rate_limit_per_second=10_000)
    yield from build(settings, clock)


def survey_token(desk: TicketDesk, ticket_id: UUID) -> str:
    """The survey link's token of a solved ticket (issued here unless already issued)."""
    try:
        desk.issue_survey(IssueSurvey(ticket_id=ticket_id), SYSTEM)
    except RuleViolation:
        pass  # already issued
    return desk.survey_token(ticket_id, survey_id_for(ticket_id))


def solve(api: Api, ticket_id: str, resolution: str = "") -> None:
    response = api.post("agent_a", f"/api/v1/tickets/{ticket_id}/solve", {"resolution": resolution})
    assert response.status_code == 200, response.text
