"""The views' JSON text: the same as ``json.dumps`` with the views' options, whatever the value."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from projections.sql import dumps, loads
from ticketflow.domain.values import Status

VALUES: list[Any] = [
    None,
    "",
    '无法登录 [紧急]\n"quoted"',
    0,
    -7,
    2.5,
    True,
    [],
    {},
    (1, "二"),
    {"new": "open", "field": "status", "old": None},
    [{"b": [1, {"d": None, "c": "é"}], "a": 1}],
    datetime(2026, 12, 3, 9, 14, tzinfo=UTC),
    UUID("12345678-1234-5678-1234-567812345678"),
    Status.OPEN,
    {"members.li.wei": {"skills": ["中文", "billing"], "role": "agent", "active": True}},
    {3: "int key"},
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_dumps_writes_what_json_dumps_writes_with_sorted_keys_and_unicode_kept(value: Any) -> None:
    text = dumps(value)
    assert text == json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    assert loads(text) == json.loads(text)
