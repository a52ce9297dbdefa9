"""The automation: the router, the SLA clock and the scheduler, working the workflow view's rows.

The workflow view (:mod:`projections.workflow`) records, exactly once per event, what
there is to do. This loop does it, at least once: every action is a command with a
command id derived from what it acts on, and every decision is guarded by the domain
(a ticket is routed once, an SLA warning, breach or fulfilment is recorded once per
metric run, a survey is issued once), so a retry after a crash writes nothing twice.

It follows the shared log, not this process's saves, so tickets opened by another
API process are routed too (the view's worker polls SQLite and listens on
PostgreSQL). Time comes from the injected clock: tests call :meth:`Automation.run_once`
on a fake clock and never sleep.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.utils import get_topic

from projections.customers import inactive_customers
from projections.readside import ReadSide
from projections.sql import Db, ts
from projections.webhook_sender import WebhookSender
from projections.workflow import SLA_CLOCKS, due_work, earliest_todo, mark_work, rotation
from ticketflow.application import TicketDesk
from ticketflow.automation import calendar_from_spec
from ticketflow.clock import Clock
from ticketflow.commands import CloseTicket
from ticketflow.commands.privacy import EraseCustomer
from ticketflow.commands.workflow import (
    ApplySla, FireReminder, IssueSurvey, RecordSlaEvent, RouteTicket, ScheduleReminder,
)
from ticketflow.domain import Customer, Ticket
from ticketflow.domain.values import Channel, Role, Status
from ticketflow.email.imap import ImapPoller
from ticketflow.errors import ConcurrencyConflict, NotFound, StorageUnavailable, TicketflowError
from ticketflow.metadata import Caller
from ticketflow.sla.calendar import BusinessCalendar
from ticketflow.sla.decide import marks_due, targets_of
from ticketflow.sla.measure import ClockRun, Measurement, measure_clocks

log = logging.getLogger("ticketflow.automation")

SYSTEM = Caller("automation", Role.SYSTEM, Channel.SYSTEM)
#: Command ids of automatic actions derive from what they act on: a retry is recognised.
NAMESPACE = uuid5(NAMESPACE_URL, "https://ticketflow.dev/automation")
ALWAYS = "9999-12-31"
#: The shortest time between the starts of two passes of the automation thread (seconds).
MIN_GAP_SECONDS = 0.25
OPEN_STATUSES = ("new", "open", "pending", "on_hold")
#: Calendars kept built (one per distinct calendar version in the SLA terms of the tickets measured).
MAX_CALENDARS = 256
#: Tickets whose SLA clocks are kept run (see :class:`_ClockCache`); the least recently measured go first.
#: An entry is a few clocks (metric, instants) and flags, about 1-2 KB: 10,000 tickets stay under ~20 MB.
CLOCK_CACHE_TICKETS = 10_000
#: A customer's erasure (the cache forgets their tickets when it sees one in the log).
_ERASURE_TOPICS = [get_topic(Customer.ErasureRequested), get_topic(Customer.Erased)]
_ERASURE_TOPIC_SET = frozenset(_ERASURE_TOPICS)
#: Tickets the SLA clock keeps built from the log between looks (see :class:`_TicketFeed`), the least
#: recently changed out first. An entry is the built ticket (its text too) and the events its clocks have
#: not taken yet (none for a ticket without SLA terms or done with, once looked at).
FEED_TICKETS = 2_000
#: At most this many events held by the feed in all (the tickets' decoded events, their text too): the
#: least recently changed tickets go first. A few KB an event at most: 20,000 stay under ~60 MB of text.
FEED_EVENTS = 20_000
_TICKET_TOPIC = f"{Ticket.__module__}:{Ticket.__qualname__}."
_PAGE = 500
#: At most this many log positions read past the views' batches at a pass (more: the feed starts over).
TAIL_LIMIT = 5_000


def command_id(*parts: object) -> UUID:
    return uuid5(NAMESPACE, ":".join(str(p) for p in parts))


class Automation:
    """One pass over the due work: :meth:`run_once`. :meth:`start` runs passes in a thread."""

    def __init__(
        self,
        desk: TicketDesk,
        read_side: ReadSide,
        clock: Clock | None = None,
        extra_steps: Mapping[str, Callable[[], int]] | None = None,
        interval: float = 1.0,
        clock_cache_tickets: int = CLOCK_CACHE_TICKETS,
    ) -> None:
        """``clock_cache_tickets``: how many tickets' SLA clocks are kept run between looks (0: none,
        every look replays the ticket's whole history, as before the cache)."""
        self.desk = desk
        self.read_side = read_side
        self.settings = desk.settings
        self.clock = clock or desk.clock
        self.extra_steps = dict(extra_steps or {})
        if "outbox" in read_side.stores and "webhooks" not in self.extra_steps:  # notifications go out too
            self.extra_steps["webhooks"] = WebhookSender(read_side, desk, self.clock).run_once
        if "outbox" in read_side.stores and desk.settings.smtp_host and "mail" not in self.extra_steps:
            from projections.mail_sender import MailSender  # replies on email tickets go out as mail

            self.extra_steps["mail"] = MailSender(read_side, desk, self.clock).run_once
        self.interval = interval
        # IMAP mailboxes are fetched by the process running the automation, in their own thread (a slow
        # mail server never holds up routing or the SLA clock).
        self.imap = ImapPoller(desk)
        self._last_write = 0
        self._deferred: list[tuple[tuple[str, str], Callable[[Db], None]]] | None = None  # see _writes_per_step
        self._earliest: dict[str, str | None] | None = None  # see _due
        self._calendars: dict[str, BusinessCalendar] = {}
        self.clock_cache = _ClockCache(clock_cache_tickets)
        # Follows the views' batches from its first use (a pass, or start()) until stop(): an automation
        # built but never run (a server with the automation off) has no follower, holds nothing.
        self.feed = _TicketFeed(desk, FEED_TICKETS if clock_cache_tickets else 0, read_side=read_side)
        self._erasures_seen = desk.log_position()  # erasures before this process started: nothing cached yet
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ running
    def run_once(self) -> Counter[str]:
        """Do everything due now; returns how many actions of each kind were taken."""
        now = self.clock.now()
        done: Counter[str] = Counter()
        self._earliest = None
        try:
            return self._run_steps(now, done)
        finally:
            self._earliest = None

    def _run_steps(self, now: datetime, done: Counter[str]) -> Counter[str]:
        self._read_earliest()
        with self._writes_per_step():
            done["routed"] = self.route()
        if done["routed"]:
            self._read_earliest()  # routing caught the views up (see _settle_views)
        self._forget_erased()
        steps: list[tuple[str, Callable[[], int]]] = [
            ("sla", lambda: self.sla(now)), ("surveys", self.surveys), ("follow_ups", lambda: self.follow_ups(now)),
            ("auto_closed", lambda: self.auto_close(now)), ("reminders", lambda: self.reminders(now)),
            ("retention_erasures", lambda: self.retention(now)),
        ]
        for name, step in steps:
            with self._writes_per_step():
                done[name] = step()
        for name, step in self.extra_steps.items():
            done[name] = step()
        return done

    @contextmanager
    def _writes_per_step(self) -> Iterator[None]:
        """The step's own bookkeeping (work marks, SLA clocks) written in one transaction when it ends,
        not one per row. Safe as the rows' commands are: a crash before the write leaves the rows due,
        and doing one again writes nothing (its command id is recognised)."""
        self._deferred = []
        try:
            yield
        finally:
            deferred, self._deferred = self._deferred, None
            if deferred:
                # In work-row key order, as a view batch writes its rows (the marks move the rows' todo_at):
                # two PostgreSQL transactions then lock the rows they share in the same order.
                deferred.sort(key=lambda item: item[0])
                self._write_now(lambda db: [change(db) for _, change in deferred])

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self.feed.follow()
        self.desk.on_saved(self._ring)
        self._thread = threading.Thread(target=self._run, name="automation", daemon=True)
        self._thread.start()
        self.imap.start()

    def stop(self) -> None:
        self.imap.stop()
        self._stopping.set()
        self._wake.set()
        self.desk.remove_on_saved(self._ring)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.feed.close()

    def _ring(self, *_: Any) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                # The workflow view's next batch, not a hurried one: under load a pass every
                # MIN_GAP_SECONDS would otherwise cut every batch of every view short.
                self.read_side.wait(self.desk.log_position(), timeout=2.0, names=["workflow"], hurry=False)
                self.run_once()
            except Exception:  # noqa: BLE001 - the loop survives a passing database error
                log.exception("automation: pass failed; retrying")
            # Under a steady load every save rings: one pass per MIN_GAP_SECONDS takes in all of them.
            self._stopping.wait(max(0.0, began + MIN_GAP_SECONDS - time.monotonic()))
            self._wake.wait(self.interval)
            self._wake.clear()

    # ------------------------------------------------------------------ routing
    def route(self) -> int:
        """Route new tickets in log order; each decision sees the previous one in the views."""
        rows = list(self._due("route", ALWAYS))
        if rows and self.desk.routing_policy() is None:
            # A desk without routing rules dispatches by hand: the router's command would refuse each
            # ticket in turn (a load, a refusal and a log line a ticket); the rows are done at once.
            log.info("automation: no routing policy yet: %d new ticket(s) left to dispatch by hand", len(rows))
            for row in rows:
                self._mark(row, "done", row["due_at"])
            return len(rows)
        count = 0
        for row in rows:
            self._settle_views(["tickets", "workflow"])
            ticket_id = UUID(row["object_id"])
            last = {UUID(team): agent for team, agent in self.read_side.read("workflow", rotation).items()}
            self._act(row, lambda: self.desk.route_ticket(
                RouteTicket(ticket_id=ticket_id, command_id=command_id("route", ticket_id)), SYSTEM,
                open_tickets=_Workload(self.read_side), last_assigned=last,
            ))
            count += 1
        return count

    def _settle_views(self, names: list[str]) -> None:
        """Wait until the views show this loop's last write (round-robin and loads depend on it)."""
        if not self._last_write:
            return
        if self.read_side.workers:
            self.read_side.wait(self._last_write, timeout=5.0, names=names)
        else:
            self.read_side.catch_up(names)

    # ---------------------------------------------------------------------- SLA
    def sla(self, now: datetime) -> int:
        # The policies read once for the pass, and the log's end once (the feed), not once a ticket.
        with self.desk.pinned_sla_snapshot(), self.feed.current():
            return self._sla(now)

    def _sla(self, now: datetime) -> int:
        count = 0
        for row in self._due("sla", ts(now) or ALWAYS):
            ticket_id = UUID(row["object_id"])
            try:
                next_due, finished, clocks = self.evaluate(ticket_id, now, changed=row["due_at"] == "")
            except NotFound:
                next_due, finished, clocks = None, True, None
            except _TryAgain:
                continue
            except Exception:  # noqa: BLE001 - one bad ticket must not stop the clock for the others
                log.exception("automation: SLA of ticket %s could not be measured; set aside", ticket_id)
                self._mark(row, "failed", row["due_at"])
                continue
            state = "done" if finished or next_due is None else "due"
            if state == "done":  # no SLA terms, or done with: the clocks read the store if they ever look again
                self.feed.settled(ticket_id)

            def save(db: Db, row: dict[str, Any] = row, clocks: Any = clocks, state: str = state,
                     due: str | None = ts(next_due) if next_due else row["due_at"]) -> None:
                if clocks is not None:
                    clocks(db)
                _mark_in(db, row, state, due)

            self._write(save, row)  # the clocks and the row's next look, in one transaction
            count += 1
        return count

    def evaluate(
        self, ticket_id: UUID, now: datetime, changed: bool = True
    ) -> tuple[datetime | None, bool, Callable[[Db], None] | None]:
        """Measure one ticket's SLA clocks; record warnings, breaches and fulfilments once.

        ``changed``: the ticket was updated since the last look, so a newer policy version
        (or a first policy) applies from now on. Returns when to look again and whether
        the ticket is finished with (closed), and how to store the clocks as measured.
        """
        fed = self.feed.look(ticket_id)
        ticket = fed.ticket if fed is not None else self.desk.peek_ticket(ticket_id)  # read only: no copy
        if changed and ticket.status != Status.CLOSED:
            terms = self.desk.matching_sla_terms(ticket)
            current = ticket.sla and self.desk.sla_terms_key(ticket.sla)
            wanted = self.desk.sla_terms_key(terms) if terms is not None else None
            if wanted is not None and current != wanted:
                self._command(lambda: self.desk.apply_sla(ApplySla(
                    ticket_id=ticket_id, command_id=command_id("sla", ticket_id, *wanted),
                ), SYSTEM))
                ticket, fed = self.desk.peek_ticket(ticket_id), None
        if ticket.sla is None:
            return None, ticket.status == Status.CLOSED, None
        terms = ticket.sla
        run = self.clock_run(ticket, now, fed)
        measurements = measure_clocks(
            run.clocks, targets_of(terms)(run.priority), self._calendar(terms["calendar"]), now,
            terms["warn_at_percent"] / 100,
        )
        marks, next_due = marks_due(ticket, measurements, now)
        for mark in marks:
            self._command(lambda k=mark: self.desk.record_sla_event(RecordSlaEvent(
                ticket_id=ticket_id, kind=k.kind, metric=k.metric, cycle=k.cycle, moment=k.moment,
                elapsed_minutes=k.elapsed_minutes,
                command_id=command_id("sla-event", ticket_id, k.kind, k.metric, k.cycle),
            ), SYSTEM))
        return next_due, ticket.status == Status.CLOSED, lambda db: _store_clocks(db, ticket_id, terms, measurements, now)

    def clock_run(self, ticket: Any, now: datetime, fed: _Look | None = None) -> ClockRun:
        """The ticket's metric clocks fed its events up to ``now``: what ``measure`` replays from the whole
        history, here kept per ticket and fed only the events written since the last look.

        Exactly :func:`ticketflow.sla.measure.clocks_of` of the history: feeding stops at the first event
        after ``now`` (it is fed at a later look), and a look at an instant before an event already fed
        starts the ticket over. Only stored events are kept: what the current batch holds, not saved yet
        (the demo's tick), is fed to a copy, so a batch that fails to save leaves the cache as the log is.
        ``fed``: the ticket as the automation's feed built it, whose events since the clocks' last look
        it holds (else they are read from the store)."""
        cached = self.clock_cache.get(ticket.id)
        if cached is None or cached.latest is not None and now < cached.latest:
            cached = _Clocks(ticket.requester_id)
        after = fed.events_after(cached.version) if fed is not None else None
        stored: list[Any]
        pending: list[Any]
        if after is not None:
            stored, pending = after, []
        else:
            stored, pending = self.desk.ticket_events_after(ticket.id, cached.version, ticket.version)
        blocked = cached.feed(stored, now)
        if cached.version > 0:
            self.clock_cache.put(ticket.id, cached)
            if fed is not None:
                self.feed.taken(ticket.id, cached.version)
        if not pending or blocked:
            return cached.run
        unsaved = cached.copy()
        unsaved.feed(pending, now)
        return unsaved.run

    def saved(self, events: Sequence[Any]) -> None:
        """Events this process has just saved (a batch of the desk: the demo's slice), in log order. The SLA
        clocks kept for their tickets take them now, as the tickets' next looks would after reading them
        back from the store and decoding them (a look in a batch feeds the batch's unsaved events to a copy
        of the clocks only, see :meth:`clock_run`): fed in version order, from the version the clocks stand
        at, up to the clock's now, as a look does."""
        if self.clock_cache.size <= 0 or not events:
            return
        now = self.clock.now()
        by_ticket: dict[UUID, list[Any]] = {}
        for event in events:
            if isinstance(event, Ticket.Event):
                by_ticket.setdefault(event.originator_id, []).append(event)
        for ticket_id, ticket_events in by_ticket.items():
            cached = self.clock_cache.peek(ticket_id)
            if cached is None:
                first = ticket_events[0]
                if first.originator_version != 1:
                    continue  # an older ticket not kept: its next look reads it from the store
                cached = _Clocks(first.requester_id)  # opened in the batch: kept from its first event on
                cached.feed(ticket_events, now)
                if cached.version > 0:
                    self.clock_cache.put(ticket_id, cached)
                continue
            if cached.latest is not None and now < cached.latest:
                continue
            after = [e for e in ticket_events if e.originator_version > cached.version]
            if after and after[0].originator_version == cached.version + 1:
                cached.feed(after, now)

    def _forget_erased(self) -> None:
        """Drop the cached clocks of every ticket of a customer erased since the last look (by any process:
        found in the log). The clocks hold no personal data; the cache forgets the tickets all the same."""
        top = self.desk.log_position()
        if top <= self._erasures_seen:
            return
        erased = {UUID(str(n.originator_id)) for n in self.desk.recorder.select_notifications(
            self._erasures_seen + 1, top - self._erasures_seen, stop=top, topics=_ERASURE_TOPICS)}
        for customer_id in erased:
            self.clock_cache.forget_customer(customer_id)
            self.feed.forget_customer(customer_id)
        self._erasures_seen = top

    def _calendar(self, spec: Mapping[str, Any] | None) -> BusinessCalendar:
        """The calendar of a ticket's SLA terms, built once per distinct spec (it is immutable)."""
        key = repr(spec)
        calendar = self._calendars.get(key)
        if calendar is None:
            if len(self._calendars) >= MAX_CALENDARS:
                self._calendars.clear()
            calendar = self._calendars[key] = calendar_from_spec(spec)
        return calendar

    # ---------------------------------------------------------------- scheduler
    def surveys(self) -> int:
        count = 0
        for row in self._due("survey", ALWAYS):
            ticket_id = UUID(row["object_id"])
            if not self._consents_to_surveys(ticket_id):
                # The command would be refused (writing nothing): the row is done as after its refusal.
                log.info("automation: the customer of ticket %s has not consented to surveys", ticket_id)
                self._mark(row, "done", row["due_at"])
                count += 1
                continue
            self._act(row, lambda: self.desk.issue_survey(
                IssueSurvey(ticket_id=ticket_id, command_id=command_id("survey", ticket_id)), SYSTEM))
            count += 1
        return count

    def _consents_to_surveys(self, ticket_id: UUID) -> bool:
        """Whether the ticket's customer consented to surveys; True when that cannot be told here (the
        command then decides, and refuses with its reason)."""
        try:
            requester = self.feed.requester(ticket_id) or self.desk.ticket_requester(ticket_id)
            return self.desk.consents_to_surveys(requester)
        except TicketflowError:
            return True

    def follow_ups(self, now: datetime) -> int:
        """A follow-up (回访) for the agent (or team) N days after a ticket was solved."""
        days = self.settings.follow_up_days
        if days == 0:
            return 0
        count = 0
        for row in self._due("follow_up", ts(now - timedelta(days=days)) or ALWAYS):
            ticket_id = UUID(row["object_id"])

            def schedule(row: dict[str, Any] = row, ticket_id: UUID = ticket_id) -> Any:
                ticket = self.desk.get_ticket(ticket_id)
                if ticket.status not in (Status.SOLVED, Status.CLOSED) or ticket.team_id is None:
                    return None
                return self.desk.schedule_reminder(ScheduleReminder(
                    kind="follow_up", ticket_id=ticket_id, agent_id=ticket.assignee_id, team_id=ticket.team_id,
                    due_at=now, note=f"回访 follow-up: ticket solved {days} day(s) ago",
                    command_id=command_id("follow-up", ticket_id, row["stamp"]),
                ), SYSTEM)

            self._act(row, schedule)
            count += 1
        return count

    def auto_close(self, now: datetime) -> int:
        """Close solved tickets N days after solving (or after the customer's last word)."""
        days = self.settings.auto_close_days
        if days == 0:
            return 0
        count = 0
        for row in self._due("auto_close", ts(now - timedelta(days=days)) or ALWAYS):
            ticket_id = UUID(row["object_id"])

            def close(row: dict[str, Any] = row, ticket_id: UUID = ticket_id) -> Any:
                if self.desk.get_ticket(ticket_id).status != Status.SOLVED:
                    return None
                return self.desk.close_ticket(
                    CloseTicket(ticket_id=ticket_id, command_id=command_id("auto-close", ticket_id, row["due_at"])),
                    SYSTEM,
                )

            self._act(row, close)
            count += 1
        return count

    def reminders(self, now: datetime) -> int:
        count = 0
        for row in self._due("reminder", ts(now) or ALWAYS):
            reminder_id = UUID(row["object_id"])
            self._act(row, lambda: self.desk.fire_reminder(
                FireReminder(reminder_id=reminder_id, command_id=command_id("fire", reminder_id)), SYSTEM))
            count += 1
        return count

    # ---------------------------------------------------------------- retention
    def retention(self, now: datetime) -> int:
        """Erase customers inactive for ``TICKETFLOW_RETENTION_DAYS`` (no open ticket, nothing since)."""
        days = self.settings.retention_days
        if days == 0 or "customers" not in self.read_side.stores:
            return 0
        cutoff = ts(now - timedelta(days=days))
        inactive = self.read_side.read("customers", lambda db: inactive_customers(db, cutoff))
        count = 0
        for found in inactive:
            customer_id = UUID(found)
            try:
                self._command(lambda: self.desk.erase_customer(EraseCustomer(
                    customer_id=customer_id, basis="retention", reference=f"inactive for {days} days",
                    command_id=command_id("retention", customer_id),
                ), SYSTEM))
            except _TryAgain:
                continue
            count += 1
        return count

    # ------------------------------------------------------------------ plumbing
    def _read_earliest(self) -> None:
        """With no view workers (the views move only when this thread catches them up or feeds them:
        tests, ``ticketflow demo``), read once when each kind's work falls due, so that a step with
        nothing due does not ask (:meth:`_due`). The pass's own marks move only the rows of the step
        that writes them. With workers the views move under the pass: every step asks."""
        self._earliest = None if self.read_side.workers else self.read_side.read("workflow", earliest_todo)

    def _due(self, kind: str, until: str) -> Iterator[dict[str, Any]]:
        if self._earliest is not None and kind in self._earliest:
            earliest = self._earliest[kind]
            if earliest is None or earliest > until:
                return
        yield from self.read_side.read("workflow", lambda db: due_work(db, kind, until))

    def _act(self, row: dict[str, Any], action: Callable[[], Any]) -> None:
        """Do one row's action, then mark the row done unless an event changed it meanwhile.

        An unexpected failure sets the row aside as ``failed`` (logged, listed by
        ``failed_work``) instead of retrying it on every pass."""
        try:
            self._command(action)
        except _TryAgain:
            return
        except Exception:  # noqa: BLE001 - a poison row must not block the rows behind it
            log.exception("automation: %s of %s failed; set aside", row["kind"], row["object_id"])
            self._mark(row, "failed", row["due_at"])
            return
        self._mark(row, "done", row["due_at"])

    def _command(self, action: Callable[[], Any]) -> None:
        try:
            result = action()
        except (ConcurrencyConflict, StorageUnavailable):
            raise _TryAgain from None  # a passing conflict or outage: the row stays due for the next pass
        except TicketflowError as exc:  # refused: already done, no longer applicable, no consent...
            log.info("automation: %s", exc)
            return
        result = result[0] if isinstance(result, tuple) else result
        position = getattr(result, "position", None)
        if position:
            self._last_write = max(self._last_write, position)

    def _mark(self, row: dict[str, Any], state: str, due_at: str | None) -> None:
        self._write(lambda db: _mark_in(db, row, state, due_at), row)

    def _write(self, change: Callable[[Db], None], row: dict[str, Any]) -> None:
        """Write a work row's bookkeeping (its mark, and for an SLA row the clocks): now, or with the step's."""
        if self._deferred is not None:
            self._deferred.append(((row["kind"], row["object_id"]), change))
        else:
            self._write_now(change)

    def _write_now(self, change: Callable[[Db], Any]) -> None:
        store = self.read_side.stores["workflow"]
        with store._transaction(commit=True) as cursor:  # noqa: SLF001 - the view's own store
            change(Db(cursor, store.dialect, store.prefix))


