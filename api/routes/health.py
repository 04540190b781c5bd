"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from leadscore_pipeline.db.engine import get_engine
from leadscore_pipeline.db.migrate import current_revision, head_revision

router = APIRouter(tags=["health"])


class Alive(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "migrating", "unavailable"]
    schema_: str | None = Field(None, alias="schema", description="the database's migration revision")
    expected_schema: str | None = Field(None, description="the revision this code needs")
    database: str | None = Field(None, description="why the database could not be reached")


@router.get("/healthz", response_model=Alive)
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness, "description": "not ready"}})
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
