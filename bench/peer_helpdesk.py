"""Side by side over real HTTP: ticketflow ``serve`` against django-helpdesk 2.6 (DRF API, gunicorn, SQLite WAL).

    python bench/peer_helpdesk.py [--seconds 10] [--warmup 3] [--clients 1,8,32]
                                  [--queue-sizes 2000,20000] [--queue-reads 50] [--queue-budget 30]
                                  [--venv DIR] [--workers N] [--skip-queue] [--skip-lifecycle]

django-helpdesk is installed from PyPI on first use into its own virtual environment
(``--venv``, default ``~/.cache/ticketflow-bench/helpdesk-venv``), never into the one running
this script. A minimal Django project is generated at run time in a temporary directory: SQLite
in WAL mode (``synchronous=FULL``, Django's ``init_command``), the DRF API enabled with token
authentication, a superuser and its token, a staff agent to assign to, and one queue; it runs
under gunicorn with one sync worker per core. ticketflow runs as ``ticketflow serve`` (one API
worker, views, automation, sealer and personal-data encryption in-process: its defaults) on a
temporary SQLite data dir, through ``bench_http``'s ``Server``.

One client (``bench/load_client.py``: every simulated agent a task with its own keep-alive
connection, all on one event loop, so the client's own CPU stays small beside either server) drives
both with one workload, a ticket's lifecycle of six commands, each one request:

=============  ====================================  ==============================================
step           ticketflow                            django-helpdesk (its real API, ``/api/``)
=============  ====================================  ==============================================
open           ``POST /api/v1/tickets``              ``POST /api/tickets/`` (TicketForm.save)
assign         ``POST .../{id}/assign``               ``PATCH /api/tickets/{id}/ {assigned_to}``
internal note  ``POST .../{id}/notes``                ``POST /api/followups/ {public: false}``
public reply   ``POST .../{id}/replies``              ``POST /api/followups/ {public: true}``
solve          ``POST .../{id}/solve``                ``POST /api/followups/ {new_status: 3}``
close          ``POST .../{id}/close``                ``POST /api/followups/ {new_status: 4}``
=============  ====================================  ==============================================

django-helpdesk has no solve or close endpoint: the closest real ones are follow-ups that change
the status (Resolved = 3, Closed = 4), which is what its own staff view does. Its assign has no
endpoint either: a plain PATCH of ``assigned_to`` on the ticket, which writes no follow-up and no
audit record (its staff web view records the change as a follow-up through ``update_ticket``; the
API's follow-up cannot change the owner).

Each concurrency level runs ``--warmup`` seconds unmeasured, then ``--seconds`` measured; figures
are completions: a command counts when its 2xx answer arrives inside the window (its latency with
it), a lifecycle when all six steps succeeded and its close's answer arrives inside it. Counting
only commands that also started inside the window would undercount a system whose latency is a
large part of the window (django-helpdesk at 32 clients here), and no lifecycle longer than the
window would ever count. At the end of the window each client stops before its next step. Printed per system and level: commands/s, lifecycles/s,
p50/p99 per command, server CPU per command (the server processes and their children, from /proc),
and ticketflow / django-helpdesk ratios.

Queue read: for each size ``N``, fresh stores are seeded straight with ``N`` open tickets (over
HTTP that would take longer than the run: django-helpdesk opens a few tickets a second here).
ticketflow: one ticket opened through the desk, the others its ``Ticket.Opened`` event copied and
stored through the desk's mapper (encrypted, sealed), then projected by ``serve`` as it starts;
django-helpdesk: ``Ticket`` rows and their "Ticket Opened" follow-ups, as its API writes them. Then
one client reads the open queue's first page of 25 through each HTTP API, ``--queue-reads`` times
(fewer, 3 at least, once the reads took ``--queue-budget`` seconds): ticketflow
``GET /api/v1/tickets?status=new&status=open&limit=25``, django-helpdesk
``GET /api/tickets/?status=1,2&page_size=25`` (Open, Reopened). django-helpdesk's ``get_queryset``
loads every matching ticket and runs a query per ticket (``set_custom_field_values``) before
paging, so its read grows with the queue; that is its real API, reported as measured. For the same
reason its ``PATCH /api/tickets/{id}/`` (assign) loads every ticket in the store.

The client shares the machine with both servers (one at a time), so figures are a floor; only
figures from the same run compare. What differs between the two is printed before the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol, Self
from urllib.parse import urlencode
from uuid import uuid4, uuid5

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_http, beside this file
import load_client
from bench_http import (
    PASSED_THROUGH,
    TICKET_ID,
    Server,
    free_port,
    percentile,
    stop_process,
    tree_cpu_seconds,
)
from bench_http import setup as ticketflow_setup
from bench_recovery import _like  # a stored event copied as another ticket's
from load_client import Answer, ClientError, Connection

from ticketflow.application import ID_NAMESPACE, TicketDesk
from ticketflow.commands import FormTeam, OpenTicket, RegisterCustomer
from ticketflow.config import Settings
from ticketflow.domain.values import Channel, Role
from ticketflow.metadata import Caller

HELPDESK_REQUIREMENTS = ["django-helpdesk>=2.6,<2.7", "gunicorn"]
DEFAULT_VENV = Path.home() / ".cache" / "ticketflow-bench" / "helpdesk-venv"
PAGE = 25  # queue page size on both (django-helpdesk's default page)
PRINT_ERRORS = 3
RESOLVED, CLOSED = 3, 4  # django-helpdesk's default status values
HELPDESK_OPEN_STATUSES = "1,2"  # Open, Reopened

Request = tuple[str, str, dict[str, Any] | None]  # method, path, JSON body
Params = list[tuple[str, str | int | float | bool | None]]  # query parameters, repeatable


class Sender(Protocol):
    """What the workload sends through: ``load_client.Connection`` (the tests give a fake)."""

    async def request(self, method: str, path: str, body: Any = None) -> Answer: ...

    async def close(self) -> None: ...


def open_connection(desk: Desk, timeout: float) -> Sender:
    """A keep-alive connection to ``desk`` carrying its headers (``bench/load_client.py``)."""
    return Connection(desk.url, desk.headers, timeout=timeout)


def with_query(path: str, params: Params) -> str:
    return f"{path}?{urlencode([(k, '' if v is None else v) for k, v in params])}" if params else path


# --- the two systems: one workload, mapped to each one's API -----------------------------------


@dataclass
class Desk(ABC):
    """A system under test: where it answers, how to authenticate, and its lifecycle requests."""

    name: str
    url: str
    headers: dict[str, str]

    @abstractmethod
    def open(self, n: int) -> Request:
        """The request that opens ticket ``n``."""

    def ticket_id(self, answer: dict[str, Any]) -> str:
        return str(answer["id"])

    @abstractmethod
    def steps(self, ticket: str) -> list[tuple[str, Request]]:
        """The lifecycle after open: (step name, request), in order."""

    @abstractmethod
    def queue(self) -> tuple[str, Params]:
        """The open queue's first page: path and query parameters."""

    @abstractmethod
    def queue_rows(self, answer: dict[str, Any]) -> int:
        """How many tickets a queue page holds."""


