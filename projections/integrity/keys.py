"""The sealer's Ed25519 signing keys: private keys in files under ``<data_dir>/keys/``, never in the log.

``keys/current`` names the key in force; ``keys/<key_id>.key`` holds a private key (hex, mode 0600);
``keys/history.json`` lists every public key in the order they came into force (it ships with exports).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives import serialization as ser

from ticketflow.errors import ValidationFailed
from ticketflow_verify.chain import fingerprint, key_id, public_raw


class KeyRing:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _write_private(self, private: Ed25519PrivateKey) -> str:
        raw = private.private_bytes(ser.Encoding.Raw, ser.PrivateFormat.Raw, ser.NoEncryption())
        kid = key_id(public_raw(private))
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{kid}.key"
        draft = path.with_name(f".{kid}.{os.getpid()}.{secrets.token_hex(4)}")
        draft.write_text(raw.hex(), encoding="ascii")
        draft.chmod(0o600)
        draft.replace(path)
        history = self.history()
        if kid not in history:
            history[kid] = public_raw(private).hex()
            self._write_json("history.json", [{"key_id": k, "public_key": v} for k, v in history.items()])
        return kid

    def _write_json(self, name: str, value: object) -> None:
        path = self.directory / name
        draft = path.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}")
        draft.write_text(json.dumps(value, indent=1), encoding="utf-8")
        draft.replace(path)

    def history(self) -> dict[str, str]:
        """Public keys by id, in the order they came into force."""
        path = self.directory / "history.json"
        if not path.exists():
            return {}
        return {entry["key_id"]: entry["public_key"] for entry in json.loads(path.read_text(encoding="utf-8"))}

    def current(self, create: bool = True) -> tuple[str, Ed25519PrivateKey]:
        """The key in force (made on first use)."""
        pointer = self.directory / "current"
        if not pointer.exists():
            if not create:
                raise ValidationFailed(f"no signing key in {self.directory}")
            self.make_current(self.generate())
        kid = pointer.read_text(encoding="ascii").strip()
        return kid, self.private(kid)

    def private(self, kid: str) -> Ed25519PrivateKey:
        path = self.directory / f"{kid}.key"
        if not path.exists():
            raise ValidationFailed(f"signing key {kid} not found in {self.directory}")
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(path.read_text(encoding="ascii").strip()))

    def fingerprint(self) -> str:
        """The fingerprint of the key in force, to hand auditors out of band (``ticketflow-verify --key``)."""
        kid, private = self.current()
        return fingerprint(public_raw(private))

    def generate(self) -> str:
        return self._write_private(Ed25519PrivateKey.generate())

    def make_current(self, kid: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        pointer = self.directory / "current"
        draft = pointer.with_name(f".current.{os.getpid()}.{secrets.token_hex(4)}")
        draft.write_text(kid, encoding="ascii")
        draft.replace(pointer)
