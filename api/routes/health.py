"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from leadscore_pipeline.db.engine import get_engine
from leadscore_pipeline.db.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz")
def readyz() -> JSONResponse:
    try:
        current = current_revision(get_engine())
    except Exception as exc:  # any failure to reach the database means "not ready", not a crash
        return JSONResponse(status_code=503, content={"status": "unavailable", "database": str(exc)[:200]})
    head = head_revision()
    ready = current == head
    return JSONResponse(
        status_code=200 if ready else 503,
        content={"status": "ready" if ready else "migrating", "schema": current, "expected_schema": head},
    )
