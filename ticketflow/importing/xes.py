"""Reading source logs into cases, as an import mapping says (:mod:`ticketflow.importing.mapping`).

Process-mining logs flattened from XES name their columns after the XES attributes:
``case:concept:name`` is the case (a ticket), ``concept:name`` the activity, ``org:resource``
the person and ``time:timestamp`` the time; other sources name theirs in their mapping. A
case's rows are sorted by the mapping's sequence column (snapshots), then time; rows with the
same keys keep their order in the file.

Everything is checked before anything is imported. A file that is not a regular file
(``/dev/zero``, a pipe), is binary or not UTF-8, cannot be read, lacks a column, or is a log
of another format (none of its first rows is an activity or status the mapping knows) is
refused as a whole with a one-line :class:`~ticketflow.errors.ValidationFailed`. A row that is
structural garbage (no case id, a time that does not parse or has no offset and no zone, an
activity or status with no mapping) is a :class:`Reject`, and its whole case is left out.
"""

from __future__ import annotations

import csv
import gzip
import stat
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ticketflow.errors import ValidationFailed

if TYPE_CHECKING:
    from ticketflow.importing.mapping import ImportMapping

CASE = "case:concept:name"
ACTIVITY = "concept:name"
RESOURCE = "org:resource"
TIMESTAMP = "time:timestamp"
TRANSITION = "lifecycle:transition"

#: Columns every XES-style log has.
CORE_COLUMNS = (CASE, ACTIVITY, RESOURCE, TIMESTAMP)

#: How many first rows must show at least one activity the format knows (else: another format's log).
RECOGNISED_WITHIN = 50

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # the time of a row rejected for its time (never imported)

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
    left_out: int = 0  # cases not imported because a row of theirs was rejected

    @property
    def rows(self) -> int:
        return sum(len(case.rows) for case in self.cases)


@dataclass(frozen=True)
class Reject:
    """A row that cannot be imported (structural garbage): its line in the file and why."""

    line: int
    reason: str
    case_id: str = ""


def read_log(
    path: Path, mapping: ImportMapping, *, limit_cases: int | None = None
) -> tuple[Log, list[Reject]]:
    """Read the cases of a log as ``mapping`` says, keeping the first ``limit_cases`` cases (all when None).

    Rows without a case id or a time, or with an activity or status the mapping does not map, are
    rejected (with their line and reason), and so is every other row of their case: a case is
    imported whole or not at all. A file that is not one of the mapping's logs is refused at once.
    """
    if limit_cases is not None and limit_cases < 1:
        raise ValidationFailed(f"--limit-cases must be at least 1, not {limit_cases}")
    what = mapping.name
    _check_file(path, what, "XES" if mapping.reader == "xes" else "CSV")
    if mapping.reader == "xes":
        from ticketflow.importing.xesxml import read_xes

        records: Iterable[tuple[int, dict[str, str]]] = read_xes(path, what)
        return _group(path, mapping, records, limit_cases, None)
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if not header:
                raise ValidationFailed(f"{path} is empty: expected a {what} log with a header line")
            _check_columns(path, header, mapping.required, what)
            return _group(path, mapping, _records(reader, header), limit_cases, header)
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


