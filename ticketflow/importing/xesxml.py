"""Reading XES XML event logs (IEEE 1849-2016), plain (``.xes``) or gzipped (``.xes.gz``).

Each ``<event>`` becomes one row: its attributes by key (``concept:name``, ``time:timestamp``,
``org:resource``, ...), plus its trace's attributes prefixed ``case:`` the way flattened CSV
logs name them (the trace's ``concept:name`` is ``case:concept:name``). Rows are numbered by
the event's position in the file (the first event is row 1). The file is read as a stream:
memory holds one trace at a time.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError, iterparse

from ticketflow.errors import ValidationFailed

#: Element names of XES attributes (their ``key`` and ``value`` make a row's column and value).
_ATTRIBUTES = {"string", "date", "int", "float", "boolean", "id"}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attributes(element: Element, prefix: str = "") -> dict[str, str]:
    values: dict[str, str] = {}
    for child in element:
        if _local(child.tag) in _ATTRIBUTES and "key" in child.attrib:
            values[prefix + child.attrib["key"].strip()] = child.attrib.get("value", "").strip()
    return values


def read_xes(path: Path, what: str) -> Iterator[tuple[int, dict[str, str]]]:
    """The events of the log at ``path`` as (row number, values); ValidationFailed in one line
    when the file is not a well-formed XES log."""
    opener = gzip.open if path.name.endswith(".gz") else open
    row = 0
    try:
        with opener(path, "rb") as handle:
            trace: dict[str, str] | None = None
            pending: list[dict[str, str]] = []
            root_seen = False
            for event, element in iterparse(handle, events=("start", "end")):
                name = _local(element.tag)
                if event == "start":
                    if not root_seen:
                        root_seen = True
                        if name != "log":
                            raise ValidationFailed(f"{path.name} is not a {what} XES log: its root element is <{name}>, not <log>")
                    continue
                if name == "event":
                    pending.append(_attributes(element))
                    element.clear()
                elif name == "trace":
                    trace = _attributes(element, "case:")
                    for values in pending:
                        row += 1
                        yield row, {**trace, **values}
                    pending.clear()
                    element.clear()
    except ParseError as exc:
        raise ValidationFailed(f"{path.name} is not well-formed XML ({exc})") from None
    except (gzip.BadGzipFile, zlib.error, EOFError) as exc:
        raise ValidationFailed(f"{path.name} is not a readable gzip file ({exc})") from None
