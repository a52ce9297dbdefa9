"""``POST /api/v1/imports``: another desk's history over HTTP, for integrations.

The one place a request may say when things happened (``occurred_at``) for a whole batch; only a
token granted the ``import`` permission may post here. The batch is recorded as imported facts by
:mod:`ticketflow.batch_import`: idempotent by source ids, a case written whole or rejected whole.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.deps import PrincipalDep, ServicesDep
from api.problems import responses
from ticketflow.batch_import import MAX_ROWS, record_batch
from ticketflow.batch_snapshots import record_snapshots
from ticketflow.commands.base import Name
from ticketflow.domain.values import Channel

router = APIRouter(prefix="/api/v1", tags=["imports"])

BATCH_EXAMPLE: dict[str, Any] = {
    "source": "servicenow",
    "events": [
        {"case_id": "INC0012345", "event_id": "1", "kind": "opened", "occurred_at": "2016-03-01T09:00:00+08:00",
         "subject": "打印机无法连接", "customer_id": "0b1c6f4e-3c4d-5b6a-9e8f-1a2b3c4d5e6f", "priority": "high"},
        {"case_id": "INC0012345", "event_id": "2", "kind": "assignee", "occurred_at": "2016-03-01T09:05:00+08:00",
         "assignee_id": "li.wei"},
        {"case_id": "INC0012345", "event_id": "3", "kind": "status", "occurred_at": "2016-03-01T10:00:00+08:00",
         "status": "solved", "actor_id": "li.wei"},
    ],
}


SNAPSHOT_EXAMPLE: dict[str, Any] = {
    "source": "servicenow",
    "snapshots": [
        {"case_id": "INC0012345", "sequence": 0, "occurred_at": "2016-03-01T09:00:00+08:00", "status": "new",
         "subject": "打印机无法连接", "customer_id": "0b1c6f4e-3c4d-5b6a-9e8f-1a2b3c4d5e6f", "priority": "high",
         "assignee_id": "li.wei", "source_counters": {"reassignment_count": 0, "reopen_count": 0}},
        {"case_id": "INC0012345", "sequence": 1, "occurred_at": "2016-03-01T10:00:00+08:00", "status": "solved",
         "priority": "high", "assignee_id": "li.wei", "actor_id": "li.wei",
         "source_counters": {"reassignment_count": 0, "reopen_count": 0}},
    ],
}


class ImportBatch(BaseModel):
    """A batch of another desk's history from one source system: event rows or snapshot rows."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [BATCH_EXAMPLE, SNAPSHOT_EXAMPLE]})

    source: Name = Field(description="The source system (e.g. `servicenow`): case ids are unique within it.")
    snapshots: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_ROWS, description=(
        "Snapshot rows instead of `events` (one row per update of a case, each the case's whole state after it: "
        "ServiceNow incident history, Jira or Zendesk exports): `{case_id, snapshot_id?, sequence?, occurred_at, "
        "actor_id?, status, team_id?, assignee_id?, priority?, category?, source_counters?}`, the first snapshot of a "
        "case new to the desk also `subject`, `customer_id` (and optionally `description`, `channel`, "
        "`ticket_type`). A case's snapshots are ordered by `sequence` then time and diffed as `ticketflow import` "
        "does: each changed field is recorded as an imported fact; a case the desk holds already is continued "
        "from its state (its snapshots up to its latest time are taken as recorded). Idempotent by "
        "`snapshot_id` (else `sequence`, else the row's content)."))
    events: list[dict[str, Any]] = Field(default_factory=list, max_length=MAX_ROWS, description=(
        "Rows `{case_id, event_id?, kind, occurred_at, actor_id?, ...values}`; kind is opened (subject, customer_id, "
        "team_id?, priority?, category?, channel?, ticket_type?, description?), status (status, reason?), team "
        "(team_id; none clears the group), assignee (assignee_id; none clears it), priority (priority), category "
        "(category), reply (body, direction? outbound|inbound) or note (body). A row that does not fit is rejected "
        "with its index, and so is the rest of its case. `placement` (team_id and assignee_id together) and "
        "`counters` (source_counters alone) are accepted too."))

    @model_validator(mode="after")
    def _one_shape(self) -> ImportBatch:
        if bool(self.events) == bool(self.snapshots):
            raise ValueError("a batch holds rows: either events or snapshots (not both)")
        return self


class RejectOut(BaseModel):
    row: int = Field(description="The row's index in `events` or `snapshots` (from 0).")
    case_id: str | None
    reason: str


IMPORT_OUT_EXAMPLE: dict[str, Any] = {
    "counts": {"cases": 2, "events": 9, "recorded": 3, "rejected": 6}, "written": 3,
    "tickets": {"INC0012345": "b17c2ede-63fe-5b62-aefc-7cc7b42333e4"},
    "rejects": [{"row": 3, "case_id": "INC0012346", "reason": "case not written: row 4 was rejected"},
                {"row": 4, "case_id": "INC0012346", "reason": "occurred_at: Input should be a valid datetime"}],
    "position": 1024,
}


class ImportOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [IMPORT_OUT_EXAMPLE]})

    counts: dict[str, int] = Field(description=(
        "`cases`, `events` (rows received, events or snapshots), `recorded` (rows now in the desk's history) and "
        "`rejected`: "
        "the same every time the same batch is posted."))
    written: int = Field(description="Events this request wrote (0 when the batch was recorded before).")
    tickets: dict[str, str] = Field(description="Each recorded case's ticket id.")
    rejects: list[RejectOut]
    position: int = Field(description="The log position after the batch (pass as `min_position` to read it).")


@router.post("/imports", summary="Import a batch of historical events or snapshots (another desk's history)",
             response_model=ImportOut, responses=responses(403, 413, 422))
def import_batch(
    body: ImportBatch, svc: ServicesDep, principal: PrincipalDep,
    x_correlation_id: Annotated[str | None, Header()] = None,
) -> Any:
    """Records each case's events (or the changes between its snapshots) as imported facts at their own times
    (business time), marked imported. Posting the same batch again writes nothing and answers the same `counts`. Needs the `import` permission."""
    caller = principal.caller(Channel.IMPORT, (x_correlation_id or f"import:{body.source}")[:100])
    if body.snapshots:
        result = record_snapshots(svc.desk, body.source, body.snapshots, caller)
    else:
        result = record_batch(svc.desk, body.source, body.events, caller)
    return {
        "counts": result.counts(), "written": result.written,
        "tickets": {case: str(ticket) for case, ticket in result.tickets.items()},
        "rejects": [{"row": r.row, "case_id": r.case_id, "reason": r.reason} for r in result.rejects],
        "position": svc.desk.log_position(),
    }
