"""Find a piece of text in raw bytes however it was written: UTF-8, UTF-16 (both byte orders),
GB18030, JSON ``\\uXXXX`` escapes, and base64 (at each of the three alignments)."""

from __future__ import annotations

import base64
import json
from pathlib import Path


def _base64_cores(data: bytes) -> list[bytes]:
    """The part of base64(x) that is the same wherever ``data`` sits inside a longer x."""
    cores = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data)
        start = 4 * ((shift + 2) // 3)  # skip the quanta that mix in the bytes before
        end = 4 * ((shift + len(data)) // 3)  # and the one that mixes in the bytes after
        if end - start >= 8:
            cores.append(encoded[start:end])
    return cores


def encodings(text: str) -> dict[str, bytes | list[bytes]]:
    escaped = json.dumps(text)[1:-1]
    forms: dict[str, bytes | list[bytes]] = {
        "utf-8": text.encode("utf-8"),
        "utf-16-le": text.encode("utf-16-le"),
        "utf-16-be": text.encode("utf-16-be"),
        "gb18030": text.encode("gb18030"),
        "json-escaped": escaped.encode("ascii"),
        "json-escaped-upper": escaped.upper().replace("\\U", "\\u").encode("ascii"),
        "base64": _base64_cores(text.encode("utf-8")),
        "base64-utf-16-le": _base64_cores(text.encode("utf-16-le")),
    }
    return forms


def hits(data: bytes, texts: list[str]) -> list[str]:
    found = []
    for text in texts:
        for name, form in encodings(text).items():
            patterns = form if isinstance(form, list) else [form]
            if any(p and p in data for p in patterns):
                found.append(f"{text} ({name})")
    return found


def scan_tree(root: Path, texts: list[str]) -> dict[str, list[str]]:
    """Every file under ``root`` that holds one of ``texts`` in any form, read as it is now."""
    leaks = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue  # removed while we looked (a finished checkpoint)
            if found := hits(data, texts):
                leaks[str(path.relative_to(root))] = found
    return leaks