@dataclass
class TicketflowDesk(Desk):
    customer: str = ""
    team: str = ""
    assignee: str = "a1"

    def open(self, n: int) -> Request:
        return "POST", "/api/v1/tickets", {"subject": f"压测工单 {n}", "customer_id": self.customer, "team_id": self.team}

    def steps(self, ticket: str) -> list[tuple[str, Request]]:
        base = f"/api/v1/tickets/{ticket}"
        return [
            ("assign", ("POST", f"{base}/assign", {"assignee_id": self.assignee})),
            ("internal note", ("POST", f"{base}/notes", {"body": "内部备注：已查看网关日志。"})),
            ("public reply", ("POST", f"{base}/replies", {"body": "您好，我们已经重置了您的密码。"})),
            ("solve", ("POST", f"{base}/solve", {"resolution": "密码已重置。"})),
            ("close", ("POST", f"{base}/close", {})),
        ]

    def queue(self) -> tuple[str, Params]:
        return "/api/v1/tickets", [("status", "new"), ("status", "open"), ("limit", PAGE)]

    def queue_rows(self, answer: dict[str, Any]) -> int:
        return len(answer["items"])


@dataclass
class HelpdeskDesk(Desk):
    queue_id: int = 0
    agent_id: int = 0

    def open(self, n: int) -> Request:
        return "POST", "/api/tickets/", {
            "queue": self.queue_id, "title": f"压测工单 {n}", "description": "无法登录。",
            "submitter_email": "customer@example.com", "priority": 3,
        }

    def steps(self, ticket: str) -> list[tuple[str, Request]]:
        def followup(comment: str, public: bool, status: int | None = None) -> Request:
            body: dict[str, Any] = {"ticket": int(ticket), "comment": comment, "public": public}
            if status is not None:
                body["new_status"] = status
            return "POST", "/api/followups/", body

        return [
            ("assign", ("PATCH", f"/api/tickets/{ticket}/", {"assigned_to": self.agent_id})),
            ("internal note", followup("内部备注：已查看网关日志。", False)),
            ("public reply", followup("您好，我们已经重置了您的密码。", True)),
            ("solve", followup("密码已重置。", True, RESOLVED)),
            ("close", followup("", True, CLOSED)),
        ]

    def queue(self) -> tuple[str, Params]:
        return "/api/tickets/", [("status", HELPDESK_OPEN_STATUSES), ("page_size", PAGE)]

    def queue_rows(self, answer: dict[str, Any]) -> int:
        return len(answer["results"])


