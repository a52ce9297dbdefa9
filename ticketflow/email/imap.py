"""Fetching IMAP mailboxes with the standard library's :mod:`imaplib`: exactly once per mail, by UID.

Each pass over a mailbox (``protocol imap``, active) logs in (IMAPS, STARTTLS or plain, as the mailbox
says; the password from its environment variable or file), selects its folder and asks for the UIDs
above the last one committed. Each mail is fetched without touching its flags (``BODY.PEEK[]``), handed
to :meth:`~ticketflow.email.intake.MailIntake.receive_mail`, and **only then** flagged ``\\Seen`` and
its UID recorded as the mailbox's high-water mark. A process killed between the intake and that record
fetches the mail again on its next pass, and intake recognises it (by Message-ID, else by folder
UIDVALIDITY and UID): no mail lost, no ticket twice.

When the folder's UIDVALIDITY changes (the folder was recreated or the server rebuilt its index), the
UIDs mean other mails: the folder is scanned again from its first UID, and the Message-IDs keep the
mails already taken in from being taken in twice.

A mailbox that cannot be reached, refuses the login or fails mid-pass is logged (its name and the
failure's kind: never an address, a subject or a password) and tried again after a backoff that
doubles from the poll interval up to :data:`MAX_BACKOFF_SECONDS`; the host process never stops for it.
The poller runs in the process that runs the automation (``serve`` on the embedded store,
``ticketflow project`` in scale-out): :class:`projections.automation.Automation` starts and stops it.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import logging
import re
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ticketflow.domain.mailbox import Mailbox
from ticketflow.email.mailboxes import imap_password
from ticketflow.errors import ConcurrencyConflict, StorageUnavailable, TicketflowError

if TYPE_CHECKING:
    from ticketflow.application import TicketDesk

log = logging.getLogger("ticketflow.email.imap")

#: The longest wait before a failing mailbox is tried again (seconds).
MAX_BACKOFF_SECONDS = 900.0
#: Seconds to wait for the IMAP server before giving up on a pass.
TIMEOUT_SECONDS = 30.0
#: The most mails taken in from one mailbox in one pass (the rest on the next passes: a stop is never held up long).
BATCH = 500

_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_FETCHED_UID = re.compile(rb"UID (\d+)")

#: Failures that pass: the mail is fetched again on the next pass (every other refusal is for good).
_TRANSIENT = (ConcurrencyConflict, StorageUnavailable)

#: Called after a mail was taken in and before its UID is recorded (tests inject a crash there).
AfterIntake = Callable[[Mailbox, int], None]


class ImapFailure(Exception):
    """The server answered something other than OK (the message is the server's, never a mail's)."""


@dataclass
class _Health:
    failures: int = 0
    retry_at: float = 0.0


def connect(mailbox: Mailbox, timeout: float = TIMEOUT_SECONDS) -> imaplib.IMAP4:
    """An authenticated connection to the mailbox's server (certificates checked for ssl and starttls)."""
    imap = mailbox.imap or {}
    host, port, security = str(imap["host"]), int(imap["port"]), mailbox.imap_security
    password = imap_password(mailbox)
    client: imaplib.IMAP4
    if security == "ssl":
        client = imaplib.IMAP4_SSL(host, port, ssl_context=ssl.create_default_context(), timeout=timeout)
    else:
        client = imaplib.IMAP4(host, port, timeout=timeout)
        if security == "starttls":
            client.starttls(ssl.create_default_context())
    try:
        client.login(str(imap["username"]), password)
    except BaseException:
        _close(client)
        raise
    return client


