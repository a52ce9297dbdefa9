"""Full-text search over ticket subjects, descriptions and interaction bodies, CJK included.

SQLite keeps the terms in an FTS5 table; PostgreSQL in a ``tsvector`` column
with a GIN index. Both index the terms from :mod:`projections.text`.
"""

from __future__ import annotations

from typing import Any

from projections.erasure import chunks, erased_customer, optimize_fts, overwrite_in
from projections.sql import Batch, Db, Dialect, Table, ts, uid, uuid_text
from projections.text import index_terms, parse_query
from projections.view import Event, View
from ticketflow.domain import Customer, Ticket

DOCS = Table(
    "tf_search_docs",
    columns=(
        "doc_id TEXT NOT NULL",
        "ticket_id TEXT",
        "kind TEXT",  # subject, description, reply, note, call, email, chat, meeting, work
        "public INTEGER",
        "occurred_at TEXT",
        "position BIGINT",
        "text TEXT",
    ),
    key=("doc_id",),
    indexes=(("ticket_id",),),
)

#: Whose tickets these are: erasing a customer re-indexes their tickets' documents.
TICKET_CUSTOMERS = Table(
    "tf_search_ticket_customers",
    columns=("ticket_id TEXT NOT NULL", "customer_id TEXT"),
    key=("ticket_id",),
    indexes=(("customer_id",),),
)

SNIPPET = 120


class SearchView(View):
    name = "search"
    purges_personal_data = True
    tables = (DOCS, TICKET_CUSTOMERS)
    event_types = (Ticket.Opened, Ticket.Interaction, Ticket.WorkLogged, Customer.Erased)

    def ddl(self, dialect: Dialect) -> list[str]:
        statements = super().ddl(dialect)
        if dialect is Dialect.SQLITE:
            statements.append(
                "CREATE VIRTUAL TABLE IF NOT EXISTS {p}tf_search_fts USING fts5("
                "terms, doc_id UNINDEXED, ticket_id UNINDEXED, tokenize = 'unicode61 remove_diacritics 2')"
            )
        else:
            statements.append("CREATE TABLE IF NOT EXISTS {p}tf_search_terms (doc_id TEXT PRIMARY KEY, ticket_id TEXT, terms tsvector)")
            statements.append("CREATE INDEX IF NOT EXISTS tf_search_terms_gin ON {p}tf_search_terms USING gin (terms)")
            statements.append("CREATE INDEX IF NOT EXISTS tf_search_terms_ticket ON {p}tf_search_terms (ticket_id)")
        return statements

    def clear(self, db: Db) -> None:
        super().clear(db)
        db.execute("DELETE FROM {p}tf_search_fts" if db.dialect is Dialect.SQLITE else "DELETE FROM {p}tf_search_terms")

    def apply(self, batch: Batch, event: Event, position: int) -> None:
        if (customer_id := erased_customer(event)) is not None:
            self._erase(batch, customer_id)
            return
        docs: list[tuple[str, str, bool]] = []
        if isinstance(event, Ticket.Opened):
            batch.put(TICKET_CUSTOMERS, {"ticket_id": uuid_text(event.originator_id), "customer_id": uid(event.requester_id)})
            docs.append(("subject", event.subject, True))
            if event.description:
                docs.append(("description", event.description, True))
        elif isinstance(event, Ticket.Interaction):
            docs.append((event.kind.value, event.body, event.public))
        elif isinstance(event, Ticket.WorkLogged):
            docs.append(("work", f"{event.action}\n{event.result}".strip(), False))
        pending: list[dict[str, Any]] = batch.__dict__.setdefault("search_docs", [])
        for kind, text, public in docs:
            row = {
                "doc_id": f"{event.originator_id}:{event.originator_version}:{kind}",
                "ticket_id": uuid_text(event.originator_id),
                "kind": kind,
                "public": int(public),
                "occurred_at": ts(event.occurred_at),
                "position": position,
                "text": text,
            }
            batch.put(DOCS, row)
            pending.append(row)

    @staticmethod
    def _erase(batch: Batch, customer_id: str) -> None:
        """Overwrite the texts of the customer's tickets and re-index them: no term, bigram or
        snippet of the old text stays findable (or stored: see :meth:`finish`)."""
        batch.flush()
        db = batch.db
        tickets = [r["ticket_id"] for r in db.all(
            "SELECT ticket_id FROM {p}tf_search_ticket_customers WHERE customer_id = ?", (customer_id,))]
        if not tickets:
            return
        ids = set(tickets)
        pending: list[dict[str, Any]] = batch.__dict__.setdefault("search_docs", [])
        pending[:] = [r for r in pending if r["ticket_id"] not in ids]  # indexed below, erased
        overwrite_in(batch, DOCS, ("text",), "ticket_id", tickets)
        sqlite = db.dialect is Dialect.SQLITE
        terms_table = "tf_search_fts" if sqlite else "tf_search_terms"
        for chunk in chunks(tickets):
            marks = ", ".join("?" * len(chunk))
            docs = db.all(f"SELECT doc_id, ticket_id, text FROM {{p}}tf_search_docs WHERE ticket_id IN ({marks})", chunk)
            db.execute(f"DELETE FROM {{p}}{terms_table} WHERE ticket_id IN ({marks})", chunk)
            _index(db, docs)
        batch.__dict__["search_purged"] = True

    def finish(self, batch: Batch) -> None:
        _index(batch.db, batch.__dict__.get("search_docs", []))
        if batch.__dict__.get("search_purged"):
            optimize_fts(batch.db, "tf_search_fts")