# --- the workload and its figures ---------------------------------------------------------------


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)  # ms, 2xx answers inside the window
    lifecycles: int = 0  # opened and closed inside the window
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def error(self, text: str) -> None:
        with self.lock:
            self.errors[TICKET_ID.sub("{id}", text)] += 1


async def run_lifecycle(
    desk: Desk, n: int, call: Callable[[str, Request], Awaitable[tuple[Answer, float, float] | None]]
) -> tuple[float, float] | None:
    """Open ticket ``n`` and take it through every step; when all six succeeded, the last one's
    ``(began, finished)``: a lifecycle is counted when its close is.

    ``call(step, request)`` sends one request and answers ``(answer, began, finished)`` for a 2xx
    answer, None otherwise (it tallies the failure); a failed step ends the lifecycle."""
    opened = await call("open", desk.open(n))
    if opened is None:
        return None
    answer, began, finished = opened
    ticket = desk.ticket_id(answer.json())
    for step, request in desk.steps(ticket):
        done = await call(step, request)
        if done is None:
            return None
        _, began, finished = done
    return began, finished


async def client_loop(
    desk: Desk, first: int, window: dict[str, float], tally: Tally, go: asyncio.Event,
    connect: Callable[[Desk, float], Sender] = open_connection, clock: Callable[[], float] = time.perf_counter,
) -> None:
    """One simulated agent: lifecycles numbered from ``first + 1`` until ``window["end"]`` (on ``clock``),
    once ``go`` is set."""
    latencies: list[float] = []
    lifecycles = 0
    client = connect(desk, 120.0)
    await go.wait()
    start, end = window["start"], window["end"]

    async def call(step: str, request: Request) -> tuple[Answer, float, float] | None:
        method, path, body = request
        began = clock()
        if began >= end:  # the level is over: the lifecycle stops here, nothing sent
            return None
        try:
            answer = await client.request(method, path, body)
        except ClientError as exc:
            if start <= clock() <= end:
                tally.error(f"{step}: {method} {path}: {exc}")
            return None
        finished = clock()
        measured = start <= finished <= end  # completions: unbiased however long a command takes
        if not answer.is_success:
            if measured:
                tally.error(f"{step}: {method} {path} -> {answer.status} {answer.text[:200]}")
            return None
        if measured:
            latencies.append((finished - began) * 1000)
        return answer, began, finished

    try:
        n = first
        while clock() < end:
            n += 1
            closed = await run_lifecycle(desk, n, call)
            if closed is not None and start <= closed[1] <= end:
                lifecycles += 1
    finally:
        await client.close()
    tally.latencies.extend(latencies)
    tally.lifecycles += lifecycles


@dataclass(frozen=True)
class LevelResult:
    system: str
    clients: int
    seconds: float
    commands: int
    lifecycles: int
    p50: float
    p99: float
    errors: int
    cpu_seconds: float | None = None

    @property
    def commands_per_s(self) -> float:
        return self.commands / self.seconds

    @property
    def lifecycles_per_s(self) -> float:
        return self.lifecycles / self.seconds

    @property
    def cpu_ms_per_command(self) -> float | None:
        if self.cpu_seconds is None or not self.commands:
            return None
        return self.cpu_seconds / self.commands * 1000


