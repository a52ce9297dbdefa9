"""``python -m ticketflow.verify DIR [--trust KEY_ID]``: check an audit export offline.

Needs only the standard library and ``cryptography`` (this package imports nothing
else from ticketflow). Exit status 0: intact; 1: tampered (the first problem names
the event, proof or checkpoint); 2: usage. Formats: see ``chain.py`` and ``bundle.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ticketflow.verify.bundle import verify_export


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ticketflow.verify", description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--trust", metavar="KEY_ID", help="the key id you expect the first checkpoint to be signed by")
    args = parser.parse_args(argv)
    problems = verify_export(args.directory, args.trust)
    if problems:
        print(f"TAMPERED: {problems[0]}", file=sys.stderr)
        for more in problems[1:20]:
            print(f"  also: {more}", file=sys.stderr)
        return 1
    manifest = json.loads((args.directory / "manifest.json").read_text(encoding="utf-8"))
    print(f"OK: {manifest['events']} events proven against signed checkpoint #{manifest['checkpoint']}"
          f" (tree size {manifest['tree_size']}){'; complete history' if manifest.get('complete_log') or (manifest.get('scope') or {}).get('ticket') else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
