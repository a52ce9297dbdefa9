"""The tamper-evident log: re-verify the sealed event store."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import ServicesDep
from api.problems import responses
from projections.integrity.sealer import open_seal_store
from projections.integrity.verifier import verify_store

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])
VERIFY_EXAMPLE = {
    "ok": False, "events": 1204, "sealed": 1200, "unsealed": 4, "unsigned": 0, "checkpoints": 2, "snapshots": 17,
    "first_problem": "event at position 17 (6457ba06-ac25-5a5e-8355-4547dfa4b853 v3): stored bytes do not match"
                     " the sealed hash",
    "problems": ["event at position 17 (6457ba06-ac25-5a5e-8355-4547dfa4b853 v3): stored bytes do not match"
                 " the sealed hash"],
}


@router.get("/verify", summary="Recompute hashes, chains, tree roots and signatures of the event log",
            responses={**responses(401, 403, 422, 503),
                       200: {"content": {"application/json": {"example": VERIFY_EXAMPLE}}}})
def verify(
    svc: ServicesDep,
    ticket_id: Annotated[UUID | None, Query(description="Verify one ticket's (or customer's) history only.")] = None,
) -> dict[str, Any]:
    """`ok` false names the first bad event (position, stream, version), checkpoint or snapshot in `first_problem`.

    Problems name streams of every team, so this needs a role that sees every team (auditor, compliance, admin).
    """
    store = open_seal_store(svc.desk)
    try:
        return verify_store(svc.desk, store, ticket_id).as_dict()
    finally:
        store.datastore.close()  # type: ignore[attr-defined]
