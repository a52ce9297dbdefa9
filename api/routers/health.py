"""Liveness, readiness and Prometheus metrics (no token needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from api import schemas as s
from api.deps import ServicesDep

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is alive", response_model=s.HealthOut)
def healthz() -> Any:
    """Answers 200 while the process runs; it checks nothing else (see `/readyz`)."""
    return {"status": "ok"}


@router.get("/readyz", summary="The store answers; each view's position and lag", response_model=s.ReadyOut,
            responses={503: {"model": s.ReadyOut, "description": "The store does not answer"}})
def readyz(svc: ServicesDep) -> Any:
    """200 when the store answers, with each view's position and how far it lags the log; 503 otherwise."""
    try:
        statuses = svc.read_side.status()
    except Exception:  # noqa: BLE001 - any failure to reach the store means not ready
        return JSONResponse({"ready": False, "log_position": 0, "views": []}, status_code=503)
    log_position = statuses[0].log_position if statuses else svc.desk.log_position()
    return {
        "ready": True,
        "log_position": log_position,
        "views": [{"view": v.name, "position": v.position, "lag": v.lag} for v in statuses],
    }


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
def metrics(svc: ServicesDep) -> Response:
    """Prometheus text format: HTTP requests and their durations, commands, each view's position and lag.
    Needs `metrics:read` unless `TICKETFLOW_METRICS_PUBLIC`."""
    return Response(svc.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")
