"""Settings, read once from the environment (prefix ``TICKETFLOW_``).

| variable | default | meaning |
|---|---|---|
| ``TICKETFLOW_DATA_DIR`` | ``./ticketflow-data`` | where the embedded SQLite store lives |
| ``TICKETFLOW_DATABASE_URL`` | unset | ``postgresql://user:pw@host:5432/db?schema=s`` for PostgreSQL, ``memory://`` for an in-process store; unset means SQLite in the data dir |
| ``TICKETFLOW_SNAPSHOT_INTERVAL`` | ``50`` | snapshot an aggregate every N events |
| ``TICKETFLOW_LOCK_TIMEOUT`` | ``10`` | seconds a writer waits for the store's lock |
| ``TICKETFLOW_GROUP_COMMIT_WAIT_MS`` | ``25`` | SQLite: longest a commit waits for the commands in flight in its process to join it (0: never waits; a command alone never waits) |
| ``TICKETFLOW_COMMANDS_ON_LOOP`` | SQLite: on, PostgreSQL: off | the API runs ticket commands on its event loop, their saves committed by one writer thread (off: on 16 command threads) |
| ``TICKETFLOW_CONNECT_TIMEOUT`` | ``5`` | seconds to wait for PostgreSQL to answer |
| ``TICKETFLOW_POOL_SIZE`` | ``5`` | PostgreSQL connections per process |
| ``TICKETFLOW_AGGREGATE_CACHE_SIZE`` | ``1000`` | recently used tickets/customers/teams kept in memory (0 turns it off) |
| ``TICKETFLOW_EMBEDDED_PROJECTIONS`` | SQLite: on, PostgreSQL: off | run the view workers inside ``serve`` |
| ``TICKETFLOW_VIEWS_PROCESS`` | on | SQLite: ``serve`` runs its view workers (and the automation and sealer) in a child process, on another core than the API; off: in threads of the API process |
| ``TICKETFLOW_RATE_LIMIT_PER_SECOND`` / ``_BURST`` | ``50`` / ``200`` | requests per token (per API process) |
| ``TICKETFLOW_MAX_BODY_BYTES`` | ``1048576`` | largest request body accepted |
| ``TICKETFLOW_READ_WAIT_SECONDS`` | ``5`` | longest a read waits for ``min_position`` |
| ``TICKETFLOW_SECRET_KEY`` | a key file in the data dir | signs survey links and webhook deliveries (set the same value on every process) |
| ``TICKETFLOW_ENCRYPT_PERSONAL_DATA`` | on | seal each customer's personal fields under their own key (erasure destroys it) |
| ``TICKETFLOW_RETENTION_DAYS`` | ``0`` (off) | erase customers inactive this long (no open ticket, nothing new), logged in the erasure report |
| ``TICKETFLOW_SEAL`` | on | run the sealer (hash chains, log tree, signed checkpoints) inside ``serve`` (embedded) / ``project`` |
| ``TICKETFLOW_ANCHOR_FILE`` | unset | also append every checkpoint to this file (archive it elsewhere) |
| ``TICKETFLOW_ERASURE_LEDGER`` | unset | also append every completed erasure (ids and case reference, no personal data) to this file (keep it apart from the backups): ``ticketflow restore`` re-applies them |
| ``TICKETFLOW_SURVEY_DAYS`` | ``14`` | how long a satisfaction survey can be answered |
| ``TICKETFLOW_AUTOMATION`` | on | run the router, SLA clock, scheduler and outbox inside ``serve`` / ``project`` |
| ``TICKETFLOW_FOLLOW_UP_DAYS`` | ``3`` | schedule a follow-up (回访) N days after a ticket is solved (0: never) |
| ``TICKETFLOW_AUTO_CLOSE_DAYS`` | ``7`` | close a solved ticket after N days without a customer reply (0: never) |
| ``TICKETFLOW_HTTP_PARSER`` | ``auto`` | ``serve``'s HTTP parser: ``httptools`` (C; ``auto``) or ``h11`` (pure Python) |
| ``TICKETFLOW_TIME_ZONE`` | ``UTC`` | the desk's time zone (IANA name, e.g. ``Asia/Shanghai``): the console and ``history`` show times in it, reports count days and months in it; stored times stay UTC |
| ``TICKETFLOW_AS_OF_BASIS`` | ``recorded`` | what ``as_of`` means when a read does not say (``as_of_basis``): ``recorded`` (what the desk had stored by then) or ``business`` (what had happened by then: a desk whose history was imported) |
| ``TICKETFLOW_ASSIGN_OPENS_NEW`` | on | assigning a new ticket (by hand, by transfer to a person or by the router) opens it, as Zendesk does; off: it stays ``new`` until someone marks it open, as ServiceNow does |
| ``TICKETFLOW_SESSION_HOURS`` / ``_IDLE_MINUTES`` | ``12`` / ``120`` | a console session ends this long after sign-in / after its last request |
| ``TICKETFLOW_SIGN_IN_BURST`` / ``_PER_MINUTE`` | ``5`` / ``2`` | failed console sign-ins per name and per address before 429 |
| ``TICKETFLOW_SECURE_COOKIES`` | off | mark console cookies ``Secure`` (turn on behind HTTPS) |
| ``TICKETFLOW_WEBHOOK_ALLOWED_TARGETS`` | unset | webhook hosts/addresses/networks allowed although not public (comma-separated, e.g. ``crm.internal,10.2.0.0/16``); every other loopback, private, link-local or reserved target is refused |
"""