def _index(db: Db, rows: list[dict[str, Any]]) -> None:
    if db.dialect is Dialect.SQLITE:
        db.executemany(
            "INSERT INTO {p}tf_search_fts (terms, doc_id, ticket_id) VALUES (?, ?, ?)",
            [(index_terms(r["text"]), r["doc_id"], r["ticket_id"]) for r in rows],
        )
    else:
        db.executemany(
            "INSERT INTO {p}tf_search_terms (doc_id, ticket_id, terms) VALUES (?, ?, to_tsvector('simple', ?))"
            " ON CONFLICT (doc_id) DO NOTHING",
            [(r["doc_id"], r["ticket_id"], index_terms(r["text"])) for r in rows],
        )


def _snippet(text: str, query: str) -> str:
    flat = " ".join(text.split())
    needle = next((w for w in query.split() if w and w.lower() in flat.lower()), "")
    at = flat.lower().find(needle.lower()) if needle else 0
    start = max(0, at - SNIPPET // 3)
    piece = flat[start : start + SNIPPET]
    return ("…" if start else "") + piece + ("…" if start + SNIPPET < len(flat) else "")


def search(db: Db, text: str, *, limit: int = 20, include_internal: bool = True) -> list[dict[str, Any]]:
    """Tickets matching every term of ``text``, best first, with the best matching snippet."""
    query = parse_query(text)
    if query.empty:
        return []
    visibility = "" if include_internal else " AND d.public = 1"
    if db.dialect is Dialect.SQLITE:
        sql = (
            "SELECT d.ticket_id, d.kind, d.text, d.occurred_at, bm25(tf_search_fts) AS score"
            " FROM {p}tf_search_fts JOIN {p}tf_search_docs d ON d.doc_id = tf_search_fts.doc_id"
            f" WHERE tf_search_fts MATCH ?{visibility} ORDER BY score LIMIT ?"
        )
        params: tuple[Any, ...] = (query.fts5(), limit * 5)
    else:
        sql = (
            "SELECT d.ticket_id, d.kind, d.text, d.occurred_at, -ts_rank(t.terms, q) AS score"
            " FROM {p}tf_search_terms t JOIN {p}tf_search_docs d ON d.doc_id = t.doc_id,"
            " to_tsquery('simple', ?) q"
            f" WHERE t.terms @@ q{visibility} ORDER BY score LIMIT ?"
        )
        params = (query.tsquery(), limit * 5)
    hits: dict[str, dict[str, Any]] = {}
    for row in db.all(sql, params):
        if row["ticket_id"] not in hits:
            hits[row["ticket_id"]] = {
                "ticket_id": row["ticket_id"],
                "kind": row["kind"],
                "occurred_at": row["occurred_at"],
                "snippet": _snippet(row["text"], text),
            }
        if len(hits) == limit:
            break
    return list(hits.values())
