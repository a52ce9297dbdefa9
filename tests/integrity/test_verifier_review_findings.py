"""What a second outside review forged, each now refused (#9 §2)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from projections.integrity.export import export
from projections.integrity.sealer import TamperDetected
from projections.integrity.verifier import verify_store
from tests.integrity.support import Sealed, event_at, populate, raw
from ticketflow.writer_mac import MAC_BYTES, MAGIC
from ticketflow_verify.cli import OK, TAMPERED, USAGE, main


def _edit(directory: Path, name: str, change: Any) -> None:
    """Edit one file of an export the way a careful forger does: the manifest's digests follow."""
    path = directory / name
    path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")
    manifest = json.loads((directory / "manifest.json").read_text())
    if name != "manifest.json":
        manifest["files"][name] = hashlib.sha256(path.read_bytes()).hexdigest()
        (directory / "manifest.json").write_text(json.dumps(manifest))


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in text.splitlines() if x.strip()]


def _manifest(directory: Path, change: Any) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    change(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest))


def test_a_ticket_export_cut_short_and_relabelled_a_range_is_never_called_complete(
    sealed: Sealed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "one"
    export(sealed.desk, sealed.sealer.store, directory, ticket=sealed.tickets[0])
    _edit(directory, "events.ndjson", lambda t: "".join(json.dumps(e) + "\n" for e in _lines(t)[:2]))
    _manifest(directory, lambda m: (m["scope"].update(to="2100-01-01T00:00:00+00:00"), m.update(events=2)))
    code = main([str(directory), "--key", sealed.sealer.keys.fingerprint()])
    out = capsys.readouterr().out
    assert code == OK and "complete history" not in out and "not that none is missing" in out


def test_a_ticket_export_holding_another_tickets_events_or_none_is_tampered(sealed: Sealed, tmp_path: Path) -> None:
    key = sealed.sealer.keys.fingerprint()
    a, b = tmp_path / "a", tmp_path / "b"
    export(sealed.desk, sealed.sealer.store, a, ticket=sealed.tickets[0])
    export(sealed.desk, sealed.sealer.store, b, ticket=sealed.tickets[1])
    for name in ("events.ndjson", "heads.ndjson"):
        _edit(a, name, lambda _t, n=name: (b / n).read_text(encoding="utf-8"))
    assert main([str(a), "--key", key]) == TAMPERED
    empty = tmp_path / "empty"
    export(sealed.desk, sealed.sealer.store, empty, ticket=sealed.tickets[2])
    _edit(empty, "events.ndjson", lambda _t: "")
    _manifest(empty, lambda m: m.update(events=0))
    assert main([str(empty), "--key", key]) == TAMPERED


def test_with_an_anchor_an_export_proven_against_an_older_checkpoint_is_a_rollback_whatever_the_key(
    sealed: Sealed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    older = tmp_path / "older"
    export(sealed.desk, sealed.sealer.store, older, ticket=sealed.tickets[0])
    populate(sealed.desk, tickets=1, notes=3)
    sealed.sealer.catch_up(checkpoint=True)
    newer = tmp_path / "newer"
    export(sealed.desk, sealed.sealer.store, newer)
    _edit(older, "checkpoints.ndjson", lambda _t: (newer / "checkpoints.ndjson").read_text(encoding="utf-8"))
    code = main([str(older), "--anchor", str(tmp_path / "anchor.ndjson"), "--key", sealed.sealer.keys.fingerprint()])
    assert code == TAMPERED and "ROLLBACK" in capsys.readouterr().err


def _append_unmaced_next_event(sealed: Sealed) -> int:
    desk, ticket = sealed.desk, sealed.tickets[0]
    genuine = event_at(desk, desk.log_position())
    postgres = hasattr(desk.recorder.datastore, "schema")
    raw(desk.recorder, "INSERT INTO {t} (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)",
        (ticket if postgres else ticket.hex, desk.get_ticket(ticket).version + 1, genuine["topic"],
         bytes(genuine["state"])[len(MAGIC) + MAC_BYTES:]))
    return desk.log_position()


def test_nothing_in_the_database_can_reopen_the_window_for_rows_without_a_writer_mac(sealed: Sealed) -> None:
    # The sealer keeps no "MACs required from here on" flag an attacker could delete: every row it
    # seals needs a MAC, unless the operator declared a cut-over (TICKETFLOW_UNMACED_EVENTS_UNTIL).
    forged = _append_unmaced_next_event(sealed)
    with pytest.raises(TamperDetected, match=f"position {forged}: .*has no writer MAC"):
        sealed.sealer.catch_up()
    assert not verify_store(sealed.desk, sealed.sealer.store, snapshots=False).ok


def test_a_never_sealed_store_whose_rows_lost_their_macs_is_refused(tmp_path: Path) -> None:
    from tests.integrity.conftest import make_sealed
    from ticketflow.clock import FakeClock
    from ticketflow.config import Settings
    from ticketflow.application import TicketDesk
    from tests.support import Desk

    desk = TicketDesk(Settings(data_dir=tmp_path / "fresh"))
    Desk(desk).open("never sealed")
    rows = raw(desk.recorder, "SELECT notification_id, state FROM {t}")
    for row in rows:  # strip every MAC: what an attacker with the database can do before any sealing
        raw(desk.recorder, "UPDATE {t} SET state = ? WHERE notification_id = ?",
            (bytes(row["state"])[len(MAGIC) + MAC_BYTES:], row["notification_id"]))
    desk.close()
    with pytest.raises(TamperDetected, match="has no writer MAC"):
        make_sealed(Settings(data_dir=tmp_path / "fresh"), tmp_path / "sealer", FakeClock())


@pytest.mark.parametrize("damage", [
    ("manifest.json", lambda t: "[]"),
    ("manifest.json", lambda t: json.dumps({**json.loads(t), "scope": "x"})),
    ("manifest.json", lambda t: json.dumps({**json.loads(t), "files": ["/etc/passwd"]})),
    ("manifest.json", lambda t: json.dumps({**json.loads(t), "files": {"/etc/passwd": "00"}})),
    ("checkpoints.ndjson", lambda t: json.dumps({"seq": 1, "body": "[]", "signature": "00"}) + "\n"),
    ("events.ndjson", lambda t: "[1, 2]\n"),
    ("events.ndjson", lambda t: json.dumps({**_lines(t)[0], "version": None}) + "\n"),
    ("events.ndjson", lambda t: json.dumps({**_lines(t)[0], "state": 5}) + "\n"),
    ("keys.json", lambda t: "[{\"key_id\": \"x\", \"public_key\": \"zz\"}]"),
], ids=lambda d: d[0] if isinstance(d, tuple) else "")
def test_a_malformed_export_is_named_tampered_never_a_traceback(
    sealed: Sealed, tmp_path: Path, damage: tuple[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "export"
    export(sealed.desk, sealed.sealer.store, directory)
    name, change = damage
    (directory / name).write_text(change((directory / name).read_text(encoding="utf-8")), encoding="utf-8")
    assert main([str(directory), "--key", sealed.sealer.keys.fingerprint()]) == TAMPERED
    assert capsys.readouterr().err.startswith("TAMPERED: ")


def test_an_anchor_line_with_an_absurd_number_is_a_usage_error(sealed: Sealed, tmp_path: Path) -> None:
    directory = tmp_path / "export"
    export(sealed.desk, sealed.sealer.store, directory)
    for line in ('{"seq": 1e999, "body": "{}", "signature": "00"}', '{"seq": 1, "body": "[]", "signature": "00"}'):
        (tmp_path / "anchor.bad").write_text(line + "\n")
        assert main([str(directory), "--anchor", str(tmp_path / "anchor.bad")]) == USAGE
    shutil.rmtree(directory)


def test_every_anchored_checkpoint_must_match_not_only_the_newest(
    sealed: Sealed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "export"
    export(sealed.desk, sealed.sealer.store, directory)
    anchor = [json.loads(line) for line in (tmp_path / "anchor.ndjson").read_text().splitlines()]
    assert len(anchor) > 1
    body = json.loads(anchor[0]["body"])
    body["time"] = "2026-01-01T00:00:00+00:00"  # the desk would have had to sign two checkpoints #1
    anchor[0]["body"] = json.dumps(body, sort_keys=True, separators=(",", ":"))
    (tmp_path / "held.ndjson").write_text("".join(json.dumps(a) + "\n" for a in anchor))
    assert main([str(directory), "--anchor", str(tmp_path / "held.ndjson")]) == TAMPERED
    assert "FORK: checkpoint #1" in capsys.readouterr().err