def summarise(
    system: str, clients: int, seconds: float, tally: Tally, cpu_seconds: float | None = None
) -> LevelResult:
    done = len(tally.latencies)
    return LevelResult(
        system=system, clients=clients, seconds=seconds, commands=done, lifecycles=tally.lifecycles,
        p50=percentile(tally.latencies, 0.5) if done else float("nan"),
        p99=percentile(tally.latencies, 0.99) if done else float("nan"),
        errors=sum(tally.errors.values()), cpu_seconds=cpu_seconds,
    )


def times(value: float) -> str:
    """A ratio as printed: ``5.00x``, or ``-`` when there is none."""
    return "-" if math.isnan(value) else f"{value:.2f}x"


def ratio(ours: float, theirs: float) -> float:
    """``ours / theirs``; NaN when there is nothing to divide by."""
    return ours / theirs if theirs else float("nan")


def run_level(
    desk: Desk, clients: int, warmup: float, seconds: float, pids: list[int],
    connect: Callable[[Desk, float], Sender] = open_connection,
) -> tuple[LevelResult, Tally]:
    tally = Tally()
    window: dict[str, float] = {}
    cpu: list[float | None] = []

    def sample_cpu() -> None:
        for edge in ("start", "end"):
            time.sleep(max(0.0, window[edge] - time.perf_counter()))
            cpu.append(tree_cpu_seconds(pids))

    sampler = threading.Thread(target=sample_cpu, daemon=True)

    async def level() -> None:  # every agent a task on one event loop (bench/load_client.py says why)
        go = asyncio.Event()
        tasks = [
            asyncio.create_task(client_loop(desk, i * 1_000_000, window, tally, go, connect))
            for i in range(clients)
        ]
        began = time.perf_counter()
        window.update(start=began + warmup, end=began + warmup + seconds)
        sampler.start()
        go.set()
        await asyncio.wait(tasks, timeout=warmup + seconds + 300)

    load_client.run(level)
    if window:
        sampler.join(5)
    used = cpu[1] - cpu[0] if len(cpu) == 2 and cpu[0] is not None and cpu[1] is not None else None
    return summarise(desk.name, clients, seconds, tally, used), tally


def lifecycle_table(results: list[LevelResult], ours: str, theirs: str) -> str:
    """One block per concurrency level: a row per system, then the ratio ours / theirs."""
    lines = [
        f"{'clients':>7}  {'system':<16}{'commands/s':>11}{'lifecycles/s':>13}{'p50 ms':>9}{'p99 ms':>9}"
        + f"{'CPU ms/cmd':>11}{'errors':>8}"
    ]
    by_level: dict[int, dict[str, LevelResult]] = {}
    for r in results:
        by_level.setdefault(r.clients, {})[r.system] = r
    for clients, row in by_level.items():
        for system in (ours, theirs):
            got = row.get(system)
            if got is None:
                continue
            cpu = got.cpu_ms_per_command
            lines.append(
                f"{clients:>7}  {system:<16}{got.commands_per_s:>11,.1f}{got.lifecycles_per_s:>13,.1f}"
                f"{got.p50:>9.1f}{got.p99:>9.1f}{(f'{cpu:.2f}' if cpu is not None else '-'):>11}{got.errors:>8}"
            )
        if ours in row and theirs in row:
            a, b = row[ours], row[theirs]
            lines.append(
                f"{clients:>7}  {'ratio':<16}{times(ratio(a.commands_per_s, b.commands_per_s)):>11}"
                f"{times(ratio(a.lifecycles_per_s, b.lifecycles_per_s)):>13}"
                f"{times(ratio(b.p50, a.p50)):>9}{times(ratio(b.p99, a.p99)):>9}   (latency ratios: {theirs} / {ours})"
            )
    return "\n".join(lines)


@dataclass(frozen=True)
class QueueResult:
    system: str
    tickets: int
    reads: int
    rows: int  # rows on the page read
    p50: float
    p99: float


