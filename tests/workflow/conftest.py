"""The workflow tests' desk on each store, with the automation's world around it (``world``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.workflow.test_automation import MONDAY_9_SHANGHAI, World
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.config import Settings


@pytest.fixture
def world(store_settings: Settings) -> Iterator[World]:
    clock = FakeClock(MONDAY_9_SHANGHAI)
    desk = TicketDesk(store_settings, clock=clock)
    w = World(desk, clock)
    yield w
    w.read_side.close()
    desk.close()
