"""The offline verifier says OK only when the proof reaches a trust root the auditor holds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from projections.integrity.export import export
from tests.integrity.support import Sealed, populate
from ticketflow_verify.chain import (
    Frontier, checkpoint_body, inclusion_proof, key_id, leaf, public_raw, root_from_proof, root_of, sign, tree_levels,
)
from ticketflow_verify.cli import OK, SELF_CONSISTENT_ONLY, TAMPERED, USAGE, main

# RFC 6962 / RFC 9162 reference data (the Certificate Transparency test vectors).
CT_INPUTS = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = [  # (leaf index, tree size, audit path)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
]


def _rfc_leaf(data_hex: str) -> bytes:
    """RFC 6962 leaf hash of the entry itself (our ``leaf`` takes the entry's bytes the same way)."""
    return leaf(bytes.fromhex(data_hex))


def test_the_merkle_tree_matches_the_rfc_6962_test_vectors() -> None:
    leaves = [_rfc_leaf(x) for x in CT_INPUTS]
    for size in range(len(leaves) + 1):
        assert root_of(tree_levels(leaves[:size])).hex() == CT_ROOTS[size], f"size {size}"
    frontier = Frontier()  # the sealer's incremental tree: the roots it signs, one leaf at a time
    assert frontier.root().hex() == CT_ROOTS[0]
    for size, leaf_hash in enumerate(leaves, start=1):
        frontier = Frontier.load(frontier.size, frontier.dump())  # as stored between batches
        frontier.append(leaf_hash)
        assert frontier.root().hex() == CT_ROOTS[size], f"frontier size {size}"
    for index, size, path in CT_INCLUSION:
        levels = tree_levels(leaves[:size])
        assert [p.hex() for p in inclusion_proof(levels, index)] == path
        assert root_from_proof(index, size, leaves[index], [bytes.fromhex(p) for p in path]) == bytes.fromhex(CT_ROOTS[size])
        wrong = [bytes.fromhex(p) for p in path[:-1]] + [bytes(32)]
        assert root_from_proof(index, size, leaves[index], wrong) != bytes.fromhex(CT_ROOTS[size])


def _export(sealed: Sealed, directory: Path) -> Path:
    export(sealed.desk, sealed.sealer.store, directory)
    return directory


def _resign(directory: Path) -> str:
    """What a forger with the export does: a new key, every checkpoint re-signed, a new keys.json."""
    private = Ed25519PrivateKey.generate()
    kid = key_id(public_raw(private))
    checkpoints = [json.loads(x) for x in (directory / "checkpoints.ndjson").read_text().splitlines()]
    out = []
    for cp in checkpoints:
        fields = json.loads(cp["body"])
        fields["key_id"] = kid
        fields.pop("next_key", None)
        body = checkpoint_body(fields)
        out.append({"seq": cp["seq"], "body": body.decode(), "signature": sign(private, body).hex()})
    (directory / "checkpoints.ndjson").write_text("".join(json.dumps(c) + "\n" for c in out))
    (directory / "keys.json").write_text(json.dumps([{"key_id": kid, "public_key": public_raw(private).hex()}]))
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest.get("files", {}).pop("checkpoints.ndjson", None)
    manifest.get("files", {}).pop("keys.json", None)
    (directory / "manifest.json").write_text(json.dumps(manifest))
    from ticketflow_verify.chain import fingerprint

    return fingerprint(public_raw(private))


def test_an_intact_export_is_ok_with_the_desks_fingerprint_and_only_self_consistent_without(
    sealed: Sealed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _export(sealed, tmp_path / "export")
    assert main([str(directory), "--key", sealed.sealer.keys.fingerprint()]) == OK
    assert capsys.readouterr().out.startswith("OK: ")
    assert main([str(directory)]) == SELF_CONSISTENT_ONLY
    assert capsys.readouterr().out.startswith("SELF-CONSISTENT ONLY: ")
    assert main([str(directory), "--anchor", str(tmp_path / "anchor.ndjson")]) == OK


def test_an_export_re_signed_with_a_forgers_key_is_never_ok(
    sealed: Sealed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = _export(sealed, tmp_path / "export")
    forger = _resign(directory)
    assert main([str(directory)]) == SELF_CONSISTENT_ONLY  # consistent, and nothing more is claimed
    capsys.readouterr()
    assert main([str(directory), "--key", sealed.sealer.keys.fingerprint()]) == TAMPERED
    assert "UNTRUSTED KEY" in capsys.readouterr().err
    assert main([str(directory), "--anchor", str(tmp_path / "anchor.ndjson")]) == TAMPERED
    assert "FORK: checkpoint #" in capsys.readouterr().err
    assert main([str(directory), "--key", forger]) == OK  # the trust root is what decides


def test_an_export_rolled_back_to_an_older_consistent_prefix_is_detected(
    sealed: Sealed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    older = _export(sealed, tmp_path / "older")
    populate(sealed.desk, tickets=2, notes=2)  # the desk goes on; the auditor keeps the newer checkpoints
    sealed.sealer.catch_up(checkpoint=True)
    newer = _export(sealed, tmp_path / "newer")
    anchor = str(tmp_path / "anchor.ndjson")
    key = sealed.sealer.keys.fingerprint()
    assert main([str(newer), "--anchor", anchor]) == OK
    assert main([str(older), "--key", key]) == OK  # without the anchor, an older prefix is still genuine
    capsys.readouterr()
    assert main([str(older), "--anchor", anchor, "--key", key]) == TAMPERED
    assert "ROLLBACK: the export's checkpoints end at #" in capsys.readouterr().err


def test_usage_errors_are_not_tampering(sealed: Sealed, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = _export(sealed, tmp_path / "export")
    key = sealed.sealer.keys.fingerprint()
    assert main([str(tmp_path / "exprot"), "--key", key]) == USAGE
    assert "is not a directory" in capsys.readouterr().err
    assert main([str(tmp_path), "--key", key]) == USAGE
    assert "not an audit export" in capsys.readouterr().err
    assert main([str(directory), "--key", "SHA256:beef"]) == USAGE
    assert main([str(directory), "--anchor", str(tmp_path / "missing.ndjson")]) == USAGE
    (tmp_path / "bad.ndjson").write_text("not json\n")
    assert main([str(directory), "--anchor", str(tmp_path / "bad.ndjson")]) == USAGE
    assert "line 1 is not a checkpoint" in capsys.readouterr().err
    shutil.rmtree(directory)
