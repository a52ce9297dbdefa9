"""Fixtures of the import tests over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import Api, build_api
from tests.support import ADMIN
from ticketflow.access import Permission
from ticketflow.commands.access import IssueToken
from ticketflow.config import Settings
from ticketflow.domain.values import Role


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def iapi(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Api]:
    extra: dict[str, Any] = {"rate_limit_burst": 10_000, "rate_limit_per_second": 10_000, "automation": False}
    if request.param == "sqlite":
        settings = Settings(data_dir=tmp_path / "data", **extra)
    else:
        settings = Settings(
            database_url=request.getfixturevalue("postgres_url"), embedded_projections=True, **extra
        )
    for api in build_api(settings):
        _, token = api.desk.issue_token(
            IssueToken(
                name="migrator",
                role=Role.INTEGRATION,
                team_ids=[api.team_a],
                permissions=[Permission.IMPORT, Permission.TICKETS_READ],
            ),
            ADMIN,
        )
        assert token is not None
        api.tokens["migrator"] = token
        yield api
