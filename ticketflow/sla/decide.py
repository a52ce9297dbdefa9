"""What the SLA clock decides from a measurement: warnings, breaches and fulfilments to record.

Shared by the live automation (:mod:`projections.automation`) and the what-if replay
(:mod:`ticketflow.whatif`), so a replay decides exactly as the desk did.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from ticketflow.sla.measure import Measurement, Metric, State, Target

#: The smallest step of time: a look just after an instant.
JUST_AFTER = timedelta(microseconds=1)


class _Marks(Protocol):
    def has_sla_mark(self, kind: str, metric: str, cycle: str) -> bool: ...


def targets_of(terms: Mapping[str, Any]) -> Callable[[str], dict[Metric, Target]]:
    """The targets of an SLA decision's terms (``SlaApplied``), per priority."""

    def targets_for(priority: str) -> dict[Metric, Target]:
        return {
            Metric(metric): Target(timedelta(minutes=t["minutes"]), bool(t.get("business_hours", True)))
            for metric, t in terms["targets"].get(priority, {}).items()
        }

    return targets_for


def outcomes(m: Measurement, now: datetime) -> list[tuple[str, datetime, float]]:
    """What a measurement says happened: (kind, moment, elapsed minutes), in time order."""
    found: list[tuple[str, datetime, float]] = []
    if m.warned_at is not None and m.warned_at <= now and m.state is not State.FULFILLED:
        found.append(("warning", m.breached_at or m.due_at or m.warned_at, 0.0))
    if m.breached_at is not None and m.breached_at <= now:
        found.append(("breached", m.breached_at, 0.0))
    if m.state is State.FULFILLED and m.fulfilled_at is not None:
        found.append(("fulfilled", m.fulfilled_at, round(m.elapsed.total_seconds() / 60, 2)))
    return found


@dataclass(frozen=True)
class SlaMark:
    """One warning, breach or fulfilment to record on a ticket."""

    kind: str
    metric: Metric
    cycle: str
    moment: datetime
    elapsed_minutes: float


def marks_due(
    ticket: _Marks, measurements: list[Measurement], now: datetime
) -> tuple[list[SlaMark], datetime | None]:
    """The marks not recorded yet, and when to look at the ticket again (None: only when it changes)."""
    marks: list[SlaMark] = []
    next_due: datetime | None = None
    for m in measurements:
        cycle = m.started_at.isoformat()
        settled = ticket.has_sla_mark("fulfilled", m.metric, cycle) and m.fulfilled_at is not None
        for kind, moment, elapsed in outcomes(m, now):
            # A run met in time stays met: a later, stricter policy or priority does not
            # turn it into a breach (a reopen resumes the resolution run: then it is open again).
            if settled and kind != "fulfilled":
                continue
            if not ticket.has_sla_mark(kind, m.metric, cycle):
                marks.append(SlaMark(kind, m.metric, cycle, moment, elapsed))
        for due in (m.warn_due_at, m.due_at if m.breached_at is None else None):
            if due is None:
                continue
            # At the instant itself the share is not passed yet (a reply then is on time): look
            # again just after it, or the run would never be seen passing its target.
            look = due if due > now else now + JUST_AFTER
            if next_due is None or look < next_due:
                next_due = look
    return marks, next_due
