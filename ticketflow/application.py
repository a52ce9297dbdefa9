"""The TicketDesk application: one method per command, plus the reads the CLI needs.

Each command method follows one path (:meth:`TicketDesk._change` or
:meth:`TicketDesk._create`): set the recording context (who, when, via what),
load, recognise a retried command, check the expected version, let the
aggregate guard and record, then save everything in one transaction. A refused
command raises before anything is saved, so it writes no event.

One application holds all three aggregate families: on SQLite every
eventsourcing application shares the one ``stored_events`` table, so several
applications on one file would see each other's events.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import random
import secrets
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Application, LRUCache, ProcessingEvent
from eventsourcing.persistence import IntegrityError, PersistenceError, Recording

from ticketflow import metadata
from ticketflow.clock import Clock, SystemClock
from ticketflow.commands import (
    AddCollaborator, AddCustomerNote, AddNote, AddTeamMember, AssignTicket, ChangeCustomerTier, ChangePriority, ChangeTags, ChangeTeamMember, CloseTicket, Command,
    DeactivateTeamMember, FormTeam, GiveConsent, HoldTicket, LinkTicket, LogInteraction, LogWork,
    MarkTicketOpen, MergeTicket, OpenTicket, PendTicket, PostReply, RateSatisfaction,
    ReactivateTeamMember, RecategoriseTicket, RegisterCustomer, RemoveCollaborator, RenameTeam,
    ReopenTicket, SolveTicket, TransferTicket, UpdateCustomerProfile, WithdrawConsent,
    RecordImportedFacts, RemoveTicketFromTeam, UnassignTicket,
)
from ticketflow.commands.imported import FactKind, ImportedFact
from ticketflow.commands.access import IssueToken, RecordDataAccess, RevokeToken
from ticketflow.config import Settings, StorageKind, postgres_refusal
from ticketflow.access import (
    PERSON_ROLES, ROLE_PERMISSIONS, SUPERVISING_MEMBER_ROLES, TOKEN_ROLES, Permission, Principal, granted, refusal,
)
from ticketflow.authorization import required_permission
from ticketflow.membership import TOPICS as MEMBERSHIP_TOPICS, Membership
from ticketflow.automation import AutomationCommands
from ticketflow.commands.privacy import EraseCustomer
from ticketflow.email.intake import MailIntake
from ticketflow.email.mailboxes import MailboxCommands
from ticketflow.email.outbound import MailComposer
from ticketflow.commands.mailbox import AddMailbox, RemoveMailbox
from ticketflow.privacy.erasure import ErasureCommands
from ticketflow.accounts.service import AccountCommands
from ticketflow.reply_templates import ReplyTemplateCommands
from ticketflow.commands.reply_template import CreateReplyTemplate, RetireReplyTemplate, ReviseReplyTemplate
from ticketflow.loop_commands import on_loop, pause
from ticketflow.privacy.keys import LazyKeyStore, open_key_store
from ticketflow.privacy.mapper import PrivacyMapper
from ticketflow.privacy.watch import ERASURE_TOPICS, ErasureWatch
from ticketflow.reconnect import retry_dead_connections
from ticketflow.writer_mac import WriterMac, with_writer_mac, writer_key
from ticketflow.commands import workflow as wf
from ticketflow.domain import (
    ApiToken, Customer, DataAccess, Mailbox, Reminder, ReplyTemplate, RoutingPolicy, ServiceCalendar, SlaPolicy, Team,
    Ticket, StaffAccount, TicketflowAggregate, Webhook,
)
from ticketflow.domain.reply_template import ReplyKind
from ticketflow.domain.values import Channel, Direction, InteractionKind, Role
from ticketflow.errors import (
    ConcurrencyConflict, CustomerNotFound, NotFound, PermissionDenied, RuleViolation,
    StorageUnavailable, TeamNotFound, TicketflowError, TicketNotFound,
)
from ticketflow.opening import opened_ticket
from ticketflow.metadata import Caller
from ticketflow.tokens import REVOKED_TOPICS, StoredToken, TokenCache, TokenRecord, token_record

A = TypeVar("A", bound=TicketflowAggregate)


#: How many erasure and eviction steps a desk remembers (:meth:`TicketDesk._untouched_since`): a command
#: that saw more of them pass since it loaded puts nothing back in the cache.
_BUMPS_KEPT = 1024

class _BorrowedRefused(Exception):
    """A command that borrowed its aggregate from the cache was refused or lost its save's race: it is
    decided again on the store's aggregate (see :meth:`TicketDesk._decide`)."""

_ERASURE_EVENTS = (Customer.ErasureRequested, Customer.Erased)

#: Namespace of ids derived from command ids, so a retried create finds its first result.
ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://ticketflow.dev/ids")

#: How far ahead of the clock an imported business time may be (clock skew between systems).
FUTURE_TOLERANCE = timedelta(minutes=5)

#: Attempts for a command without an expected version that loses a write race.
RACE_RETRIES = 12

_NOT_FOUND: dict[type[TicketflowAggregate], Callable[[UUID], NotFound]] = {
    Ticket: TicketNotFound,
    Customer: CustomerNotFound,
    Team: TeamNotFound,
    ApiToken: lambda object_id: NotFound("token", object_id),
    DataAccess: lambda object_id: NotFound("access record", object_id),
    RoutingPolicy: lambda object_id: NotFound("routing policy", object_id),
    SlaPolicy: lambda object_id: NotFound("SLA policy", object_id),
    ServiceCalendar: lambda object_id: NotFound("business calendar", object_id),
    Reminder: lambda object_id: NotFound("reminder", object_id),
    Webhook: lambda object_id: NotFound("webhook", object_id),
    StaffAccount: lambda object_id: NotFound("account", object_id),
    ReplyTemplate: lambda object_id: NotFound("reply template", object_id),
    Mailbox: lambda object_id: NotFound("mailbox", object_id),
}

TOKEN_PREFIX = "tf_"

#: What an integration may do only within its teams (never desk-wide).
_TEAM_BOUND = frozenset({Permission.TICKETS_WRITE, Permission.TICKETS_MESSAGE, Permission.CUSTOMERS_WRITE})



def _hash_secret(secret: str) -> str:
    # The secret has 256 bits of entropy: a fast hash is enough, nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()

#: How many authenticated tokens a desk remembers the principal of (then it forgets them all: tokens are few).
PRINCIPALS_REMEMBERED = 1_000
#: How many objects known to exist a desk remembers (then it forgets them all and asks the store again).
EXISTING_REMEMBERED = 100_000

_TOPIC_PREFIX: dict[type[TicketflowAggregate], str] = {
    cls: f"{cls.__module__}:{cls.__qualname__}." for cls in _NOT_FOUND
}

_DEFAULT_CHANNEL = {
    InteractionKind.CALL: Channel.PHONE,
    InteractionKind.EMAIL: Channel.EMAIL,
    InteractionKind.CHAT: Channel.CHAT,
    InteractionKind.MEETING: Channel.WALK_IN,
}

_HANDLERS: dict[type[Command], str] = {}


