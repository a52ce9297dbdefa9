"""Layers point inward: the domain and application import no web framework and no read side."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN_IN_CORE = ("api", "projections", "ticketflow_cli", "fastapi", "starlette", "uvicorn", "typer", "rich")


def imported_modules(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_the_core_imports_no_framework_and_no_outer_layer() -> None:
    offenders = {
        path: sorted(names & set(FORBIDDEN_IN_CORE))
        for path, names in imported_modules("ticketflow").items()
        if names & set(FORBIDDEN_IN_CORE)
    }
    assert offenders == {}


def test_projections_do_not_import_the_http_or_cli_layers() -> None:
    offenders = {
        path: sorted(names & {"api", "ticketflow_cli", "fastapi"})
        for path, names in imported_modules("projections").items()
        if names & {"api", "ticketflow_cli", "fastapi"}
    }
    assert offenders == {}
