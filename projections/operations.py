"""What an operator watches, read from the views at the moment it is asked (``/metrics``): SLA
warnings and breaches per team, the webhook outbox, and how far the sealer is behind the log.

Each answer is a fact of the database, so every API process gives the same numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from projections.directory import TEAMS
from projections.outbox import ATTEMPTS, DELIVERIES, MAIL_CHANNEL, SUBSCRIPTIONS
from projections.sql import Db
from projections.workflow import SLA_OUTCOMES, TICKET_FACTS

#: Tickets looked up per query when their teams are read (keeps a statement's parameters bounded).
_CHUNK = 500


@dataclass(frozen=True)
class WebhookFacts:
    """One webhook's (or the email channel's) outbox: deliveries per state, attempts that did not
    get a 2xx answer, and when its oldest pending delivery's event happened (None: none pending)."""

    name: str
    deliveries: dict[str, int]
    failed_attempts: int
    oldest_pending: datetime | None


@dataclass(frozen=True)
class SealFacts:
    sealed_position: int
    checkpoint_at: datetime | None


def sla_breaches_by_team(db: Db) -> dict[str, int]:
    """Breached SLA targets (ticket, metric, cycle) per team the ticket was in at the breach (workflow view)."""
    rows = db.all(
        f"SELECT team_id, COUNT(*) AS n FROM {{p}}{SLA_OUTCOMES.name} WHERE outcome = 'breached' GROUP BY team_id"
    )
    return {str(r["team_id"] or ""): int(r["n"]) for r in rows}


def sla_warnings_by_ticket(db: Db) -> dict[str, int]:
    """``Ticket.SlaWarned`` events per ticket (audit view)."""
    rows = db.all(
        "SELECT object_id, COUNT(*) AS n FROM {p}tf_audit WHERE event_type = ? GROUP BY object_id",
        ("Ticket.SlaWarned",),
    )
    return {str(r["object_id"]): int(r["n"]) for r in rows}


def ticket_teams(db: Db, ticket_ids: Sequence[str]) -> dict[str, str]:
    """Each ticket's current team (workflow view); tickets the view does not know are absent."""
    teams: dict[str, str] = {}
    for start in range(0, len(ticket_ids), _CHUNK):
        chunk = list(ticket_ids[start : start + _CHUNK])
        marks = ", ".join("?" * len(chunk))
        rows = db.all(
            f"SELECT ticket_id, team_id FROM {{p}}{TICKET_FACTS.name} WHERE ticket_id IN ({marks})", chunk
        )
        teams.update({str(r["ticket_id"]): str(r["team_id"] or "") for r in rows})
    return teams


def team_names(db: Db) -> dict[str, str]:
    """Team id → name (directory view)."""
    return {
        str(r["team_id"]): str(r["name"] or "")
        for r in db.all(f"SELECT team_id, name FROM {{p}}{TEAMS.name}")
    }


def webhook_facts(db: Db) -> list[WebhookFacts]:
    """Every subscription's outbox (and the email channel's, when it has deliveries), by name."""
    names = {
        str(r["webhook_id"]): str(r["name"] or r["webhook_id"])
        for r in db.all(f"SELECT webhook_id, name FROM {{p}}{SUBSCRIPTIONS.name}")
    }
    states: dict[str, dict[str, int]] = {w: {"pending": 0, "delivered": 0, "failed": 0} for w in names}
    for row in db.all(
        f"SELECT webhook_id, state, COUNT(*) AS n FROM {{p}}{DELIVERIES.name} GROUP BY webhook_id, state"
    ):
        states.setdefault(str(row["webhook_id"]), {"pending": 0, "delivered": 0, "failed": 0})[
            str(row["state"])
        ] = int(row["n"])
    failed = {
        str(r["webhook_id"]): int(r["n"])
        for r in db.all(
            f"SELECT webhook_id, COUNT(*) AS n FROM {{p}}{ATTEMPTS.name} "
            "WHERE status IS NULL OR status < 200 OR status >= 300 GROUP BY webhook_id"
        )
    }
    oldest = {
        str(r["webhook_id"]): r["oldest"]
        for r in db.all(
            f"SELECT webhook_id, MIN(enqueued_at) AS oldest FROM {{p}}{DELIVERIES.name} WHERE state = 'pending' GROUP BY webhook_id"
        )
    }
    return [
        WebhookFacts(
            name=names.get(webhook, MAIL_CHANNEL if webhook == MAIL_CHANNEL else webhook),
            deliveries=counts,
            failed_attempts=failed.get(webhook, 0),
            oldest_pending=datetime.fromisoformat(oldest[webhook]) if oldest.get(webhook) else None,
        )
        for webhook, counts in sorted(states.items())
    ]


def seal_facts(db: Db, sealed_position: int) -> SealFacts:
    """The sealer's progress (its own tables): the last position sealed and its newest checkpoint's time."""
    row = db.one("SELECT cp_time FROM {p}integrity_state WHERE id = 1")
    at = datetime.fromisoformat(row["cp_time"]) if row is not None and row["cp_time"] else None
    return SealFacts(sealed_position, at)
