"""Rejected CSV rows, kept with their file, line, raw text and reason."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import text

from api.deps import ConnDep, OffsetQuery

router = APIRouter(prefix="/api/ingest", tags=["ingest"])


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
    rejections: list[RejectedRow]


@router.get("/rejections", response_model=Rejections)
def rejections(
    conn: ConnDep,
    file_name: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: OffsetQuery = 0,
) -> dict:
    """Newest files first, in line order within a file."""
    where = "where file_name = :file_name" if file_name is not None else ""
    params = {"file_name": file_name, "limit": limit, "offset": offset}
    total = conn.execute(text(f"select count(*) from ingest_rejections {where}"), params).scalar_one()
    rows = conn.execute(
        text(f"select * from ingest_rejections {where} order by received_at desc, file_name, line, id "
             "limit :limit offset :offset"),
        params,
    ).mappings()  # fmt: skip
    return {"total": total, "rejections": list(rows)}