def _handles(command_type: type[Command]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(method: Callable[..., Any]) -> Callable[..., Any]:
        _HANDLERS[command_type] = method.__name__
        return method

    return register


@dataclass
class _Batch:
    """What the commands of one :meth:`TicketDesk.batch` wrote: their events in command order and the
    aggregates as those commands left them (later commands of the batch read these)."""

    events: list[Any] = field(default_factory=list)
    aggregates: dict[UUID, TicketflowAggregate] = field(default_factory=dict)
    #: The same events by the object they belong to (a long batch is not searched for one object's).
    by_object: dict[UUID, list[Any]] = field(default_factory=dict)
    #: The kinds of object the batch changed (a reader asks whether it holds an unsaved policy).
    kinds: set[type[TicketflowAggregate]] = field(default_factory=set)

    def add(self, aggregate: TicketflowAggregate) -> None:
        """The aggregate's pending events join the batch, and it stands for its object from now on."""
        events = aggregate.collect_events()
        self.events.extend(events)
        self.by_object.setdefault(aggregate.id, []).extend(events)
        self.aggregates[aggregate.id] = aggregate
        self.kinds.add(type(aggregate))

    def events_of(self, object_id: UUID) -> list[Any]:
        """The batch's events of one object, in order."""
        return self.by_object.get(object_id, [])


#: The batch the commands of this thread (or task) write into, if any.
_BATCH: ContextVar[_Batch | None] = ContextVar("ticketflow_batch", default=None)


@dataclass(frozen=True)
class CommandResult:
    """What a command did: the object, its version, and where its events sit in the log."""

    object_id: UUID
    version: int
    position: int | None  # global log position of the last event written; None when replayed
    events: tuple[str, ...]
    replayed: bool = False


class TicketDesk(MailComposer, MailboxCommands, MailIntake, ErasureCommands, AccountCommands, AutomationCommands, ReplyTemplateCommands, Application[UUID]):
    name = "TicketDesk"
    snapshotting_intervals = {Ticket: 50, Customer: 50, Team: 50}

    def __init__(
        self,
        settings: Settings | None = None,
        clock: Clock | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.clock: Clock = clock or SystemClock()
        self._saved_callbacks: list[Callable[[int], None]] = []
        self._recorded_callbacks: list[Callable[[Sequence[Recording[UUID]]], None]] = []
        # The library fast-forwards a cached aggregate in place, then copies it outside its lock:
        # reads of one aggregate take turns here so no reader copies one that is being updated.
        # Re-entrant: 64 stripes for every object, so a thread holding one (a load) that evicts others
        # (the erasure watch's look, should it run inside the load) may need the same stripe again.
        self._read_locks = [threading.RLock() for _ in range(64)]
        #: Bumped by an erasure (before its keys go, after its holders leave the cache) and by the eviction
        #: of what other writers changed: a command that loaded before it never puts what it loaded back
        #: into the cache (see :meth:`_keep_cached`), nor a read what it loaded (:meth:`_get`). An eviction
        #: concerns the objects it names only (:meth:`_untouched_since`), an erasure every object.
        self._erasures = 0
        self._erasures_lock = threading.Lock()  # `+=` is no atomic step: two bumps must never count as one
        #: The latest bumps: (the count it made, the objects it concerns; None: every object).
        self._bumps: deque[tuple[int, frozenset[UUID] | None]] = deque(maxlen=_BUMPS_KEPT)
        #: Cached aggregates :meth:`_peek` handed out as they are (readers may keep them): a command
        #: changes a copy of one of these, never the object itself (:meth:`_borrow`).
        #: By ``id()``; weak, so an aggregate no reader holds any more goes (aggregates compare by value).
        self._shared: weakref.WeakValueDictionary[int, TicketflowAggregate] = weakref.WeakValueDictionary()
        self._shared_lock = threading.Lock()
        # Objects found in the store, by kind: an event store only grows, so what existed exists
        # (bulk imports check the same teams and requesters for every ticket).
        self._existing: set[tuple[type[TicketflowAggregate], UUID]] = set()
        interval = self.settings.snapshot_interval
        self.snapshotting_intervals = {Ticket: interval, Customer: interval, Team: interval}  # type: ignore[misc]
        try:
            if self.settings.storage is StorageKind.SQLITE:
                directory = self.settings.sqlite_path.parent
                try:
                    directory.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise OSError(f"cannot create the directory {directory}: {exc.strerror or exc}") from None
            super().__init__(env={**self.settings.eventsourcing_env(), **self._cache_env(), **(env or {})})
        except (OSError, PersistenceError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if self.settings.storage is StorageKind.POSTGRES:
                reason = postgres_refusal(self.settings) or reason
            raise StorageUnavailable(
                f"cannot open the event store ({self.settings.describe_store()}): {reason}"
            ) from None
        if hasattr(self.recorder, "max_wait"):  # group commit (ticketflow/group_commit.py, pg_group_commit.py)
            self.recorder.max_wait = self.settings.group_commit_wait_ms / 1000
        self.membership = Membership(
            lambda start, limit: retry_dead_connections(
                lambda: self.recorder.select_notifications(start, limit, topics=MEMBERSHIP_TOPICS)),
            self.mapper.to_domain_event,
        )
        #: Tokens authenticated lately, each with the stored token it was judged against and its principal
        #: (see :meth:`authenticate`): only tokens whose secret checked, so it holds no more than the store does.
        self._principals: dict[str, tuple[StoredToken, Principal]] = {}
        self.tokens = TokenCache(
            load=self._stored_token,
            select_revoked=lambda start, limit, stop: retry_dead_connections(
                lambda: self.recorder.select_notifications(start, limit, stop=stop, topics=REVOKED_TOPICS)),
            log_position=lambda: retry_dead_connections(self.log_position),
        )
        #: Erasures by any process, read from the log before every command and every read answered from
        #: the aggregate cache: the customer's aggregates and key leave this process's caches first.
        self.erasure_watch = ErasureWatch(
            select_erasures=self._select_erasures,
            log_position=lambda: retry_dead_connections(self.log_position),
            forget=self._forget_customer,
            select_written=self._select_written,
            forget_written=self._forget_written,
            settle=getattr(self.recorder, "settle", None),  # a group commit: see GroupCommit.settle
        )
        #: A group commit tells the watch this process's positions as they commit (``ErasureWatch.committed``),
        #: every save's but an erasure's: :meth:`_notify` then tells it only of erasures, not of every save twice.
        self._told_on_commit = hasattr(self.recorder, "on_committed")
        if self._told_on_commit:
            self.recorder.on_committed = self.erasure_watch.committed

    # ------------------------------------------------------------------ observers
    def on_saved(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(position)`` after every save in this process (read-side workers
        use it to wake at once instead of at their next poll)."""
        self._saved_callbacks.append(callback)

    def remove_on_saved(self, callback: Callable[[int], None]) -> None:
        if callback in self._saved_callbacks:
            self._saved_callbacks.remove(callback)

    def on_recorded(self, callback: Callable[[Sequence[Recording[UUID]]], None]) -> None:
        """Call ``callback(recordings)`` with the events of every save in this process and their log
        positions, after the save, before the :meth:`on_saved` callbacks (the read side keeps them, so
        its worker need not decode again the events this process just encoded)."""
        self._recorded_callbacks.append(callback)

    def remove_on_recorded(self, callback: Callable[[Sequence[Recording[UUID]]], None]) -> None:
        if callback in self._recorded_callbacks:
            self._recorded_callbacks.remove(callback)

    def _notify(self, recordings: list[Recording[UUID]]) -> None:
        super()._notify(recordings)
        for recorded in list(self._recorded_callbacks):
            recorded(recordings)
        self.tokens.saw(r.domain_event for r in recordings)
        erased = [r.domain_event.originator_id for r in recordings if isinstance(r.domain_event, _ERASURE_EVENTS)]
        if erased or not self._told_on_commit:
            self.erasure_watch.saw([r.notification.id for r in recordings], erased)
        if recordings:
            position = recordings[-1].notification.id
            for callback in list(self._saved_callbacks):
                callback(position)

    def construct_mapper(self) -> Any:
        """Personal fields are sealed per customer (see ticketflow/privacy) unless turned off."""
        self.keys = LazyKeyStore(lambda: open_key_store(self.settings, self.recorder))
        self.writer_mac = WriterMac(writer_key(self.settings.secret_key_bytes()))
        if not self.settings.encrypt_personal_data:
            plain = super().construct_mapper()
            mapper = with_writer_mac(type(plain))(
                self.construct_transcoder(), compressor=plain.compressor, cipher=plain.cipher)
        else:
            mapper = with_writer_mac(PrivacyMapper)(self.construct_transcoder(), keys=self.keys)
        mapper.writer_mac = self.writer_mac
        return mapper

    def before_close(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` when the desk closes, before its stores do (the CLI seals what it wrote)."""
        self.__dict__.setdefault("_before_close", []).append(callback)

    def close(self) -> None:
        callbacks, self.__dict__["_before_close"] = self.__dict__.get("_before_close", []), []
        try:
            for callback in callbacks:
                callback()
        finally:
            self.keys.close()
            if "_mail_store" in self.__dict__:
                self.__dict__.pop("_mail_store").close()
            if hasattr(self.recorder, "stop_loop_writer"):  # the group commit's writer for commands on the loop
                self.recorder.stop_loop_writer()
            if hasattr(self.recorder, "close_writer"):  # SQLite's group commit (ticketflow/group_commit.py)
                self.recorder.close_writer()
            super().close()

    def _cache_env(self) -> dict[str, str]:
        """Hot aggregates stay in memory, kept current by this process's saves (:meth:`_keep_cached`) and
        by evicting what other writers changed (the erasure watch's look before every command and
        cached read, :meth:`_forget_written`): a load takes the cached one without reading the store
        again (:meth:`_cached`; readers get a deep copy), a changing command borrows it itself
        (:meth:`_borrow`), checked by the save's version. The library's fast-forward stays on for what
        still asks the repository directly (a batch rebuilding an aggregate, a load that missed the
        cache) and so that its save puts nothing in the cache unchecked (``_keep_cached`` does, over
        an older copy only)."""
        size = self.settings.aggregate_cache_size
        if size == 0:
            return {}
        return {
            "AGGREGATE_CACHE_MAXSIZE": str(size),
            "AGGREGATE_CACHE_FASTFORWARD": "y",
            "DEEPCOPY_FROM_AGGREGATE_CACHE": "y",
        }

    # ------------------------------------------------------------------ batches
    @contextmanager
    def batch(self) -> Iterator[None]:
        """Run many commands, save them together: one transaction (one fsync) when the block ends.

        Each command inside is decided as usual (loads, guards, refusals) and reads what the earlier
        commands of the block did; its events wait in memory, in command order, and are saved with
        every other command's when the block ends without an exception, all or nothing. Results
        carry no log position (nothing is stored yet). A block that raises saves nothing. Only this
        thread's commands join the block. For bulk writers (the migration import, the demo); a
        conflict with another writer surfaces at the end, as ``IntegrityError``, for the whole block.
        """
        if _BATCH.get() is not None:  # nested: the outer block saves
            yield
            return
        batch = _Batch()
        token = _BATCH.set(batch)
        erasures = self._erasures
        try:
            yield
        finally:
            _BATCH.reset(token)
        if batch.events:
            retry_dead_connections(lambda: self._save_batch(batch))
            # As a single command's save does: the saved aggregates replace their older copies in the cache,
            # so the next batch's commands do not read back and decode (decrypt) what this one wrote. Not
            # after an erasure began during the batch (what its commands loaded may hold erased data).
            self._keep_cached(list(batch.aggregates.values()), erasures)

    def batched_events(self) -> Sequence[Any]:
        """The events the current :meth:`batch` of this thread holds, not saved yet, in the order they
        will be saved (empty outside a batch). Read only."""
        batch = _BATCH.get()
        return batch.events if batch is not None else ()

    def in_batch(self) -> bool:
        """Whether this thread is inside a :meth:`batch` (its reads then see what the batch holds, unsaved)."""
        return _BATCH.get() is not None

    def _save_batch(self, batch: _Batch) -> None:
        processing = ProcessingEvent[UUID]()
        processing.events.extend(batch.events)
        processing.aggregates.update(batch.aggregates)
        self._save_collected(processing)

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """The library's record, then no older copy of a saved aggregate left in the aggregate cache:
        loads take a cached aggregate as it is (:meth:`_cached`), so a save that does not put its
        aggregates back (:meth:`_keep_cached`: a command's own, after this) must not leave the version it
        started from there (an automation step, a save through the library's ``save``)."""
        recordings = super()._record(processing_event)
        cache: Any = self.repository.cache
        if cache is not None:
            for object_id, saved in processing_event.aggregates.items():
                with self._read_locks[hash(object_id) % len(self._read_locks)]:
                    cached = self._in_cache(cache, object_id)
                    if cached is not None and cached is not saved and cached.version < saved.version:
                        self._evict_held(cache, object_id)
        return recordings

    def _save_collected(self, processing: ProcessingEvent[UUID]) -> list[Recording[UUID]]:
        """``Application.save`` for events already collected: the same steps (record, snapshot, notify)
        without checking each event and aggregate against the library's runtime protocols (a
        protocol ``isinstance`` costs tens of microseconds: thousands of events in a batch, two
        checks for every command)."""
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        return recordings

    # ------------------------------------------------------------------ dispatch
    def handle(self, command: Command, caller: Caller) -> CommandResult:
        """Run any command by its type (the HTTP layer and tests use this)."""
        try:
            method_name = _HANDLERS[type(command)]
        except KeyError:
            raise TypeError(f"no handler for {type(command).__name__}") from None
        # Pooled connections may have died with a database restart (see ticketflow.reconnect).
        # A group commit leader about to commit waits for the commands in flight (ticketflow/group_commit.py).
        # A command on the event loop is never waited for: its save is queued for the writer at once
        # and the loop's next commands form the next group (ticketflow/loop_commands.py).
        preparing = nullcontext if on_loop() else getattr(self.recorder, "preparing", nullcontext)
        with preparing():
            result: CommandResult = retry_dead_connections(lambda: getattr(self, method_name)(command, caller))
        return result

    # ------------------------------------------------------------------ tickets
    @_handles(OpenTicket)
    def open_ticket(self, cmd: OpenTicket, caller: Caller) -> CommandResult:
        if cmd.team_id is not None and not caller.sees_team(cmd.team_id):
            raise PermissionDenied(f"you may open tickets only in your own teams, not in team {cmd.team_id}")

        def build(ticket_id: UUID) -> Ticket:
            self._require_exists(Customer, cmd.requester_id)
            if cmd.team_id is not None:
                self._require_exists(Team, cmd.team_id)
            return opened_ticket(ticket_id, cmd)

        return self._create(Ticket, cmd, caller, build)

    @_handles(MarkTicketOpen)
    def mark_ticket_open(self, cmd: MarkTicketOpen, caller: Caller) -> CommandResult:
        return self._change(Ticket, cmd.ticket_id, cmd, caller, lambda t: t.mark_open(cmd.reason))

    @_handles(PendTicket)
    def pend_ticket(self, cmd: PendTicket, caller: Caller) -> CommandResult:
        return self._change(Ticket, cmd.ticket_id, cmd, caller, lambda t: t.pend(cmd.reason))

    @_handles(HoldTicket)
    def hold_ticket(self, cmd: HoldTicket, caller: Caller) -> CommandResult:
        return self._change(Ticket, cmd.ticket_id, cmd, caller, lambda t: t.hold(cmd.reason))

    @_handles(SolveTicket)
    def solve_ticket(self, cmd: SolveTicket, caller: Caller) -> CommandResult:
        self._staff_only(caller, "solve a ticket")
        return self._change(Ticket, cmd.ticket_id, cmd, caller, lambda t: t.solve(cmd.resolution))

    @_handles(ReopenTicket)
    def reopen_ticket(self, cmd: ReopenTicket, caller: Caller) -> CommandResult:
        return self._change(Ticket, cmd.ticket_id, cmd, caller, lambda t: t.reopen(cmd.reason))

    @_handles(CloseTicket)
    def close_ticket(self, cmd: CloseTicket, caller: Caller) -> CommandResult:
        self._staff_only(caller, "close a ticket")
        return self._change(Ticket, cmd.ticket_id, cmd, caller, lambda t: t.close())

    @_handles(MergeTicket)
    def merge_ticket(self, cmd: MergeTicket, caller: Caller) -> CommandResult:
        """Close ``ticket_id`` as a duplicate of ``into_ticket_id``; both change in one write."""
        self._staff_only(caller, "merge tickets")

        def act(duplicate: Ticket) -> Sequence[TicketflowAggregate]:
            if cmd.into_ticket_id == duplicate.id:
                raise RuleViolation(f"ticket {duplicate.id} cannot be merged into itself")
            primary = self._load(Ticket, cmd.into_ticket_id)
            if not caller.sees_team(primary.team_id):
                raise TicketNotFound(cmd.into_ticket_id)
            duplicate.merge_into(primary)
            return [primary]

        return self._change(Ticket, cmd.ticket_id, cmd, caller, act)

    @_handles(AssignTicket)
    def assign_ticket(self, cmd: AssignTicket, caller: Caller) -> CommandResult:
        self._staff_only(caller, "assign a ticket")

        def act(ticket: Ticket) -> None:
            if ticket.team_id is not None:
                self._require_active_member(ticket.team_id, cmd.assignee_id)
            ticket.assign(cmd.assignee_id, cmd.reason, opens_new=self.settings.assign_opens_new)

        return self._change(Ticket, cmd.ticket_id, cmd, caller, act)

    @_handles(TransferTicket)
    def transfer_ticket(self, cmd: TransferTicket, caller: Caller) -> CommandResult:
        self._staff_only(caller, "transfer a ticket")

        def act(ticket: Ticket) -> None:
            team = self._peek(Team, cmd.team_id)
            if cmd.assignee_id is not None:
                self._require_active_member(team.id, cmd.assignee_id, team)
            ticket.transfer(cmd.team_id, cmd.reason, cmd.assignee_id, opens_new=self.settings.assign_opens_new)

        return self._change(Ticket, cmd.ticket_id, cmd, caller, act)

    @_handles(UnassignTicket)
    def unassign_ticket(self, cmd: UnassignTicket, caller: Caller) -> CommandResult:
        self._staff_only(caller, "unassign a ticket")
        return self._change(Ticket, cmd.ticket_id, cmd, caller, lambda t: t.unassign(cmd.reason))

    @_handles(RemoveTicketFromTeam)
    def remove_ticket_from_team(self, cmd: RemoveTicketFromTeam, caller: Caller) -> CommandResult:
        self._staff_only(caller, "remove a ticket from its team")
        return self._change(Ticket, cmd.ticket_id, cmd, caller, lambda t: t.remove_from_team(cmd.reason))

    @_handles(RecordImportedFacts)
    def record_imported_facts(self, cmd: RecordImportedFacts, caller: Caller) -> CommandResult:
        """Keep another desk's history as it happened: each fact at its own time, by its own person,
        marked imported; the lifecycle's guards do not apply, the facts' shape does (known teams,
        times that neither go back before the ticket's latest event nor lie in the future).
        Facts already recorded (a re-run) are recognised by their ids and skipped."""
        if caller.role not in (Role.ADMIN, Role.SYSTEM) and caller.via is not Channel.IMPORT:
            raise PermissionDenied("only an admin or a system import may record imported history")
        latest = max(fact.occurred_at for fact in cmd.facts)
        if latest > self.clock.now() + FUTURE_TOLERANCE:
            raise RuleViolation(f"occurred_at {latest.isoformat()} is in the future")
        teams = {fact.team_id for fact in cmd.facts if fact.team_id is not None}

        def act(ticket: Ticket) -> None:
            for team_id in teams:
                self._require_exists(Team, team_id)
            for fact in cmd.facts:
                if ticket.has_handled(fact.fact_id):
                    continue
                if fact.occurred_at < ticket.updated_at:
                    raise RuleViolation(
                        f"fact {fact.fact_id} at {fact.occurred_at.isoformat()} is before the ticket's latest "
                        f"event ({ticket.updated_at.isoformat()}): history is recorded in time order"
                    )
                by = caller if fact.actor_id is None else Caller(fact.actor_id, Role.AGENT, caller.via, caller.correlation_id)
                with metadata.recording(metadata.context_for(
                    by, fact.fact_id, fact.occurred_at, imported=True, source_counters=fact.source_counters,
                )):
                    self._record_fact(ticket, fact)

        return self._change(Ticket, cmd.ticket_id, cmd, caller, act)

    @staticmethod
    def _record_fact(ticket: Ticket, fact: ImportedFact) -> None:
        match fact.kind:
            case FactKind.STATUS:
                assert fact.status is not None
                ticket.record_status(fact.status, fact.reason)
            case FactKind.PLACEMENT:
                ticket.record_placement(fact.team_id, fact.assignee_id, fact.reason)
            case FactKind.PRIORITY:
                assert fact.priority is not None
                ticket.record_priority(fact.priority, fact.reason)
            case FactKind.CATEGORY:
                assert fact.category is not None
                ticket.record_category(fact.category)
            case FactKind.COUNTERS:
                assert fact.source_counters is not None
                ticket.record_counters(fact.source_counters)
            case FactKind.REPLY:
                assert fact.body is not None
                inbound = fact.direction == "inbound"
                ticket.record_contact(
                    InteractionKind.REPLY,
                    uuid5(ID_NAMESPACE, f"interaction:{fact.fact_id}"),
                    Direction.INBOUND if inbound else Direction.OUTBOUND,
                    str(ticket.requester_id) if inbound else (fact.actor_id or "import"),
                    str(ticket.channel),
                    fact.body,
                )
            case FactKind.NOTE | FactKind.CALL:
                assert fact.body is not None
                note = fact.kind is FactKind.NOTE
                ticket.record_contact(
                    InteractionKind.NOTE if note else InteractionKind.CALL,
                    uuid5(ID_NAMESPACE, f"interaction:{fact.fact_id}"),
                    Direction.INTERNAL if note else Direction.INBOUND,
                    (fact.actor_id or "import") if note else str(ticket.requester_id),
                    str(Channel.IMPORT if note else Channel.PHONE),
                    fact.body,
                )

    @_handles(ChangePriority)
    def change_priority(self, cmd: ChangePriority, caller: Caller) -> CommandResult:
        self._staff_only(caller, "change a ticket's priority")
        return self._change(
            Ticket, cmd.ticket_id, cmd, caller, lambda t: t.change_priority(cmd.priority, cmd.reason)
        )

    @_handles(RecategoriseTicket)
    def recategorise_ticket(self, cmd: RecategoriseTicket, caller: Caller) -> CommandResult:
        self._staff_only(caller, "recategorise a ticket")
        return self._change(
            Ticket, cmd.ticket_id, cmd, caller, lambda t: t.recategorise(cmd.category, cmd.ticket_type)
        )

    @_handles(ChangeTags)
    def change_tags(self, cmd: ChangeTags, caller: Caller) -> CommandResult:
        self._staff_only(caller, "tag a ticket")
        return self._change(
            Ticket, cmd.ticket_id, cmd, caller, lambda t: t.change_tags(list(cmd.add), list(cmd.remove))
        )

    @_handles(AddCollaborator)
    def add_collaborator(self, cmd: AddCollaborator, caller: Caller) -> CommandResult:
        self._staff_only(caller, "add a collaborator")
        return self._change(Ticket, cmd.ticket_id, cmd, caller, lambda t: t.add_collaborator(cmd.agent_id))

    @_handles(RemoveCollaborator)
    def remove_collaborator(self, cmd: RemoveCollaborator, caller: Caller) -> CommandResult:
        self._staff_only(caller, "remove a collaborator")
        return self._change(
            Ticket, cmd.ticket_id, cmd, caller, lambda t: t.remove_collaborator(cmd.agent_id)
        )

    @_handles(LinkTicket)
    def link_ticket(self, cmd: LinkTicket, caller: Caller) -> CommandResult:
        self._staff_only(caller, "link tickets")

        def act(ticket: Ticket) -> None:
            other_team = self._peek(Ticket, cmd.other_ticket_id).team_id
            if not caller.sees_team(other_team):  # as merge: no link to (nor probe of) another team's ticket
                raise TicketNotFound(cmd.other_ticket_id)
            ticket.link(cmd.other_ticket_id, cmd.kind)

        return self._change(Ticket, cmd.ticket_id, cmd, caller, act)

    @_handles(PostReply)
    def post_reply(self, cmd: PostReply, caller: Caller) -> CommandResult:
        if caller.role is Role.CUSTOMER and cmd.direction is not Direction.INBOUND:
            raise PermissionDenied("a customer's reply is inbound")
        return self._interaction(
            cmd, caller, InteractionKind.REPLY, cmd.direction, cmd.channel, cmd.author_id, cmd.body
        )

    @_handles(AddNote)
    def add_note(self, cmd: AddNote, caller: Caller) -> CommandResult:
        self._staff_only(caller, "add an internal note")
        return self._interaction(
            cmd, caller, InteractionKind.NOTE, Direction.INTERNAL, Channel(caller.via), cmd.author_id, cmd.body
        )

    @_handles(LogInteraction)
    def log_interaction(self, cmd: LogInteraction, caller: Caller) -> CommandResult:
        self._staff_only(caller, f"log a {cmd.kind}")
        channel = cmd.channel or _DEFAULT_CHANNEL[cmd.kind]
        return self._interaction(
            cmd, caller, cmd.kind, cmd.direction, channel, cmd.author_id, cmd.body, cmd.duration_minutes
        )

    @_handles(LogWork)
    def log_work(self, cmd: LogWork, caller: Caller) -> CommandResult:
        self._staff_only(caller, "log work")
        entry_id = uuid5(ID_NAMESPACE, f"work:{cmd.command_id}")
        return self._change(
            Ticket,
            cmd.ticket_id,
            cmd,
            caller,
            lambda t: t.log_work(
                entry_id, self._author(cmd.performer_id, caller, "performer"), cmd.action, cmd.minutes, cmd.result
            ),
        )

    @_handles(RateSatisfaction)
    def rate_satisfaction(self, cmd: RateSatisfaction, caller: Caller) -> CommandResult:
        def act(ticket: Ticket) -> None:
            if caller.role is Role.CUSTOMER and str(ticket.requester_id) != caller.actor_id:
                raise PermissionDenied(f"only the requester of ticket {ticket.id} may rate it")
            ticket.rate(cmd.score, cmd.comment)

        return self._change(Ticket, cmd.ticket_id, cmd, caller, act)

    def _interaction(
        self,
        cmd: PostReply | AddNote | LogInteraction,
        caller: Caller,
        kind: InteractionKind,
        direction: Direction,
        channel: Channel,
        author_id: str | None,
        body: str,
        duration_minutes: int = 0,
    ) -> CommandResult:
        interaction_id = uuid5(ID_NAMESPACE, f"interaction:{cmd.command_id}")

        def act(ticket: Ticket) -> list[TicketflowAggregate]:
            if direction is Direction.INBOUND:
                author = self._customer_author(ticket, author_id, caller)
            else:
                author = self._author(author_id, caller, "author")
            text, template, records = body, None, list[TicketflowAggregate]()
            if isinstance(cmd, PostReply | AddNote) and cmd.template_id is not None:
                text, template, records = self._fill_for_sending(
                    ticket, ReplyKind(kind), cmd.template_id, cmd.template_version, body, author, caller,
                    interaction_id)
            ticket.record_interaction(
                kind, interaction_id, direction, author, str(channel), text, duration_minutes, template)
            return records

        return self._change(Ticket, cmd.ticket_id, cmd, caller, act)

    @staticmethod
    def _author(named: str | None, caller: Caller, what: str) -> str:
        """Staff write as themselves; only an admin, the desk itself or an import may name another
        person (the event then keeps both: the named person and, in its metadata, the caller)."""
        if named is None or named == caller.actor_id:
            return caller.actor_id
        if not caller.records_for_others:
            raise PermissionDenied(
                f"the {what} of what you record is you ({caller.actor_id}); a {caller.role} may not record as {named}"
            )
        return named

    @staticmethod
    def _customer_author(ticket: Ticket, named: str | None, caller: Caller) -> str:
        """A customer's inbound message: by the ticket's requester (the default). A customer writes only
        as themselves; an admin, the desk itself or an import may name someone else."""
        if caller.role is Role.CUSTOMER:
            if named not in (None, caller.actor_id):
                raise PermissionDenied(f"a customer writes as themselves, not as {named}")
            return caller.actor_id
        if named is None:
            return str(ticket.requester_id)
        if named != str(ticket.requester_id) and not caller.records_for_others:
            raise PermissionDenied(f"an inbound message on ticket {ticket.id} is its requester's, not {named}'s")
        return named

    # ---------------------------------------------------------------- customers
    @_handles(RegisterCustomer)
    def register_customer(self, cmd: RegisterCustomer, caller: Caller) -> CommandResult:
        result = self._create(
            Customer,
            cmd,
            caller,
            lambda customer_id: Customer._create(
                Customer.Registered,
                id=customer_id,
                name=cmd.name,
                email=cmd.email,
                phone=cmd.phone,
                im_handle=cmd.im_handle,
                company=cmd.company,
                job_title=cmd.job_title,
                preferred_language=cmd.preferred_language,
                tier=str(cmd.tier),
                consents=sorted({str(c) for c in cmd.consents}),
            ),
        )
        if cmd.email or cmd.phone:  # found by address (mail) or phone; a retry mends an index write lost in a crash
            current = self._peek(Customer, result.object_id) if result.replayed else None
            if current is None or (current.email, current.phone) == (cmd.email, cmd.phone):
                self.index_customer_email(result.object_id, cmd.email, cmd.phone)
        return result

    @_handles(UpdateCustomerProfile)
    def update_customer_profile(self, cmd: UpdateCustomerProfile, caller: Caller) -> CommandResult:
        def act(customer: Customer) -> None:
            changes = cmd.profile_changes()
            language = cmd.preferred_language
            if language is not None and language == customer.preferred_language:
                language = None
            if changes or language is None:
                customer.update_profile(changes)
            if language is not None:
                customer.change_language(language)

        result = self._change(Customer, cmd.customer_id, cmd, caller, act)
        if (cmd.email is not None or cmd.phone is not None) and not result.replayed:
            customer = self._peek(Customer, cmd.customer_id)
            self.index_customer_email(cmd.customer_id, customer.email, customer.phone)
        return result

    @_handles(ChangeCustomerTier)
    def change_customer_tier(self, cmd: ChangeCustomerTier, caller: Caller) -> CommandResult:
        self._staff_only(caller, "change a customer's tier")
        return self._change(Customer, cmd.customer_id, cmd, caller, lambda c: c.change_tier(cmd.tier, cmd.reason))

    @_handles(GiveConsent)
    def give_consent(self, cmd: GiveConsent, caller: Caller) -> CommandResult:
        return self._change(Customer, cmd.customer_id, cmd, caller, lambda c: c.give_consent(cmd.purpose))

    @_handles(WithdrawConsent)
    def withdraw_consent(self, cmd: WithdrawConsent, caller: Caller) -> CommandResult:
        return self._change(Customer, cmd.customer_id, cmd, caller, lambda c: c.withdraw_consent(cmd.purpose))

    @_handles(AddCustomerNote)
    def add_customer_note(self, cmd: AddCustomerNote, caller: Caller) -> CommandResult:
        self._staff_only(caller, "add a customer note")
        note_id = uuid5(ID_NAMESPACE, f"customer-note:{cmd.command_id}")
        return self._change(Customer, cmd.customer_id, cmd, caller, lambda c: c.add_note(note_id, cmd.note))

    # -------------------------------------------------------------------- teams
    @_handles(FormTeam)
    def form_team(self, cmd: FormTeam, caller: Caller) -> CommandResult:
        self._staff_only(caller, "form a team")
        if caller.team_ids is not None:
            raise PermissionDenied("forming a team is desk-wide: admins only")
        return self._create(Team, cmd, caller, lambda team_id: Team._create(Team.Formed, id=team_id, name=cmd.name, description=cmd.description))

    @_handles(RenameTeam)
    def rename_team(self, cmd: RenameTeam, caller: Caller) -> CommandResult:
        self._staff_only(caller, "rename a team")
        return self._change(Team, cmd.team_id, cmd, caller, lambda t: t.rename(cmd.name))

    @_handles(AddTeamMember)
    def add_team_member(self, cmd: AddTeamMember, caller: Caller) -> CommandResult:
        self._staff_only(caller, "add a team member")
        return self._change(
            Team, cmd.team_id, cmd, caller, lambda t: t.add_member(cmd.agent_id, cmd.role, list(cmd.skills))
        )

    @_handles(ChangeTeamMember)
    def change_team_member(self, cmd: ChangeTeamMember, caller: Caller) -> CommandResult:
        self._staff_only(caller, "change a team member")
        skills = list(cmd.skills) if cmd.skills is not None else None
        return self._change(Team, cmd.team_id, cmd, caller, lambda t: t.change_member(cmd.agent_id, cmd.role, skills))

    @_handles(DeactivateTeamMember)
    def deactivate_team_member(self, cmd: DeactivateTeamMember, caller: Caller) -> CommandResult:
        self._staff_only(caller, "take a member out of rotation")
        return self._change(Team, cmd.team_id, cmd, caller, lambda t: t.deactivate_member(cmd.agent_id, cmd.reason))

    @_handles(ReactivateTeamMember)
    def reactivate_team_member(self, cmd: ReactivateTeamMember, caller: Caller) -> CommandResult:
        self._staff_only(caller, "put a member back in rotation")
        return self._change(Team, cmd.team_id, cmd, caller, lambda t: t.reactivate_member(cmd.agent_id))

    # ------------------------------------------------------------- access control
    def issue_token(self, cmd: IssueToken, caller: Caller) -> tuple[CommandResult, str | None]:
        """Issue an API token. Returns the token text once (None when this was a retry)."""
        if caller.role not in (Role.ADMIN, Role.SYSTEM):
            raise PermissionDenied("only an admin may issue tokens")
        if cmd.role not in TOKEN_ROLES:
            raise RuleViolation(f"tokens are issued for {', '.join(TOKEN_ROLES)}, not {cmd.role}", field="role")
        given_teams = set(cmd.team_ids)  # for a person: only checked against their membership, never stored
        if cmd.role in PERSON_ROLES:
            person = cmd.agent_id or cmd.name  # a name given for an agent's token names the team member
            if person is None:
                raise RuleViolation(f"{cmd.role.a} token belongs to a team member: give the agent id", field="agent_id")
            cmd = cmd.model_copy(update={"agent_id": person, "team_ids": []})
            teams = self._person_teams(person, cmd.role)
            what = "an active member" if cmd.role is Role.AGENT else "an active supervisor or lead"
            if not teams:
                raise RuleViolation(f"{person} is not {what} of any team", field="agent_id")
            if outside := sorted(str(t) for t in set(given_teams) - teams):
                raise RuleViolation(f"{person} is not {what} of team {', '.join(outside)}: {cmd.role.a}'s teams"
                                    " come from their team membership", field="agent_id")
        elif cmd.agent_id is not None:
            raise RuleViolation(f"only agent and supervisor tokens are bound to a team member, not {cmd.role}",
                                field="agent_id")
        if cmd.permissions is not None:
            if cmd.role is not Role.INTEGRATION:
                raise RuleViolation(f"{cmd.role.a} token has its role's permissions; only integrations choose theirs",
                                    field="permissions")
            allowed = ROLE_PERMISSIONS[Role.INTEGRATION]  # what an integration may be given at most
            if extra := sorted(str(p) for p in set(cmd.permissions) - allowed):
                raise RuleViolation(f"an integration token may not be given {', '.join(extra)}", field="permissions")
        if cmd.team_ids and cmd.role is not Role.INTEGRATION:
            raise RuleViolation(f"{cmd.role.a} token sees every team; only integrations are limited to teams",
                                field="team_ids")
        if cmd.role is Role.INTEGRATION and not cmd.team_ids:
            if working := sorted(str(p) for p in granted(Role.INTEGRATION, cmd.permissions) & _TEAM_BOUND):
                raise RuleViolation(f"an integration given {', '.join(working)} must be limited to teams (--team)",
                                    field="team_ids")
        token_id = uuid5(ID_NAMESPACE, f"{ApiToken.__name__}:{cmd.command_id}")
        name = cmd.agent_id if cmd.role in PERSON_ROLES else (cmd.name or f"{cmd.role}-{token_id.hex[:8]}")
        if cmd.role not in PERSON_ROLES:
            self._require_unique_actor(name, token_id)
        for team_id in cmd.team_ids:
            self._require_exists(Team, team_id)
        secret = secrets.token_urlsafe(32)
        result = self._create(
            ApiToken,
            cmd,
            caller,
            lambda token_id: ApiToken._create(
                ApiToken.Issued,
                id=token_id,
                name=name,
                role=str(cmd.role),
                team_ids=sorted(str(t) for t in cmd.team_ids),
                secret_hash=_hash_secret(secret),
                agent_id=cmd.agent_id,
                permissions=None if cmd.permissions is None else sorted(str(p) for p in set(cmd.permissions)),
            ),
        )
        return result, None if result.replayed else f"{TOKEN_PREFIX}{result.object_id.hex}_{secret}"

    def revoke_token(self, cmd: RevokeToken, caller: Caller) -> CommandResult:
        if caller.role not in (Role.ADMIN, Role.SYSTEM):
            raise PermissionDenied("only an admin may revoke tokens")
        return self._change(ApiToken, cmd.token_id, cmd, caller, lambda t: t.revoke(cmd.reason))

    def list_tokens(self) -> list[TokenRecord]:
        """Every token issued, newest first, read from each token's own events (never its secret hash).
        An agent's or supervisor's record carries the teams their membership gives them now."""
        records = [token_record(self.events.get(token_id)) for token_id in self._ids_of(ApiToken)]
        records = [
            replace(r, team_ids=tuple(sorted(str(t) for t in self._person_teams(r.agent_id, Role(r.role)))))
            if r.bound_to_person and r.agent_id else r
            for r in records
        ]
        return sorted(records, key=lambda r: r.issued_at, reverse=True)

    def authenticate(self, token: str) -> Principal | None:
        """The principal a bearer token belongs to, or None (malformed, unknown, revoked, wrong secret).

        Every request authenticates: a token seen lately is answered with the principal made for it,
        while the token cache still holds the very stored token its secret was checked against (the
        cache drops a revoked token, and reads a new copy after it forgot it) and, for a person's token,
        while the person's teams are the same; the id's parsing, the secret's hash and the principal are
        then not made again (a third of this method's CPU, py-spy --gil, bench_http --clients 32)."""
        known = self._principals.get(token)
        if known is not None:
            stored, principal = known
            if self.tokens.get(principal.token_id) is stored:  # revocations reach the cache through the log
                if principal.role not in PERSON_ROLES:
                    return principal
                assert principal.agent_id is not None  # (a person's token without one is refused)
                if frozenset(self._person_teams(principal.agent_id, principal.role)) == principal.team_ids:
                    return principal
            self._principals.pop(token, None)
        judged = self._authenticate(token)
        if judged is None:
            return None  # (not remembered: a wrong token is judged again, and throttled, every time)
        if len(self._principals) >= PRINCIPALS_REMEMBERED:
            self._principals.clear()
        self._principals[token] = judged
        return judged[1]

    def _authenticate(self, token: str) -> tuple[StoredToken, Principal] | None:
        """:meth:`authenticate` without reuse: the stored token the secret checked against, and its principal."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        token_hex, _, secret = token[len(TOKEN_PREFIX) :].partition("_")
        try:
            token_id = UUID(hex=token_hex)
        except ValueError:
            return None
        issued = self.tokens.get(token_id)  # revocations reach the cache through the log
        if issued is None or issued.revoked or not hmac.compare_digest(issued.secret_hash, _hash_secret(secret)):
            return None
        role = Role(issued.role)
        if role in PERSON_ROLES:
            if issued.agent_id is None:
                return None  # issued before tokens were bound to a person: reissue it with the agent id
            teams = frozenset(self._person_teams(issued.agent_id, role))
            return issued, Principal(token_id, issued.agent_id, role, teams, agent_id=issued.agent_id)
        return issued, Principal(
            token_id, issued.name, role, frozenset(UUID(t) for t in issued.team_ids),
            granted=granted(role, issued.permissions) if role is Role.INTEGRATION else None,
        )

    def _stored_token(self, token_id: UUID) -> ApiToken | None:
        try:
            return self._peek(ApiToken, token_id)
        except NotFound:
            return None

    def _require_unique_actor(self, name: str, token_id: UUID) -> None:
        """A token's name is the actor recorded on what it writes: it names one token, never a person."""
        if self.membership.known(name):
            raise RuleViolation(f"{name!r} is a team member's id; name the token after the system that holds it",
                                field="name")
        for other in self._ids_of(ApiToken):
            if other != token_id and self._peek(ApiToken, other).name == name:
                raise RuleViolation(f"a token named {name!r} exists already; token names identify who wrote what",
                                    field="name")
        account = self.find_account(name)
        if account is not None and account.id != token_id:
            raise RuleViolation(f"{name!r} is a staff account's name; it identifies that person on what they write",
                                field="name")

    def _person_teams(self, agent_id: str, role: Role) -> set[UUID]:
        """The teams a person's token reaches now: where they are an active member (a supervisor:
        where their member role is supervisor or lead)."""
        teams = self.membership.teams_of(agent_id)
        if role is Role.SUPERVISOR:
            return {team for team, member_role in teams.items() if member_role in SUPERVISING_MEMBER_ROLES}
        return set(teams)

    @_handles(RecordDataAccess)
    def record_data_access(self, cmd: RecordDataAccess, caller: Caller) -> CommandResult:
        return self._create(
            DataAccess,
            cmd,
            caller,
            lambda access_id: DataAccess._create(
                DataAccess.Recorded,
                id=access_id,
                customer_id=cmd.customer_id,
                fields=sorted(set(cmd.fields)),
                purpose=cmd.purpose,
                request_id=cmd.request_id,
                resource=cmd.resource,
            ),
        )

    # -------------------------------------------------------------------- reads
    def get_ticket(self, ticket_id: UUID, version: int | None = None) -> Ticket:
        return self._load(Ticket, ticket_id, version)

    def ticket_team(self, ticket_id: UUID) -> UUID | None:
        """The ticket's current team (a cheap read for access checks; raises TicketNotFound)."""
        return self._peek(Ticket, ticket_id).team_id

    def ticket_requester(self, ticket_id: UUID) -> UUID:
        """The customer whose ticket it is: whose data its text is, for the access log (raises TicketNotFound)."""
        requester: UUID = self._peek(Ticket, ticket_id).requester_id
        return requester

    def customer_registrar(self, customer_id: UUID) -> str:
        """Who registered the customer (the actor of its first event); raises CustomerNotFound."""
        self._require_exists(Customer, customer_id)
        (first,) = self.events.get(customer_id, limit=1)
        return str(first.actor_id)  # type: ignore[attr-defined]

    def get_customer(self, customer_id: UUID, version: int | None = None) -> Customer:
        return self._load(Customer, customer_id, version)

    def get_team(self, team_id: UUID, version: int | None = None) -> Team:
        return self._load(Team, team_id, version)

    def history(self, object_id: UUID) -> list[TicketflowAggregate.Event]:
        """Every stored event of one ticket, customer or team, in version order."""
        events = list(self.events.get(object_id))
        batch = _BATCH.get()
        if batch is not None and object_id in batch.aggregates:  # and what this batch wrote, not yet stored
            events.extend(batch.events_of(object_id))
        if not events:
            raise NotFound("ticket, customer or team", object_id)
        return events  # type: ignore[return-value]

    def log_position(self) -> int:
        """The global position of the newest event in the log (0 when empty)."""
        return self.recorder.max_notification_id() or 0

    # ----------------------------------------------------------------- plumbing
    def _context(self, cmd: Command, caller: Caller) -> metadata.RecordingContext:
        self._authorize(cmd, caller)
        self.erasure_watch.follow()  # erased elsewhere: not decided on from this process's caches
        now = self.clock.now()
        if cmd.occurred_at is not None:
            # History may be written by admins, the system, and the migration import (whose
            # callers keep the original actor and role, marked imported by their channel).
            if caller.role not in (Role.ADMIN, Role.SYSTEM) and caller.via is not Channel.IMPORT:
                raise PermissionDenied("only an admin or a system import may record a historical time")
            if cmd.occurred_at > now + FUTURE_TOLERANCE:
                raise RuleViolation(f"occurred_at {cmd.occurred_at.isoformat()} is in the future")
        return metadata.context_for(
            caller,
            cmd.command_id,
            cmd.occurred_at or now,
            imported=caller.via is Channel.IMPORT,
        )

    @staticmethod
    def _authorize(cmd: Command, caller: Caller) -> None:
        """Every command, from every face: the caller's permissions must include the command's."""
        if caller.permissions is None:
            return
        permission = required_permission(cmd)
        if permission is not None and not caller.may(permission):
            raise PermissionDenied(refusal(caller.role.a, permission))

    def _load(self, cls: type[A], object_id: UUID, version: int | None = None) -> A:
        try:
            aggregate: TicketflowAggregate = self._get(object_id, version=version)
        except AggregateNotFoundError:
            raise _NOT_FOUND[cls](object_id) from None
        if not isinstance(aggregate, cls):
            raise _NOT_FOUND[cls](object_id)
        return aggregate

    def _peek(self, cls: type[A], object_id: UUID) -> A:
        """Load for a read-only check: no defensive copy of a cached aggregate (big teams are costly
        to copy). Never mutate what this returns."""
        try:
            aggregate: TicketflowAggregate = self._get(object_id, deepcopy_from_cache=False)
        except AggregateNotFoundError:
            raise _NOT_FOUND[cls](object_id) from None
        if not isinstance(aggregate, cls):
            raise _NOT_FOUND[cls](object_id)
        return aggregate

    def _get(self, object_id: UUID, **options: Any) -> Any:
        batch = _BATCH.get()
        if batch is not None and options.get("version") is None and object_id in batch.aggregates:
            # what this batch's earlier commands left, as a copy: a refused command leaves it untouched
            aggregate = batch.aggregates[object_id]
            return aggregate if options.get("deepcopy_from_cache") is False else copy.deepcopy(aggregate)
        cache: Any = self.repository.cache
        if cache is not None and options.get("version") is None:
            if metadata.active() is None and object_id in cache.cache:
                self.erasure_watch.follow()  # a read outside a command (a command followed at its start)
            else:
                self.erasure_watch.start()  # erasures after this position concern what it caches
        erasures = self._erasures
        with self._read_locks[hash(object_id) % len(self._read_locks)]:
            aggregate = self._cached(cache, object_id, options)
            if aggregate is None:
                aggregate = retry_dead_connections(lambda: self.repository.get(object_id, **options))
            if options.get("deepcopy_from_cache") is False and cache is not None:
                with self._shared_lock:
                    self._shared[id(aggregate)] = aggregate  # handed out as it is: never lent to a command (_borrow)
        if cache is not None and not self._untouched_since(erasures, object_id):
            self._evict(object_id)  # loaded while an erasure or its eviction ran: never kept after it
        return aggregate

    def _cached(self, cache: Any, object_id: UUID, options: dict[str, Any]) -> Any:
        """The cached aggregate as the repository would hand it out (a copy unless ``deepcopy_from_cache``
        is False), without the library's fast-forward read of the store; None when not cached (or a
        version is asked for). Called holding the object's read lock, after the erasure watch's look
        (above, or at the command's start in :meth:`_context`): the cache then holds this process's
        saves and nothing another writer had changed by that look (:meth:`_forget_written` evicted it),
        which is what the fast-forward's query (one per cached load: a peeked team, the automation's
        tickets) read again. A write committed after the look is one the caller runs concurrently with;
        a command deciding on an aggregate a later write moved past fails its version check."""
        if cache is None or options.get("version") is not None:
            return None
        aggregate = self._in_cache(cache, object_id)
        if aggregate is None:
            return None
        if options.get("deepcopy_from_cache", True) and self.repository.deepcopy_from_cache:
            return copy.deepcopy(aggregate)
        return aggregate

    def _require_exists(self, cls: type[TicketflowAggregate], object_id: UUID) -> None:
        """Check an object exists and is of the right kind, reading one stored record, not its history."""
        batch = _BATCH.get()
        if batch is not None and isinstance(batch.aggregates.get(object_id), cls):
            return
        if (cls, object_id) in self._existing:
            return
        first = self.recorder.select_events(object_id, limit=1)
        if not first or not first[0].topic.startswith(_TOPIC_PREFIX[cls]):
            raise _NOT_FOUND[cls](object_id)
        if len(self._existing) >= EXISTING_REMEMBERED:
            self._existing.clear()
        self._existing.add((cls, object_id))

    def _create(
        self, cls: type[A], cmd: Command, caller: Caller, build: Callable[[UUID], A]
    ) -> CommandResult:
        ctx = self._context(cmd, caller)
        object_id = uuid5(ID_NAMESPACE, f"{cls.__name__}:{cmd.command_id}")
        with metadata.recording(ctx):
            batch = _BATCH.get()
            if batch is not None and object_id in batch.aggregates:  # created earlier in this batch
                existing = batch.aggregates[object_id]
                if not existing.has_handled(cmd.command_id):
                    raise RuleViolation(f"{object_id} already exists")
                return CommandResult(existing.id, existing.version, None, (), replayed=True)
            # The id derives from the command id, so a retried create collides with its
            # first result on insert and is answered from it instead of writing again.
            erasures = self._erasures
            aggregate = build(object_id)
            try:
                return self._save(aggregate, (), cache_after=erasures)
            except IntegrityError:
                return self._replayed(object_id, cmd)

    def _replayed(self, object_id: UUID, cmd: Command) -> CommandResult:
        """The id collided on insert: the object exists. A retry if its first event came from this command."""
        (first,) = self.events.get(object_id, limit=1)
        existing: TicketflowAggregate = self._get(object_id)
        if getattr(first, "command_id", None) != str(cmd.command_id):
            raise RuleViolation(f"{object_id} already exists")
        return CommandResult(existing.id, existing.version, None, (), replayed=True)

    def _change(
        self,
        cls: type[A],
        object_id: UUID,
        cmd: Command,
        caller: Caller,
        act: Callable[[A], Iterable[TicketflowAggregate] | None],
    ) -> CommandResult:
        ctx = self._context(cmd, caller)
        expected_version: int | None = getattr(cmd, "expected_version", None)
        attempts = 1 if expected_version is not None else RACE_RETRIES
        for attempt in range(1, attempts + 1):
            with metadata.recording(ctx):
                try:
                    try:
                        return self._decide(cls, object_id, cmd, caller, act, expected_version, borrow=True)
                    except _BorrowedRefused:
                        # decided on the cache's aggregate, which may lag the store: decide again on the store's
                        return self._decide(cls, object_id, cmd, caller, act, expected_version, borrow=False)
                except IntegrityError:
                    if attempt == attempts:
                        raise ConcurrencyConflict(object_id, expected_version, None) from None
            pause(random.uniform(0, 0.002 * attempt))  # de-synchronise the writers that collided
        raise AssertionError("unreachable")  # pragma: no cover

    def _decide(
        self,
        cls: type[A],
        object_id: UUID,
        cmd: Command,
        caller: Caller,
        act: Callable[[A], Iterable[TicketflowAggregate] | None],
        expected_version: int | None,
        borrow: bool,
    ) -> CommandResult:
        """One attempt of :meth:`_change`. With ``borrow``, the command takes the cached aggregate itself
        (:meth:`_borrow`: no read of the store, no copy) when the cache holds it; should the command then
        be refused or its save lose a race, :class:`_BorrowedRefused` asks the caller to decide again
        on the store's aggregate (the cached one may lag a write by another process that the last look
        at the log did not cover yet), so a stale cache costs a second attempt, never a wrong answer."""
        with self._lent(object_id) as lent:
            erasures = self._erasures  # before the borrow: an erasure or eviction from now on keeps it out
            borrowed = self._borrow(object_id) if borrow and lent is None else None
            try:
                if lent is not None:
                    aggregate = self._checked(cls, object_id, lent)
                elif borrowed is not None:
                    aggregate = self._checked(cls, object_id, borrowed)
                else:
                    aggregate = self._load(cls, object_id)
                if isinstance(aggregate, Ticket) and not caller.sees_team(aggregate.team_id):
                    raise TicketNotFound(object_id)  # another team's ticket does not exist for this caller
                if isinstance(aggregate, Team) and caller.team_ids is not None and object_id not in caller.team_ids:
                    raise TeamNotFound(object_id)
                if aggregate.has_handled(cmd.command_id):
                    if borrowed is not None:
                        self._keep_cached((aggregate,), erasures)  # unchanged: back in the cache
                    return CommandResult(aggregate.id, aggregate.version, None, (), replayed=True)
                if expected_version is not None and expected_version != aggregate.version:
                    raise ConcurrencyConflict(object_id, expected_version, aggregate.version)
                others = tuple(act(aggregate) or ())
                return self._save(aggregate, others, cache_after=erasures)
            except (TicketflowError, IntegrityError) as exc:
                if borrowed is None:
                    raise
                raise _BorrowedRefused from exc  # the borrowed aggregate is dropped (it may be half-changed)

    def _borrow(self, object_id: UUID) -> TicketflowAggregate | None:
        """The cached aggregate itself, taken out of the cache (None when not cached): no fast-forward
        read of the store and no defensive copy. Taken out, no other command or read can see it while
        this command changes it; a successful save puts it back (:meth:`_keep_cached`), a failed
        command just drops it (the next load reads the store). It is as fresh as the cache: this
        process's own saves, the eviction of what other writers changed up to the last look at the
        log (the command's :meth:`_context` looked, see :meth:`_forget_written`), and the optimistic
        concurrency check of the save for whatever was written since. One that :meth:`_peek` handed out
        (its reader may hold it: an SLA pass pins policies) stays in the cache; the command gets a copy."""
        cache: Any = self.repository.cache
        if cache is None or _BATCH.get() is not None:
            return None
        with self._read_locks[hash(object_id) % len(self._read_locks)]:
            cached = self._in_cache(cache, object_id)
            if cached is None:
                return None
            with self._shared_lock:
                shared = self._shared.get(id(cached)) is cached
            if shared:  # a reader holds it (:meth:`_peek`): the command changes a copy, the cache keeps it
                return copy.deepcopy(cached)  # type: ignore[no-any-return]
            self._evict_held(cache, object_id)
            return cached  # type: ignore[no-any-return]

    @contextmanager
    def _lent(self, object_id: UUID) -> Iterator[TicketflowAggregate | None]:
        """The aggregate an earlier command of the current batch left, lent to the command changing it
        without a copy (copying a big team or a long ticket for every command was most of a bulk
        import's cost); None outside a batch, or when the batch does not hold it. Should the command
        fail, the batch's aggregate is built again from the store and the batch's events, so a
        refused command leaves it as it was (what a copy gave)."""
        batch = _BATCH.get()
        lent = None if batch is None else batch.aggregates.get(object_id)
        if lent is None:
            yield None
            return
        try:
            yield lent
        except BaseException:
            assert batch is not None
            if batch.aggregates.get(object_id) is lent:
                batch.aggregates[object_id] = self._rebuilt(batch, object_id)
            raise

    def _rebuilt(self, batch: _Batch, object_id: UUID) -> TicketflowAggregate:
        """An aggregate as the store and the batch's events (not its pending ones) leave it."""
        try:
            aggregate: Any = retry_dead_connections(lambda: self.repository.get(object_id))
        except AggregateNotFoundError:
            aggregate = None
        stored_version = 0 if aggregate is None else aggregate.version
        for event in batch.events_of(object_id):
            if event.originator_version > stored_version:
                aggregate = event.mutate(aggregate)
        assert aggregate is not None
        return aggregate  # type: ignore[no-any-return]

    @staticmethod
    def _checked(kind: type[A], object_id: UUID, aggregate: TicketflowAggregate) -> A:
        if not isinstance(aggregate, kind):
            raise _NOT_FOUND[kind](object_id)
        return aggregate

    def _save(self, aggregate: TicketflowAggregate, others: Sequence[TicketflowAggregate],
              cache_after: int | None = None) -> CommandResult:
        """Save the command's aggregates; with ``cache_after`` (the erasure count when they were
        loaded), they then replace their older copies in the aggregate cache (:meth:`_keep_cached`)."""
        names = tuple(type(e).__qualname__ for e in aggregate._pending_events)
        batch = _BATCH.get()
        if batch is not None:
            for changed in (aggregate, *others):
                batch.add(changed)
            return CommandResult(aggregate.id, aggregate.version, None, names)
        processing = ProcessingEvent[UUID]()
        for changed in (aggregate, *others):
            processing.events.extend(changed.collect_events())
            processing.aggregates[changed.id] = changed
        recordings = self._save_collected(processing)
        if cache_after is not None:
            self._keep_cached((aggregate, *others), cache_after)
        position = recordings[-1].notification.id if recordings else None
        return CommandResult(aggregate.id, aggregate.version, position, names)

    def _keep_cached(self, saved: Sequence[TicketflowAggregate], erasures: int) -> None:
        """Put just-saved aggregates in the cache, so the next command on one of them does not read
        back, decode, check and decrypt the events this one wrote (the library's fast-forward, on
        which the cache stays, caches nothing at save). Only over an older copy or none: a save
        of this version succeeded, so no writer had this version, and a later one is fetched by the
        next read's fast-forward as before. Never after an erasure began since the load, nor an aggregate
        another writer's changes were evicted for since (:meth:`_untouched_since`)."""
        cache: Any = self.repository.cache
        if cache is None:
            return
        for changed in saved:
            with self._read_locks[hash(changed.id) % len(self._read_locks)]:
                if not self._untouched_since(erasures, changed.id):
                    continue
                cached = self._in_cache(cache, changed.id)
                if cached is None or cached.version < changed.version:
                    cache.put(changed.id, changed)

    def _select_erasures(self, start: int, limit: int, stop: int) -> list[Any]:
        select = self.recorder.select_notifications
        return retry_dead_connections(lambda: list(select(start, limit, stop=stop, topics=ERASURE_TOPICS)))

    def _select_written(self, start: int, limit: int, stop: int) -> list[Any]:
        """What the erasure watch reads of other writers' notifications: position, object, topic (the
        desk's recorders read no state for it: ``select_written``; the library's read for another)."""
        written = getattr(self.recorder, "select_written", None)
        if written is not None:
            return retry_dead_connections(lambda: list(written(start, limit, stop)))
        select = self.recorder.select_notifications
        return retry_dead_connections(lambda: list(select(start, limit, stop=stop)))

    def _forget_written(self, object_ids: set[UUID]) -> None:
        """Other writers changed these objects (:class:`~ticketflow.privacy.watch.ErasureWatch` found them
        in the log): out of the aggregate cache, so no command borrows a copy they moved past; a command
        or read that loaded before this puts nothing back (``_erasures``)."""
        cache: Any = self.repository.cache
        if cache is None:
            return
        evicted = frozenset(object_ids)
        self._bump_erasures(evicted)
        for object_id in object_ids:
            self._evict(object_id)
        self._bump_erasures(evicted)

    def _forget_customer(self, customer_id: UUID) -> None:
        """Drop everything this process holds of a customer erased (by any process, see
        :class:`~ticketflow.privacy.watch.ErasureWatch`): their key's cached copy, and the customer,
        their tickets and their reminders from the aggregate cache. Commands that loaded before this
        put nothing back in the cache, nor do reads that loaded while it ran (``_erasures``)."""
        self.keys.forget(customer_id)
        self._bump_erasures()
        cache: Any = self.repository.cache
        if cache is not None:
            for object_id in self._cached_of(cache, customer_id):
                self._evict(object_id)
        self._bump_erasures()

    def _bump_erasures(self, objects: frozenset[UUID] | None = None) -> None:
        """Count one more erasure or eviction step (see ``_erasures``), under a lock: threads bump it at once
        (every command's look at the log may evict what other writers changed), and a lost bump could let a
        command that loaded before an eviction put what it loaded back. ``objects``: the step concerns
        only these (an eviction of what other writers changed); None: every object (an erasure)."""
        with self._erasures_lock:
            self._erasures += 1
            self._bumps.append((self._erasures, objects))

    def _untouched_since(self, erasures: int, object_id: UUID) -> bool:
        """Whether no erasure, and no eviction of ``object_id``, was counted since ``_erasures`` was
        ``erasures`` (what was loaded then may be put in the cache). With other writers busy (another
        ``serve`` worker), every look at the log evicts what they changed: a command loaded before such
        an eviction of other objects keeps its own in the cache (a bump for any object kept every
        command in flight from caching: each then missed the cache at its next command, on SQLite 8 % of
        a worker's CPU with two workers). Too many bumps since to tell: not untouched."""
        with self._erasures_lock:
            current = self._erasures
            if current == erasures:
                return True
            if current - erasures > len(self._bumps):
                return False
            for count, objects in reversed(self._bumps):
                if count <= erasures:
                    break
                if objects is None or object_id in objects:
                    return False
            return True

    @staticmethod
    def _cached_of(cache: Any, customer_id: UUID) -> list[UUID]:
        """The cached aggregates holding a customer's data: the customer, the tickets they requested,
        the reminders about them (the subjects the mapper seals their data under)."""
        lock = getattr(cache, "lock", None)
        with lock if lock is not None else nullcontext():
            held = list(cache.cache.items())
        found = []
        for object_id, entry in held:  # an LRUCache keeps links: [previous, next, key, value]
            aggregate = entry[LRUCache.RESULT] if isinstance(cache, LRUCache) else entry
            requester = getattr(aggregate, "requester_id", None)  # a ticket's
            if customer_id in (object_id, requester, getattr(aggregate, "customer_id", None)):  # a reminder's
                found.append(object_id)
        return found

    def _evict(self, object_id: UUID) -> None:
        """Out of the aggregate cache, under the object's read lock: a :meth:`_keep_cached` that checked
        the eviction count before it was bumped has put its aggregate back already, and is evicted here."""
        cache: Any = self.repository.cache
        if cache is None:
            return
        with self._read_locks[hash(object_id) % len(self._read_locks)]:
            self._evict_held(cache, object_id)

    @staticmethod
    def _in_cache(cache: Any, object_id: UUID) -> Any:
        """The aggregate cached under ``object_id`` as it is, or None."""
        try:
            return cache.get(object_id)
        except KeyError:
            return None

    @staticmethod
    def _evict_held(cache: Any, object_id: UUID) -> None:
        """Out of the cache; the caller holds the object's read lock."""
        try:
            cache.get(object_id, evict=True)
        except KeyError:
            pass

    def _require_active_member(self, team_id: UUID, agent_id: str, team: Team | None = None) -> None:
        team = team or self._peek(Team, team_id)
        if not team.is_active_member(agent_id):
            raise RuleViolation(f"{agent_id} is not an active member of team {team.name!r}")

    @staticmethod
    def _staff_only(caller: Caller, what: str) -> None:
        if caller.role in (Role.CUSTOMER, Role.AUDITOR, Role.COMPLIANCE):
            raise PermissionDenied(f"{caller.role.a} may not {what}")


_HANDLERS.update({
    EraseCustomer: "erase_customer",
    CreateReplyTemplate: "create_reply_template",
    ReviseReplyTemplate: "revise_reply_template",
    RetireReplyTemplate: "retire_reply_template",
    wf.PublishRoutingRules: "publish_routing_rules",
    wf.DefineCalendar: "define_calendar",
    wf.DefineSlaPolicy: "define_sla_policy",
    wf.RetireSlaPolicy: "retire_sla_policy",
    wf.SetAssignmentStrategy: "set_assignment_strategy",
    wf.RouteTicket: "route_ticket",
    wf.ApplySla: "apply_sla",
    wf.RecordSlaEvent: "record_sla_event",
    wf.ScheduleReminder: "schedule_reminder",
    wf.FireReminder: "fire_reminder",
    wf.CompleteReminder: "complete_reminder",
    wf.CancelReminder: "cancel_reminder",
    wf.AnswerSurvey: "answer_survey",
    wf.RecordResolution: "record_resolution",
    wf.ChangeWebhook: "change_webhook",
    wf.PauseWebhook: "pause_webhook",
    wf.ResumeWebhook: "resume_webhook",
    wf.RemoveWebhook: "remove_webhook",
    AddMailbox: "add_mailbox",
    RemoveMailbox: "remove_mailbox",
})
