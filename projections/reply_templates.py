"""Saved reply templates (快捷回复): one row per template, its current version, and how often it was used.

Templates hold no customer's data (placeholders stand for it), so this view purges nothing. Each
reply or note sent from a template counts as one use of it. A template's past versions are read
from its own events (``TicketDesk.reply_template_history``), not from here.
"""

from __future__ import annotations

from typing import Any

from projections.sql import Batch, Db, Table, ts, uid, uuid_text
from projections.view import Event, View
from ticketflow.domain import ReplyTemplate, Ticket

TEMPLATES = Table(
    "tf_reply_templates",
    columns=(
        "template_id TEXT NOT NULL",
        "team_id TEXT",
        "title TEXT",
        "body TEXT",
        "kind TEXT",  # reply | note | NULL: either
        "version INTEGER",
        "retired INTEGER",
        "created_by TEXT",
        "created_at TEXT",
        "updated_by TEXT",
        "updated_at TEXT",
        "use_count INTEGER",
        "last_used_at TEXT",
    ),
    key=("template_id",),
    indexes=(("team_id", "retired", "title"),),
)


class ReplyTemplatesView(View):
    name = "reply_templates"
    tables = (TEMPLATES,)
    event_types = (Ticket.Replied, Ticket.NoteAdded, ReplyTemplate.Event)

    def apply(self, batch: Batch, event: Event, position: int) -> None:
        when = ts(event.occurred_at)
        if isinstance(event, Ticket.Replied | Ticket.NoteAdded):
            if event.template_id is not None and (row := batch.get(TEMPLATES, str(event.template_id))) is not None:
                row["use_count"] += 1
                row["last_used_at"] = when
                batch.touch(TEMPLATES, row)
            return
        if not isinstance(event, ReplyTemplate.Event):
            return
        template_id = uuid_text(event.originator_id)
        if isinstance(event, ReplyTemplate.Created):
            batch.put(TEMPLATES, {
                "template_id": template_id, "team_id": uid(event.team_id), "title": event.title, "body": event.body,
                "kind": event.kind, "version": event.originator_version, "retired": 0, "created_by": event.actor_id,
                "created_at": when, "updated_by": event.actor_id, "updated_at": when, "use_count": 0,
                "last_used_at": None,
            })
            return
        row = batch.get(TEMPLATES, template_id)
        if row is None:  # pragma: no cover - a template's first event is always Created
            return
        match event:
            case ReplyTemplate.Revised():
                row.update(title=event.title, body=event.body, kind=event.kind)
            case ReplyTemplate.Retired():
                row["retired"] = 1
        row.update(version=event.originator_version, updated_by=event.actor_id, updated_at=when)
        batch.touch(TEMPLATES, row)


def team_templates(db: Db, team_id: str, include_retired: bool = False) -> list[dict[str, Any]]:
    """A team's templates by title (the retired ones only when asked)."""
    sql = "SELECT * FROM {p}tf_reply_templates WHERE team_id = ?"
    if not include_retired:
        sql += " AND retired = 0"
    rows = db.all(sql + " ORDER BY title, template_id", (team_id,))
    return [{**row, "retired": bool(row["retired"])} for row in rows]