class ImapPoller:
    """Polls every IMAP mailbox: :meth:`poll_once` for one pass, :meth:`start` for a thread of passes."""

    def __init__(
        self,
        desk: TicketDesk,
        interval: float | None = None,
        *,
        connector: Callable[[Mailbox], imaplib.IMAP4] = connect,
        monotonic: Callable[[], float] = time.monotonic,
        after_intake: AfterIntake | None = None,
        batch: int = BATCH,
    ) -> None:
        self.desk = desk
        self.interval = desk.settings.imap_poll_seconds if interval is None else interval
        self.connector, self.monotonic, self.after_intake, self.batch = (
            connector,
            monotonic,
            after_intake,
            batch,
        )
        self._health: dict[str, _Health] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ running
    def poll_once(self) -> Counter[str]:
        """One pass over the mailboxes not backing off; what the mails did (``opened``, ``replied``, ...),
        and ``failed`` mailboxes. Never raises for a mailbox's failure."""
        done: Counter[str] = Counter()
        for mailbox in self.desk.mailboxes():
            if mailbox.protocol != "imap":
                continue
            health = self._health.setdefault(str(mailbox.id), _Health())
            if self.monotonic() < health.retry_at:
                continue
            try:
                self.poll_mailbox(mailbox, done)
            except Exception as exc:  # noqa: BLE001 - one mailbox's failure never stops the others
                health.failures += 1
                wait = min(max(self.interval, 1.0) * 2 ** (health.failures - 1), MAX_BACKOFF_SECONDS)
                health.retry_at = self.monotonic() + wait
                log.warning(
                    "IMAP mailbox %s: %s (%s); failure %d, next try in %.0f s",
                    mailbox.name,
                    type(exc).__name__,
                    _safe_reason(exc),
                    health.failures,
                    wait,
                )
                done["failed"] += 1
            else:
                health.failures, health.retry_at = 0, 0.0
        return done

    def poll_mailbox(self, mailbox: Mailbox, done: Counter[str] | None = None) -> Counter[str]:
        """Take in the mailbox's mails above its high-water mark, counting them in ``done`` as they are
        recorded; raises when the server fails."""
        store = self.desk.mail_store
        folder = str((mailbox.imap or {}).get("folder") or "INBOX")
        done = Counter() if done is None else done
        client = self.connector(mailbox)
        try:
            _ok(client.select(_quoted(folder)), "SELECT")
            uidvalidity = _uidvalidity(client, folder)
            mark = store.imap_mark(mailbox.id)
            last = mark[1] if mark is not None and mark[0] == uidvalidity else 0
            if mark is not None and mark[0] != uidvalidity:
                log.warning("IMAP mailbox %s: UIDVALIDITY changed; scanning the folder again", mailbox.name)
            found = _ok(client.uid("SEARCH", f"UID {last + 1}:*"), "UID SEARCH")
            uids = sorted(int(u) for u in b" ".join(x for x in found if x).split() if int(u) > last)
            for uid in uids[: self.batch]:
                raw = _fetch(client, uid)
                if raw is None:  # expunged since the search
                    store.set_imap_mark(mailbox.id, uidvalidity, uid)
                    continue
                try:
                    outcome = self.desk.receive_mail(
                        raw, mailbox=mailbox.name, uid=f"{uidvalidity}.{uid}", team_id=mailbox.team_id
                    )
                    action = outcome.action
                except _TRANSIENT:
                    raise
                except TicketflowError as exc:  # the desk refuses this mail for good: left unread, passed
                    log.warning(
                        "IMAP mailbox %s: mail UID %d refused (%s)", mailbox.name, uid, type(exc).__name__
                    )
                    action = "refused"
                    store.set_imap_mark(mailbox.id, uidvalidity, uid)
                    done[action] += 1
                    continue
                if self.after_intake is not None:
                    self.after_intake(mailbox, uid)
                _ok(client.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Seen)"), "UID STORE")
                store.set_imap_mark(mailbox.id, uidvalidity, uid)
                done[action] += 1
            if not uids and mark is None:  # an empty folder: remember its UIDVALIDITY all the same
                store.set_imap_mark(mailbox.id, uidvalidity, 0)
        finally:
            _close(client)
        return done

    def start(self) -> None:
        if self._thread is not None or self.interval <= 0:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="imap-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=TIMEOUT_SECONDS + 5)
            self._thread = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception:  # e.g. the store is unreachable: the next pass tries again
                log.exception("IMAP polling: pass failed; retrying")
            self._stopping.wait(self.interval)


def _ok(answer: tuple[str, list[bytes | None]], command: str) -> list[bytes | None]:
    status, data = answer
    if status != "OK":
        raise ImapFailure(f"{command} answered {status}")
    return data


def _uidvalidity(client: imaplib.IMAP4, folder: str) -> int:
    """The selected folder's UIDVALIDITY (from SELECT's answer; asked with STATUS if the server did not say)."""
    _, values = client.response("UIDVALIDITY")
    for value in values:
        if value:
            return int(value)
    data = _ok(client.status(_quoted(folder), "(UIDVALIDITY)"), "STATUS")
    match = _UIDVALIDITY.search(b" ".join(d for d in data if isinstance(d, bytes)))
    if match is None:
        raise ImapFailure("the server names no UIDVALIDITY")
    return int(match.group(1))


def _fetch(client: imaplib.IMAP4, uid: int) -> bytes | None:
    """The whole mail with this UID, its flags untouched; None when it is gone."""
    data = _ok(client.uid("FETCH", str(uid), "(UID BODY.PEEK[])"), "UID FETCH")
    for item in data:
        if isinstance(item, tuple) and len(item) == 2:
            match = _FETCHED_UID.search(item[0])
            if match is None or int(match.group(1)) == uid:
                return bytes(item[1])
    return None


def _quoted(folder: str) -> str:
    """A folder name as an IMAP quoted string, non-ASCII names (``客服``) in modified UTF-7 (RFC 3501)."""
    encoded = utf7_folder(folder)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def utf7_folder(name: str) -> str:
    """IMAP's modified UTF-7 (RFC 3501 section 5.1.3): printable ASCII as itself (``&`` as ``&-``), every
    other run as ``&`` + the modified base64 of its UTF-16BE + ``-``."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            packed = base64.b64encode("".join(run).encode("utf-16-be")).decode("ascii")
            out.append("&" + packed.rstrip("=").replace("/", ",") + "-")
            run.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def _close(client: imaplib.IMAP4) -> None:
    try:
        if client.state == "SELECTED":
            client.close()
        client.logout()
    except Exception:  # noqa: BLE001 - the connection is going away anyway
        with contextlib.suppress(Exception):
            client.shutdown()


def _safe_reason(exc: Exception) -> str:
    """What went wrong, without anything from a mail: the server's answer to a command, a socket error."""
    if isinstance(exc, (ImapFailure, imaplib.IMAP4.error, OSError, TicketflowError)):
        return str(exc)[:200]
    return "see the kind"
