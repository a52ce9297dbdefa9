"""Reports for the desk's charts, read from the tickets view.

Volume per day (line and bar charts), backlog by status (pie), first-reply and
resolution times per team and priority (count, mean, median, p90, in hours),
and satisfaction per team.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Collection
from datetime import datetime
from typing import Any

from projections.sql import Db, Dialect, parse_ts, ts

DIMENSIONS = {"category": "category", "channel": "channel", "type": "ticket_type", "team": "team_id", "priority": "priority"}


def _range(
    since: datetime | None, until: datetime | None, teams: Collection[str] | None = None
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if teams is not None:
        clauses.append(f"team_id IN ({', '.join('?' * len(teams))})" if teams else "1 = 0")
        params.extend(sorted(teams))
    if since is not None:
        clauses.append("created_at >= ?")
        params.append(ts(since))
    if until is not None:
        clauses.append("created_at < ?")
        params.append(ts(until))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def volume(
    db: Db, by: str, since: datetime | None = None, until: datetime | None = None, teams: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """Tickets created per UTC day and value of ``by`` (category, channel, type, team, priority)."""
    if by not in DIMENSIONS:
        raise ValueError(f"volume by one of {', '.join(DIMENSIONS)}, not {by!r}")
    column = DIMENSIONS[by]
    where, params = _range(since, until, teams)
    return db.all(
        f"SELECT substr(created_at, 1, 10) AS day, {column} AS value, COUNT(*) AS tickets"
        f" FROM {{p}}tf_tickets{where} GROUP BY substr(created_at, 1, 10), {column} ORDER BY day, value",
        params,
    )


def backlog(db: Db, teams: Collection[str] | None = None) -> list[dict[str, Any]]:
    """Tickets per status and team, right now."""
    where, params = _range(None, None, teams)
    return db.all(
        f"SELECT status, team_id, COUNT(*) AS tickets FROM {{p}}tf_tickets{where} GROUP BY status, team_id ORDER BY status, team_id",
        params,
    )


def _stats(hours: list[float]) -> dict[str, Any]:
    if not hours:
        return {"count": 0, "mean": None, "median": None, "p90": None}
    ordered = sorted(hours)
    p90 = ordered[math.ceil(0.9 * len(ordered)) - 1]  # nearest rank
    return {
        "count": len(ordered),
        "mean": round(statistics.fmean(ordered), 3),
        "median": round(statistics.median(ordered), 3),
        "p90": round(p90, 3),
    }


def _hours(start: str, end: str | None) -> float | None:
    if end is None:
        return None
    a, b = parse_ts(start), parse_ts(end)
    assert a is not None and b is not None
    return (b - a).total_seconds() / 3600


def _hours_sql(db: Db, column: str) -> str:
    """Hours from ``created_at`` to ``column`` (NULL when it has not happened), in the database."""
    if db.dialect is Dialect.POSTGRES:
        return f"EXTRACT(EPOCH FROM ({column}::timestamptz - created_at::timestamptz)) / 3600.0"
    return f"(julianday({column}) - julianday(created_at)) * 24.0"


def response_times(
    db: Db, since: datetime | None = None, until: datetime | None = None, teams: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """First-reply and resolution time per team and priority (hours; p90 by nearest rank)."""
    where, params = _range(since, until, teams)
    first_reply: dict[tuple[str, str], list[float]] = defaultdict(list)
    resolution: dict[tuple[str, str], list[float]] = defaultdict(list)
    groups: set[tuple[str, str]] = set()
    # The database subtracts the times (parsing 200,000 ISO strings in Python took seconds).
    sql = (f"SELECT team_id, priority, {_hours_sql(db, 'first_reply_at')} AS first_reply,"
           f" {_hours_sql(db, 'solved_at')} AS resolution FROM {{p}}tf_tickets{where}")
    for row in db.all(sql, params):
        key = (row["team_id"] or "", row["priority"])
        groups.add(key)
        if row["first_reply"] is not None:
            first_reply[key].append(float(row["first_reply"]))
        if row["resolution"] is not None:
            resolution[key].append(float(row["resolution"]))
    return [
        {
            "team_id": team or None,
            "priority": priority,
            "first_reply_hours": _stats(first_reply[(team, priority)]),
            "resolution_hours": _stats(resolution[(team, priority)]),
        }
        for team, priority in sorted(groups)
    ]


def satisfaction(
    db: Db, since: datetime | None = None, until: datetime | None = None, teams: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """Ratings per team: how many, the average, and the count of each score."""
    where, params = _range(since, until, teams)
    where += (" AND" if where else " WHERE") + " satisfaction IS NOT NULL"
    rows = db.all(
        f"SELECT team_id, satisfaction, COUNT(*) AS n FROM {{p}}tf_tickets{where} GROUP BY team_id, satisfaction",
        params,
    )
    per_team: dict[str | None, dict[int, int]] = defaultdict(dict)
    for row in rows:
        per_team[row["team_id"]][int(row["satisfaction"])] = int(row["n"])
    result = []
    for team, scores in sorted(per_team.items(), key=lambda item: item[0] or ""):
        count = sum(scores.values())
        result.append(
            {
                "team_id": team,
                "ratings": count,
                "average": round(sum(s * n for s, n in scores.items()) / count, 3),
                "scores": {str(s): scores.get(s, 0) for s in range(1, 6)},
            }
        )
    return result
