"""The problem library (问题库): solved problems by category, linked to customer and ticket, searchable.

One row per solved ticket. The agent's resolution summary (``Ticket.ResolutionRecorded``)
is the entry; until one is recorded, a non-empty resolution given on solving stands in.
A reopened ticket leaves the library until it is solved again; a recategorised one moves
with it. The summary is indexed
with the CJK-capable terms of :mod:`projections.text` (FTS5 on SQLite, ``tsvector`` on
PostgreSQL), so a two-character Chinese query finds its problems.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from projections.erasure import erased_customer, optimize_fts, overwrite
from projections.sql import Batch, Db, Dialect, Table, preload, ts, uuid_text
from projections.text import index_terms, parse_query
from projections.view import Event, Positioned, View
from ticketflow.domain import Customer, Ticket

PROBLEMS = Table(
    "tf_problems",
    columns=(
        "ticket_id TEXT NOT NULL",
        "doc_no BIGINT",  # stable number of the row's search document (the position that created it)
        "customer_id TEXT",
        "category TEXT",
        "summary TEXT",  # personal data: masked by the API
        "source TEXT",  # "summary" (recorded by the agent) or "resolution" (given on solving)
        "state TEXT",  # solved | reopened
        "solved_at TEXT",
        "recorded_at TEXT",
        "position BIGINT",
    ),
    key=("ticket_id",),
    indexes=(("category", "state"), ("customer_id",)),
)

#: The category of every ticket, as of now (a resolution given on solving files under it).
CATEGORIES = Table(
    "tf_problem_categories",
    columns=("ticket_id TEXT NOT NULL", "category TEXT", "customer_id TEXT", "solved_at TEXT"),
    key=("ticket_id",),
)

#: At most this many subject terms make a suggestion query.
SUGGESTION_TERMS = 64


#: The events whose rows the view reads (see ProblemsView.prepare).
_READS_ROWS = (Ticket.Recategorised, Ticket.Solved, Ticket.Reopened, Ticket.ResolutionRecorded)


class ProblemsView(View):
    name = "problems"
    purges_personal_data = True
    tables = (PROBLEMS, CATEGORIES)
    event_types = (
        Ticket.Opened, Ticket.Recategorised, Ticket.Solved, Ticket.Reopened, Ticket.ResolutionRecorded, Customer.Erased,
    )

    def ddl(self, dialect: Dialect) -> list[str]:
        statements = super().ddl(dialect)
        if dialect is Dialect.SQLITE:
            statements.append(
                "CREATE VIRTUAL TABLE IF NOT EXISTS {p}tf_problems_fts USING fts5("
                "terms, ticket_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2')"
            )
        else:
            statements.append("CREATE TABLE IF NOT EXISTS {p}tf_problems_terms (ticket_id TEXT PRIMARY KEY, terms tsvector)")
            statements.append("CREATE INDEX IF NOT EXISTS tf_problems_terms_gin ON {p}tf_problems_terms USING gin (terms)")
        return statements

    def clear(self, db: Db) -> None:
        super().clear(db)
        db.execute("DELETE FROM {p}tf_problems_fts" if db.dialect is Dialect.SQLITE else "DELETE FROM {p}tf_problems_terms")

    def prepare(self, batch: Batch, events: Sequence[Positioned]) -> None:
        """The library's and the categories' rows of the tickets whose events read them: one query each."""
        tickets = {uuid_text(e.originator_id) for e, _ in events if isinstance(e, _READS_ROWS)}
        preload(batch, PROBLEMS, "ticket_id", tickets)
        preload(batch, CATEGORIES, "ticket_id", tickets)

    def apply(self, batch: Batch, event: Event, position: int) -> None:
        if (customer_id := erased_customer(event)) is not None:
            self._erase(batch, customer_id)
            return
        if not isinstance(event, Ticket.Event):
            return
        ticket_id = uuid_text(event.originator_id)
        match event:
            case Ticket.Opened():
                batch.put(CATEGORIES, {
                    "ticket_id": ticket_id, "category": event.category, "customer_id": str(event.requester_id),
                    "solved_at": None,
                })
            case Ticket.Recategorised():
                ticket = batch.get(CATEGORIES, ticket_id)
                if ticket is not None:
                    ticket["category"] = event.category
                    batch.touch(CATEGORIES, ticket)
                row = batch.get(PROBLEMS, ticket_id)
                if row is not None:  # the library files a problem under its ticket's category
                    batch.put(PROBLEMS, {**row, "category": event.category})
            case Ticket.Solved():
                self._solved(batch, ticket_id, event, position)
            case Ticket.Reopened():
                row = batch.get(PROBLEMS, ticket_id)
                if row is not None and row["state"] == "solved":
                    self._changed(batch, {**row, "state": "reopened", "position": position})
            case Ticket.ResolutionRecorded():
                row = batch.get(PROBLEMS, ticket_id)
                ticket = batch.get(CATEGORIES, ticket_id)
                solved_at = ticket["solved_at"] if ticket and ticket["solved_at"] else ts(event.occurred_at)
                self._changed(batch, {
                    "ticket_id": ticket_id, "doc_no": row["doc_no"] if row else position,
                    "customer_id": str(event.customer_id), "category": event.category, "summary": event.summary,
                    "source": "summary", "state": "solved",
                    "solved_at": solved_at,
                    "recorded_at": ts(event.occurred_at), "position": position,
                })

    def _solved(self, batch: Batch, ticket_id: str, event: Ticket.Solved, position: int) -> None:
        row = batch.get(PROBLEMS, ticket_id)
        when = ts(event.occurred_at)
        ticket = batch.get(CATEGORIES, ticket_id)
        if ticket is not None:
            batch.touch(CATEGORIES, {**ticket, "solved_at": when})
        if row is not None and row["source"] == "summary":  # the agent's summary outlives a reopen
            self._changed(batch, {**row, "state": "solved", "solved_at": when, "position": position})
            return
        if not event.resolution.strip():
            return  # nothing to file until the agent records a summary
        self._changed(batch, {
            "ticket_id": ticket_id, "doc_no": row["doc_no"] if row else position,
            "customer_id": str(event.customer_id), "category": ticket["category"] if ticket else "",
            "summary": event.resolution, "source": "resolution", "state": "solved", "solved_at": when,
            "recorded_at": when, "position": position,
        })

    @staticmethod
    def _erase(batch: Batch, customer_id: str) -> None:
        """Overwrite the customer's summaries and re-index them (in :meth:`finish`)."""
        overwrite(batch, PROBLEMS, ("summary",), "customer_id = ?", (customer_id,))
        docs = batch.__dict__.setdefault("problem_docs", {})
        for row in batch.db.all("SELECT * FROM {p}tf_problems WHERE customer_id = ?", (customer_id,)):
            docs[row["ticket_id"]] = row  # replaces a pending plaintext row of this batch
        batch.__dict__["problems_purged"] = True

    @staticmethod
    def _changed(batch: Batch, row: dict[str, Any]) -> None:
        batch.put(PROBLEMS, row)
        batch.__dict__.setdefault("problem_docs", {})[row["ticket_id"]] = row

    def finish(self, batch: Batch) -> None:
        """Re-index the summaries the batch changed (a reopened problem leaves the index)."""
        rows = list(batch.__dict__.get("problem_docs", {}).values())
        if not rows:
            return
        db = batch.db
        if db.dialect is Dialect.SQLITE:
            db.executemany("DELETE FROM {p}tf_problems_fts WHERE rowid = ?", [(r["doc_no"],) for r in rows])
            db.executemany(
                "INSERT INTO {p}tf_problems_fts (rowid, terms, ticket_id) VALUES (?, ?, ?)",
                [(r["doc_no"], index_terms(r["summary"]), r["ticket_id"]) for r in rows if r["state"] == "solved"],
            )
        else:
            db.executemany("DELETE FROM {p}tf_problems_terms WHERE ticket_id = ?", [(r["ticket_id"],) for r in rows])
            db.executemany(
                "INSERT INTO {p}tf_problems_terms (ticket_id, terms) VALUES (?, to_tsvector('simple', ?))",
                [(r["ticket_id"], index_terms(r["summary"])) for r in rows if r["state"] == "solved"],
            )
        if batch.__dict__.get("problems_purged"):
            optimize_fts(db, "tf_problems_fts")