def queue_table(results: list[QueueResult], ours: str, theirs: str) -> str:
    lines = [f"{'tickets':>8}  {'system':<16}{'reads':>6}{'rows':>6}{'p50 ms':>9}{'p99 ms':>9}"]
    by_size: dict[int, dict[str, QueueResult]] = {}
    for r in results:
        by_size.setdefault(r.tickets, {})[r.system] = r
    for tickets, row in by_size.items():
        for system in (ours, theirs):
            if system in row:
                r = row[system]
                lines.append(f"{tickets:>8,}  {system:<16}{r.reads:>6}{r.rows:>6}{r.p50:>9.1f}{r.p99:>9.1f}")
        if ours in row and theirs in row:
            lines.append(
                f"{tickets:>8,}  {'ratio':<16}{'':>12}{times(ratio(row[theirs].p50, row[ours].p50)):>9}"
                f"{times(ratio(row[theirs].p99, row[ours].p99)):>9}   ({theirs} / {ours}: > 1 means {ours} reads faster)"
            )
    return "\n".join(lines)


def read_queue(
    desk: Desk, tickets: int, reads: int, min_position: int = 0,
    connect: Callable[[Desk, float], Sender] = open_connection,
    budget: float = float("inf"), catch_up: float = 900.0,
) -> QueueResult:
    """Read the open queue ``reads`` times after one unmeasured read (which waits for ``min_position``,
    retried on 503 for up to ``catch_up`` seconds); fewer (3 at least) once the reads took ``budget`` seconds."""
    path, params = desk.queue()

    async def reading() -> QueueResult:
        latencies: list[float] = []
        rows = 0
        client = connect(desk, 300.0)
        try:
            caught_up = time.monotonic() + catch_up
            first_path = with_query(path, [*params, *([("min_position", min_position)] if min_position else [])])
            while True:  # the views may still be projecting the seeded log: each try waits a few seconds
                first = await client.request("GET", first_path)
                if first.status != 503 or time.monotonic() > caught_up:
                    break
            if not first.is_success:
                raise SystemExit(f"{desk.name}: GET {path} -> {first.status} {first.text[:300]}")
            spent = 0.0
            for _ in range(reads):
                if len(latencies) >= 3 and spent >= budget:
                    break
                began = time.perf_counter()
                answer = await client.request("GET", with_query(path, params))
                latencies.append((time.perf_counter() - began) * 1000)
                spent += latencies[-1] / 1000
                if not answer.is_success:
                    raise SystemExit(f"{desk.name}: GET {path} -> {answer.status} {answer.text[:300]}")
                rows = desk.queue_rows(answer.json())
        finally:
            await client.close()
        return QueueResult(
            desk.name, tickets, len(latencies), rows, percentile(latencies, 0.5), percentile(latencies, 0.99)
        )

    return load_client.run(reading)


# --- django-helpdesk: its own venv, a generated project, gunicorn -------------------------------


def ensure_helpdesk_venv(venv: Path) -> Path:
    """The venv's python, with django-helpdesk 2.6 and gunicorn installed into it (from PyPI, once)."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import helpdesk, gunicorn, django; print(django.get_version())"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    print(f"installing {' '.join(HELPDESK_REQUIREMENTS)} into {venv} ...", flush=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *HELPDESK_REQUIREMENTS], check=True)
    return python


def helpdesk_settings(database: Path) -> str:
    """The generated project's settings module: SQLite in WAL mode, the DRF API with token auth."""
    return f'''"""Generated by bench/peer_helpdesk.py for a benchmark run: not for production."""
SECRET_KEY = "peer-bench-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.admin", "django.contrib.auth", "django.contrib.contenttypes",
    "django.contrib.sessions", "django.contrib.messages", "django.contrib.staticfiles",
    "django.contrib.sites", "django.contrib.humanize",
    "rest_framework", "rest_framework.authtoken", "helpdesk",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "hdbench.urls"
TEMPLATES = [{{
    "BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [], "APP_DIRS": True,
    "OPTIONS": {{"context_processors": [
        "django.template.context_processors.request", "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]}},
}}]
DATABASES = {{"default": {{
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": {str(database)!r},
    "OPTIONS": {{
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 60,
    }},
}}}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
SITE_ID = 1
USE_TZ = True
TIME_ZONE = "Asia/Shanghai"
STATIC_URL = "/static/"
LOGIN_URL = "/login/"
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"
REST_FRAMEWORK = {{
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
}}
HELPDESK_API_ENABLED = True
HELPDESK_TEAMS_MODE_ENABLED = False  # pinax-teams is not installed
LOGGING = {{"version": 1, "handlers": {{"console": {{"class": "logging.StreamHandler"}}}},
           "loggers": {{"django.request": {{"handlers": ["console"], "level": "ERROR"}}}}}}
'''


