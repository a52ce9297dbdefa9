"""Erasures made by any process, learnt from the log, so this process's caches forget the customer.

A process keeps decrypted aggregates in memory (the desk's aggregate cache) and each customer's key
for a few seconds (:mod:`ticketflow.privacy.keys`). An erasure run by this process empties both at
once; one run by another process (``ticketflow erase``, another ``serve`` worker, the automation's
retention) is only in the log. :class:`ErasureWatch` reads the log's erasure events written since its
last look: before every command, and before a read answered from the cache, it asks the log's end
position (one indexed query) and, when the log moved by anything but this process's own saves (which
it remembers, :meth:`ErasureWatch.saw`), the erasures in between (a second one). Each
erased customer is handed to ``forget`` before the caller goes on, so no command decides on, returns,
or writes from what was decrypted before an erasure it could see.

Given ``select_written`` and ``forget_written``, the watch also follows everything other writers appended:
the second query then reads every notification in between (not only the erasures: each foreign position
once per process, whatever the number of commands) and hands the objects they changed to
``forget_written``, so the desk's aggregate cache never lends a command an aggregate another process has
moved past without evicting it first (see ``TicketDesk._borrow``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic

from ticketflow.domain import Customer

#: The log topics of an erasure: its request (written before the key goes) and its completion (after).
#: Both are followed: a process that reloads a ticket between the two decrypts it again, and the
#: completion makes it forget that copy too.
ERASURE_TOPICS = [get_topic(Customer.ErasureRequested), get_topic(Customer.Erased)]
_ERASURE_TOPIC_SET = frozenset(ERASURE_TOPICS)
_PAGE = 500
#: At most this many own positions wait for a :meth:`ErasureWatch.follow` (a process that only writes
#: and never follows stops remembering; its next follow reads the log once).
_OWN_REMEMBERED = 100_000

#: When the request a command serves arrived (``time.monotonic()``, set by the API per request; None
#: elsewhere): a look at the log that began after it saw every erasure committed before the request
#: was made, so the command needs no look of its own (see :meth:`ErasureWatch.follow`).
request_arrived: ContextVar[float | None] = ContextVar("request_arrived", default=None)


class ErasureWatch:
    """Where this process is in the log's erasures, and what it does for each new one.

    ``select_erasures(start, limit, stop)``: the erasure notifications from log position ``start`` to
    ``stop``; ``log_position()``: the log's end; ``forget(customer_id)``: drop what this process holds of
    that customer (called under the watch's lock, so a concurrent :meth:`follow` returns only after it).
    """

    def __init__(
        self,
        select_erasures: Callable[[int, int, int], Sequence[Any]],
        log_position: Callable[[], int],
        forget: Callable[[UUID], None],
        select_written: Callable[[int, int, int], Sequence[Any]] | None = None,
        forget_written: Callable[[set[UUID]], None] | None = None,
        settle: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._select_erasures, self._log_position, self._forget = select_erasures, log_position, forget
        #: Returns once every save of this process that is in the log was told (``committed``/``saw``): a
        #: group commit's ``settle``. Called before positions not told of are taken for another writer's.
        self._settle = settle
        #: Every notification of a range (any topic), and what to do with the objects others changed.
        self._select_written, self._forget_written = select_written, forget_written
        self._position: int | None = None  # the log position up to which erasures were read
        self._lock = threading.Lock()
        #: Log positions past ``_position`` this process wrote itself (see :meth:`saw`).
        self._own: set[int] = set()
        self._own_lock = threading.Lock()
        #: Looks at the log numbered as they start (under ``_lock``), and the last one finished: a caller
        #: that waited for the lock while a look that started after it arrived ran needs no look of its own.
        self._looks_started = 0
        self._looks_finished = 0
        #: When the last look that ended well began (``clock``; the clock of :data:`request_arrived`).
        self._clock = clock
        self._last_look_began = float("-inf")

    @property
    def position(self) -> int | None:
        return self._position

    def start(self) -> None:
        """Begin at the log's end (before anything is cached: erasures before it concern nothing held)."""
        if self._position is None:
            with self._lock:
                if self._position is None:
                    self._position = self._log_position()

    def saw(self, positions: Sequence[int], erased: Sequence[UUID]) -> None:
        """This process just wrote the log positions ``positions`` (its erasures among them name
        ``erased``, whose caches it emptied itself; they are forgotten again here, under the watch's
        lock, before the positions count as seen; while a follow holds that lock, the positions are not
        remembered). The positions are remembered as this process's own: a later :meth:`follow` that
        finds only own positions between its last look and the log's end moves past them without reading
        the erasures, in whatever order the saves were notified (a group commit acknowledges its
        commands' threads in any order). A position written by anyone else in between (or a gap) makes
        :meth:`follow` read the log as before."""
        if not positions:
            return
        if erased:  # forgotten under the watch's lock, as a follow forgets (never two at once)
            if not self._lock.acquire(blocking=False):
                return  # a follow is running: the next one reads these erasures from the log
            try:
                for customer_id in erased:
                    self._forget(customer_id)
            finally:
                self._lock.release()
        self._remember_own(positions)

    def committed(self, positions: Sequence[int], topics: Sequence[str]) -> None:
        """This process's group commit just wrote ``positions`` (one save's events, of ``topics``), before
        the save's caller heard of it: remembered as own at once, so a look in between (another thread's
        command) does not take them for another writer's and evict what they changed. A save holding an
        erasure is left to :meth:`saw`, which forgets the customer before its positions count as seen."""
        if any(topic in _ERASURE_TOPIC_SET for topic in topics):
            return
        self._remember_own(positions)

    def _remember_own(self, positions: Sequence[int]) -> None:
        """Count ``positions`` as written by this process (those past the last look; while few enough)."""
        with self._own_lock:
            if self._position is not None and len(self._own) < _OWN_REMEMBERED:
                self._own.update(p for p in positions if p > self._position)

    def follow(self) -> set[UUID]:
        """Forget every customer erased since the last look; returns them (empty when the log has none).

        One query (the log's end) when only this process wrote since the last look; a second one (the
        erasures in between, or every notification with ``select_written``) when another process did.
        Concurrent callers share looks: one whose wait for the watch ended after a look that started
        after it arrived returns at once (that look saw everything committed before it arrived, and
        forgot it before returning), so under load the threads of many commands make one query.

        A command serving a request (:data:`request_arrived` set) also needs no look when one that began
        after the request arrived has ended: on the API's event loop, where commands run one after the
        other, the requests that came in together share the first one's look."""
        arrived_at = request_arrived.get()
        if arrived_at is not None and arrived_at < self._last_look_began:
            return set()
        arrived = self._looks_started  # looks numbered from here on start after this call did
        with self._lock:
            if self._looks_finished > arrived:
                return set()
            self._looks_started += 1
            began = self._clock()
            erased = self._look()
            self._looks_finished = self._looks_started  # only a look that ended well stands for others
            self._last_look_began = began
            return erased

    def _only_own(self, top: int) -> bool:
        """Whether every position after the last look up to ``top`` is this process's own: if so, the
        look moves past them (called holding ``_lock``)."""
        assert self._position is not None
        with self._own_lock:
            own = self._own
            if not own.issuperset(range(self._position + 1, top + 1)):
                return False
            self._position = top
            self._own = {p for p in own if p > top}
            return True

    def _look(self) -> set[UUID]:
        """:meth:`follow`'s look at the log, holding ``_lock``."""
        if self._position is None:
            self._position = self._log_position()
            return set()
        top = self._log_position()
        if top <= self._position:
            return set()
        if self._only_own(top):
            return set()
        if self._settle is not None:
            self._settle()  # a save of this process may be in the log, its positions not told yet
            if self._only_own(top):
                return set()
        with self._own_lock:
            own = set(self._own)  # the positions told so far (one told later counts as another writer's)
        erased: set[UUID] = set()
        written: set[UUID] = set()
        start = self._position + 1
        select = self._select_written or self._select_erasures
        while True:
            page = select(start, _PAGE, top)
            if self._select_written is None:
                erased.update(UUID(str(n.originator_id)) for n in page)
            else:
                for n in page:
                    if n.topic in _ERASURE_TOPIC_SET:
                        erased.add(UUID(str(n.originator_id)))
                    if n.id not in own:
                        written.add(UUID(str(n.originator_id)))
            if len(page) < _PAGE:
                break
            start = page[-1].id + 1
        if written and self._forget_written is not None:
            self._forget_written(written)
        for customer_id in erased:
            self._forget(customer_id)
        self._position = top
        with self._own_lock:
            self._own = {p for p in self._own if p > top}
        return erased
