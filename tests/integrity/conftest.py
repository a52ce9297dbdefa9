from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from datetime import UTC, datetime, timedelta

import pytest

from projections.integrity import verifier
from projections.integrity.keys import KeyRing
from projections.integrity.sealer import Sealer
from ticketflow.application import TicketDesk
from ticketflow.clock import FakeClock
from ticketflow.config import Settings
from tests.integrity.support import Sealed, populate


class Ticking:
    """Checkpoint times that move forward one second per reading (no wall clock)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def make_sealed(settings: Settings, tmp_path, clock: FakeClock, env: dict[str, str] | None = None) -> Sealed:  # type: ignore[no-untyped-def]
    desk = TicketDesk(settings.model_copy(update={"snapshot_interval": 3}), clock=clock, env=env)
    tickets = populate(desk)
    sealer = Sealer(desk, every_events=5, every_seconds=3600, anchor=tmp_path / "anchor.ndjson",
                    keys=KeyRing(tmp_path / "keys"), now=Ticking())
    sealer.catch_up(checkpoint=True)
    return Sealed(desk, sealer, tickets)


@pytest.fixture
def sealed(shared_store_settings: Settings, tmp_path, clock: FakeClock) -> Iterator[Sealed]:  # type: ignore[no-untyped-def]
    s = make_sealed(shared_store_settings, tmp_path, clock)
    yield s
    s.sealer.close()
    s.desk.close()


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What each parallel pass returned (None: it stood down for the single pass)."""
    seen: list[Any] = []
    original = verifier._parallel_pass  # noqa: SLF001

    def spy(*args: Any) -> Any:
        result = original(*args)
        seen.append(result)
        return result

    monkeypatch.setattr(verifier, "_parallel_pass", spy)
    return seen