@dataclass
class _Clocks:
    """One ticket's SLA clocks as run so far: fed the events up to ``version``, the latest at ``latest``.

    Holds instants, metric names, the priority and two flags: no text of the ticket or its customer."""

    requester_id: UUID
    run: ClockRun = field(default_factory=ClockRun)
    version: int = 0
    latest: datetime | None = None

    def copy(self) -> _Clocks:
        """An independent copy (``copy.deepcopy``'s result, cheaper: see :meth:`ClockRun.copy`)."""
        return _Clocks(self.requester_id, self.run.copy(), self.version, self.latest)

    def feed(self, events: list[Any], now: datetime) -> bool:
        """Feed events in version order up to ``now``; True when one after ``now`` stopped the feeding."""
        for event in events:
            if event.occurred_at > now:
                return True
            self.run.feed(event)
            self.version = event.originator_version
            if self.latest is None or event.occurred_at > self.latest:
                self.latest = event.occurred_at
        return False


class _ClockCache:
    """Tickets' SLA clocks kept run, least recently used out first, at most ``size`` tickets (0: off).
    Used by the automation's one thread."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[UUID, _Clocks] = OrderedDict()

    def peek(self, ticket_id: UUID) -> _Clocks | None:
        """The ticket's clocks, if kept, leaving the order of use as it is."""
        return self._entries.get(ticket_id)

    def get(self, ticket_id: UUID) -> _Clocks | None:
        entry = self._entries.get(ticket_id)
        if entry is not None:
            self._entries.move_to_end(ticket_id)
        return entry

    def put(self, ticket_id: UUID, entry: _Clocks) -> None:
        if self.size <= 0:
            return
        self._entries[ticket_id] = entry
        self._entries.move_to_end(ticket_id)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget_customer(self, customer_id: UUID) -> None:
        for ticket_id in [t for t, e in self._entries.items() if e.requester_id == customer_id]:
            del self._entries[ticket_id]

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, ticket_id: object) -> bool:
        return ticket_id in self._entries

    def entries(self) -> dict[UUID, _Clocks]:
        return dict(self._entries)


