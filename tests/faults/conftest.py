"""Fixtures: the API test desk (teams, a token per role) from tests/api."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.conftest import Api, build_api
from ticketflow.config import Settings


@pytest.fixture
def api(tmp_path: Any) -> Iterator[Api]:
    yield from build_api(Settings(data_dir=tmp_path / "api-data", rate_limit_burst=10_000, rate_limit_per_second=10_000))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `serial` (a PostgreSQL restart under load) run after everything else."""
    items.sort(key=lambda item: item.get_closest_marker("serial") is not None)  # stable: the rest keep their order
