"""`pip install .` installs four top-level packages with specific names, and the console script."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[2]
TOP_LEVEL = {"ticketflow", "ticketflow_cli", "api", "projections"}


def _pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_exactly_the_four_layers_are_installed_with_every_subpackage() -> None:
    include = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    installed = set(find_packages(where=str(ROOT), include=include))
    assert {name.split(".")[0] for name in installed} == TOP_LEVEL  # no `cli`, no `tests`, no `bench`
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in TOP_LEVEL
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert on_disk <= installed  # no subpackage left out


def test_the_console_script_is_ticketflow_cli_main() -> None:
    assert _pyproject()["project"]["scripts"] == {"ticketflow": "ticketflow_cli:main"}
    assert callable(importlib.import_module("ticketflow_cli").main)
    assert not (ROOT / "cli").exists() and not (ROOT / "ticketflow" / "cli").exists()
