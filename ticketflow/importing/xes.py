"""Reading XES-style CSV event logs: one row per event, grouped into cases.

Process-mining logs flattened from XES name their columns after the XES
attributes: ``case:concept:name`` is the case (a ticket), ``concept:name`` the
activity, ``org:resource`` the person and ``time:timestamp`` the time, written
with its UTC offset. A case's rows are sorted by that time; rows with the same
time keep their order in the file.

Everything is checked before anything is imported: a file that is not a regular
file (``/dev/zero``, a pipe), is binary or not UTF-8, cannot be read, lacks a column,
is a log of another format (none of its first rows is an activity the format knows),
or holds a time without an offset is refused as a whole with a one-line
:class:`~ticketflow.errors.ValidationFailed`.
"""

from __future__ import annotations

import csv
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ticketflow.errors import ValidationFailed

CASE = "case:concept:name"
ACTIVITY = "concept:name"
RESOURCE = "org:resource"
TIMESTAMP = "time:timestamp"
TRANSITION = "lifecycle:transition"

#: Columns every XES-style log has.
CORE_COLUMNS = (CASE, ACTIVITY, RESOURCE, TIMESTAMP)

#: How many first rows must show at least one activity the format knows (else: another format's log).
RECOGNISED_WITHIN = 50

#: How much of the file is looked at first for binary content.
HEAD_BYTES = 64 * 1024

#: ``known(values)``: whether a row's activity is one the format maps (a row of its own kind of log).
Recognises = Callable[[Mapping[str, str]], bool]


@dataclass(frozen=True)
class Row:
    """One event of a case."""

    index: int  # position in its case once sorted by time (0 opens the case)
    line: int  # line in the file, for messages
    at: datetime  # timezone-aware, with the offset written in the log
    values: Mapping[str, str]

    def __getitem__(self, column: str) -> str:
        return self.values.get(column, "")


@dataclass(frozen=True)
class Case:
    case_id: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class Log:
    path: Path
    cases: tuple[Case, ...]  # in order of first appearance in the file

    @property
    def rows(self) -> int:
        return sum(len(case.rows) for case in self.cases)


def read_log(
    path: Path, columns: Iterable[str], *, what: str, limit_cases: int | None = None, known: Recognises | None = None
) -> Log:
    """Read the cases of a log, keeping the first ``limit_cases`` cases (all when None).

    ``columns`` are the columns the format needs; ``what`` names the format in messages; ``known``
    recognises the format's own rows (a file none of whose first rows it knows is another format's).
    """
    if limit_cases is not None and limit_cases < 1:
        raise ValidationFailed(f"--limit-cases must be at least 1, not {limit_cases}")
    _check_file(path, what)
    seen: list[str] = []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames
            if not header:
                raise ValidationFailed(f"{path} is empty: expected a {what} log with a header line")
            _check_columns(path, header, columns, what)
            grouped: dict[str, list[tuple[int, datetime, dict[str, str]]]] = {}
            for record in reader:
                line = reader.line_num
                values = {k.strip(): (v or "").strip() for k, v in record.items() if isinstance(k, str)}
                if known is not None and len(seen) < RECOGNISED_WITHIN:
                    seen.append("" if known(values) else values.get(ACTIVITY, ""))
                    if len(seen) == RECOGNISED_WITHIN:
                        _check_recognised(path, seen, what)
                case_id = values.get(CASE, "")
                if not case_id:
                    raise ValidationFailed(f"{path}:{line}: the row has no {CASE}")
                rows = grouped.get(case_id)
                if rows is None:
                    if limit_cases is not None and len(grouped) >= limit_cases:
                        continue
                    rows = grouped[case_id] = []
                rows.append((line, _timestamp(path, line, values.get(TIMESTAMP, "")), values))
    except FileNotFoundError:
        raise ValidationFailed(f"no such file: {path}") from None
    except IsADirectoryError:
        raise ValidationFailed(f"{path} is a directory, not a {what} log") from None
    except PermissionError:
        raise ValidationFailed(f"{path} cannot be read: permission denied") from None
    except UnicodeDecodeError as exc:
        raise ValidationFailed(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise ValidationFailed(f"{path} is not a readable CSV file: {exc}") from None
    if known is not None and len(seen) < RECOGNISED_WITHIN:
        _check_recognised(path, seen, what)
    cases = []
    for case_id, rows in grouped.items():
        ordered = sorted(rows, key=lambda r: r[1])  # stable: equal times keep file order
        rows_in_order = tuple(Row(i, line, at, values) for i, (line, at, values) in enumerate(ordered))
        cases.append(Case(case_id, rows_in_order))
    return Log(path, tuple(cases))


def _check_file(path: Path, what: str) -> None:
    """Refuse at once what cannot be a CSV log: a device or pipe (``/dev/zero`` never ends), binary content."""
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise ValidationFailed(f"{path} is a directory, not a {what} log")
        if not stat.S_ISREG(mode):
            raise ValidationFailed(f"{path} is not a regular file (a device, pipe or socket): expected a {what} CSV log")
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
    except FileNotFoundError:
        raise ValidationFailed(f"no such file: {path}") from None
    except PermissionError:
        raise ValidationFailed(f"{path} cannot be read: permission denied") from None
    if b"\x00" in head:
        raise ValidationFailed(f"{path} is a binary file (it holds NUL bytes), not a {what} CSV log")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the end of the sample
            raise ValidationFailed(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _check_recognised(path: Path, seen: list[str], what: str) -> None:
    if any(activity == "" for activity in seen):
        return
    found = ", ".join(repr(a) for a in list(dict.fromkeys(seen))[:4])
    raise ValidationFailed(
        f"{path.name} is not a {what} log: none of its first {len(seen)} rows has a {what} activity (found {found})"
    )


def _check_columns(path: Path, header: Iterable[str], columns: Iterable[str], what: str) -> None:
    present = {name.strip() for name in header if name}
    missing = [name for name in dict.fromkeys([*CORE_COLUMNS, *columns]) if name not in present]
    if missing:
        raise ValidationFailed(
            f"{path.name} is not a {what} log: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}"
        )


def _timestamp(path: Path, line: int, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(f"{path}:{line}: {TIMESTAMP} {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationFailed(f"{path}:{line}: {TIMESTAMP} {text!r} has no UTC offset")
    return moment
