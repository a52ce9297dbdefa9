"""The license the package metadata declares is the license shipped beside the code."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: SHA-256 of https://www.apache.org/licenses/LICENSE-2.0.txt, the unmodified Apache License 2.0.
APACHE_2_0_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"


@pytest.mark.parametrize(
    "distribution", [ROOT, ROOT / "ticketflow-verify"], ids=["ticketflow", "ticketflow-verify"]
)
def test_pyproject_declares_apache_2_0_and_license_holds_its_full_text(distribution: Path) -> None:
    project = tomllib.loads((distribution / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    license_field = project["license"]
    declared = license_field["text"] if isinstance(license_field, dict) else license_field
    assert declared == "Apache-2.0"
    text = (distribution / "LICENSE").read_bytes()
    assert b"Apache License\n                           Version 2.0, January 2004" in text
    assert hashlib.sha256(text).hexdigest() == APACHE_2_0_SHA256  # the whole standard text, unedited
