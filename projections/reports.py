"""Reports for the desk's charts, read from the tickets view.

Volume per day (line and bar charts), backlog by status (pie), first-reply and
resolution times per team and priority (count, mean, median, p90, in hours),
and satisfaction per team.

A report over a long period reads most of the view (``bench/bench_console.py`` times the
dashboard over a year of 200,000 tickets), so each query is shaped for its database:

* SQLite has no hash aggregation (a GROUP BY sorts every row it reads) and no statistics on ranges,
  and a row read through an index that does not hold every column the query needs costs a lookup
  in the table. Desk-wide, a period's tickets are read from the covering (created_at, team_id,
  priority, first_reply_at, solved_at, satisfaction) index alone, however long the period. A team
  scope is read through its team's (team_id, status, created_at) index entries, or, when the period
  holds a large share of the view, by scanning the table (:func:`table_for_period`). Response times are
  gathered in one pass and ordered per group in Python: without an index in hours order SQLite
  would sort them itself, slower than Python.
* PostgreSQL computes response times in the database (counts, sums and the order statistics
  themselves, by ``percentile_disc``), and aggregates volume by hashing.

Every figure equals :func:`_stats` over the hours of the period's tickets (tested on both
databases: ``tests/projections/test_report_figures.py``).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from projections.sql import Db, Dialect, local_period, parse_ts, ts

DIMENSIONS = {"category": "category", "channel": "channel", "type": "ticket_type", "team": "team_id", "priority": "priority"}
#: On SQLite, a period holding more than this share of a table's rows is read by scanning the table:
#: one lookup per row through an index costs several times a row of a scan.
SCAN_SHARE = 0.25
#: Below this many rows a table is read as the query planner likes (the estimate would cost more).
SCAN_MIN_ROWS = 10_000


def _range(
    since: datetime | None, until: datetime | None, teams: Collection[str] | None = None, column: str = "created_at"
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if teams is not None:
        clauses.append(f"team_id IN ({', '.join('?' * len(teams))})" if teams else "1 = 0")
        params.extend(sorted(teams))
    if since is not None:
        clauses.append(f"{column} >= ?")
        params.append(ts(since))
    if until is not None:
        clauses.append(f"{column} < ?")
        params.append(ts(until))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def table_for_period(db: Db, table: str, counted: str, params: Sequence[Any]) -> str:
    """``table`` for a FROM clause reading the rows of a period (``counted``: a WHERE clause an index
    answers alone). On SQLite, ``NOT INDEXED`` when those rows are more than :data:`SCAN_SHARE` of
    the table: SQLite has no statistics on ranges, and would read them through the index, a table
    lookup each. The rows are counted in the index, stopping past the share."""
    if db.dialect is not Dialect.SQLITE or not counted:
        return f"{{p}}{table}"
    rows = int(db.scalar(f"SELECT MAX(rowid) FROM {{p}}{table}") or 0)  # the row count or more, at no cost
    if rows < SCAN_MIN_ROWS:
        return f"{{p}}{table}"
    share = int(rows * SCAN_SHARE)
    found = int(db.scalar(f"SELECT COUNT(*) FROM (SELECT 1 FROM {{p}}{table}{counted} LIMIT ?) period",
                          [*params, share + 1]))
    return f"{{p}}{table} NOT INDEXED" if found > share else f"{{p}}{table}"


def _tickets(
    db: Db, since: datetime | None, until: datetime | None, teams: Collection[str] | None
) -> tuple[str, str, list[Any]]:
    """The FROM and WHERE clauses (and parameters) reading a period's tickets in a scope.

    On SQLite a scope is read through the (team_id, status, created_at) index (``+created_at`` keeps
    the planner off the created_at index, which would look every ticket of the period up in the
    table to learn its team): the index tells the period's tickets of the teams before any lookup."""
    if db.dialect is not Dialect.SQLITE or teams is None:
        # Desk-wide, SQLite reads the period from the covering (created_at, team_id, priority, ...) index.
        where, params = _range(since, until, teams)
        return "{p}tf_tickets", where, params
    where, params = _range(since, until, teams, "+created_at" if teams else "created_at")
    return table_for_period(db, "tf_tickets", where, params), where, params


