"""One range of the parallel verification pass (see ``verifier._parallel_pass``).

Run as a standalone script (``python -I -S _range_worker.py``): it imports only the standard
library, so a worker starts in milliseconds and never re-imports the caller's main module. It
reads a pickled job from stdin and writes a pickled result to stdout.

Job: SQLite file paths, the log table, a range of log positions ``[lo, hi)`` (``hi`` None: to
the end), the leaf ordinal of the range's first sealed event, and the checkpoint sizes within
the range. The worker pairs the stored events with the sealed rows by position and re-hashes
each event exactly as the single pass does (framing of ``ticketflow_verify.chain``), chaining
on the previous hash of the stream within the range, or, for a stream's first event in the
range, on the sealed hash of its previous version (the caller checks that this is the hash the
previous ranges ended the stream with). Any disagreement ends the range: ``ok`` False (the
caller then re-runs the single pass, which names the problem).

Result: ``ok``, ``count`` (sealed events), ``unsealed`` (log events after the last sealed one,
last range only), ``first`` {id: (version, previous hash)} for each stream's first event in
the range past version 1, ``new`` the ids of streams starting in the range, ``last`` {id:
(version, hash)} (None for the last range), ``blocks`` (the range's maximal aligned subtree
roots, left to right), ``snaps`` {checkpoint size: (position, blocks so far)}, ``heads_leaves``
(the head leaves of the range's streams at the size ``heads_at``, when in the range), ``last_leaves`` (the head leaves of ``last``, when ``heads_at`` is past the range).
"""

from __future__ import annotations

import gc
import hashlib
import pickle
import sqlite3
import struct
import sys
from itertools import chain, zip_longest
from typing import Any

PAGE = 10_000
_GENESIS = b"ticketflow/genesis/1"


def _pages(connection: sqlite3.Connection, sql: str, start: Any, hi: Any) -> Any:
    if hi is None:  # the last range: to the end, whatever the positions
        sql = sql.replace(" AND rowid < ?", "").replace(" AND position < ?", "")
    while rows := connection.execute(sql, (start, PAGE) if hi is None else (start, hi, PAGE)).fetchall():
        yield rows
        start = rows[-1][0]


def _head_leaves(heads: dict[str, tuple[int, bytes]]) -> dict[str, bytes]:
    """``head_leaf`` of ``ticketflow_verify.chain`` for each stream."""
    sha, u64 = hashlib.sha256, struct.Struct(">Q").pack
    leaves = {}
    for oid, (version, h) in heads.items():
        raw = oid.encode()
        leaves[oid] = sha(b"\x00ticketflow/head/1" + len(raw).to_bytes(4, "big") + raw + u64(version) + h).digest()
    return leaves


