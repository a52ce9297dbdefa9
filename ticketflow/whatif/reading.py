"""How the what-if reads the log: page by page, decoding only the events it uses, opening only the
personal fields it reads.

* **Pages.** On SQLite a page is one query, its rows taken as they come (each originator's id converted
  once per page); any other store pages through its recorder's ``select_notifications``. Every stored
  event up to the log's end is seen once, in order, its writer MAC stripped (not judged: as the desk's
  own mapper reads, :meth:`ticketflow.writer_mac.WriterMac.unwrap`).
* **Events.** An event whose class the reader is not asked for is counted, not decoded.
* **Personal fields.** Events are decoded by mappers made of the desk's own pieces (its transcoder,
  compressor and cipher): an event of a class in :data:`OPENED` by the desk's personal-data mapper (on
  its key store), its sealed fields opened as the desk opens them; any other by the plain mapper, its
  personal fields left sealed as stored (their envelope, never their plaintext), no key read for them.
  The replay and its report read no personal field but those.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import resolve_topic

from ticketflow.application import TicketDesk
from ticketflow.domain import Ticket
from ticketflow.privacy.mapper import PrivacyMapper
from ticketflow.writer_mac import WriterMac, inner_state

#: The event classes whose personal fields the what-if reads: a routing rule's keywords match a new
#: ticket's subject and description (:func:`ticketflow.automation.placement_team`).
OPENED: frozenset[type] = frozenset({Ticket.Opened})


class LogReader:
    """The log's events of some kinds, read once up to a position.

    ``kinds``: groups of event classes; :meth:`events` gives each event of a class in one of them with
    the index of the first such group (its kind). ``read``: the stored events seen (decoded or not)."""

    def __init__(self, desk: TicketDesk, kinds: tuple[tuple[type, ...], ...], page: int = 1000) -> None:
        self._desk = desk
        self._kinds = kinds
        self._page = page
        mapper = desk.mapper
        inner: type[Mapper[Any]] = getattr(type(mapper), "inner_class", type(mapper))  # within the writer MAC
        self._plain: Mapper[Any] = Mapper(mapper.transcoder, compressor=mapper.compressor, cipher=mapper.cipher)
        self._opening: Mapper[Any] = self._plain
        if issubclass(inner, PrivacyMapper):
            keys = mapper.keys  # type: ignore[attr-defined]
            self._opening = inner(mapper.transcoder, keys=keys, compressor=mapper.compressor, cipher=mapper.cipher)
        self._by_topic: dict[str, tuple[int, Any]] = {}  # topic -> (kind or -1, decode)
        self.read = 0

    def _topic(self, topic: str) -> tuple[int, Any]:
        found = self._by_topic.get(topic)
        if found is None:
            cls = resolve_topic(topic)
            kind = next((n for n, group in enumerate(self._kinds) if issubclass(cls, group)), -1)
            decoder = self._opening if cls in OPENED else self._plain
            found = self._by_topic[topic] = (kind, decoder.to_domain_event)
        return found

    def decode(self, stored: StoredEvent) -> Any:
        """One stored event (as :meth:`events` gives it, writer MAC stripped) decoded as :meth:`events` does."""
        return self._topic(stored.topic)[1](stored)

    def events(self, end: int) -> Iterator[tuple[int, int, StoredEvent, Any]]:
        """(kind, position, stored event, domain event) of each event of the kinds asked for, up to ``end``.

        What it and its caller keep of a page is set aside from the garbage collector's generations once
        the page is read (:func:`gc.freeze`, undone at the end): the collector does not traverse the
        history read so far again and again as it grows (a sixth of the read's CPU), only the page being
        read. Where something else froze objects before, the collector is left alone."""
        by_topic = self._by_topic
        setting_aside = gc.get_freeze_count() == 0
        try:
            for page in self._pages(end):
                self.read += len(page)
                for position, stored in page:
                    kind, decode = by_topic.get(stored.topic) or self._topic(stored.topic)
                    if kind >= 0:
                        yield kind, position, stored, decode(stored)
                if setting_aside:
                    gc.freeze()
        finally:
            if setting_aside:
                gc.unfreeze()

    def _pages(self, end: int) -> Iterator[list[tuple[int, StoredEvent]]]:
        recorder = self._desk.recorder
        if isinstance(recorder, SQLiteApplicationRecorder):
            yield from _sqlite_pages(recorder, end, self._page)
            return
        start = 1
        while start <= end:
            notifications = recorder.select_notifications(start, self._page, stop=end)
            if not notifications:
                return
            yield [(n.id, WriterMac.unwrap(n)) for n in notifications]
            start = notifications[-1].id + 1


def _sqlite_pages(
    recorder: SQLiteApplicationRecorder, end: int, size: int
) -> Iterator[list[tuple[int, StoredEvent]]]:
    """Pages of a SQLite store: one query each, its rows taken as they come."""
    statement = (
        f"SELECT rowid, originator_id, originator_version, topic, state FROM {recorder.events_table_name}"
        " WHERE rowid>=? AND rowid<=? ORDER BY rowid LIMIT ?"
    )
    as_uuid = recorder.datastore.originator_id_type == "uuid"
    start = 1
    while start <= end:
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (start, end, size))
            rows = cursor.fetchall()
        if not rows:
            return
        ids: dict[str, Any] = {}
        page: list[tuple[int, StoredEvent]] = []
        for position, originator_id, version, topic, state in rows:
            if as_uuid:
                found = ids.get(originator_id)
                if found is None:
                    found = ids[originator_id] = UUID(originator_id)
                originator_id = found
            page.append((position, StoredEvent(originator_id, version, topic, inner_state(state))))
        yield page
        start = rows[-1][0] + 1
