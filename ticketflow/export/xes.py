"""The ticket event log as an IEEE 1849-2016 XES event log, for process-mining tools.

One ``<trace>`` per ticket (``concept:name`` = the ticket id), one ``<event>`` per
stored ticket event in version order:

``concept:name``
    the event type, e.g. ``Ticket.Assigned`` (the activity);
``org:resource`` / ``org:role``
    the actor's id and role;
``time:timestamp``
    business time (``occurred_at``); the time the desk recorded the event is kept
    as ``ticketflow:recorded_at``;
``lifecycle:transition``
    always ``complete`` (each event is a completed step);

plus a few non-personal attributes where the event has them (channel, via, team,
priority, category, type, status left, assignee, SLA metric). Fields an event
class declares in ``personal_fields`` are never written, and neither is any field
not on the allow-list below, so free text cannot leak into the file.

Traces are grouped per ticket although the log interleaves tickets: the exporter
pages through the log's ``Ticket.Opened`` notifications (a topic-filtered read)
and reads each ticket's history in turn, writing as it goes, so memory holds one
page of openings and one ticket's history at a time, whatever the size of the log.
Tickets opened after the export started are left out; events appended to an
exported ticket while the export runs may be included.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import IO, Any
from uuid import UUID

from eventsourcing.utils import get_topic
from xml.sax.saxutils import quoteattr

from ticketflow.application import TicketDesk
from ticketflow.domain import Ticket, TicketflowAggregate
from ticketflow.errors import ValidationFailed

XES_NAMESPACE = "http://www.xes-standard.org/"
EXTENSIONS = (
    ("Concept", "concept", "http://www.xes-standard.org/concept.xesext"),
    ("Time", "time", "http://www.xes-standard.org/time.xesext"),
    ("Organizational", "org", "http://www.xes-standard.org/org.xesext"),
    ("Lifecycle", "lifecycle", "http://www.xes-standard.org/lifecycle.xesext"),
)

#: Event fields written as ``ticketflow:<name>`` attributes (when present and not declared personal).
#: An allow-list: a new field stays out of the export until someone decides it is safe.
EVENT_ATTRIBUTES: dict[str, str] = {
    "channel": "ticketflow:channel",
    "team_id": "ticketflow:team",
    "to_team_id": "ticketflow:team",
    "from_team_id": "ticketflow:previous_team",
    "priority": "ticketflow:priority",
    "category": "ticketflow:category",
    "ticket_type": "ticketflow:type",
    "from_status": "ticketflow:from_status",
    "assignee_id": "ticketflow:assignee",
    "direction": "ticketflow:direction",
    "metric": "ticketflow:sla_metric",
}
#: Trace attributes taken from the ticket's ``Opened`` event.
TRACE_ATTRIBUTES: dict[str, str] = {
    "channel": "ticketflow:channel",
    "ticket_type": "ticketflow:type",
    "category": "ticketflow:category",
    "priority": "ticketflow:priority",
}

OPENED_TOPIC = get_topic(Ticket.Opened)
#: Openings read per page of the log.
PAGE = 500

#: Characters XML 1.0 cannot carry at all (an actor id from an imported log might hold one).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass
class XesSummary:
    traces: int = 0
    events: int = 0
    log_position: int = 0  # the end of the log when the export started


def _text(value: Any) -> str:
    if isinstance(value, Enum):
        value = value.value
    return quoteattr(_NOT_XML.sub("\ufffd", str(value)))


def _date(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return quoteattr(value.astimezone(UTC).isoformat(timespec="milliseconds"))


def _header(title: str) -> str:
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<log xes.version="1849-2016" xmlns="{XES_NAMESPACE}">',
    ]
    lines += [f'  <extension name="{n}" prefix="{p}" uri="{u}"/>' for n, p, u in EXTENSIONS]
    lines += [
        '  <global scope="trace">',
        '    <string key="concept:name" value="__INVALID__"/>',
        "  </global>",
        '  <global scope="event">',
        '    <string key="concept:name" value="__INVALID__"/>',
        '    <date key="time:timestamp" value="1970-01-01T00:00:00.000+00:00"/>',
        '    <string key="lifecycle:transition" value="complete"/>',
        '    <string key="org:resource" value="__INVALID__"/>',
        "  </global>",
        '  <classifier name="Activity" keys="concept:name"/>',
        '  <classifier name="Activity and lifecycle" keys="concept:name lifecycle:transition"/>',
        '  <classifier name="Resource" keys="org:resource"/>',
        f"  <string key=\"concept:name\" value={_text(title)}/>",
        '  <string key="lifecycle:model" value="standard"/>',
    ]
    return "\n".join(lines) + "\n"


def _attributes(event: TicketflowAggregate.Event, names: dict[str, str], indent: str) -> Iterator[str]:
    written: set[str] = set()
    for field_name, key in names.items():
        if field_name in event.personal_fields or key in written:
            continue
        value = getattr(event, field_name, None)
        if value is None or value == "":
            continue
        written.add(key)
        yield f"{indent}<string key=\"{key}\" value={_text(value)}/>\n"


def _event(event: TicketflowAggregate.Event) -> str:
    parts = [
        "    <event>\n",
        f"      <string key=\"concept:name\" value={_text(type(event).__qualname__)}/>\n",
        '      <string key="lifecycle:transition" value="complete"/>\n',
        f"      <date key=\"time:timestamp\" value={_date(event.occurred_at)}/>\n",
        f"      <string key=\"org:resource\" value={_text(event.actor_id)}/>\n",
        f"      <string key=\"org:role\" value={_text(event.actor_role)}/>\n",
        f"      <date key=\"ticketflow:recorded_at\" value={_date(event.timestamp)}/>\n",
        f"      <int key=\"ticketflow:version\" value=\"{int(event.originator_version)}\"/>\n",
        f"      <string key=\"ticketflow:via\" value={_text(event.via)}/>\n",
        f"      <boolean key=\"ticketflow:imported\" value=\"{'true' if event.imported else 'false'}\"/>\n",
    ]
    parts.extend(_attributes(event, EVENT_ATTRIBUTES, "      "))
    parts.append("    </event>\n")
    return "".join(parts)


def _trace(ticket_id: UUID, history: list[TicketflowAggregate.Event]) -> str:
    opened = history[0]
    parts = ["  <trace>\n", f"    <string key=\"concept:name\" value={_text(ticket_id)}/>\n"]
    if isinstance(opened, Ticket.Opened):
        parts.extend(_attributes(opened, TRACE_ATTRIBUTES, "    "))
        imported = "true" if opened.imported else "false"
        parts.append(f"    <boolean key=\"ticketflow:imported\" value=\"{imported}\"/>\n")
    parts.extend(_event(e) for e in history)
    parts.append("  </trace>\n")
    return "".join(parts)


def _in_period(at: datetime, since: datetime | None, until: datetime | None) -> bool:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return (since is None or at >= _aware(since)) and (until is None or at < _aware(until))


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def write_xes(
    desk: TicketDesk,
    out: IO[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
    title: str = "ticketflow tickets",
) -> XesSummary:
    """Stream the XES log to a text stream.

    ``since`` / ``until`` pick the tickets opened (business time) in ``[since, until)``; each
    picked ticket is exported whole. ``progress(position, end)`` reports how far through the
    log's openings the export is."""
    summary = XesSummary(log_position=desk.log_position())
    out.write(_header(title))
    start = 1
    while summary.log_position and start <= summary.log_position:
        page = desk.recorder.select_notifications(
            start, PAGE, stop=summary.log_position, topics=[OPENED_TOPIC]
        )
        if not page:
            break
        for notification in page:
            opened = desk.mapper.to_domain_event(notification)
            if not _in_period(opened.occurred_at, since, until):  # type: ignore[attr-defined]
                continue
            history = desk.history(notification.originator_id)
            out.write(_trace(notification.originator_id, history))
            summary.traces += 1
            summary.events += len(history)
        start = page[-1].id + 1
        if progress is not None:
            progress(page[-1].id, summary.log_position)
    out.write("</log>\n")
    if progress is not None:
        progress(summary.log_position, summary.log_position)
    return summary


def check_target(path: Path) -> None:
    """Refuse a target that is not a regular file: the finished export is renamed over it, which would
    replace a device (``/dev/full``), a pipe or a socket with a file and report success."""
    if path.exists() and not path.is_file():
        raise ValidationFailed(f"cannot write {path}: it is not a regular file (a directory, device, pipe or socket)")
    if not path.parent.is_dir():
        raise ValidationFailed(f"cannot write {path}: the directory {path.parent} does not exist")


def export_xes(
    desk: TicketDesk,
    path: Path,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> XesSummary:
    """Write the XES log to ``path`` (through a temporary file: a failed export leaves no half file).

    ``path`` must be a regular file or not exist yet (:func:`check_target`)."""
    check_target(path)
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="\n", buffering=1 << 20) as out:
            summary = write_xes(desk, out, since=since, until=until, progress=progress)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return summary
