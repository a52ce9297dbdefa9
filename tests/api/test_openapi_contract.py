"""schemathesis against /openapi.json with an admin token: no 5xx, every response as documented."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ticketflow.config import Settings
from tests.api.conftest import Api, build_api

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def contract_api(tmp_path: Any) -> Iterator[Api]:
    yield from build_api(Settings(data_dir=tmp_path / "contract", rate_limit_burst=10**6, rate_limit_per_second=10**6))


def test_every_endpoint_answers_as_documented(contract_api: Api) -> None:
    api = contract_api
    api.open_ticket()  # something to find
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    auth = {"Authorization": f"Bearer {api.tokens['admin']}"}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            case.call_and_validate(headers=auth, checks=CHECKS)

        try:
            check()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:800]}")
    assert operations >= 35
    assert not failures, "\n\n".join(failures)
