"""Import mappings: which source columns hold what, and how source values become ticketflow values.

A mapping is a TOML file (read with :mod:`tomllib`). The presets ``ticketflow import`` knows by
name (``bpic2013``, ``helpdesk``, ``servicenow``) are mapping files shipped in
``ticketflow/importing/presets/``; ``ticketflow import --mapping FILE SOURCE`` reads any other.

Two source shapes:

``events``
    one row per activity (the BPIC / XES shape). ``[activities]`` maps an activity (the values
    of ``columns.activity``, joined with ``/``) to the actions it takes on the ticket (see
    :data:`ACTIONS`); an activity not listed takes ``otherwise``, or, with no ``otherwise``, its
    row is rejected.
``snapshots``
    one row per update holding the ticket's whole state (ServiceNow incident history, Jira or
    Zendesk exports): a case's rows are ordered by ``columns.sequence`` then time, and each
    changed field becomes an imported fact. ``[values.status]`` must map every status; a row
    whose status it does not map is rejected.

``counters`` names the source's own counters (ServiceNow's ``reassignment_count``, ``reopen_count``,
``sys_mod_count``): each fact keeps their values at its update as ``source_counters`` (a whole
number per column; a row holding anything else there is rejected), and the ticket keeps the last.

Every problem in a mapping file is a one-line :class:`~ticketflow.errors.ValidationFailed`
naming the file and the key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping as MappingType
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ticketflow.domain.values import Channel, Priority, Status, TicketType
from ticketflow.errors import ValidationFailed

SHAPES = ("events", "snapshots")

#: The columns a mapping may name, by role.
ROLES = (
    "case", "time", "sequence", "actor", "activity", "status", "team", "assignee", "priority", "category",
    "channel", "requester", "subject",
)

#: What an activity may do to its ticket (``name`` or ``name:argument``, the argument a reason).
ACTIONS = (
    "open", "work", "queue", "pend", "hold", "resume", "solve", "close", "call", "note", "ignore", "skip",
    "assign", "unassign", "transfer", "unteam", "priority", "recategorise",
)

#: Day-first time formats tried when a mapping says ``day_first = true`` without a ``format``.
DAY_FIRST_FORMATS = (
    "%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
)

_FIELD = re.compile(r"\{([^{}|]+)(?:\|([^{}]*))?\}")
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")

_VALUE_TYPES: dict[str, type[Status | Priority | Channel]] = {
    "status": Status, "priority": Priority, "channel": Channel,
}


class TimeFormat:
    """How a source writes its times: ISO 8601 (``format = "iso"``) or ``strptime`` patterns,
    in ``zone`` when a time carries no offset (no zone: a time must carry its offset)."""

    def __init__(self, patterns: tuple[str, ...], zone: ZoneInfo | None) -> None:
        self.patterns = patterns
        self.zone = zone

    def parse(self, text: str) -> datetime:
        """The time ``text`` stands for; ValueError with the reason when it is none."""
        moment: datetime | None = None
        for pattern in self.patterns:
            try:
                moment = datetime.fromisoformat(text) if pattern == "iso" else datetime.strptime(text, pattern)
                break
            except ValueError:
                continue
        if moment is None:
            wanted = "an ISO 8601 time" if self.patterns == ("iso",) else f"a time like {' or '.join(self.patterns)}"
            raise ValueError(f"{text!r} is not {wanted}")
        if moment.tzinfo is None or moment.utcoffset() is None:
            if self.zone is None:
                raise ValueError(f"{text!r} has no UTC offset")
            moment = moment.replace(tzinfo=self.zone)
        return moment


@dataclass(frozen=True)
class Template:
    """A text built from a row: ``{column}`` is the column's value (``{case}`` the case id),
    ``{column|fallback}`` the fallback when it is empty, ``[...]`` a part left out when a field
    in it is empty."""

    text: str

    def render(self, values: MappingType[str, str], case_id: str = "") -> str:
        def field_value(match: re.Match[str]) -> str:
            name, fallback = match.group(1).strip(), match.group(2)
            value = case_id if name == "case" else values.get(name, "")
            return value or (fallback or "")

        def optional(match: re.Match[str]) -> str:
            part = match.group(1)
            names = [m.group(1).strip() for m in _FIELD.finditer(part)]
            if any(not (case_id if n == "case" else values.get(n, "")) for n in names):
                return ""
            return part

        return _FIELD.sub(field_value, _OPTIONAL.sub(optional, self.text)).strip()


@dataclass(frozen=True)
class Party:
    """Who a case's tickets come from, or which team a row is with: ``column`` (None: always
    ``unknown``), its value as a ``name`` / ``company`` template (``{value}``), ``unknown`` when empty."""

    column: str | None
    unknown: str | None
    name: str = "{value}"
    company: str = ""
    language: str = "en"

    def render(self, template: str, key: str) -> str:
        return template.replace("{value}", key)


@dataclass(frozen=True)
class ImportMapping:
    """A parsed mapping file."""

    name: str
    title: str
    shape: str
    reader: str  # "csv" or "xes"
    columns: dict[str, tuple[str, ...]]  # role -> column(s); "activity" may have several
    time: TimeFormat = field(repr=False)
    empty: frozenset[str]
    values: dict[str, dict[str, str]]  # role -> source value -> ticketflow value
    activities: dict[str, tuple[str, ...]]
    otherwise: tuple[str, ...] | None
    team: Party
    requester: Party
    subject: Template
    description: Template
    defaults: dict[str, str]
    source_fields: tuple[str, ...]
    required: tuple[str, ...]
    counters: tuple[str, ...] = ()
    path: Path | None = None

    # ------------------------------------------------------------ row access
    @cached_property
    def _first_columns(self) -> dict[str, str]:
        return {role: columns[0] for role, columns in self.columns.items() if columns}

    def column(self, role: str) -> str | None:
        return self._first_columns.get(role)

    def value(self, values: MappingType[str, str], role: str) -> str:
        """The row's value for ``role``, "" when the column is absent or holds an empty token."""
        column = self._first_columns.get(role)
        if column is None:
            return ""
        raw = values.get(column, "")
        return "" if raw in self.empty else raw

    def activity(self, values: MappingType[str, str]) -> str:
        columns = self.columns.get("activity", ())
        if len(columns) == 1:
            return values.get(columns[0], "")
        return "/".join(values.get(column, "") for column in columns)

    def last_activity(self, values: MappingType[str, str]) -> str:
        columns = self.columns.get("activity", ())
        return values.get(columns[-1], "") if columns else ""

    def mapped(self, role: str, raw: str) -> str | None:
        """The ticketflow value of a source value: through ``[values.ROLE]`` when the mapping has
        one (None: not in it), else the value itself."""
        table = self.values.get(role)
        if table is None:
            return raw
        return table.get(raw)

    def actions_of(self, values: MappingType[str, str]) -> tuple[str, ...] | None:
        return self.activities.get(self.activity(values), self.otherwise)

    def recognises(self, values: MappingType[str, str]) -> bool:
        """Whether a row is one of this mapping's own (else the file is another format's log)."""
        if self.shape == "events":
            return self.activity(values) in self.activities
        return self.mapped("status", self.value(values, "status")) is not None

    @property
    def recognised_word(self) -> str:
        return "activity" if self.shape == "events" else "status"

    def counters_of(self, values: MappingType[str, str]) -> dict[str, int]:
        """The row's counters (an empty column is left out); ValueError naming the first bad one."""
        found: dict[str, int] = {}
        for column in self.counters:
            raw = values.get(column, "").strip()
            if raw in self.empty:
                continue
            if not raw.isascii() or not raw.isdigit():
                raise ValueError(f"counter {column} {raw!r} is not a whole number")
            found[column] = int(raw)
        return found

    def reject_reason(self, values: MappingType[str, str]) -> str | None:
        """Why a row is structural garbage beyond its id and time (None: it is not)."""
        try:
            self.counters_of(values)
        except ValueError as exc:
            return str(exc)
        if self.shape == "events":
            if self.actions_of(values) is None:
                return f"unknown activity {self.activity(values)!r} (no mapping)"
            return None
        raw = self.value(values, "status")
        if self.mapped("status", raw) is None:
            return f"unknown {self.column('status')} {raw!r} (no mapping)"
        return None