def volume(
    db: Db, by: str, since: datetime | None = None, until: datetime | None = None, teams: Collection[str] | None = None,
    zone: str = "UTC",
) -> list[dict[str, Any]]:
    """Tickets created per day (in the desk's time zone ``zone``) and value of ``by`` (category, channel,
    type, team, priority)."""
    if by not in DIMENSIONS:
        raise ValueError(f"volume by one of {', '.join(DIMENSIONS)}, not {by!r}")
    column = DIMENSIONS[by]
    day, day_params = local_period(db, "created_at", "day", zone)
    where, params = _range(since, until, teams)
    if db.dialect is Dialect.POSTGRES:
        # A derived table the planner cannot see into, so grouped by hashing: it would otherwise expect a
        # group per created_at, and sort the period's rows on disk.
        return db.all(
            f"SELECT day, value, COUNT(*) AS tickets FROM (SELECT {day} AS day, {column} AS value"
            f" FROM {{p}}tf_tickets{where} OFFSET 0) period GROUP BY day, value ORDER BY day, value",
            [*day_params, *params],
        )
    if by == "team":  # read from an index alone, however long the period: desk-wide (created_at, team_id, ...),
        # a team scope (team_id, status, created_at)
        table, (where, params) = "{p}tf_tickets", _range(since, until, teams, "+created_at" if teams is not None else "created_at")
    else:
        table, where, params = _tickets(db, since, until, teams)
    return db.all(
        f"SELECT {day} AS day, {column} AS value, COUNT(*) AS tickets"
        f" FROM {table}{where} GROUP BY 1, 2 ORDER BY day, value",
        [*day_params, *params],
    )


