"""``serve`` runs uvicorn's C parser when it is installed (a dependency), h11 on request."""

from __future__ import annotations

import pytest

from api.server import protocol


def test_serve_uses_the_httptools_parser_by_default_and_h11_when_asked() -> None:
    assert protocol("auto") == "api.server:NoDelayHttpToolsProtocol"
    assert protocol("httptools") == "api.server:NoDelayHttpToolsProtocol"
    assert protocol("h11") == "api.server:NoDelayH11Protocol"


def test_an_unknown_parser_setting_is_refused() -> None:
    from pydantic import ValidationError

    from ticketflow.config import Settings

    with pytest.raises(ValidationError, match="http_parser"):
        Settings(http_parser="picohttp")  # type: ignore[arg-type]
