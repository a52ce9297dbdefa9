"""``ticketflow audit verify`` / ``GET /api/v1/audit/verify``: re-check the whole store.

One pass over the event log, merged with the sealed hashes by position: every stored
event is re-hashed from its stored bytes and its stream's previous hash, its version
must follow its stream's last, its hash must equal the sealed one; the log tree is
re-grown and compared with every signed checkpoint's root; signatures and the key
chain are checked; snapshots must equal the replay of their events; an anchor file,
if given, must match the database's checkpoints. The first problem names the event
(position, stream, version), checkpoint or snapshot.

On a large SQLite log the pass over the events runs in several processes
(:func:`_parallel_pass`); only an intact log is accepted that way: anything else is re-checked
by the single pass, so the report does not depend on the number of processes.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from projections.integrity.export import export
from projections.integrity.rawlog import log_pages, sealed_pages
from projections.integrity.sealer import load_checkpoints, load_keys
from projections.readside import views_dir
from projections.view import ViewStore
from ticketflow.application import TicketDesk
from ticketflow.config import StorageKind
from ticketflow.errors import ValidationFailed
from ticketflow.writer_mac import ForgedEvent
from ticketflow_verify.bundle import UsageError, read_anchor, verify_export
from ticketflow_verify.chain import (
    FORMATS, Frontier, check_signatures, checkpoint_format, genesis, heads_levels, leaf, node, root_of, tree_levels,
)


@dataclass
class Report:
    events: int = 0
    sealed: int = 0
    unsealed: int = 0
    checkpoints: int = 0
    snapshots: int = 0
    problems: list[str] = field(default_factory=list)
    #: Sealed events past the newest signed checkpoint: chained, but no signature covers them yet
    #: (whoever can write the database could rewrite them with their hashes).
    unsigned: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def complete(self) -> bool:
        """Intact, every event sealed and under a signed checkpoint: only then is the whole log proven."""
        return self.ok and self.unsealed == 0 and self.unsigned == 0

    def summary(self) -> str:
        if self.problems:
            return f"TAMPERED: {self.problems[0]}"
        proven = f"{self.sealed} sealed events, {self.checkpoints} signed checkpoints, {self.snapshots} snapshots verified"
        if self.unsealed:
            return (f"INCOMPLETE: {proven}; but {self.unsealed} newer events are not sealed yet (their writer MACs"
                    " check; run `ticketflow audit seal` or wait for the sealer, then verify again)")
        if self.unsigned:
            return (f"INCOMPLETE: {proven}; but the newest {self.unsigned} sealed events are not under a signed"
                    " checkpoint yet (run `ticketflow audit seal` or wait for the sealer, then verify again)")
        return f"OK: {proven}; every event is sealed"

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "complete": self.complete, "events": self.events, "sealed": self.sealed, "unsealed": self.unsealed, "unsigned": self.unsigned,
                "checkpoints": self.checkpoints, "snapshots": self.snapshots,
                "first_problem": self.problems[0] if self.problems else None, "problems": self.problems[:100]}


def verify_store(
    desk: TicketDesk, store: ViewStore, ticket: UUID | None = None, anchor: Path | None = None,
    snapshots: bool = True, deep: bool = False, trusted_key: str | None = None, workers: int | None = None,
) -> Report:
    """Verify everything (or one ticket's history, by exporting and checking it offline).

    ``workers``: processes for the log pass (SQLite stores; see :func:`_parallel_pass`). None: up to
    4 (the CPUs) when the log holds more than :data:`PARALLEL_FROM` events, else 1. The report is
    the same for any number: a store the parallel pass does not find intact is re-checked by the
    single pass, which names the first problem.
    """
    if ticket is not None:
        return _verify_ticket(desk, store, ticket, trusted_key)
    report = Report()
    checkpoints = store.read(load_checkpoints)
    report.checkpoints = len(checkpoints)
    bad = check_signatures(checkpoints, store.read(load_keys), trusted_key)
    if bad:
        report.problems.append(bad)
    by_size: dict[int, list[Any]] = {}
    for cp in checkpoints:
        by_size.setdefault(int(cp.fields["tree_size"]), []).append(cp)
    # Heads roots cost O(streams) each: checked at the latest checkpoint (what exports are proven
    # against), and at every checkpoint with ``deep``.
    heads_at = -1 if deep else (int(checkpoints[-1].fields["tree_size"]) if checkpoints else 0)
    problems = report.problems
    count = _parallel_pass(desk, store, by_size, heads_at, problems, workers) if workers != 1 else None
    if count is None:
        count = _single_pass(desk, store, by_size, heads_at, problems)
    events, sealed_count, unsealed, size = count
    report.events, report.sealed, report.unsealed = events, sealed_count, unsealed
    report.unsigned = max(0, size - (int(checkpoints[-1].fields["tree_size"]) if checkpoints else 0))
    for cp in checkpoints:
        if int(cp.fields["tree_size"]) > size:
            problems.append(f"checkpoint #{cp.seq} covers {cp.fields['tree_size']} events but only {size}"
                            " are in the log (tail truncated)")
            break
    if unsealed:
        problems.extend(_check_unsealed(desk, store))
    if anchor is not None:
        problems.extend(_check_anchor(anchor, checkpoints))
    if snapshots:
        report.snapshots = _check_snapshots(desk, problems)
    return report


def _check_unsealed(desk: TicketDesk, store: ViewStore) -> list[str]:
    """Rows the sealer has not reached yet must carry the writer's MAC (a forged row is named now,
    not sealed later as if genuine)."""
    last = int(store.read(lambda db: db.scalar("SELECT MAX(position) FROM {p}integrity_events")) or 0)
    legacy_until = desk.settings.unmaced_events_until
    problems: list[str] = []
    start = last + 1
    while page := desk.recorder.select_notifications(start, 1000):
        for n in page:
            try:
                desk.writer_mac.require(str(n.originator_id), n.originator_version, n.topic, bytes(n.state),
                                        legacy_ok=n.id <= legacy_until)
            except ForgedEvent as exc:
                problems.append(f"unsealed event at position {n.id}: {exc}")
        start = page[-1].id + 1
    return problems


def _single_pass(
    desk: TicketDesk, store: ViewStore, by_size: dict[int, list[Any]], heads_at: int, problems: list[str],
) -> tuple[int, int, int, int]:
    """The log pass in this process: (events, sealed, unsealed, tree size); the first problem named precisely."""
    last_sealed = int(store.read(lambda db: db.scalar("SELECT MAX(position) FROM {p}integrity_events")) or 0)
    frontier = Frontier()
    heads: dict[str, tuple[int, bytes]] = {}
    log_pages_, to_text = log_pages(desk)
    sealed_pages_ = sealed_pages(store, desk)
    # The hot loop below runs once per stored event: everything it touches is a local, the
    # event hash framing (EventHasher's, byte for byte), leaf() and Frontier.append are inlined.
    sha = hashlib.sha256
    u64 = struct.Struct(">Q").pack
    join = b"".join
    hashes = frontier.hashes  # mutated in place: frontier.root() sees it; frontier.size synced before use
    hashes_append, hashes_pop = hashes.append, hashes.pop
    heads_get = heads.get
    names: dict[Any, tuple[str, bytes]] = {}  # stored id -> (id text, "ticketflow/event/1" || frame(id))
    names_get = names.get
    topics: dict[str, bytes] = {}  # topic -> frame(topic)
    topics_get = topics.get

    def name(stored: Any) -> tuple[str, bytes]:
        oid = to_text(stored) if to_text is not None else stored
        if not isinstance(oid, str):  # a NULL id: never matches a sealed row (the slow path reports it)
            return oid, b""
        raw = oid.encode()
        entry = names[stored] = (oid, b"ticketflow/event/1" + len(raw).to_bytes(4, "big") + raw)
        return entry

    def framed_topic(topic: str) -> bytes:
        raw = topic.encode()
        framed = topics[topic] = len(raw).to_bytes(4, "big") + raw
        return framed

    size = 0
    renumbered = force = False
    sealed_count = events = unsealed = 0
    log: list[Any] = []
    sealed: list[Any] = []
    i = j = 0
    log_done = sealed_done = False
    # The loop allocates only acyclic objects (tuples, bytes): the cyclic collector's passes over the
    # growing heads would cost ~10% here.
    collecting = gc.isenabled()
    gc.disable()
    try:
        while True:
            if i >= len(log) and not log_done:
                log, i = next(log_pages_, None) or [], 0
                log_done = not log
            if j >= len(sealed) and not sealed_done:
                sealed, j = next(sealed_pages_, None) or [], 0
                sealed_done = not sealed
            if i < len(log) and j < len(sealed):
                # Fast path: the log and the sealed hashes in step. Leaves on the first mismatch.
                k = 0
                for (position, stored, version, topic, state), row in zip(log[i:] if i else log, sealed[j:] if j else sealed):
                    oid, head = names_get(stored) or name(stored)
                    if row[2] != oid or row[3] != version:
                        if not force:
                            break
                        force = False
                        problems.append(f"event at position {position} ({oid} v{version}): the sealed log has {row[2]}"
                                        f" v{row[3]} at this position (events moved or reordered)")
                    elif row[0] != position and not renumbered:
                        renumbered = True
                        problems.append(f"event at position {position} ({oid} v{version}): sealed at position {row[0]}"
                                        " (log positions changed)")
                    k += 1
                    last = heads_get(oid)
                    if last is None:
                        previous_version, previous = 0, genesis(oid)
                    else:
                        previous_version, previous = last
                    if version != previous_version + 1:
                        problems.append(f"event at position {position} ({oid} v{version}): follows v{previous_version} of"
                                        " its stream (events missing or reordered)")
                    h = sha(join((head, u64(version), topics_get(topic) or framed_topic(topic), u64(len(state)), state,
                                  previous))).digest()
                    if h.hex() != row[4]:
                        problems.append(f"event at position {position} ({oid} v{version}): stored bytes do not match the"
                                        " sealed hash")
                    if row[1] != size:
                        problems.append(f"event at position {position} ({oid} v{version}): sealed as leaf {row[1]},"
                                        f" expected leaf {size}")
                    # Carry on from the recomputed hash: a rewritten hash log then shows at the next checkpoint.
                    hashes_append(sha(b"\x00" + h).digest())  # leaf(h)
                    size += 1
                    m = size
                    while not m & 1:  # Frontier.append: merge equal-sized subtrees
                        right = hashes_pop()
                        hashes[-1] = sha(b"\x01" + hashes[-1] + right).digest()
                        m >>= 1
                    heads[oid] = (version, h)
                    if size in by_size:
                        frontier.size = size
                        _check_roots(frontier, heads, position, by_size, problems, heads_at)
                i += k
                j += k
                events += k
                sealed_count += k
                if i >= len(log) or j >= len(sealed):
                    continue  # a page ran out: read the next
            # Slow path, one step: the log and the sealed hashes disagree here (or one has ended).
            frontier.size = size
            if i >= len(log):
                if j >= len(sealed):
                    break
                row = sealed[j]
                problems.append(f"sealed event at position {row[0]} ({row[2]} v{row[3]}) is missing from the log (truncated)")
                _advance(frontier, heads, row[0], row[2], row[3], bytes.fromhex(row[4]), by_size, problems, heads_at)
                size = frontier.size
                j += 1
                continue
            position, stored, version = log[i][:3]
            oid = (names_get(stored) or name(stored))[0]
            row = sealed[j] if j < len(sealed) else None
            if row is None or ((row[2] != oid or row[3] != version) and not _is_sealed(store, oid, version)):
                events += 1
                if row is None and position > last_sealed:
                    unsealed += 1
                else:
                    problems.append(f"event at position {position} ({oid} v{version}) is not in the sealed log"
                                    " (inserted after sealing)")
                i += 1
                continue
            if row[2] != oid or row[3] != version:
                if not _in_log(desk, row[2], row[3]):
                    problems.append(f"sealed event at position {row[0]} ({row[2]} v{row[3]}) is missing from the log (deleted)")
                    _advance(frontier, heads, row[0], row[2], row[3], bytes.fromhex(row[4]), by_size, problems, heads_at)
                    size = frontier.size
                    j += 1
                    continue
                force = True  # the fast path takes this pair, reporting it as moved
                continue
            raise AssertionError("the fast path takes matching pairs")  # pragma: no cover
    finally:
        if collecting:
            gc.enable()
    frontier.size = size
    return events, sealed_count, unsealed, size


#: Logs longer than this are verified by several processes (``workers=None``).
PARALLEL_FROM = 50_000
MAX_WORKERS = 4
_WORKER = Path(__file__).with_name("_range_worker.py")


def default_workers(events: int) -> int:
    return min(os.cpu_count() or 1, MAX_WORKERS) if events > PARALLEL_FROM else 1


def _parallel_pass(
    desk: TicketDesk, store: ViewStore, by_size: dict[int, list[Any]], heads_at: int, problems: list[str],
    workers: int | None,
) -> tuple[int, int, int, int] | None:
    """The log pass split over processes, for an intact SQLite store: (events, sealed, unsealed, tree size).

    Phase 1: each worker (``_range_worker.py``) takes a contiguous range of log positions, starting
    at a sealed event, pairs the stored events with the sealed rows by position and re-hashes them
    (a stream's first event in the range chains on the sealed hash of its previous version), and
    returns its streams' first and last events, the roots of its range's aligned subtrees and the
    subtrees at checkpoint sizes. Phase 2, here: the ranges must join (leaf ordinals; each stream's
    first event in a range follows, version and hash, where the previous ranges left it); the log
    tree is assembled from the subtrees and every checkpoint root (and the heads root at
    ``heads_at``) compared. None, with ``problems`` untouched, when not applicable or when anything
    disagrees: the caller then runs :func:`_single_pass`, which names the problem.
    """
    recorder: Any = desk.recorder
    settings = desk.settings
    if (heads_at == -1 or settings.storage is not StorageKind.SQLITE or not hasattr(recorder, "events_table_name")
            or getattr(recorder.datastore, "schema", None) is not None):
        return None  # deep (a heads root at every checkpoint), PostgreSQL, memory: the single pass
    log_path, sealed_path = settings.sqlite_path, views_dir(settings) / "integrity.sqlite"
    if not (log_path.exists() and sealed_path.exists()):
        return None
    import sqlite3

    connection = sqlite3.connect(f"file:{sealed_path}?mode=ro", uri=True)
    try:
        log = sqlite3.connect(f"file:{log_path}?mode=ro", uri=True)
        try:
            log_size = log.execute(f"SELECT MAX(rowid) FROM {recorder.events_table_name}").fetchone()[0] or 0
        finally:
            log.close()
        n = default_workers(log_size) if workers is None else workers
        total = connection.execute("SELECT COUNT(*) FROM integrity_events").fetchone()[0]
        if n <= 1 or total < n:
            return None
        ordinals = [r * total // n for r in range(n)]
        starts: list[int | None] = [None]
        for ordinal in ordinals[1:]:
            row = connection.execute("SELECT position FROM integrity_events WHERE ordinal = ?", (ordinal,)).fetchone()
            if row is None or type(row[0]) is not int or row[0] <= (starts[-1] or 0):
                return None
            starts.append(row[0])
    finally:
        connection.close()
    sizes = sorted(by_size)
    jobs = []
    for r in range(n):
        hi = starts[r + 1] if r + 1 < n else None
        top = ordinals[r + 1] if r + 1 < n else None
        jobs.append({"log_path": str(log_path), "sealed_path": str(sealed_path), "table": recorder.events_table_name,
                     "lo": starts[r], "hi": hi, "ordinal": ordinals[r], "last": hi is None, "heads_at": heads_at,
                     "checkpoints": [s for s in sizes if s > ordinals[r] and (top is None or s <= top)]})
    procs: list[subprocess.Popen[bytes]] = []
    results = []
    try:
        for _ in jobs:  # a stdlib-only script: starts in milliseconds, never re-imports the caller's __main__
            procs.append(subprocess.Popen([sys.executable, "-I", "-S", str(_WORKER)], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE))
        for proc, job in zip(procs, jobs, strict=True):
            assert proc.stdin is not None
            proc.stdin.write(pickle.dumps(job))
            proc.stdin.close()
        for proc in procs:
            assert proc.stdout is not None
            out = proc.stdout.read()
            proc.wait()
            results.append(pickle.loads(out) if proc.returncode == 0 and out else {"ok": False})
    except OSError:
        return None  # no interpreter to start: the single pass
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if not all(res["ok"] for res in results):
        return None
    frontier = Frontier()
    heads: dict[str, tuple[int, bytes]] = {}
    head_leaves: dict[str, bytes] = {}  # head_leaf() of ``heads``, while the heads root is still to check
    sealed = unsealed = 0
    for r, res in enumerate(results):
        start = ordinals[r]
        if frontier.size != start or (r + 1 < n and start + res["count"] != ordinals[r + 1]):
            return None
        heads_get = heads.get
        for oid, (version, previous) in res["first"].items():
            last = heads_get(oid)
            if last is None or version != last[0] + 1 or previous != last[1]:
                return None
        if not heads.keys().isdisjoint(res["new"]):
            return None  # a stream starting again at version 1
        for size, (_, blocks) in sorted(res["snaps"].items()):
            at = Frontier(frontier.size, frontier.hashes)
            if not _extend(at, size, blocks):
                return None
            for cp in by_size[size]:
                if bytes.fromhex(cp.fields["root"]) != at.root():
                    return None
                if size == heads_at:  # heads_levels(), from the head leaves the workers hashed
                    at_leaves = dict(head_leaves)  # a dict keeps first insertions: streams in log order
                    at_leaves.update(res["heads_leaves"])
                    format_ = checkpoint_format(cp.fields)
                    if format_ not in FORMATS:
                        return None
                    ordered = [at_leaves[i] for i in sorted(at_leaves)] if format_ == 1 else list(at_leaves.values())
                    if root_of(tree_levels(ordered)).hex() != cp.fields.get("heads_root"):
                        return None
        if not _extend(frontier, start + res["count"], res["blocks"]):
            return None
        if res["last"] is not None:
            heads.update(res["last"])
        if "last_leaves" in res:
            head_leaves.update(res["last_leaves"])
        sealed += res["count"]
        unsealed += res["unsealed"]
    return sealed + unsealed, sealed, unsealed, frontier.size


def _extend(frontier: Frontier, size: int, blocks: list[bytes]) -> bool:
    """Append the roots of the maximal aligned subtrees covering leaves [frontier.size, size) to ``frontier``."""
    widths = []
    p = frontier.size
    while p < size:
        width = p & -p if p else 1 << 62
        while p + width > size:
            width >>= 1
        widths.append(width)
        p += width
    if len(widths) != len(blocks):
        return False
    hashes = frontier.hashes
    for width, h in zip(widths, blocks, strict=True):
        hashes.append(h)
        frontier.size += width
        m = frontier.size // width
        while not m & 1:
            right = hashes.pop()
            hashes[-1] = node(hashes[-1], right)
            m >>= 1
    return True


def _is_sealed(store: ViewStore, originator_id: str, version: int) -> bool:
    return bool(store.read(lambda db: db.one(
        "SELECT 1 AS x FROM {p}integrity_events WHERE originator_id = ? AND version = ?", (originator_id, version))))


def _in_log(desk: TicketDesk, originator_id: str, version: int) -> bool:
    return bool(desk.recorder.select_events(UUID(originator_id), gt=version - 1, lte=version))


def _advance(
    frontier: Frontier, heads: dict[str, tuple[int, bytes]], position: int, oid: str, version: int, h: bytes,
    by_size: dict[int, list[Any]], problems: list[str], heads_at: int,
) -> None:
    """Append one leaf and check the checkpoints of the new size."""
    frontier.append(leaf(h))
    heads[oid] = (version, h)
    _check_roots(frontier, heads, position, by_size, problems, heads_at)


def _check_roots(
    frontier: Frontier, heads: dict[str, tuple[int, bytes]], position: int,
    by_size: dict[int, list[Any]], problems: list[str], heads_at: int,
) -> None:
    """Compare the roots of the checkpoints of this size (heads roots at ``heads_at``; -1: all)."""
    for cp in by_size.get(frontier.size, ()):
        fields = cp.fields
        if bytes.fromhex(fields["root"]) != frontier.root():
            problems.append(f"checkpoint #{cp.seq} (tree size {frontier.size}): signed root does not match the log up to"
                            f" position {position} (checkpoint replaced, or the log and its hashes rewritten)")
        if heads_at in (-1, frontier.size) and checkpoint_format(fields) in FORMATS:  # (else named already)
            _, levels = heads_levels(heads, format=checkpoint_format(fields))  # heads: filled in log order
            if root_of(levels).hex() != fields.get("heads_root"):
                problems.append(f"checkpoint #{cp.seq}: heads root does not match the streams' last events")


def _check_anchor(anchor: Path, checkpoints: list[Any]) -> list[str]:
    """Every checkpoint the anchor file holds must be in the database unchanged; a database whose
    newest checkpoint is older than the anchor's newest was rolled back."""
    try:
        anchored = read_anchor(anchor)
    except UsageError as exc:
        raise ValidationFailed(str(exc)) from None
    ours = {cp.seq: cp for cp in checkpoints}
    newest = max(ours, default=0)
    for cp in anchored:
        mine = ours.get(cp.seq)
        if mine is None:
            if cp.seq > newest:
                return [f"ROLLBACK: the database's checkpoints end at #{newest}, older than checkpoint #{cp.seq}"
                        f" in anchor {anchor}"]
            return [f"anchor {anchor}: checkpoint #{cp.seq} is missing from the database"]
        if (mine.body, mine.signature) != (cp.body, cp.signature):
            return [f"checkpoint #{cp.seq}: differs from anchor {anchor} (replaced)"]
    return []


def _check_snapshots(desk: TicketDesk, problems: list[str]) -> int:
    """Each snapshot must decode and equal the replay of its aggregate's events up to its version."""
    if desk.snapshots is None:
        return 0
    recorder = desk.snapshots.recorder
    if not hasattr(recorder, "events_table_name"):
        return 0  # the in-memory store: nothing an attacker could edit outside this process
    table = recorder.events_table_name  # type: ignore[attr-defined]
    schema = getattr(recorder.datastore, "schema", None)  # type: ignore[attr-defined]
    name = f'"{schema}"."{table}"' if schema else table
    with recorder.datastore.transaction(commit=False) as cursor:  # type: ignore[attr-defined]
        cursor.execute(f"SELECT originator_id, originator_version, topic, state FROM {name} ORDER BY originator_id, originator_version")
        rows = [(r["originator_id"], r["originator_version"], r["topic"], bytes(r["state"])) for r in cursor.fetchall()]
    for originator_id, version, topic, state in rows:
        oid = UUID(str(originator_id))
        where = f"snapshot of {oid} at v{version}"
        try:
            snapshot = desk.mapper.to_domain_event(StoredEvent(oid, version, topic, state))
            from_snapshot = snapshot.mutate(None)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - any decoding failure is a finding
            problems.append(f"{where}: cannot be decoded ({type(exc).__name__})")
            continue
        replayed = None
        try:
            for stored in desk.recorder.select_events(oid, lte=version):
                replayed = desk.mapper.to_domain_event(stored).mutate(replayed)  # type: ignore[attr-defined]
        except Exception as exc:  # noqa: BLE001 - a tampered event is reported above; say why this one is unchecked
            problems.append(f"{where}: its events cannot be replayed ({type(exc).__name__})")
            continue
        if replayed is None or vars(replayed) != vars(from_snapshot):
            problems.append(f"{where}: differs from the replay of its events")
    return len(rows)


def _verify_ticket(desk: TicketDesk, store: ViewStore, ticket: UUID, trusted_key: str | None) -> Report:
    with tempfile.TemporaryDirectory(prefix="ticketflow-verify-") as scratch:
        manifest = export(desk, store, Path(scratch) / "export", ticket=ticket)
        problems = verify_export(Path(scratch) / "export", trusted_key)
    sealed = int(manifest["events"])
    total = len(desk.recorder.select_events(ticket))
    return Report(events=total, sealed=sealed, unsealed=max(0, total - sealed), checkpoints=int(manifest["checkpoint"]),
                  problems=problems)