from __future__ import annotations

import difflib
import os
import secrets
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ticketflow.errors import ValidationFailed

SQLITE_FILENAME = "ticketflow.sqlite"
#: The eventsourcing factory of a SQLite store and its views: the library's, with connections that keep
#: their compiled statements (see ticketflow/sqlite_store.py). A topic, not an import: loaded with the store.
SQLITE_FACTORY_TOPIC = "ticketflow.sqlite_store:SQLiteFactory"
ENV_PREFIX = "TICKETFLOW_"
#: Variables with this prefix belong to the test suite (``TICKETFLOW_TEST_POSTGRES_URL``), not the desk.
TEST_ENV_PREFIX = "TICKETFLOW_TEST_"
#: Settings whose values are never repeated in an error message (a password may be in the URL).
_SECRET_SETTINGS = frozenset({"secret_key", "database_url"})
_PROCESS_KEY = secrets.token_hex(32).encode()  # in-memory desks: a key for this process only


class StorageKind(StrEnum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"
    MEMORY = "memory"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TICKETFLOW_", frozen=True, extra="ignore")

    data_dir: Path = Path("./ticketflow-data")
    database_url: str | None = None
    snapshot_interval: int = Field(default=50, ge=2)
    lock_timeout: int = Field(default=10, ge=1)
    group_commit_wait_ms: float = Field(default=25.0, ge=0, le=1000)
    commands_on_loop: bool | None = None  # default: on for SQLite and memory, off for PostgreSQL
    connect_timeout: int = Field(default=5, ge=1)
    pool_size: int = Field(default=5, ge=1)
    aggregate_cache_size: int = Field(default=1000, ge=0)
    embedded_projections: bool | None = None  # default: on for SQLite and memory, off for PostgreSQL
    views_process: bool = True  # SQLite serve: the embedded view workers in a child process
    rate_limit_per_second: float = Field(default=50.0, gt=0)
    rate_limit_burst: int = Field(default=200, ge=1)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    #: A keyed request still "running" after this long is taken to have died: a retry takes over.
    idempotency_stale_seconds: float = Field(default=60.0, gt=0)
    #: Failed authentications per client address: a burst, then this many per second (then 429).
    auth_failure_burst: int = Field(default=20, ge=1)
    auth_failures_per_second: float = Field(default=0.2, gt=0)
    #: /metrics without a token (for a scraper on a private address); else it needs metrics:read.
    metrics_public: bool = False
    read_wait_seconds: float = Field(default=5.0, ge=0)
    secret_key: SecretStr | None = None
    encrypt_personal_data: bool = True
    retention_days: int = Field(default=0, ge=0)
    seal: bool = True
    #: Upgrading a store written before events carried a writer MAC, whose sealer had not sealed
    #: them all: the last log position that may lack one (0: every row must carry a valid MAC).
    unmaced_events_until: int = Field(default=0, ge=0)
    anchor_file: Path | None = None
    #: Append every completed erasure (customer id, basis, reference, time: no personal data) to this
    #: file, kept apart from the store and its backups: ``ticketflow restore`` re-applies them.
    erasure_ledger: Path | None = None
    survey_days: int = Field(default=14, ge=1)
    automation: bool = True
    follow_up_days: int = Field(default=3, ge=0)
    auto_close_days: int = Field(default=7, ge=0)
    http_parser: Literal["auto", "h11", "httptools"] = "auto"
    time_zone: str = "UTC"
    #: What "as of T" goes by when a read does not say: when the desk recorded each event, or when it happened.
    as_of_basis: Literal["recorded", "business"] = "recorded"
    #: Assigning a new ticket opens it (Zendesk's way); off: it stays new until marked open (ServiceNow's).
    assign_opens_new: bool = True
    #: What-if: 2 replays the recorded and the candidate scenarios in two processes at once, 1 in one.
    whatif_processes: int = Field(default=2, ge=1, le=2)
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    session_idle_minutes: float = Field(default=120.0, gt=0)
    sign_in_burst: int = Field(default=5, ge=1)
    sign_in_per_minute: float = Field(default=2.0, gt=0)
    secure_cookies: bool = False
    #: Outbound email (agents' public replies on email tickets): the SMTP server the outbox sends through.
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    #: The From of replies on tickets whose team has no mailbox (a team's mailbox address wins).
    mail_from: str | None = None
    #: Seconds between two fetches of each IMAP mailbox by the automation process (0: never fetch).
    imap_poll_seconds: float = Field(default=60.0, ge=0)
    #: The largest attachment of a received mail kept (bytes); a larger one is listed as not kept.
    mail_attachment_max_bytes: int = Field(default=25 * 1024 * 1024, ge=0)
    #: Webhook targets allowed although their address is not public (comma-separated hosts, addresses or
    #: networks, e.g. ``crm.internal,10.2.0.0/16``): every other loopback, private, link-local or reserved
    #: address is refused, at subscription and again at each delivery.
    webhook_allowed_targets: str = ""

    @field_validator("webhook_allowed_targets")
    @classmethod
    def _known_targets(cls, value: str) -> str:
        from ticketflow.webhook_targets import parse_allowed

        parse_allowed(value)
        return value

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Asia/Shanghai or UTC") from None
        return value

    def secret_key_bytes(self) -> bytes:
        """The desk's signing key: the setting, else a key file kept in the data dir (made once)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        if self.storage is StorageKind.MEMORY:
            return _PROCESS_KEY
        path = self.data_dir / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            draft = path.with_name(f".secret.key.{os.getpid()}.{secrets.token_hex(4)}")
            draft.write_text(secrets.token_hex(32), encoding="ascii")
            draft.chmod(0o600)
            try:
                os.link(draft, path)  # atomic: another process sees no file or the whole key
            except FileExistsError:
                pass  # another process made it first: use theirs
            finally:
                draft.unlink()
        key = path.read_text(encoding="ascii").strip().encode()
        if len(key) < 32:
            raise ValueError(f"the secret key in {path} is too short; delete it or set TICKETFLOW_SECRET_KEY")
        return key

    @property
    def runs_embedded_projections(self) -> bool:
        if self.embedded_projections is not None:
            return self.embedded_projections
        return self.storage is not StorageKind.POSTGRES

    @property
    def runs_commands_on_loop(self) -> bool:
        """Whether the API runs its ticket commands on its event loop (``ticketflow/loop_commands.py``):
        as set, else on SQLite and memory stores, whose reads take microseconds, and not on PostgreSQL,
        where a read is a round trip to the server that would hold the loop up."""
        if self.commands_on_loop is not None:
            return self.commands_on_loop
        return self.storage is not StorageKind.POSTGRES

    @property
    def runs_view_process(self) -> bool:
        """Whether ``serve`` runs its view workers in a child process: embedded, on SQLite (a memory store
        is private to its process), unless turned off."""
        return self.views_process and self.runs_embedded_projections and self.storage is StorageKind.SQLITE

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        scheme = urlsplit(value).scheme
        if scheme not in ("postgresql", "postgres", "sqlite", "memory"):
            raise ValueError(
                f"unsupported database URL scheme {scheme!r}: use postgresql://, sqlite:/// or memory://"
            )
        return value

    @property
    def storage(self) -> StorageKind:
        if self.database_url is None:
            return StorageKind.SQLITE
        scheme = urlsplit(self.database_url).scheme
        if scheme == "memory":
            return StorageKind.MEMORY
        if scheme == "sqlite":
            return StorageKind.SQLITE
        return StorageKind.POSTGRES

    @property
    def sqlite_path(self) -> Path:
        if self.database_url and self.storage is StorageKind.SQLITE:
            return Path(urlsplit(self.database_url).path)
        return self.data_dir / SQLITE_FILENAME

    @property
    def views_dir(self) -> Path:
        """Where SQLite keeps the views: one file per view beside the event store."""
        path = self.sqlite_path
        return path.parent / f"{path.stem}-views"

    def eventsourcing_env(self) -> dict[str, str]:
        """The eventsourcing environment for this store (the only place it is built)."""
        if self.storage is StorageKind.MEMORY:
            return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
        if self.storage is StorageKind.SQLITE:
            return {
                # eventsourcing's SQLite factory, its connections keeping their compiled statements.
                "PERSISTENCE_MODULE": SQLITE_FACTORY_TOPIC,
                "SQLITE_DBNAME": str(self.sqlite_path),
                "SQLITE_LOCK_TIMEOUT": str(self.lock_timeout),
                # Concurrent saves commit together, one fsync per group (ticketflow/group_commit.py).
                "APPLICATION_RECORDER_TOPIC": "ticketflow.group_commit:GroupCommitRecorder",
            }
        assert self.database_url is not None
        url = urlsplit(self.database_url)
        query = parse_qs(url.query)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": unquote(url.path.lstrip("/")) or "postgres",
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            "POSTGRES_CONNECT_TIMEOUT": str(self.connect_timeout),
            "POSTGRES_LOCK_TIMEOUT": str(self.lock_timeout),
            "POSTGRES_POOL_SIZE": str(self.pool_size),
            # Its DDL waits for any other process's (ticketflow/pg_ddl.py): processes start together;
            # concurrent saves commit together, one COMMIT per group (ticketflow/pg_group_commit.py).
            "APPLICATION_RECORDER_TOPIC": "ticketflow.pg_ddl:DeskRecorder",
        }
        if "schema" in query:
            env["POSTGRES_SCHEMA"] = query["schema"][0]
        return env

    def describe_store(self) -> str:
        """Where the data lives, for people (never shows a password)."""
        if self.storage is StorageKind.MEMORY:
            return "in memory (lost when the process ends)"
        if self.storage is StorageKind.SQLITE:
            return f"SQLite file {self.sqlite_path.resolve()}"
        env = self.eventsourcing_env()
        schema = env.get("POSTGRES_SCHEMA", "public")
        return (
            f"PostgreSQL database {env['POSTGRES_DBNAME']} on {env['POSTGRES_HOST']}:"
            f"{env['POSTGRES_PORT']} (schema {schema})"
        )


class InvalidSetting(ValidationFailed):
    """A ``TICKETFLOW_*`` environment variable holds a value the desk cannot use."""


def variable_name(field: str) -> str:
    """The environment variable of a setting: ``time_zone`` -> ``TICKETFLOW_TIME_ZONE``."""
    return ENV_PREFIX + field.upper()


def load_settings() -> Settings:
    """The settings, read once from the environment; a bad value is an :class:`InvalidSetting` naming
    its variable (``TICKETFLOW_SNAPSHOT_INTERVAL``, not the field ``snapshot_interval``)."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            value = "" if field in _SECRET_SETTINGS else f"={error['input']!r}"
            problems.append(f"{variable_name(field)}{value}: {message}" if field else message)
        raise InvalidSetting("; ".join(problems)) from None


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each ``TICKETFLOW_*`` variable that is no setting (a typo is otherwise silently
    ignored), naming the closest setting when one is near."""
    environ = os.environ if environ is None else environ
    known = {variable_name(field) for field in Settings.model_fields}
    warnings = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known or upper.startswith(TEST_ENV_PREFIX):
            continue
        near = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.8)
        hint = f" (did you mean {near[0]}?)" if near else ""
        warnings.append(f"{name} is not a ticketflow setting{hint}; it is ignored")
    return warnings


def postgres_refusal(settings: Settings) -> str | None:
    """Why PostgreSQL will not give this desk a connection, in the server's own words (``database
    "desk" does not exist``, ``password authentication failed``...): the connection pool only says it
    timed out. Asked with one direct connection; None when that one succeeds."""
    import psycopg

    env = settings.eventsourcing_env()
    try:
        with psycopg.connect(
            dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
            user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"] or None,
            connect_timeout=min(settings.connect_timeout, 3),
        ):
            return None
    except psycopg.Error as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        if not lines:
            return type(exc).__name__
        reason = lines[0].split("FATAL:", 1)[-1]  # the server's words, after libpq's "connection ... failed:"
        return " ".join(reason.split())
