"""The offline verifier stays standalone: standard library, ``cryptography`` and itself only."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

VERIFY = Path(__file__).resolve().parents[2] / "ticketflow-verify" / "ticketflow_verify"


def test_the_verifier_package_imports_only_the_stdlib_cryptography_and_itself() -> None:
    offenders = []
    for path in VERIFY.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else [])
            for name in names:
                top = name.split(".")[0]
                allowed = top in sys.stdlib_module_names or top in ("__future__", "cryptography") or (
                    name.startswith("ticketflow_verify"))
                if not allowed:
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
