"""Compliance reports over the views: the data-access report (from the access log).

Service-standard (SLA) compliance lives with the outcomes it counts:
:func:`projections.workflow.sla_compliance`. The erasure and retention log is not
here yet: personal-data erasure is not built.
"""

from __future__ import annotations

from typing import Any

from projections.sql import Db, loads, local_period


def data_access_report(
    db: Db,
    period: str = "month",
    since: str | None = None,
    until: str | None = None,
    *,
    by_customer: bool = False,
    actor_id: str | None = None,
    customer_id: str | None = None,
    zone: str = "UTC",
) -> list[dict[str, Any]]:
    """Unmasked reads of personal data per period (day, month or year, in the desk's time zone
    ``zone``) and actor (and customer when ``by_customer``): how many reads, of how many customers,
    which fields and purposes how often. Field names and purposes only, never the values that were seen.

    ``since`` / ``until`` bound the time of the read (UTC ISO text, ``[since, until)``)."""
    period_sql, period_params = local_period(db, "occurred_at", period, zone)
    clauses, params = ["1 = 1"], []
    for clause, value in (("occurred_at >= ?", since), ("occurred_at < ?", until),
                          ("actor_id = ?", actor_id), ("customer_id = ?", customer_id)):
        if value is not None:
            clauses.append(clause)
            params.append(value)
    where = " AND ".join(clauses)
    group = ["period", "actor_id", "actor_role"] + (["customer_id"] if by_customer else [])
    keys = ", ".join(group)
    # The period computed once per read, in a derived table (its expression may carry a parameter,
    # which PostgreSQL could not match between the select list and GROUP BY).
    source = (f"(SELECT {period_sql} AS period, actor_id, actor_role, customer_id, fields, purpose"
             f" FROM {{p}}tf_access_log WHERE {where}) access_log")
    params = [*period_params, *params]
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    # One row per distinct (key, fields, purpose): the grouped result, not the log, is held in memory.
    for row in db.all(f"SELECT {keys}, fields, purpose, COUNT(*) AS reads FROM {source} GROUP BY {keys}, fields, purpose",
                      params):
        key = tuple(row[c] for c in group)
        entry = rows.setdefault(key, {**{c: row[c] for c in group}, "reads": 0, "customers": 0,
                                      "fields": {}, "purposes": {}})
        reads = int(row["reads"])
        entry["reads"] += reads
        for name in loads(row["fields"]) or []:
            entry["fields"][name] = entry["fields"].get(name, 0) + reads
        purpose = row["purpose"] or ""
        entry["purposes"][purpose] = entry["purposes"].get(purpose, 0) + reads
    for row in db.all(f"SELECT {keys}, COUNT(DISTINCT customer_id) AS customers FROM {source} GROUP BY {keys}", params):
        key = tuple(row[c] for c in group)
        if key in rows:
            rows[key]["customers"] = int(row["customers"])
    result = sorted(rows.values(), key=lambda r: tuple(str(r[c] or "") for c in group))
    for entry in result:
        entry["fields"] = dict(sorted(entry["fields"].items()))
        entry["purposes"] = dict(sorted(entry["purposes"].items()))
    return result