def backlog(
    db: Db, teams: Collection[str] | None = None, statuses: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """Tickets per status and team, right now (``statuses``: only those, e.g. the ones still being worked,
    read from the (team_id, status, ...) index's entries for them)."""
    where, params = _range(None, None, teams)
    if statuses is not None:
        where += (" AND " if where else " WHERE ") + f"status IN ({', '.join('?' * len(statuses))})"
        params.extend(sorted(statuses))
    return db.all(
        f"SELECT status, team_id, COUNT(*) AS tickets FROM {{p}}tf_tickets{where} GROUP BY status, team_id ORDER BY status, team_id",
        params,
    )


def _stats(hours: list[float]) -> dict[str, Any]:
    """The figures of a list of hours: what every response-time figure is, however it is computed."""
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
    """Hours from ``created_at`` to ``column`` (NULL when it has not happened), in the database.

    On PostgreSQL the hours are the double nearest to the exact (numeric) quotient, as a client
    converting the numeric would get."""
    if db.dialect is Dialect.POSTGRES:
        return f"CAST(EXTRACT(EPOCH FROM ({column}::timestamptz - created_at::timestamptz)) / 3600.0 AS DOUBLE PRECISION)"
    return f"(julianday({column}) - julianday(created_at)) * 24.0"


#: Each response time: the column its hours run to from ``created_at``.
METRICS = {"first_reply_hours": "first_reply_at", "resolution_hours": "solved_at"}
Figures = dict[tuple[str, str], dict[str, dict[str, Any]]]


def response_times(
    db: Db, since: datetime | None = None, until: datetime | None = None, teams: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """First-reply and resolution time per team and priority (hours; p90 by nearest rank)."""
    table, where, params = _tickets(db, since, until, teams)
    if db.dialect is Dialect.POSTGRES:
        groups = _times_in_postgres(db, where, params)
    else:
        groups = _times_in_python(db, table, where, params)
    return [{"team_id": team or None, "priority": priority, **groups[(team, priority)]} for team, priority in sorted(groups)]


def _times_in_python(db: Db, table: str, where: str, params: list[Any]) -> Figures:
    """One pass over the period's tickets (the database subtracts the times), ordered per group here."""
    hours: dict[tuple[str, str], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    db.execute(
        f"SELECT team_id, priority, {', '.join(_hours_sql(db, column) for column in METRICS.values())}"
        f" FROM {table}{where}",
        params,
    )
    for team, priority, first_reply, resolution in db.cursor.fetchall():  # plain rows: no dict per ticket
        replied, solved = hours[(team or "", priority)]
        if first_reply is not None:
            replied.append(first_reply)
        if resolution is not None:
            solved.append(resolution)
    return {
        key: {"first_reply_hours": _stats(replied), "resolution_hours": _stats(solved)}
        for key, (replied, solved) in hours.items()
    }


def _times_in_postgres(db: Db, where: str, params: list[Any]) -> Figures:
    """Per group, in the database: the count and sums of the hours, and the order statistics
    themselves. ``percentile_disc(f)`` is the value at rank ceil(f x count), as :func:`_stats` takes
    the p90; the median is the middle value, or the mean of the two middle ones: the lower one
    ascending, the upper one descending (the same one when the count is odd)."""
    columns = []
    for name in METRICS:
        columns += [
            f"COUNT({name}) AS {name}_count, SUM({name}) AS {name}_sum, SUM(ABS({name})) AS {name}_magnitude",
            f"percentile_disc(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY {name}) AS {name}_low_p90",
            f"percentile_disc(0.5) WITHIN GROUP (ORDER BY {name} DESC) AS {name}_high",
        ]
    # Each time is parsed once (the same names, as timestamps), and the hours are worked out once per
    # ticket below the sort, not again in each aggregate reading them (OFFSET 0: derived tables the
    # planner keeps as they are).
    times = ", ".join(f"{column}::timestamptz AS {column}" for column in ("created_at", *METRICS.values()))
    hours = ", ".join(f"{_hours_sql(db, column)} AS {name}" for name, column in METRICS.items())
    rows = db.all(
        f"SELECT team_id, priority, {', '.join(columns)} FROM (SELECT team_id, priority, {hours} FROM"
        f" (SELECT team_id, priority, {times} FROM {{p}}tf_tickets{where} OFFSET 0) period OFFSET 0) hours"
        " GROUP BY team_id, priority",
        params,
    )
    figures: Figures = {}
    for row in rows:
        figures[(row["team_id"] or "", row["priority"])] = group = {}
        for name, column in METRICS.items():
            count = int(row[f"{name}_count"])
            if not count:
                group[name] = _stats([])
                continue
            (low, p90), high = row[f"{name}_low_p90"], row[f"{name}_high"]
            mean = _mean(row[f"{name}_sum"], row[f"{name}_magnitude"], count)
            if mean is None:  # the database's sum may round to another 0.001: add the hours up exactly here
                mean = _exact_mean(db, column, where, params, row["team_id"], row["priority"])
            group[name] = {
                "count": count,
                "mean": mean,
                "median": round(low if count % 2 else (low + high) / 2, 3),  # statistics.median's arithmetic
                "p90": round(p90, 3),
            }
    return figures


#: The relative error of one operation on doubles (twice the unit roundoff, for margin).
EPSILON = 2.0**-52


def _mean(total: float, magnitude: float, count: int) -> float | None:
    """The mean of ``count`` hours rounded to 0.001 from the database's sum of them (and of their
    magnitudes), or None when it could round otherwise than :func:`_stats`'s ``fmean``, which adds
    them exactly: a sum of n doubles in any order is within (n - 1) x epsilon x the sum of their
    magnitudes of the exact sum, so only a mean that close to a rounding tie is in doubt (about one
    group in 10^5 at a year of 200,000 tickets)."""
    mean = total / count
    slack = (count + 8) * EPSILON * (magnitude / count + abs(mean))
    tie = (math.floor(mean * 1000) + 0.5) / 1000  # the nearest point where round(x, 3) turns
    return round(mean, 3) if abs(mean - tie) > 2 * slack + 1e-12 else None


def _exact_mean(db: Db, column: str, where: str, params: list[Any], team: str | None, priority: str) -> float:
    group = ("team_id IS NULL" if team is None else "team_id = ?") + f" AND priority = ? AND {column} IS NOT NULL"
    rows = db.all(
        f"SELECT {_hours_sql(db, column)} AS hours FROM {{p}}tf_tickets{where}{' AND ' if where else ' WHERE '}{group}",
        [*params, *([] if team is None else [team]), priority],
    )
    return round(statistics.fmean(float(row["hours"]) for row in rows), 3)


def satisfaction(
    db: Db, since: datetime | None = None, until: datetime | None = None, teams: Collection[str] | None = None
) -> list[dict[str, Any]]:
    """Ratings per team: how many, the average, and the count of each score."""
    table, where, params = _tickets(db, since, until, teams)
    where += (" AND" if where else " WHERE") + " satisfaction IS NOT NULL"
    rows = db.all(
        # Grouped by score first: grouped by team first, SQLite would walk the (team_id, ...) index for
        # the order, a lookup per ticket, instead of reading the covering (created_at, ...) index.
        f"SELECT team_id, satisfaction, COUNT(*) AS n FROM {table}{where} GROUP BY satisfaction, team_id",
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
