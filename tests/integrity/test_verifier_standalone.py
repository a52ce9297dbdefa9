"""ticketflow-verify installs alone, into a fresh environment without ticketflow, and verifies an export."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from projections.integrity.export import export
from tests.integrity.conftest import make_sealed
from ticketflow.clock import FakeClock
from ticketflow.config import Settings

DISTRIBUTION = Path(__file__).resolve().parents[2] / "ticketflow-verify"


def test_the_verifier_installs_alone_and_verifies_an_export(tmp_path: Path) -> None:
    sealed = make_sealed(Settings(data_dir=tmp_path / "data"), tmp_path, FakeClock())
    # The auditor's machine: no PYTHONPATH (running the suite with PYTHONPATH=. would lend ticketflow).
    alone = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    venv = tmp_path / "auditor-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=alone)
    python = venv / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", str(DISTRIBUTION)],
                               capture_output=True, text=True, check=False, env=alone)
    assert installed.returncode == 0, installed.stderr
    away = tmp_path / "elsewhere"  # not the repository: nothing of ticketflow on the path
    away.mkdir()
    probe = subprocess.run([str(python), "-c", "import ticketflow"], cwd=away, capture_output=True, text=True,
                           check=False, env=alone)
    assert probe.returncode != 0 and "No module named 'ticketflow'" in probe.stderr
    directory = export(sealed.desk, sealed.sealer.store, tmp_path / "export") and tmp_path / "export"
    command = venv / "bin" / "ticketflow-verify"
    checked = subprocess.run([str(command), str(directory), "--key", sealed.sealer.keys.fingerprint()],
                             cwd=away, capture_output=True, text=True, check=False, env=alone)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith("OK: ")
    untrusted = subprocess.run([str(python), "-m", "ticketflow_verify", str(directory)], cwd=away,
                               capture_output=True, text=True, check=False, env=alone)
    assert untrusted.returncode == 3 and untrusted.stdout.startswith("SELF-CONSISTENT ONLY: ")
    sealed.sealer.close()
    sealed.desk.close()
