"""The sealer: follows the event log in order, exactly once, hashing and signing it.

For each stored event it records the chained event hash (over the stored bytes,
see :mod:`ticketflow_verify.chain`), appends it to the log tree, and at least every
``every_events`` events or ``every_seconds`` seconds writes a signed checkpoint.
Rows and the tracking position commit in one transaction, like a view's.

Its tables are history, not rebuildable state: a checkpoint, once signed and
anchored elsewhere, must stay. The sealer is therefore not one of ``VIEWS``:
``ticketflow rebuild`` never resets it, and :meth:`SealView.clear` refuses.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from uuid import uuid4

from eventsourcing.persistence import Tracking

from projections.integrity.keys import KeyRing
from projections.readside import open_store
from projections.sql import Db, Dialect, Table
from projections.view import View, ViewStore
from ticketflow.application import TicketDesk
from ticketflow.errors import TicketflowError, ValidationFailed
from ticketflow.writer_mac import ForgedEvent
from ticketflow_verify.bundle import UsageError, read_anchor
from ticketflow_verify.chain import (
    FORMAT, Checkpoint, Frontier, checkpoint_body, event_hash, genesis, head_leaf, leaf, node, public_raw, root_of, sign,
    tree_levels,
)

SEAL_BATCH = 5000
log = logging.getLogger("ticketflow.integrity")


class TamperDetected(TicketflowError):
    """The log, its hashes or its checkpoints are not what was sealed."""

    code = "tamper_detected"


class SealView(View):
    """The sealer's tables (a :class:`View` only for its store: it is fed by :class:`Sealer`)."""

    name = "integrity"
    tables: ClassVar[tuple[Table, ...]] = ()

    def ddl(self, dialect: Dialect) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS {p}integrity_events (position BIGINT PRIMARY KEY, ordinal BIGINT NOT NULL UNIQUE,"
            " originator_id TEXT NOT NULL, version BIGINT NOT NULL, hash TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS integrity_events_by_stream ON {p}integrity_events (originator_id, version)",
            "CREATE TABLE IF NOT EXISTS {p}integrity_heads (originator_id TEXT PRIMARY KEY, version BIGINT NOT NULL,"
            " hash TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS {p}integrity_state (id INTEGER PRIMARY KEY, size BIGINT NOT NULL,"
            " frontier TEXT NOT NULL, cp_size BIGINT NOT NULL, cp_time TEXT)",
            "CREATE TABLE IF NOT EXISTS {p}integrity_checkpoints (seq BIGINT PRIMARY KEY, tree_size BIGINT NOT NULL,"
            " body TEXT NOT NULL, signature TEXT NOT NULL, key_id TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS {p}integrity_keys (key_id TEXT PRIMARY KEY, public_key TEXT NOT NULL)",
        ]

    def clear(self, db: Db) -> None:
        raise TicketflowError("the integrity log is history, not a view: it cannot be reset")

    def apply(self, batch: Any, event: Any, position: int) -> None:  # pragma: no cover - never fed events
        raise NotImplementedError


@dataclass(frozen=True)
class SealState:
    size: int
    frontier: Frontier
    cp_size: int
    cp_time: datetime | None


def seal_to_end(desk: TicketDesk) -> Checkpoint | None:
    """Seal everything written so far and sign a checkpoint covering the last event (what a command
    that writes history does before it exits; nothing when sealing is turned off)."""
    if not desk.settings.seal or desk.log_position() == 0:
        return None
    sealer = Sealer(desk, anchor=desk.settings.anchor_file)
    try:
        sealer.catch_up()
        return sealer.checkpoint(force=False)
    finally:
        sealer.close()


def sealing_on_close(desk: TicketDesk) -> TicketDesk:
    """``desk``, set to seal what it wrote (and sign a checkpoint) when it closes."""
    desk.before_close(lambda: seal_to_end(desk))
    return desk


def check_anchor_file(path: Path) -> None:
    """Refuse, before anything is sealed, an anchor file the sealer could not append checkpoints to,
    or one holding something else than checkpoints (no verifier could read it afterwards)."""
    if path.is_dir():
        raise ValidationFailed(f"anchor file {path} is a directory")
    if path.exists():
        if path.stat().st_size:
            try:
                read_anchor(path)
            except UsageError as exc:
                raise ValidationFailed(str(exc)) from None
        if not os.access(path, os.W_OK):
            raise ValidationFailed(f"anchor file {path} is not writable")
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValidationFailed(f"anchor file {path} cannot be created: {exc.strerror or exc}") from None
    if not os.access(path.parent, os.W_OK):
        raise ValidationFailed(f"anchor file {path} cannot be created: {path.parent} is not writable")


