"""Rejected CSV rows, kept with their file, line, raw text and reason."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api import reads
from api.deps import OffsetQuery, ReaderDep
from api.schemas import READ_ERRORS

router = APIRouter(prefix="/api/ingest", tags=["ingest"], responses=READ_ERRORS)


class RejectedRow(BaseModel):
    id: int
    file_name: str
    line: int
    raw: str
    reason: str
    event_id: str | None
    channel: str
    received_at: datetime


class Rejections(BaseModel):
    total: int
    total_exact: bool = Field(
        True,
        description="false when the total is a lower bound: one file's rejections are counted up to "
        f"{reads.REJECTION_COUNT_LIMIT:,}",
    )
    rejections: list[RejectedRow]


@router.get("/rejections", response_model=Rejections)
async def rejections(
    conn: ReaderDep,
    file_name: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: OffsetQuery = 0,
) -> dict:
    """Newest files first, in line order within a file."""
    return await reads.rejection_page(conn, file_name, limit, offset)
