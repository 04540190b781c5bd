"""Pipeline status: how far landing, dedup and scoring have got, which rules the scores reflect, and which
deliveries were set aside because a step failed on them."""

from __future__ import annotations

from fastapi import APIRouter

from api import reads
from api.deps import ReaderDep
from api.schemas import READ_ERRORS, PipelineStatus

router = APIRouter(prefix="/api/pipeline", tags=["pipeline"], responses=READ_ERRORS)
QUARANTINED_SHOWN = 5


@router.get("/status", response_model=PipelineStatus)
async def pipeline_status(conn: ReaderDep) -> dict:
    return await reads.pipeline_status(conn, QUARANTINED_SHOWN)
