"""``ticketflow-verify DIR --key FINGERPRINT [--anchor FILE]``: check an audit export offline.

Exit status: 0 the export is intact and its proof reaches what you trust; 1 tampered (the
first problem names the event, proof or checkpoint; a rollback or fork against your anchor
file too); 2 usage (not an export, unreadable anchor, malformed fingerprint); 3 intact but
only self-consistent: you gave no fingerprint or anchor, so a forger could have re-made it all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ticketflow_verify.bundle import UsageError, check_export, read_anchor
from ticketflow_verify.chain import normalise_fingerprint

OK, TAMPERED, USAGE, SELF_CONSISTENT_ONLY = 0, 1, 2, 3


def main(argv: list[str] | None = None, prog: str = "ticketflow-verify") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=(__doc__ or "").splitlines()[0],
                                     epilog="Exit status: 0 OK, 1 TAMPERED, 2 usage, 3 self-consistent only (no trust root).")
    parser.add_argument("directory", type=Path, help="the directory `ticketflow audit export` wrote")
    parser.add_argument("--key", action="append", default=[], metavar="FINGERPRINT",
                        help="the desk's signing key fingerprint (SHA256:...), as handed to you out of band (repeatable)")
    parser.add_argument("--anchor", type=Path, metavar="FILE",
                        help="checkpoints you hold (the desk's anchor file, or lines of it): detects rollback and forks")
    args = parser.parse_args(argv)
    try:
        keys = [normalise_fingerprint(k) for k in args.key]
        anchor = read_anchor(args.anchor) if args.anchor is not None else []
        verdict = check_export(args.directory, keys, anchor)
    except (UsageError, ValueError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return USAGE
    if verdict.problems:
        print(f"TAMPERED: {verdict.problems[0]}", file=sys.stderr)
        for more in verdict.problems[1:20]:
            print(f"  also: {more}", file=sys.stderr)
        return TAMPERED
    manifest = verdict.manifest
    complete = ("; complete history" if verdict.complete
                else "; a selection (time range or partial export): each event is proven, not that none is missing")
    what = f"{manifest['events']} events proven against signed checkpoint #{manifest['checkpoint']}{complete}"
    if not verdict.trusted:
        reason = verdict.trust or "no --key fingerprint or --anchor file was given"
        print(f"SELF-CONSISTENT ONLY: {what}; but {reason}, so whoever made this export could have re-made it all."
              " Give the desk's key fingerprint (--key) or your anchor file (--anchor).")
        return SELF_CONSISTENT_ONLY
    print(f"OK: {what}; trusted because {verdict.trust}")
    return OK


def run() -> None:
    sys.exit(main())