@dataclass
class _Fed:
    """One ticket as the feed holds it: built up to ``ticket``'s version (None: not built yet), and its
    events after ``base`` (consecutive versions), those the clocks have not taken yet among them."""

    requester_id: UUID
    events: list[Any]
    base: int = 0
    ticket: Any = None

    @property
    def last(self) -> int:
        return self.events[-1].originator_version if self.events else self.base


@dataclass
class _Look:
    """A ticket as a look sees it, and the events after ``base`` it was built from (see :meth:`events_after`)."""

    ticket: Any
    base: int
    events: list[Any]

    def events_after(self, version: int) -> list[Any] | None:
        """The ticket's events after ``version`` (None: some are not held)."""
        if version < self.base:
            return None
        return [e for e in self.events if e.originator_version > version]


class _TicketFeed:
    """Tickets kept built from the log's events for the SLA clock's looks, so a look neither reloads the
    ticket (the aggregate cache's fast-forward: a query and the decoding of its new events, or the whole
    history when another command had the ticket out of the cache) nor reads the new events again for
    the clocks, nor asks the log's end once a ticket.

    Fed in log order: the views' batches give it the events they decoded (:meth:`ReadSide.on_batch`),
    and :meth:`current`, once per pass, reads what the views have not taken yet (the log's end, one
    query; the notifications past the views, a second one when there are some, decoded only for the
    tickets looked at), so a look sees the ticket as the log's end at the start of the pass plus what
    the views took since, as a look that reloads it would. A ticket enters with its first event (older
    tickets are loaded as before); a gap in its versions drops it.

    An entry keeps the built ticket and the events its clocks have not taken yet (:meth:`taken`); a
    ticket the clock is done with (no SLA terms, closed: :meth:`settled`) keeps the built ticket only,
    its clocks read the store if they ever need older events. At most ``size`` tickets and ``events``
    events in all are held, the least recently changed tickets out first.

    The entries hold the ticket's text: an erased customer's tickets are dropped when the erasure shows
    in the log (fed here, or found by :meth:`Automation._forget_erased`), before the next look.
    Shared by the views' thread (:meth:`take`) and the automation's (the rest), under one lock; a built
    ticket is only ever changed by the automation's thread. ``size`` 0: off (every look reloads).

    It follows ``read_side``'s batches (:meth:`follow`) from its first use on, not from its making, and
    lets go of them and of what it holds at :meth:`close`."""

    def __init__(
        self, desk: TicketDesk, size: int, events: int | None = None, read_side: ReadSide | None = None,
    ) -> None:
        self.desk = desk
        self.size = size
        self.max_events = FEED_EVENTS if events is None else events
        self.read_side = read_side
        self.position = desk.log_position()  # fed up to here: the tickets opened before are not held
        self._entries: OrderedDict[UUID, _Fed] = OrderedDict()
        self._held = 0  # events held in all the entries
        self._following = False
        self._lock = threading.Lock()
        self._current = False
        self._tail: dict[UUID, list[Any]] = {}  # the log past ``position`` at the pass's start, per ticket

    def follow(self) -> None:
        """Be given the views' batches from now on (once; :meth:`close` undoes it). The tickets opened
        before are not held (their looks load them)."""
        if self._following or self.size <= 0 or self.read_side is None:
            return
        top = self.desk.log_position()
        with self._lock:
            self._clear()
            self.position = top
            self._following = True
        self.read_side.on_batch(self.take)

    def close(self) -> None:
        """No more batches; nothing held (the next use follows again)."""
        if self.read_side is not None:
            self.read_side.remove_on_batch(self.take)
        with self._lock:
            self._following = False  # a batch the views' thread is handing over now is not taken
            self._clear()

    def take(self, notifications: Sequence[Any], decoded: Mapping[int, Any]) -> None:
        """A batch of the log (consecutive positions), with the events some view decoded."""
        if self.size <= 0 or not notifications:
            return
        with self._lock:
            if not self._following:
                return
            if notifications[0].id > self.position + 1:  # the views moved past a range (a rebuild elsewhere)
                self._clear()
            self._take(notifications, decoded)

    @contextmanager
    def current(self) -> Iterator[None]:
        """The log's end read once for a run of looks (a pass of the SLA clock), not once a look."""
        self._read_tail()
        self._current = True
        try:
            yield
        finally:
            self._current = False
            self._tail = {}

    def look(self, ticket_id: UUID) -> _Look | None:
        """The ticket as the log leaves it, built from the fed events and the tail's (None: not held, or
        inside a batch of the desk, whose unsaved events only the desk's own load sees)."""
        if self.size <= 0 or self.desk.in_batch():
            return None
        if not self._current:
            self._read_tail()
        tail = self._tail.get(ticket_id, ())
        decode = self.desk.mapper.to_domain_event
        with self._lock:
            entry = self._entries.get(ticket_id)
            for n in tail:  # the events the views have not taken yet, decoded for the tickets looked at only
                if entry is None and n.originator_version == 1 or entry is not None and n.originator_version > entry.last:
                    self._add(ticket_id, entry, decode(n))
                    entry = self._entries.get(ticket_id)
            if entry is None:
                return None
            ticket, base, events = entry.ticket, entry.base, list(entry.events)
        try:
            for event in events:  # built outside the lock: only this thread changes a built ticket
                if ticket is None or event.originator_version > ticket.version:
                    ticket = event.mutate(ticket)
        except Exception:  # a half-built ticket is never looked at: dropped, the look loads it instead
            log.exception("automation: ticket %s could not be built from the log's events; loaded instead", ticket_id)
            with self._lock:
                if self._entries.get(ticket_id) is entry:
                    self._drop(ticket_id)
            return None
        if ticket is None:
            return None
        with self._lock:
            if self._entries.get(ticket_id) is entry and (entry.ticket is None or entry.ticket.version < ticket.version):
                entry.ticket = ticket
        return _Look(ticket, base, events)

    def requester(self, ticket_id: UUID) -> UUID | None:
        """The customer whose ticket it is, when the feed holds it (a ticket's requester never changes)."""
        with self._lock:
            entry = self._entries.get(ticket_id)
            return entry.requester_id if entry is not None else None

    def taken(self, ticket_id: UUID, version: int) -> None:
        """The clocks were fed the ticket's events up to ``version``: those need not be kept for them."""
        with self._lock:
            entry = self._entries.get(ticket_id)
            if entry is None or entry.ticket is None:
                return
            self._trim(entry, min(version, entry.ticket.version))

    def settled(self, ticket_id: UUID) -> None:
        """The clocks are done with the ticket for now (no SLA terms, or closed): keep it built, without
        the events it was built from (the clocks read the store if they ever look again)."""
        with self._lock:
            entry = self._entries.get(ticket_id)
            if entry is not None and entry.ticket is not None:
                self._trim(entry, entry.ticket.version)

    def held(self) -> int:
        """The events held in all."""
        return self._held

    def forget_customer(self, customer_id: UUID) -> None:
        with self._lock:
            self._forget(customer_id)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, ticket_id: object) -> bool:
        return ticket_id in self._entries

    def entries(self) -> dict[UUID, _Fed]:
        with self._lock:
            return dict(self._entries)

    # ------------------------------------------------------------------ under the lock
    def _read_tail(self) -> None:
        """What the log holds past what the views gave the feed: the log's end (one query) and, when it is
        further, the notifications in between (one more; decoded only for the tickets looked at). A tail
        longer than ``TAIL_LIMIT`` (nobody steps the views here) empties the feed: the looks load instead."""
        self._tail = {}
        if self.size <= 0 or self.desk.in_batch():  # a batch's looks load from the desk (see :meth:`look`)
            return
        self.follow()  # first use: from now on
        top = self.desk.log_position()
        with self._lock:
            start = self.position + 1
            if top - self.position > TAIL_LIMIT:
                self._clear()
                self.position = top
                return
        tail: dict[UUID, list[Any]] = {}
        while start <= top:
            page = self.desk.recorder.select_notifications(start, _PAGE, stop=top)
            for n in page:
                if n.topic.startswith(_TICKET_TOPIC):
                    tail.setdefault(UUID(str(n.originator_id)), []).append(n)
                elif n.topic in _ERASURE_TOPIC_SET:
                    self.forget_customer(UUID(str(n.originator_id)))
            if len(page) < _PAGE:
                break
            start = page[-1].id + 1
        self._tail = tail

    def _take(self, notifications: Sequence[Any], decoded: Mapping[int, Any]) -> None:
        decode = self.desk.mapper.to_domain_event
        for n in notifications:
            if n.id <= self.position:
                continue
            if n.topic.startswith(_TICKET_TOPIC):
                ticket_id = UUID(str(n.originator_id))
                entry = self._entries.get(ticket_id)
                if entry is not None or n.originator_version == 1:
                    event = decoded.get(n.id)
                    self._add(ticket_id, entry, event if event is not None else decode(n))
            elif n.topic in _ERASURE_TOPIC_SET:
                self._forget(UUID(str(n.originator_id)))
        self.position = max(self.position, notifications[-1].id)

    def _add(self, ticket_id: UUID, entry: _Fed | None, event: Any) -> None:
        version = event.originator_version
        if entry is None:
            self._entries[ticket_id] = _Fed(event.requester_id, [event])
        elif version <= entry.last:
            return
        elif version != entry.last + 1:  # a gap (never in a log read in order): the ticket is loaded instead
            self._drop(ticket_id)
            return
        else:
            entry.events.append(event)
            self._entries.move_to_end(ticket_id)
        self._held += 1
        while self._entries and (len(self._entries) > self.size or self._held > self.max_events):
            _, oldest = self._entries.popitem(last=False)  # the least recently changed
            self._held -= len(oldest.events)

    def _trim(self, entry: _Fed, upto: int) -> None:
        if upto > entry.base:
            kept = [e for e in entry.events if e.originator_version > upto]
            self._held -= len(entry.events) - len(kept)
            entry.events = kept
            entry.base = upto

    def _drop(self, ticket_id: UUID) -> None:
        self._held -= len(self._entries.pop(ticket_id).events)

    def _clear(self) -> None:
        self._entries.clear()
        self._held = 0

    def _forget(self, customer_id: UUID) -> None:
        for ticket_id in [t for t, e in self._entries.items() if e.requester_id == customer_id]:
            self._drop(ticket_id)