URLS = '''from django.urls import include, path

urlpatterns = [path("", include("helpdesk.urls", namespace="helpdesk"))]
'''

WSGI = '''import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hdbench.settings")
application = get_wsgi_application()
'''

#: Run in the helpdesk venv: migrate, then the accounts, token and queue the workload uses.
SETUP = '''import django, json
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from helpdesk.models import Queue
User = get_user_model()
admin = User.objects.create_superuser("bench", "bench@example.com", "bench-password")
agent = User.objects.create_user("li.wei", "li.wei@example.com", "agent-password", is_staff=True)
queue = Queue.objects.create(title="技术支持", slug="support")
print(json.dumps({"token": Token.objects.create(user=admin).key, "queue": queue.id, "agent": agent.id}))
'''


#: Run in the helpdesk venv after SETUP: argv[1] open tickets as its API makes them (a ticket and its
#: "Ticket Opened" follow-up), inserted in batches in one transaction; prints the open tickets.
SEED = '''import sys, django
django.setup()
from django.contrib.auth import get_user_model
from django.db import transaction
from helpdesk.models import FollowUp, Queue, Ticket
count, queue = int(sys.argv[1]), Queue.objects.get(slug="support")
admin = get_user_model().objects.get(username="bench")
with transaction.atomic():
    for start in range(0, count, 2000):
        tickets = Ticket.objects.bulk_create([
            Ticket(queue=queue, title=f"压测工单 {n}", description="无法登录。",
                   submitter_email="customer@example.com", priority=3, status=Ticket.OPEN_STATUS)
            for n in range(start, min(count, start + 2000))
        ])
        FollowUp.objects.bulk_create([
            FollowUp(ticket=t, user=admin, title="Ticket Opened", comment=t.description, public=True)
            for t in tickets
        ])
print(Ticket.objects.filter(status__in=(Ticket.OPEN_STATUS, Ticket.REOPENED_STATUS)).count())
'''


def write_helpdesk_project(root: Path) -> Path:
    """A minimal Django project under ``root`` (the database beside it); returns the database path."""
    package = root / "hdbench"
    package.mkdir(parents=True, exist_ok=True)
    database = root / "helpdesk.sqlite3"
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text(helpdesk_settings(database))
    (package / "urls.py").write_text(URLS)
    (package / "wsgi.py").write_text(WSGI)
    return database