def run(job: dict[str, Any]) -> dict[str, Any]:  # noqa: C901, PLR0912, PLR0915 - the hot loop, inlined
    lo, hi, a = job["lo"], job["hi"], job["ordinal"]
    cps = set(job["checkpoints"])
    heads_at = job["heads_at"]
    result: dict[str, Any] = {"ok": False, "count": 0, "unsealed": 0}
    log_db = sqlite3.connect(f"file:{job['log_path']}?mode=ro", uri=True)
    sealed_db = sqlite3.connect(f"file:{job['sealed_path']}?mode=ro", uri=True)
    try:
        # Range 0 reads exactly what the single pass reads: rowid >= 1, position > 0.
        log_sql = (f"SELECT rowid, originator_id, originator_version, topic, state FROM {job['table']}"
                   " WHERE rowid > ? AND rowid < ? ORDER BY rowid LIMIT ?")
        sealed_sql = ("SELECT position, ordinal, originator_id, version, hash FROM integrity_events"
                      " WHERE position > ? AND position < ? ORDER BY position LIMIT ?")
        lookup = "SELECT hash FROM integrity_events WHERE originator_id = ? AND version = ?"
        first_log = 0 if lo is None else lo - 1  # rowid is an integer: > lo - 1 is >= lo
        logs = chain.from_iterable(_pages(log_db, log_sql, first_log, hi))
        if lo is None:
            seals = chain.from_iterable(_pages(sealed_db, sealed_sql, 0, hi))
        else:  # position >= lo, then > the last one read
            head = sealed_db.execute("SELECT position, ordinal, originator_id, version, hash FROM integrity_events"
                                     " WHERE position = ?", (lo,)).fetchall()  # the range starts at a sealed event
            seals = chain(head, chain.from_iterable(_pages(sealed_db, sealed_sql, head[0][0], hi))) if head else iter(())
        sha = hashlib.sha256
        u64 = struct.Struct(">Q").pack
        join = b"".join
        names: dict[str, tuple[str, bytes]] = {}
        names_get = names.get
        topics: dict[str, bytes] = {}
        topics_get = topics.get
        heads: dict[str, tuple[int, bytes]] = {}
        heads_get = heads.get
        first: dict[str, tuple[int, bytes]] = {}  # streams' first events in the range, past version 1
        new: list[str] = []  # streams starting (version 1) in the range
        new_append = new.append
        hashes: list[bytes] = []
        hashes_append, hashes_pop = hashes.append, hashes.pop
        snaps: dict[int, tuple[int, list[bytes]]] = {}
        size = a
        pending = None
        for entry, row in zip_longest(logs, seals):
            if entry is None or row is None:
                pending = (entry, row)
                break
            position, stored, version, topic, state = entry
            named = names_get(stored)  # str keys only: another type never hits
            if named is None:
                if type(stored) is not str or len(stored) != 32:
                    return result  # odd ids: the single pass spells and reports them
                oid = f"{stored[:8]}-{stored[8:12]}-{stored[12:16]}-{stored[16:20]}-{stored[20:]}"
                raw = oid.encode()
                named = names[stored] = (oid, b"ticketflow/event/1" + len(raw).to_bytes(4, "big") + raw)
            oid, prefix = named
            sealed_position, ordinal, sealed_id, sealed_version, sealed_hash = row
            if sealed_position != position or sealed_id != oid or sealed_version != version or ordinal != size:
                return result
            last = heads_get(oid)
            if last is None:
                if version == 1:
                    previous = sha(_GENESIS + prefix[18:]).digest()  # prefix[18:]: frame(id)
                    new_append(oid)
                else:
                    found = sealed_db.execute(lookup, (oid, version - 1)).fetchone()
                    if found is None or type(found[0]) is not str or len(found[0]) != 64:
                        return result
                    try:
                        previous = bytes.fromhex(found[0])
                    except ValueError:
                        return result
                    first[oid] = (version, previous)
            else:
                if version != last[0] + 1:
                    return result
                previous = last[1]
            framed = topics_get(topic)
            if framed is None:
                if type(topic) is not str or type(state) is not bytes:
                    return result
                raw = topic.encode()
                framed = topics[topic] = len(raw).to_bytes(4, "big") + raw
            h = sha(join((prefix, u64(version), framed, u64(len(state)), state, previous))).digest()
            if h.hex() != sealed_hash:
                return result
            heads[oid] = (version, h)
            hashes_append(sha(b"\x00" + h).digest())
            size += 1
            if not size & 1:
                # Merge equal-sized subtrees, as the global frontier would, but only those inside the range.
                m, width, k = size, 2, size - a
                while not m & 1 and width <= k:
                    right = hashes_pop()
                    hashes[-1] = sha(b"\x01" + hashes[-1] + right).digest()
                    m >>= 1
                    width <<= 1
            if size in cps:
                snaps[size] = (position, list(hashes))
                if size == heads_at:
                    result["heads_leaves"] = _head_leaves(heads)
        if pending is not None:
            entry, row = pending
            if row is not None or not job["last"]:
                return result  # a sealed event without its stored one (or the reverse): the single pass names it
            unsealed = 1 + sum(1 for _ in logs)
            result["unsealed"] = unsealed
        if heads_at > size:  # the heads root is checked after this range: its streams' head leaves, hashed here
            result["last_leaves"] = _head_leaves(heads)
        result.update(ok=True, count=size - a, first=first, new=new, blocks=hashes, snaps=snaps,
                      last=None if job["last"] else heads)  # nothing follows the last range
        return result
    finally:
        log_db.close()
        sealed_db.close()


def main() -> None:
    gc.disable()  # acyclic tuples and bytes only (as in the single pass)
    job = pickle.load(sys.stdin.buffer)
    try:
        result = run(job)
    except Exception as exc:  # noqa: BLE001 - anything odd: the caller re-runs the single pass
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
