"""A realistic ServiceNow-style incident history export, generated with a fixed seed.

One CSV row per update of an incident, each row the incident's whole state after the update
(the columns of ServiceNow's incident table as exported by its "incident event log"), with
the quirks real exports have:

* assignee before group: ``assigned_to`` set while ``assignment_group`` is ``?``;
* cleared groups and cleared assignees (back to ``?``);
* "New" with an assignee;
* reopen after close: Resolved or Closed, then Active again (``reopen_count`` goes up);
* awaiting states (User Info, Evidence, Vendor, Problem);
* day-first times (``31/12/2016 23:59``), several updates within the same minute;
* gaps in ``sys_mod_count`` (updates not exported), cases whose first exported update is not the first;
* rows whose state did not change (an update of a column the import does not follow);
* rows of a case written newest first (the file's order is not the history's order).

``reassignment_count`` counts moves from one named group to another; ``reopen_count`` counts
returns from Resolved or Closed to an active state.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

COLUMNS = [
    "number", "incident_state", "active", "reassignment_count", "reopen_count", "sys_mod_count", "made_sla",
    "caller_id", "opened_by", "opened_at", "sys_created_by", "sys_created_at", "sys_updated_by", "sys_updated_at",
    "contact_type", "location", "category", "subcategory", "u_symptom", "impact", "urgency", "priority",
    "assignment_group", "assigned_to", "knowledge", "notify", "closed_code", "resolved_by", "resolved_at",
    "closed_at",
]

ACTIVE_STATES = ("Active", "Awaiting User Info", "Awaiting Evidence", "Awaiting Vendor", "Awaiting Problem")
PRIORITIES = ("1 - Critical", "2 - High", "3 - Moderate", "4 - Low")
CONTACTS = ("Phone", "IVR", "Email", "Self service", "Direct opening")
GROUPS = tuple(f"Group {n}" for n in (12, 24, 31, 56, 70, 3))
PEOPLE = tuple(f"Resolver {n}" for n in range(1, 19))
UPDATERS = tuple(f"Updater {n}" for n in range(1, 9))
CATEGORIES = tuple(f"Category {n}" for n in (9, 26, 40, 53))


def day_first(moment: datetime) -> str:
    return moment.strftime("%d/%m/%Y %H:%M")


@dataclass(frozen=True)
class State:
    state: str
    group: str  # "?" when none
    assignee: str
    priority: str
    category: str
    symptom: str
    reassignments: int = 0
    reopens: int = 0


def generate(path: Path, *, cases: int = 300, seed: int = 2016) -> Path:
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    start = datetime(2016, 2, 29, 1, 16)
    for number in range(1, cases + 1):
        opened = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 120))
        rows.extend(_incident(rng, f"INC{number:07d}", opened))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _incident(rng: random.Random, number: str, opened: datetime) -> list[dict[str, str]]:
    caller = f"Caller {rng.randrange(1, 400)}"
    contact = rng.choice(CONTACTS)
    group = "?" if rng.random() < 0.25 else rng.choice(GROUPS)
    assignee = rng.choice(PEOPLE) if rng.random() < 0.3 else "?"  # New with an assignee, perhaps without a group
    state = State("New", group, assignee, rng.choice(PRIORITIES), rng.choice(CATEGORIES), f"Symptom {rng.randrange(1, 50)}")
    history: list[tuple[int, datetime, State, str]] = []
    sequence, moment = 0, opened
    updates = rng.randrange(3, 14)
    for _ in range(updates):
        history.append((sequence, moment, state, rng.choice(UPDATERS)))
        sequence += 1 if rng.random() < 0.8 else rng.randrange(2, 5)  # gaps: updates not exported
        moment += timedelta(minutes=0 if rng.random() < 0.12 else rng.randrange(1, 60 * 30))  # same minute, or later
        state = _next(rng, state)
    history.append((sequence, moment, state, rng.choice(UPDATERS)))
    if rng.random() < 0.1:  # the export starts after the incident's first updates
        history = history[rng.randrange(1, 3) :]
    rows = [_row(number, caller, contact, opened, seq, at, s, by) for seq, at, s, by in history]
    if rng.random() < 0.3:
        rows.reverse()  # newest first
    return rows


def _next(rng: random.Random, current: State) -> State:
    roll = rng.random()
    s = current
    if s.state == "Closed":
        if roll < 0.15:
            return replace(s, state="Active", reopens=s.reopens + 1)  # reopened after close
        return replace(s, symptom=f"Symptom {rng.randrange(1, 50)}")  # a late update that changes nothing followed
    if s.state == "Resolved":
        if roll < 0.2:
            return replace(s, state="Active", reopens=s.reopens + 1)
        if roll < 0.75:
            return replace(s, state="Closed")
        return replace(s, symptom=f"Symptom {rng.randrange(1, 50)}")
    if roll < 0.12:  # another group (with nobody, or the same person kept)
        group = rng.choice([g for g in GROUPS if g != s.group])
        moved = s.reassignments + (1 if s.group != "?" else 0)
        return replace(s, group=group, assignee="?" if rng.random() < 0.6 else s.assignee, reassignments=moved)
    if roll < 0.22:  # a person, in the group or not
        return replace(s, assignee=rng.choice(PEOPLE), state="Active" if s.state == "New" and rng.random() < 0.5 else s.state)
    if roll < 0.27:
        return replace(s, group="?")  # cleared group
    if roll < 0.32:
        return replace(s, assignee="?")  # cleared assignee
    if roll < 0.45:
        return replace(s, state=rng.choice(ACTIVE_STATES[1:]))  # awaiting
    if roll < 0.55:
        return replace(s, state="Active")
    if roll < 0.62:
        return replace(s, priority=rng.choice(PRIORITIES))
    if roll < 0.66:
        return replace(s, category=rng.choice(CATEGORIES))
    if roll < 0.78:
        return replace(s, symptom=f"Symptom {rng.randrange(1, 50)}")  # nothing the import follows
    if roll < 0.92:
        return replace(s, state="Resolved")
    return replace(s, state="Closed")


def _row(
    number: str, caller: str, contact: str, opened: datetime, sequence: int, at: datetime, s: State, by: str
) -> dict[str, str]:
    resolved = s.state in ("Resolved", "Closed")
    return {
        "number": number, "incident_state": s.state, "active": "false" if s.state == "Closed" else "true",
        "reassignment_count": str(s.reassignments), "reopen_count": str(s.reopens), "sys_mod_count": str(sequence),
        "made_sla": "true", "caller_id": caller, "opened_by": "Opened by 17", "opened_at": day_first(opened),
        "sys_created_by": "Created by 4", "sys_created_at": day_first(opened), "sys_updated_by": by,
        "sys_updated_at": day_first(at), "contact_type": contact, "location": "Location 143",
        "category": s.category, "subcategory": "Subcategory 170", "u_symptom": s.symptom, "impact": "2 - Medium",
        "urgency": "2 - Medium", "priority": s.priority, "assignment_group": s.group, "assigned_to": s.assignee,
        "knowledge": "false", "notify": "Do Not Notify", "closed_code": "code 5" if resolved else "?",
        "resolved_by": s.assignee if resolved else "?", "resolved_at": day_first(at) if resolved else "?",
        "closed_at": day_first(at) if s.state == "Closed" else "?",
    }