def open_seal_store(desk: TicketDesk) -> ViewStore:
    return open_store(desk.settings, SealView, uuid4().hex[:12])


def load_checkpoints(db: Db) -> list[Checkpoint]:
    rows = db.all("SELECT seq, body, signature FROM {p}integrity_checkpoints ORDER BY seq")
    return [Checkpoint(int(r["seq"]), r["body"].encode(), bytes.fromhex(r["signature"])) for r in rows]


def load_keys(db: Db) -> dict[str, str]:
    return {r["key_id"]: r["public_key"] for r in db.all("SELECT key_id, public_key FROM {p}integrity_keys")}


#: After a save wakes the embedded sealer, how long it lets further saves gather.
COALESCE_SECONDS = 0.25


class Sealer:
    """Extends the hash chains and the log tree; signs checkpoints. Embedded or standalone."""

    def __init__(
        self,
        desk: TicketDesk,
        every_events: int = 1000,
        every_seconds: float = 60.0,
        anchor: Path | None = None,
        keys: KeyRing | None = None,
        now: Callable[[], datetime] | None = None,
        store: ViewStore | None = None,
    ) -> None:
        self.desk = desk
        self.every_events = every_events
        self.every_seconds = every_seconds
        self.anchor = anchor
        if anchor is not None:
            check_anchor_file(anchor)
        self.keys = keys or KeyRing(desk.settings.data_dir / "keys")
        self.now = now or (lambda: datetime.now(UTC))
        self.store = store or open_seal_store(desk)
        self._owns_store = store is None
        self.started = self.now()
        self._heads: dict[str, tuple[int, bytes]] | None = None
        self._heads_at = -1
        #: The heads tree of the checkpoints, kept between them (see :class:`HeadsTree`).
        self._heads_tree = HeadsTree()
        self._stop = threading.Event()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ following
    def position(self) -> int:
        return self.store.max_tracking_id(self.desk.name) or 0

    def step(self, limit: int = SEAL_BATCH) -> int:
        """Seal the next batch of events (one transaction, a checkpoint every ``every_events``); 0 when caught up."""
        start = self.position() + 1
        notifications = self.desk.recorder.select_notifications(start, limit)
        anchored: list[Checkpoint] = []
        with self.store._transaction(commit=True) as cursor:  # noqa: SLF001 - the view store's own transaction
            if self.store._locked_position(cursor, self.desk.name) != start - 1:  # noqa: SLF001
                self._heads = None
                return len(notifications)  # another sealer got there first
            db = Db(cursor, self.store.dialect, self.store.prefix)
            heads = self._load_heads(db, start - 1)
            self._heads = None  # until this transaction commits
            state = self._state(db)
            done = 0
            while done < len(notifications):
                room = max(1, self.every_events - (state.size - state.cp_size))
                segment = notifications[done:done + room]
                done += len(segment)
                state = self._seal(db, segment, state, heads)
                if self._due(state):
                    checkpoint, state = self._checkpoint(db, state, heads)
                    anchored.append(checkpoint)
            if not notifications and self._due(state):
                checkpoint, state = self._checkpoint(db, state, heads)
                anchored.append(checkpoint)
            if notifications:
                self.store._insert_tracking_in(cursor, Tracking(self.desk.name, notifications[-1].id))  # noqa: SLF001
        self._heads, self._heads_at = heads, (notifications[-1].id if notifications else start - 1)
        self._anchor(anchored)
        return len(notifications)

    def _load_heads(self, db: Db, position: int) -> dict[str, tuple[int, bytes]]:
        """Every stream's last sealed event, in the order of the streams' first events (the heads tree's
        leaf order): kept in memory between batches of this sealer (new streams are added at the end)."""
        if self._heads is not None and self._heads_at == position:
            return self._heads
        rows = db.all(
            "SELECT h.originator_id, h.version, h.hash FROM {p}integrity_heads h JOIN {p}integrity_events e"
            " ON e.originator_id = h.originator_id AND e.version = 1 ORDER BY e.ordinal"
        )
        heads = {r["originator_id"]: (int(r["version"]), bytes.fromhex(r["hash"])) for r in rows}
        if len(heads) != int(db.scalar("SELECT COUNT(*) FROM {p}integrity_heads") or 0):
            raise TamperDetected("a stream's head is sealed but its first event is not: the integrity tables were altered")
        return heads

    def _state(self, db: Db) -> SealState:
        row = db.one("SELECT size, frontier, cp_size, cp_time FROM {p}integrity_state WHERE id = 1")
        if row is None:
            return SealState(0, Frontier(), 0, None)
        cp_time = datetime.fromisoformat(row["cp_time"]) if row["cp_time"] else None
        return SealState(int(row["size"]), Frontier.load(int(row["size"]), row["frontier"]), int(row["cp_size"]), cp_time)

    def _seal(self, db: Db, notifications: Sequence[Any], state: SealState, heads: dict[str, tuple[int, bytes]]) -> SealState:
        frontier = state.frontier
        changed: set[str] = set()
        began: list[str] = []  # streams whose first events these are, in log order
        rows = []
        legacy_until = self.desk.settings.unmaced_events_until
        for n in notifications:
            oid = str(n.originator_id)
            head = heads.get(oid)
            if head is None:
                began.append(oid)
            version, previous = head or (0, genesis(oid))
            if n.originator_version != version + 1:
                raise TamperDetected(
                    f"cannot seal event at position {n.id}: {oid} version {n.originator_version} follows version {version}"
                )
            try:
                self.desk.writer_mac.require(oid, n.originator_version, n.topic, bytes(n.state), legacy_ok=n.id <= legacy_until)
            except ForgedEvent as exc:
                raise TamperDetected(f"cannot seal event at position {n.id}: {exc}") from None
            h = event_hash(oid, n.originator_version, n.topic, bytes(n.state), previous)
            rows.append((n.id, frontier.size, oid, n.originator_version, h.hex()))
            frontier.append(leaf(h))
            heads[oid] = (n.originator_version, h)
            changed.add(oid)
        db.executemany(
            "INSERT INTO {p}integrity_events (position, ordinal, originator_id, version, hash) VALUES (?, ?, ?, ?, ?)", rows
        )
        db.executemany(
            "INSERT INTO {p}integrity_heads (originator_id, version, hash) VALUES (?, ?, ?) ON CONFLICT (originator_id)"
            " DO UPDATE SET version = excluded.version, hash = excluded.hash",
            [(oid, *heads[oid][:1], heads[oid][1].hex()) for oid in sorted(changed)],
        )
        self._heads_tree.moved(heads, began, changed, state.size, frontier.size)
        new = SealState(frontier.size, frontier, state.cp_size, state.cp_time)
        self._save_state(db, new)
        return new

    def _save_state(self, db: Db, state: SealState) -> None:
        db.execute(
            "INSERT INTO {p}integrity_state (id, size, frontier, cp_size, cp_time) VALUES (1, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET size = excluded.size, frontier = excluded.frontier,"
            " cp_size = excluded.cp_size, cp_time = excluded.cp_time",
            (state.size, state.frontier.dump(), state.cp_size, state.cp_time.isoformat() if state.cp_time else None),
        )

    def _due(self, state: SealState) -> bool:
        if state.size <= state.cp_size:
            return False
        if state.size - state.cp_size >= self.every_events:
            return True
        since = state.cp_time or self.started
        return (self.now() - since).total_seconds() >= self.every_seconds

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(
        self, db: Db, state: SealState, heads: dict[str, tuple[int, bytes]], next_key: str | None = None
    ) -> tuple[Checkpoint, SealState]:
        self._adopt_announced_key(db)
        kid, private = self.keys.current()
        db.execute(
            "INSERT INTO {p}integrity_keys (key_id, public_key) VALUES (?, ?) ON CONFLICT (key_id) DO NOTHING",
            (kid, public_raw(private).hex()),
        )
        heads_root = self._heads_tree.root(heads, state.size)
        now = self.now()
        fields: dict[str, Any] = {
            "format": FORMAT, "tree_size": state.size, "root": state.frontier.root().hex(),
            "heads_root": heads_root.hex(), "heads_count": len(heads), "time": now.isoformat(), "key_id": kid,
            "log_position": int(db.scalar("SELECT MAX(position) FROM {p}integrity_events") or 0),
        }
        if next_key is not None:
            public = self.keys.history()[next_key]
            fields["next_key"] = {"key_id": next_key, "public_key": public}
            db.execute(
                "INSERT INTO {p}integrity_keys (key_id, public_key) VALUES (?, ?) ON CONFLICT (key_id) DO NOTHING",
                (next_key, public),
            )
        body = checkpoint_body(fields)
        seq = int(db.scalar("SELECT COALESCE(MAX(seq), 0) FROM {p}integrity_checkpoints")) + 1
        signature = sign(private, body)
        db.execute(
            "INSERT INTO {p}integrity_checkpoints (seq, tree_size, body, signature, key_id) VALUES (?, ?, ?, ?, ?)",
            (seq, state.size, body.decode(), signature.hex(), kid),
        )
        new = SealState(state.size, state.frontier, state.size, now)
        self._save_state(db, new)
        return Checkpoint(seq, body, signature), new

    def _adopt_announced_key(self, db: Db) -> None:
        """A rotation that stopped after announcing its key (before switching to it) is finished here:
        once announced, only the new key may sign."""
        last = db.one("SELECT body FROM {p}integrity_checkpoints ORDER BY seq DESC LIMIT 1")
        announced = json.loads(last["body"]).get("next_key") if last else None
        if announced and self.keys.current()[0] != announced["key_id"]:
            self.keys.private(announced["key_id"])  # refuses if this process lacks the announced key
            self.keys.make_current(announced["key_id"])

    def checkpoint(self, force: bool = True, next_key: str | None = None) -> Checkpoint | None:
        """Write a checkpoint now (if the tree grew since the last one, or ``force``)."""
        with self.store._transaction(commit=True) as cursor:  # noqa: SLF001
            position = self.store._locked_position(cursor, self.desk.name)  # noqa: SLF001 - serialise with sealing
            db = Db(cursor, self.store.dialect, self.store.prefix)
            state = self._state(db)
            if not force and state.size == state.cp_size:
                return None
            heads = self._load_heads(db, position)
            cp, _ = self._checkpoint(db, state, heads, next_key)
        self._anchor([cp])
        return cp

    def rotate_key(self) -> str:
        """Make a new key; announce it in a checkpoint signed by the old one; then use it."""
        self.keys.current()  # the old key exists before the new one is announced
        new = self.keys.generate()
        self.checkpoint(force=True, next_key=new)
        self.keys.make_current(new)
        return new

    def _anchor(self, checkpoints: list[Checkpoint]) -> None:
        if self.anchor is None or not checkpoints:
            return
        self.anchor.parent.mkdir(parents=True, exist_ok=True)
        with self.anchor.open("a", encoding="utf-8") as out:
            for cp in checkpoints:
                out.write(json.dumps({"seq": cp.seq, "body": cp.body.decode(), "signature": cp.signature.hex()}) + "\n")

    # ------------------------------------------------------------------ running
    def catch_up(self, checkpoint: bool = False) -> int:
        total = 0
        while (done := self.step()) > 0:
            total += done
        if checkpoint:
            self.checkpoint(force=False)
        return total

    def run(self, stop: threading.Event, poll_seconds: float = 0.5, wakeup: threading.Event | None = None) -> None:
        """Follow the log until ``stop`` is set (standalone ``ticketflow audit seal --follow``, or
        :meth:`start`). A failing batch is retried: nothing commits without its tracking position."""
        backoff = 0.05
        while not stop.is_set():
            try:
                done = self.step()
            except TamperDetected:
                log.exception("sealer: the log cannot be sealed; stopping")
                return
            except Exception:  # noqa: BLE001 - a passing database error
                log.exception("sealer: batch failed; retrying")
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.05
            if done == 0:
                if wakeup is not None:
                    if wakeup.wait(poll_seconds):
                        # Woken by a save: let the saves of the next moment gather, so one seal
                        # transaction carries many events instead of one each (the writers go first).
                        stop.wait(COALESCE_SECONDS)
                    wakeup.clear()
                else:
                    stop.wait(poll_seconds)

    def start(self, poll_seconds: float = 0.5) -> None:
        """Embedded mode: a thread in this process, woken by the desk's saves."""
        if self._thread is not None:
            return
        self._stop.clear()
        self.desk.on_saved(self._ring)
        self._thread = threading.Thread(target=self.run, args=(self._stop, poll_seconds, self._wakeup),
                                        name="sealer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self.desk.remove_on_saved(self._ring)
        self._stop.set()
        self._wakeup.set()
        self._thread.join(timeout=10)
        self._thread = None

    def _ring(self, *_: Any) -> None:
        self._wakeup.set()

    def read(self, query: Callable[[Db], Any]) -> Any:
        return self.store.read(query)

    def close(self) -> None:
        embedded = self._thread is not None
        self.stop()
        if embedded:  # serve, project: what the process wrote ends sealed under a signed checkpoint
            try:
                self.catch_up(checkpoint=True)
            except Exception:  # shutting down: say so, the next sealer takes over
                log.exception("sealer: the last events could not be sealed at shutdown; run `ticketflow audit seal`")
        if self._owns_store:
            self.store.datastore.close()  # type: ignore[attr-defined]


class HeadsTree:
    """The heads tree of format 2 (see :mod:`ticketflow_verify.chain`), kept between checkpoints.

    Its leaves are the streams' head leaves in the order of the streams' first events, so a new stream
    appends a leaf and a moved head changes one leaf: each re-hashes only its path to the root. Sorted
    by id (format 1), a new stream shifted every leaf after it, and every checkpoint re-hashed the whole
    tree: O(streams) SHA-256s (0.15-0.25 s at 100,000 streams, a second or more at a million), every
    1,000 events under load; now O(changes x log streams) (see ``bench/bench_heads_tree.py``).

    The tree follows one heads dict (the sealer's, filled in log order) through the log: each
    :meth:`moved` names the leaves of the log it covers, and it must start where the last one ended.
    Given another dict (reloaded from the store), a gap or overlap in the positions (a batch whose
    changes were not told), or after a call that failed half way, it is built again whole."""

    def __init__(self) -> None:
        self._of: dict[str, tuple[int, bytes]] | None = None  # the heads dict the tree is of
        self._index: dict[str, int] = {}  # stream -> leaf index
        self._levels: list[list[bytes]] = [[]]
        self._size = -1  # the log's leaves the tree (with the changes told since) covers
        self._new: list[str] = []  # streams added to the dict since the last root, in order
        self._moved: set[str] = set()  # streams whose head moved since the last root

    def moved(self, heads: dict[str, tuple[int, bytes]], new: Sequence[str], changed: set[str], start: int, end: int) -> None:
        """Leaves ``start`` to ``end`` of the log were sealed into ``heads``: it gained the streams ``new``
        (in log order, at its end) and the heads of ``changed`` moved."""
        if heads is self._of and start == self._size:
            self._new.extend(new)
            self._moved |= changed
            self._size = end
        else:
            self._of = None  # not what the tree follows: built again at the next root

    def root(self, heads: dict[str, tuple[int, bytes]], size: int) -> bytes:
        """The root of ``heads_levels(heads, format=2)``, ``heads`` being the streams' heads in the log's
        first ``size`` leaves: what a verifier recomputes from the log."""
        if heads is not self._of or size != self._size or len(self._index) + len(self._new) != len(heads):
            self._build(heads, size)
        else:
            self._of = None  # until this update is whole
            self._update(heads)
            self._of = heads
        self._new, self._moved = [], set()
        return root_of(self._levels)

    def _build(self, heads: dict[str, tuple[int, bytes]], size: int) -> None:
        self._of = None
        self._index = {oid: i for i, oid in enumerate(heads)}
        self._levels = tree_levels([head_leaf(oid, *head) for oid, head in heads.items()])
        self._of, self._size = heads, size

    def _update(self, heads: dict[str, tuple[int, bytes]]) -> None:
        index, leaves = self._index, self._levels[0]
        dirty: set[int] = set()
        for oid in self._new:
            index[oid] = len(leaves)
            dirty.add(len(leaves))
            leaves.append(head_leaf(oid, *heads[oid]))
        for oid in self._moved:
            i = index[oid]
            if i not in dirty:
                leaves[i] = head_leaf(oid, *heads[oid])
                dirty.add(i)
        levels = self._levels
        depth = 0
        while dirty and len(levels[depth]) > 1:
            below = levels[depth]
            if depth + 1 == len(levels):
                levels.append([])
            above = levels[depth + 1]
            width = len(below)
            parents = sorted({i >> 1 for i in dirty})
            for p in parents:  # ascending: a new parent is appended right after the last one
                left = p << 1
                h = node(below[left], below[left + 1]) if left + 1 < width else below[left]
                if p < len(above):
                    above[p] = h
                else:
                    above.append(h)
            dirty = set(parents)
            depth += 1