class HelpdeskServer:
    """The generated project migrated, set up and served by gunicorn (``workers`` sync workers)."""

    def __init__(self, python: Path, root: Path, workers: int) -> None:
        self.python, self.root, self.workers = python, root, workers
        self.database = write_helpdesk_project(root)
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hdbench.settings", "PYTHONPATH": str(root)}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "gunicorn.log"

    def run(self, script: str, *args: str) -> str:
        """``script`` run by the venv's python in the project; its last line of output."""
        out = subprocess.run(
            [str(self.python), "-c", script, *args], env=self.env, cwd=self.root, capture_output=True, text=True,
            timeout=1800, check=False,
        )
        if out.returncode != 0:
            raise SystemExit(f"django-helpdesk script failed ({out.returncode}):\n{out.stderr[-3000:]}")
        return out.stdout.strip().splitlines()[-1]

    def setup(self) -> dict[str, Any]:
        return dict(json.loads(self.run(SETUP)))

    def __enter__(self) -> Self:
        gunicorn = self.python.with_name("gunicorn")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(gunicorn), "hdbench.wsgi:application", "--bind", f"127.0.0.1:{self.port}",
                 "--workers", str(self.workers), "--timeout", "300", "--log-level", "warning"],
                env=self.env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                httpx.get(f"{self.url}/api/", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise SystemExit(f"gunicorn did not answer within 60 s:\n{self.log.read_text()[-3000:]}")

    def __exit__(self, *_: object) -> None:
        if self.proc is not None:
            stop_process(self.proc)


# --- the run ------------------------------------------------------------------------------------


def journal_mode(database: Path) -> str:
    with sqlite3.connect(database) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


def seed_ticketflow(data: Path, tickets: int, batch: int = 5_000) -> int:
    """``tickets`` open tickets in a new store at ``data``; the log position after them.

    One ticket is opened through the desk; the rest are its ``Ticket.Opened`` event copied as other
    tickets' (marked imported, as bench_recovery seeds), turned into stored events by the desk's own
    mapper (personal data encrypted, sealed) and inserted in batches: no commands, no views on the way.
    ``serve`` projects them when it starts; the first queue read waits for that."""
    desk = TicketDesk(Settings(data_dir=data))
    try:
        admin = Caller("bench", Role.ADMIN, Channel.API)
        customer = desk.register_customer(RegisterCustomer(name="压测客户"), admin).object_id
        team = desk.form_team(FormTeam(name="压测"), admin).object_id
        first = desk.open_ticket(OpenTicket(subject="压测工单 0", requester_id=customer, team_id=team), admin)
        template = next(iter(desk.events.get(first.object_id)))
        at, step = datetime.now(UTC) - timedelta(days=30), timedelta(days=29) / max(1, tickets)
        pending: list[Any] = []
        for n in range(1, tickets):
            command = uuid4()
            ticket = uuid5(ID_NAMESPACE, f"Ticket:{command}")
            pending.append(_like(template, ticket, 1, command, at + step * n, subject=f"压测工单 {n}"))
            if len(pending) >= batch or n == tickets - 1:
                desk.recorder.insert_events([desk.mapper.to_stored_event(e) for e in pending])
                pending = []
        return int(desk.log_position())
    finally:
        desk.close()


@dataclass
class Running:
    desk: Desk
    pids: list[int]  # the server processes (their children are counted with them)
    database: Path
    position: int = 0  # the log position a first read waits for (ticketflow)


@contextmanager
def run_ticketflow(logs: Path, tickets: int = 0) -> Iterator[Running]:
    """``ticketflow serve`` on a new SQLite data dir, holding ``tickets`` open tickets first if asked."""
    data = Path(tempfile.mkdtemp(prefix="tf-peer-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TICKETFLOW_") or k in PASSED_THROUGH},
        "TICKETFLOW_DATA_DIR": str(data),
        "TICKETFLOW_RATE_LIMIT_PER_SECOND": "100000",
        "TICKETFLOW_RATE_LIMIT_BURST": "100000",
    }
    try:
        position = seed_ticketflow(data, tickets) if tickets else 0
        server = Server(env, 1, False, logs)
        token = server.token()
        with server:
            customer, team = ticketflow_setup(server.url, token)
            desk = TicketflowDesk("ticketflow", server.url, {"Authorization": f"Bearer {token}"}, customer, team)
            yield Running(desk, [proc.pid for _, proc in server.procs], data / "ticketflow.sqlite", position)
    finally:
        shutil.rmtree(data, ignore_errors=True)


@contextmanager
def run_helpdesk(python: Path, workers: int, tickets: int = 0) -> Iterator[Running]:
    """The generated django-helpdesk project under gunicorn, holding ``tickets`` open tickets first if asked."""
    root = Path(tempfile.mkdtemp(prefix="hd-peer-"))
    try:
        server = HelpdeskServer(python, root, workers)
        ids = server.setup()
        if tickets:
            server.run(SEED, str(tickets))
        with server:
            assert server.proc is not None
            desk = HelpdeskDesk("django-helpdesk", server.url, {"Authorization": f"Token {ids['token']}"},
                                ids["queue"], ids["agent"])
            yield Running(desk, [server.proc.pid], server.database)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def differences(workers: int) -> list[str]:
    return [
        ("ticketflow: `ticketflow serve` defaults, 1 API process; every command appends events (optimistic "
         "concurrency, idempotency), encrypts personal data, seals the audit chain, projects the views and "
         "runs automation in the same process; assign is a command with its own audit event."),
        (f"django-helpdesk 2.6: gunicorn, {workers} sync workers (one per core); assign is a plain PATCH of "
         "`assigned_to` (no follow-up, no audit); note, reply, solve and close are follow-ups (solve/close "
         "change the status through them: it has no solve/close endpoint); notification e-mails are rendered "
         "and handed to Django's dummy backend (not sent); token auth (one query per request); Django "
         "autocommit (each save its own transaction; no ATOMIC_REQUESTS)."),
        ("Both: SQLite in WAL mode (checked on the files, printed below), synchronous=FULL on the writes "
         "(ticketflow's event store at SQLite's default, its views NORMAL; django-helpdesk via init_command); "
         "the same client, workload, payloads and page size; the client runs on the same machine."),
        ("Queue: the tickets are seeded straight into each store (ticketflow: Ticket.Opened events through "
         "its mapper, projected by serve; django-helpdesk: Ticket rows and their 'Ticket Opened' follow-ups, "
         "as its API writes them); the read itself goes through each one's HTTP API."),
    ]


