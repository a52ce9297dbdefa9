"""Exports are checked offline by ``python -m ticketflow.verify``; every tampering is named."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from projections.integrity.export import export
from ticketflow_verify.bundle import verify_export
from tests.integrity.support import Sealed, flip

Lines = list[dict[str, Any]]


def lines(directory: Path) -> Lines:
    return [json.loads(x) for x in (directory / "events.ndjson").read_text().splitlines()]


def rewrite(directory: Path, change: Callable[[Lines], Lines], fix_manifest: bool = True) -> None:
    """What a careful forger does: edit the events, then make the manifest agree."""
    changed = change(lines(directory))
    (directory / "events.ndjson").write_text("".join(json.dumps(x) + "\n" for x in changed))
    if fix_manifest:
        manifest = json.loads((directory / "manifest.json").read_text())
        manifest["events"] = len(changed)
        manifest["files"]["events.ndjson"] = hashlib.sha256((directory / "events.ndjson").read_bytes()).hexdigest()
        (directory / "manifest.json").write_text(json.dumps(manifest))


def where(line: dict[str, Any], number: int) -> str:
    return f"event at position {line['position']} ({line['originator_id']} v{line['version']}, line {number})"


@pytest.fixture(params=["full", "ticket"])
def exported(request: pytest.FixtureRequest, sealed: Sealed, tmp_path: Path) -> Path:
    directory = tmp_path / request.param
    export(sealed.desk, sealed.sealer.store, directory, ticket=sealed.tickets[0] if request.param == "ticket" else None)
    return directory


def test_the_standalone_verifier_accepts_an_intact_export_and_imports_no_ticketflow_internals(
    exported: Path, sealed: Sealed
) -> None:
    probe = (
        "import sys, ticketflow.verify.__main__ as m; code = m.main(sys.argv[1:]);"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ('eventsourcing', 'pydantic', 'psycopg', 'fastapi', 'projections')"
        " or (k.startswith('ticketflow.') and not k.startswith('ticketflow.verify')));"
        "print(bad); sys.exit(code)"
    )
    key = sealed.sealer.keys.fingerprint()
    result = subprocess.run([sys.executable, "-c", probe, str(exported), "--key", key], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: ") and result.stdout.rstrip().endswith("[]")


def test_a_changed_byte_is_named(exported: Path) -> None:
    def change(ls: Lines) -> Lines:
        ls[1]["state"] = base64.b64encode(flip(base64.b64decode(ls[1]["state"]))).decode()
        return ls
    target = lines(exported)[1]
    rewrite(exported, change)
    assert verify_export(exported)[0] == f"{where(target, 2)}: stored bytes do not match the sealed hash"


def test_a_changed_byte_with_a_recomputed_hash_fails_its_proof(sealed: Sealed, tmp_path: Path) -> None:
    from ticketflow_verify.chain import event_hash

    directory = tmp_path / "one"
    export(sealed.desk, sealed.sealer.store, directory, ticket=sealed.tickets[0])
    ls = lines(directory)
    state = flip(base64.b64decode(ls[-1]["state"]))
    ls[-1]["state"] = base64.b64encode(state).decode()
    ls[-1]["hash"] = event_hash(ls[-1]["originator_id"], ls[-1]["version"], ls[-1]["topic"], state,
                                bytes.fromhex(ls[-1]["previous"])).hex()
    rewrite(directory, lambda _: ls)
    assert verify_export(directory)[0] == f"{where(ls[-1], len(ls))}: not included in checkpoint #{json.loads((directory / 'manifest.json').read_text())['checkpoint']} (inclusion proof fails)"


def test_a_deleted_event_is_named(exported: Path) -> None:
    ls = lines(exported)
    victim = next(i for i, x in enumerate(ls) if x["version"] == 2)
    follower = next(x for x in ls[victim + 1:] if x["originator_id"] == ls[victim]["originator_id"])
    rewrite(exported, lambda ls: ls[:victim] + ls[victim + 1:])
    number = [x["position"] for x in lines(exported)].index(follower["position"]) + 1
    assert verify_export(exported)[0].startswith(f"{where(follower, number)}: ")


def test_two_reordered_events_are_named(exported: Path) -> None:
    def swap(ls: Lines) -> Lines:
        ls[1], ls[2] = ls[2], ls[1]
        return ls
    rewrite(exported, swap)
    moved = lines(exported)[1]  # the later event, now on line 2: the first line out of place
    assert verify_export(exported)[0] == f"{where(moved, 2)}: follows v{moved['version'] - 2} of its stream (events missing, inserted or reordered)"


def test_an_inserted_event_is_named(exported: Path) -> None:
    def insert(ls: Lines) -> Lines:
        forged = dict(ls[-1], version=ls[-1]["version"] + 1, position=ls[-1]["position"] + 1, ordinal=ls[-1]["ordinal"] + 1)
        return ls + [forged]
    rewrite(exported, insert)
    forged = lines(exported)[-1]
    assert verify_export(exported)[0].startswith(f"{where(forged, len(lines(exported)))}: ")


def test_a_truncated_tail_is_found(exported: Path) -> None:
    rewrite(exported, lambda ls: ls[:-1])
    problem = verify_export(exported)[0]
    if "ticket" in exported.name:
        assert problem.endswith("(events missing at the end)")
    else:
        assert "truncated or padded" in problem


def test_a_replaced_checkpoint_is_found(exported: Path) -> None:
    cps = [json.loads(x) for x in (exported / "checkpoints.ndjson").read_text().splitlines()]
    body = json.loads(cps[0]["body"])
    body["tree_size"] += 1
    cps[0]["body"] = json.dumps(body, sort_keys=True, separators=(",", ":"))
    (exported / "checkpoints.ndjson").write_text("".join(json.dumps(c) + "\n" for c in cps))
    assert verify_export(exported)[0] == "checkpoint #1: bad signature by key " + body["key_id"]


def test_tampering_in_the_middle_of_a_proof_is_named(sealed: Sealed, tmp_path: Path) -> None:
    directory = tmp_path / "one"
    export(sealed.desk, sealed.sealer.store, directory, ticket=sealed.tickets[1])
    def change(ls: Lines) -> Lines:
        proof = ls[2]["proof"]
        proof[len(proof) // 2] = flip(bytes.fromhex(proof[len(proof) // 2]), 5).hex()
        return ls
    rewrite(directory, change)
    line = lines(directory)[2]
    assert verify_export(directory)[0].startswith(f"{where(line, 3)}: not included in checkpoint #")


def test_the_cli_exit_status_names_the_problem(exported: Path) -> None:
    rewrite(exported, lambda ls: ls[:1] + ls[2:])
    result = subprocess.run([sys.executable, "-m", "ticketflow.verify", str(exported)], capture_output=True, text=True, check=False)
    assert result.returncode == 1 and result.stderr.startswith("TAMPERED: event at position ")


def test_a_time_range_export_proves_each_event_against_the_checkpoint(sealed: Sealed, tmp_path: Path) -> None:
    from datetime import timedelta

    events = sealed.desk.recorder.select_notifications(1, 1000)
    times = sorted(sealed.desk.mapper.to_domain_event(n).timestamp for n in events)
    since, until = times[len(times) // 3], times[2 * len(times) // 3] + timedelta(microseconds=1)
    directory = tmp_path / "range"
    manifest = export(sealed.desk, sealed.sealer.store, directory, since=since, until=until)
    assert 0 < manifest["events"] < len(events) and manifest["complete_log"] is False
    assert verify_export(directory) == []
    seen: set[str] = set()
    starts = []  # lines where a stream enters the export mid-history: their ``previous`` is taken on trust...
    for i, x in enumerate(lines(directory)):
        if x["originator_id"] not in seen and x["version"] > 1:
            starts.append(i)
        seen.add(x["originator_id"])
    assert starts
    i = starts[0]
    rewrite(directory, lambda ls: ls[:i] + [dict(ls[i], previous="00" * 32)] + ls[i + 1:])
    # ...but the event hash covers it, so a forged ``previous`` breaks the hash and the proof
    assert verify_export(directory)[0].startswith(f"{where(lines(directory)[i], i + 1)}: stored bytes do not match")