def _matching(db: Db, fts5: str, tsquery: str, category: str | None, customer_id: str | None,
              exclude: str | None, limit: int) -> list[dict[str, Any]]:
    clauses, params = ["p.state = 'solved'"], []
    for column, value in (("p.category =", category), ("p.customer_id =", customer_id), ("p.ticket_id <>", exclude)):
        if value is not None:
            clauses.append(f"{column} ?")
            params.append(value)
    where = " AND ".join(clauses)
    if db.dialect is Dialect.SQLITE:
        sql = (
            "SELECT p.*, bm25(tf_problems_fts) AS score FROM {p}tf_problems_fts"
            " JOIN {p}tf_problems p ON p.doc_no = tf_problems_fts.rowid"
            f" WHERE tf_problems_fts MATCH ? AND {where} ORDER BY score, p.ticket_id LIMIT ?"
        )
        return db.all(sql, [fts5, *params, limit])
    sql = (
        "SELECT p.*, -ts_rank(t.terms, q) AS score FROM {p}tf_problems_terms t"
        " JOIN {p}tf_problems p ON p.ticket_id = t.ticket_id, to_tsquery('simple', ?) q"
        f" WHERE t.terms @@ q AND {where} ORDER BY score, p.ticket_id LIMIT ?"
    )
    return db.all(sql, [tsquery, *params, limit])