def _records(reader: Any, header: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Each non-blank row as (its line, {column: value}), names and values stripped: a short row's
    missing columns are "", a long row's extra fields are dropped (``csv.DictReader`` semantics)."""
    columns = [name.strip() for name in header]
    padding = [""] * len(columns)
    strip = str.strip
    for record in reader:
        if not record:
            continue
        if len(record) < len(columns):
            record += padding[len(record):]
        yield reader.line_num, dict(zip(columns, map(strip, record)))


def _group(
    path: Path,
    mapping: ImportMapping,
    records: Iterable[tuple[int, dict[str, str]]],
    limit_cases: int | None,
    header: Sequence[str] | None,
) -> tuple[Log, list[Reject]]:
    what = mapping.name
    case_column, time_column = mapping.column("case") or CASE, mapping.column("time") or TIMESTAMP
    sequence_column = mapping.column("sequence")
    first_activity = (mapping.columns.get("activity") or mapping.columns.get("status") or ("",))[0]
    seen: list[str] = []
    rejects: list[Reject] = []
    grouped: dict[str, list[tuple[int, int, datetime, dict[str, str]]]] = {}
    for line, values in records:
        if len(seen) < RECOGNISED_WITHIN:
            seen.append("" if mapping.recognises(values) else values.get(first_activity, ""))
            if len(seen) == RECOGNISED_WITHIN:
                _check_recognised(path, seen, what, mapping.recognised_word)
        case_id = mapping.value(values, "case")
        if not case_id:
            rejects.append(Reject(line, f"the row has no {case_column}"))
            continue
        rows = grouped.get(case_id)
        if rows is None:
            if limit_cases is not None and len(grouped) >= limit_cases:
                continue
            rows = grouped[case_id] = []
        reason = mapping.reject_reason(values)
        text = values.get(time_column, "")
        try:
            at = mapping.time.parse(text)
        except ValueError as exc:
            reason = reason or f"{time_column} {exc}"
            at = _EPOCH
        sequence = 0
        if sequence_column is not None:
            raw = mapping.value(values, "sequence")
            if raw.isdigit():
                sequence = int(raw)
            else:
                reason = reason or f"{sequence_column} {raw!r} is not a whole number"
        if reason is not None:
            rejects.append(Reject(line, reason, case_id))
        rows.append((line, sequence, at, values))
    if len(seen) < RECOGNISED_WITHIN:
        _check_recognised(path, seen, what, mapping.recognised_word)
    ordered_cases: dict[str, list[tuple[int, int, datetime, dict[str, str]]]] = {}
    for case_id, rows in grouped.items():
        # stable: equal keys keep file order; snapshots by their sequence first
        ordered = ordered_cases[case_id] = sorted(rows, key=lambda r: (r[1], r[2]))
        for before, after in pairwise(ordered):
            if after[2] < before[2] and after[2] is not _EPOCH and before[2] is not _EPOCH:
                rejects.append(
                    Reject(after[0], f"{time_column} goes back in time ({sequence_column} after row {before[0]})", case_id)
                )
                break
    rejected = {reject.case_id for reject in rejects if reject.case_id}
    cases = []
    for case_id, ordered in ordered_cases.items():
        if case_id in rejected:
            continue
        rows_in_order = tuple(Row(i, line, at, values) for i, (line, _, at, values) in enumerate(ordered))
        cases.append(Case(case_id, rows_in_order))
    return Log(path, tuple(cases), left_out=len(rejected)), rejects


def _check_file(path: Path, what: str, kind: str = "CSV") -> None:
    """Refuse at once what cannot be a CSV log: a device or pipe (``/dev/zero`` never ends), binary content."""
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise ValidationFailed(f"{path} is a directory, not a {what} log")
        if not stat.S_ISREG(mode):
            raise ValidationFailed(f"{path} is not a regular file (a device, pipe or socket): expected a {what} {kind} log")
        with path.open("rb") as handle:
            head = handle.read(HEAD_BYTES)
        if kind == "XES" and path.name.endswith(".gz"):
            head = _gunzipped_head(path, what)
    except FileNotFoundError:
        raise ValidationFailed(f"no such file: {path}") from None
    except PermissionError:
        raise ValidationFailed(f"{path} cannot be read: permission denied") from None
    if b"\x00" in head:
        raise ValidationFailed(f"{path} is a binary file (it holds NUL bytes), not a {what} {kind} log")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut at the end of the sample
            raise ValidationFailed(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _gunzipped_head(path: Path, what: str) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read(HEAD_BYTES)
    except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
        raise ValidationFailed(f"{path} is not a gzipped {what} XES log ({exc})") from None


def _check_recognised(path: Path, seen: list[str], what: str, word: str = "activity") -> None:
    if any(activity == "" for activity in seen):
        return
    found = ", ".join(repr(a) for a in list(dict.fromkeys(seen))[:4])
    raise ValidationFailed(
        f"{path.name} is not a {what} log: none of its first {len(seen)} rows has a {what} {word} (found {found})"
    )


def _check_columns(path: Path, header: Iterable[str], columns: Iterable[str], what: str) -> None:
    present = {name.strip() for name in header if name}
    missing = [name for name in dict.fromkeys(columns) if name not in present]
    if missing:
        raise ValidationFailed(
            f"{path.name} is not a {what} log: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}"
        )