class _TryAgain(Exception):
    """A command lost a race or the store was briefly away: do the row again on the next pass."""


def _mark_in(db: Db, row: dict[str, Any], state: str, due_at: str | None) -> None:
    """Move a work row on, unless an event changed it since it was read (then it stays due)."""
    mark_work(db, row, state, due_at)


class _Workload(Mapping[str, int]):
    """Open tickets per agent, read from the tickets view only for the agents asked about."""

    def __init__(self, read_side: ReadSide) -> None:
        self.read_side = read_side
        self._known: dict[str, int] = {}

    def __getitem__(self, agent: str) -> int:
        if agent not in self._known:
            self._known[agent] = int(self.read_side.read("tickets", lambda db: db.scalar(
                "SELECT COUNT(*) FROM {p}tf_tickets WHERE assignee_id = ? AND status IN (?, ?, ?, ?)",
                (agent, *OPEN_STATUSES),
            )) or 0)
        return self._known[agent]

    def __iter__(self) -> Iterator[str]:
        return iter(self._known)

    def __len__(self) -> int:
        return len(self._known)


def _store_clocks(db: Db, ticket_id: UUID, terms: Mapping[str, Any], measurements: list[Measurement], now: datetime) -> None:
    rows = [
        [str(ticket_id), m.metric.value, m.started_at.isoformat(), m.state.value,
         m.target.total_seconds() / 60, int(m.business_hours), round(m.elapsed.total_seconds() / 60, 2),
         ts(m.due_at), ts(m.breached_at), ts(m.fulfilled_at), terms["policy_name"], terms["policy_version"], ts(now)]
        for m in measurements
    ]
    db.execute("DELETE FROM {p}tf_sla_clocks WHERE ticket_id = ?", (str(ticket_id),))
    db.executemany(SLA_CLOCKS.upsert_sql, rows)