def search_problems(
    db: Db, text: str | None = None, *, category: str | None = None, customer_id: str | None = None, limit: int = 20,
) -> list[dict[str, Any]]:
    """Solved problems whose summary matches every term of ``text`` (best first); without
    ``text``, the latest solved problems. Both filter by category and customer."""
    if text is None or not text.strip():
        clauses, params = ["state = 'solved'"], []
        for column, value in (("category", category), ("customer_id", customer_id)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT * FROM {{p}}tf_problems WHERE {' AND '.join(clauses)} ORDER BY solved_at DESC, ticket_id LIMIT ?"
        return _clean(db.all(sql, [*params, limit]))
    query = parse_query(text)
    if query.empty:
        return []
    return _clean(_matching(db, query.fts5(), query.tsquery(), category, customer_id, None, limit))


def suggestions(db: Db, ticket_id: str, subject: str, category: str, *, limit: int = 5) -> list[dict[str, Any]]:
    """Solved problems of ``category`` sharing the most terms with ``subject`` (any term counts),
    best first; never the ticket itself."""
    query = parse_query(subject)
    terms: list[str] = []
    for phrase in query.phrases:
        terms.extend(t for t in phrase if t not in terms)
    prefixes = [c for c in query.prefixes if c not in terms]
    terms, prefixes = terms[:SUGGESTION_TERMS], prefixes[: max(0, SUGGESTION_TERMS - len(terms))]
    if not terms and not prefixes:
        return []
    fts5 = " OR ".join([f'"{t}"' for t in terms] + [f'"{c}"*' for c in prefixes])
    tsquery = " | ".join([f"'{t}'" for t in terms] + [f"'{c}':*" for c in prefixes])
    return _clean(_matching(db, fts5, tsquery, category, None, ticket_id, limit))


def get_problem(db: Db, ticket_id: str) -> dict[str, Any] | None:
    row = db.one("SELECT * FROM {p}tf_problems WHERE ticket_id = ?", (ticket_id,))
    return None if row is None else _clean([row])[0]


def _clean(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in ("doc_no", "score")} for row in rows]