def preset_names() -> list[str]:
    folder = resources.files("ticketflow.importing") / "presets"
    return sorted(entry.name.removesuffix(".toml") for entry in folder.iterdir() if entry.name.endswith(".toml"))


def load_preset(name: str) -> ImportMapping:
    """The preset called ``name``, or a one-line error listing the valid names."""
    wanted = name.strip().lower()
    names = preset_names()
    if wanted not in names:
        raise ValidationFailed(f"unknown import format {name!r}; formats are: {', '.join(names)}")
    text = (resources.files("ticketflow.importing") / "presets" / f"{wanted}.toml").read_text(encoding="utf-8")
    return parse_mapping(text, f"preset {wanted}")


def load_mapping(path: Path) -> ImportMapping:
    """The mapping file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValidationFailed(f"no such mapping file: {path}") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ValidationFailed(f"mapping file {path} cannot be read: {type(exc).__name__}") from None
    mapping = parse_mapping(text, str(path))
    return ImportMapping(**{**mapping.__dict__, "path": path})


def parse_mapping(text: str, where: str) -> ImportMapping:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationFailed(f"{where} is not valid TOML: {exc}") from None
    return _Parser(data, where).mapping()


class _Parser:
    def __init__(self, data: dict[str, Any], where: str) -> None:
        self.data = data
        self.where = where

    def fail(self, message: str) -> ValidationFailed:
        return ValidationFailed(f"{self.where}: {message}")

    def text(self, table: MappingType[str, Any], key: str, default: str | None = None, where: str = "") -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            raise self.fail(f"{where}{key} must be a string" if key in table else f"{where}{key} is required")
        return value

    def table(self, key: str) -> dict[str, Any]:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(f"[{key}] must be a table")
        return value

    def mapping(self) -> ImportMapping:
        known = {
            "name", "title", "shape", "reader", "empty", "columns", "time", "values", "activities", "otherwise",
            "team", "requester", "subject", "description", "defaults", "source_fields", "required",
            "counters",
        }
        unknown = sorted(set(self.data) - known)
        if unknown:
            raise self.fail(f"unknown key {unknown[0]!r} (keys are: {', '.join(sorted(known))})")
        name = self.text(self.data, "name")
        shape = self.text(self.data, "shape", "events")
        if shape not in SHAPES:
            raise self.fail(f"shape must be one of {', '.join(SHAPES)}, not {shape!r}")
        reader = self.text(self.data, "reader", "csv")
        if reader not in ("csv", "xes"):
            raise self.fail(f"reader must be csv or xes, not {reader!r}")
        columns = self.columns()
        for role in ("case", "time"):
            if role not in columns:
                raise self.fail(f"columns.{role} is required")
        if shape == "events" and "activity" not in columns:
            raise self.fail("columns.activity is required for event rows")
        if shape == "snapshots" and "status" not in columns:
            raise self.fail("columns.status is required for snapshot rows")
        values = self.values()
        if shape == "snapshots" and "status" not in values:
            raise self.fail("[values.status] is required for snapshot rows (source status -> ticketflow status)")
        activities, otherwise = self.activities(shape)
        empty = self.data.get("empty", [])
        if not isinstance(empty, list) or not all(isinstance(token, str) for token in empty):
            raise self.fail("empty must be a list of strings (the source's tokens for 'no value')")
        defaults = self.defaults()
        team = self.party("team", columns, default_unknown=None)
        requester = self.party("requester", columns, default_unknown="Unknown requester (imported)")
        source_fields = self.strings("source_fields")
        counters = self.strings("counters")
        required = self.strings("required")
        return ImportMapping(
            name=name, title=self.text(self.data, "title", name), shape=shape, reader=reader, columns=columns,
            time=self.time(), empty=frozenset(["", *empty]), values=values, activities=activities,
            otherwise=otherwise, team=team, requester=requester,
            subject=Template(self.text(self.data, "subject", "Imported ticket {case}")),
            description=Template(self.text(self.data, "description", "")), defaults=defaults,
            source_fields=source_fields, required=self.required_columns(columns, required, (*source_fields, *counters)),
            counters=counters,
        )

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(f"{key} must be a list of column names")
        return tuple(value)

    def columns(self) -> dict[str, tuple[str, ...]]:
        found: dict[str, tuple[str, ...]] = {}
        for role, value in self.table("columns").items():
            if role not in ROLES:
                raise self.fail(f"unknown column role columns.{role} (roles are: {', '.join(ROLES)})")
            if isinstance(value, str) and value:
                found[role] = (value,)
            elif role == "activity" and isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                found[role] = tuple(value)
            else:
                raise self.fail(f"columns.{role} must be a column name")
        return found

    def time(self) -> TimeFormat:
        table = self.table("time")
        zone: ZoneInfo | None = None
        if "zone" in table:
            try:
                zone = ZoneInfo(self.text(table, "zone", where="time."))
            except (ZoneInfoNotFoundError, ValueError):
                raise self.fail(f"time.zone {table['zone']!r} is not a known time zone (e.g. UTC, Europe/Brussels)") from None
        day_first = table.get("day_first", False)
        if not isinstance(day_first, bool):
            raise self.fail("time.day_first must be true or false")
        formats = table.get("format", DAY_FIRST_FORMATS if day_first else "iso")
        patterns = (formats,) if isinstance(formats, str) else tuple(formats) if isinstance(formats, (list, tuple)) else None
        if not patterns or not all(isinstance(p, str) and p for p in patterns):
            raise self.fail("time.format must be \"iso\" or a strptime pattern (or a list of them)")
        return TimeFormat(patterns, zone)

    def values(self) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for role, table in self.table("values").items():
            if role not in ROLES or not isinstance(table, dict):
                raise self.fail(f"[values.{role}] must be a table of a known column role")
            kind = _VALUE_TYPES.get(role)
            mapped: dict[str, str] = {}
            for source, target in table.items():
                if not isinstance(target, str):
                    raise self.fail(f"values.{role}.{source!r} must be a string")
                if kind is not None and target not in {str(member) for member in kind}:
                    allowed = ", ".join(str(member) for member in kind)
                    raise self.fail(f"values.{role}.{source!r} = {target!r} is not a {role} ({allowed})")
                mapped[source] = target
            found[role] = mapped
        return found

    def actions(self, value: Any, where: str) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items or not all(isinstance(item, str) for item in items):
            raise self.fail(f"{where} must be an action or a list of actions")
        for item in items:
            if item.split(":", 1)[0] not in ACTIONS:
                raise self.fail(f"{where}: unknown action {item!r} (actions are: {', '.join(ACTIONS)})")
        return tuple(items)

    def activities(self, shape: str) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...] | None]:
        table = self.table("activities")
        if shape == "events" and not table:
            raise self.fail("[activities] is required for event rows (activity -> actions)")
        found = {activity: self.actions(value, f"activities.{activity!r}") for activity, value in table.items()}
        otherwise = self.data.get("otherwise")
        return found, None if otherwise is None else self.actions(otherwise, "otherwise")

    def defaults(self) -> dict[str, str]:
        table = self.table("defaults")
        checks: dict[str, type[Priority | Channel | TicketType] | None] = {
            "priority": Priority, "channel": Channel, "ticket_type": TicketType, "category": None,
        }
        found = {"priority": "normal", "channel": "phone", "ticket_type": "incident", "category": "general"}
        for key, value in table.items():
            if key not in checks:
                raise self.fail(f"unknown default defaults.{key} (defaults are: {', '.join(checks)})")
            kind = checks[key]
            if not isinstance(value, str) or (kind is not None and value not in {str(m) for m in kind}):
                raise self.fail(f"defaults.{key} {value!r} is not a valid {key}")
            found[key] = value
        return found

    def party(self, key: str, columns: dict[str, tuple[str, ...]], default_unknown: str | None) -> Party:
        table = self.table(key)
        unknown = table.get("unknown", default_unknown)
        if unknown is not None and not isinstance(unknown, str):
            raise self.fail(f"{key}.unknown must be a string")
        column = columns.get(key, (None,))[0]
        if column is None and unknown is None and key == "requester":
            raise self.fail(f"{key}.unknown is required when there is no columns.{key}")
        return Party(
            column=column, unknown=unknown or None, name=self.text(table, "name", "{value}", f"{key}."),
            company=self.text(table, "company", "", f"{key}."), language=self.text(table, "language", "en", f"{key}."),
        )

    @staticmethod
    def required_columns(
        columns: dict[str, tuple[str, ...]], required: tuple[str, ...], source_fields: tuple[str, ...]
    ) -> tuple[str, ...]:
        """The columns a source must have, in the order messages name them: the case, the first
        activity column, the actor, the time, then the others."""
        order = ["case", "activity", "actor", "time", "sequence", "status", "team", "assignee", "requester",
                 "priority", "category", "channel", "subject"]
        names: list[str] = []
        for role in order:
            names.extend(columns.get(role, ())[:1])
        names.extend(required)
        names.extend(columns.get("activity", ())[1:])
        names.extend(source_fields)
        return tuple(dict.fromkeys(names))