def lifecycles(
    python: Path, workers: int, clients: list[int], warmup: float, seconds: float, logs: Path
) -> list[LevelResult]:
    """The lifecycle workload at each level, ticketflow then django-helpdesk (each on a fresh store),
    printed as it goes and then as a table with the ratios; every level's figures."""
    print(f"\nLifecycle (open, assign, internal note, public reply, solve, close): "
          f"{warmup:g} s warm-up + {seconds:g} s per level", flush=True)
    results: list[LevelResult] = []
    starts: list[Callable[[], Any]] = [lambda: run_ticketflow(logs), lambda: run_helpdesk(python, workers)]
    for start in starts:
        with start() as running:
            for level in clients:
                result, tally = run_level(running.desk, level, warmup, seconds, running.pids)
                results.append(result)
                print(f"  {result.system:<16}{level:>3} clients: {result.commands_per_s:,.1f} commands/s,"
                      f" {result.lifecycles_per_s:,.1f} lifecycles/s", flush=True)
                for text, count in tally.errors.most_common(PRINT_ERRORS):
                    print(f"        {count:>6} x {text}", flush=True)
            print(f"  {running.desk.name}: journal_mode={journal_mode(running.database)}", flush=True)
    print(lifecycle_table(results, *NAMES), flush=True)
    return results


NAMES = ("ticketflow", "django-helpdesk")


def helpdesk_version(python: Path) -> str:
    return subprocess.run([str(python), "-m", "pip", "show", "django-helpdesk"], capture_output=True,
                          text=True, check=False).stdout.split("Version: ")[-1].split()[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before each level")
    parser.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32])
    parser.add_argument("--queue-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[2000, 20000])
    parser.add_argument("--queue-reads", type=int, default=50, help="measured reads of the open queue per size")
    parser.add_argument("--queue-budget", type=float, default=30.0,
                        help="stop reading a queue (after 3 reads at least) once the reads took this many seconds")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="django-helpdesk's own virtual env")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="gunicorn workers")
    parser.add_argument("--skip-lifecycle", action="store_true")
    parser.add_argument("--skip-queue", action="store_true")
    args = parser.parse_args()
    python = ensure_helpdesk_venv(args.venv)
    version = helpdesk_version(python)
    print(f"ticketflow vs django-helpdesk {version}; {os.cpu_count()} cores; load average before: "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    for line in differences(args.workers):
        print(f"* {line}")
    names = NAMES
    with tempfile.TemporaryDirectory(prefix="peer-logs-") as logs_dir:
        logs = Path(logs_dir)

        def both(tickets: int = 0) -> list[Callable[[], Any]]:
            return [lambda: run_ticketflow(logs, tickets), lambda: run_helpdesk(python, args.workers, tickets)]

        if not args.skip_lifecycle:
            lifecycles(python, args.workers, args.clients, args.warmup, args.seconds, logs)
        if not args.skip_queue:
            print(f"\nOpen queue, first page of {PAGE}, up to {args.queue_reads} reads by one client "
                  f"(after one unmeasured read)", flush=True)
            queue_results: list[QueueResult] = []
            for size in args.queue_sizes:
                for start in both(size):
                    began = time.perf_counter()
                    with start() as running:
                        print(f"  {running.desk.name}: {size:,} open tickets seeded and served in "
                              f"{time.perf_counter() - began:.1f} s", flush=True)
                        queue_results.append(read_queue(running.desk, size, args.queue_reads, running.position,
                                                        budget=args.queue_budget))
            print(queue_table(queue_results, *names), flush=True)
    print("\nload average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)


if __name__ == "__main__":
    main()
