"""Reading scores: the leaderboard, the lead list, one lead, and the history that explains its score."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query

from api import reads
from api.deps import OffsetQuery, ReaderDep
from api.errors import field_error
from api.schemas import READ_ERRORS, LeadDetail, Leaderboard, LeadHistory, LeadPage, Tier, error_responses

router = APIRouter(prefix="/api", tags=["leads"], responses=READ_ERRORS)


class SortBy(StrEnum):
    score = "score"
    last_event_at = "last_event_at"
    name = "name"
    company = "company"
    email = "email"


class Order(StrEnum):
    asc = "asc"
    desc = "desc"


def stored_lead_key(raw: str) -> str:
    """A lead key as stored (SPEC §3): an email trimmed and lower-cased, as every channel stores it, so
    /api/leads/Ann@Acme.io finds ann@acme.io; an `id:` key as given, since external ids keep their case."""
    return raw if raw.startswith("id:") else raw.strip().lower()


@router.get("/leaderboard", response_model=Leaderboard)
async def leaderboard(conn: ReaderDep, limit: Annotated[int, Query(ge=1, le=1000)] = 10) -> dict:
    return await reads.leaderboard(conn, limit)


@router.get("/leads", response_model=LeadPage)
async def list_leads(
    conn: ReaderDep,
    company: str | None = None,
    tier: Tier | None = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    sort_by: SortBy = SortBy.score,
    order: Order = Order.desc,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: OffsetQuery = 0,
    cursor: Annotated[
        str | None,
        Query(
            max_length=4000, description="next_cursor of the previous page (same filters and sort); offset is ignored"
        ),
    ] = None,
) -> dict:
    lead_filter = reads.LeadFilter(company=company, tier=tier, search=search)
    return await reads.lead_page(conn, lead_filter, sort_by.value, order.value, limit, offset, cursor)


@router.get("/leads/{lead_key}", response_model=LeadDetail, responses=error_responses(404))
async def lead_detail(lead_key: str, conn: ReaderDep) -> dict:
    lead = await reads.lead_detail(conn, stored_lead_key(lead_key))
    if lead is None:
        raise field_error(404, "lead_key", f"no scored lead {lead_key!r}")
    return lead


@router.get("/leads/{lead_key}/history", response_model=LeadHistory, responses=error_responses(404))
async def lead_history(
    lead_key: str,
    conn: ReaderDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: OffsetQuery = 0,
) -> dict:
    history = await reads.lead_history(conn, stored_lead_key(lead_key), limit, offset)
    if history is None:
        raise field_error(404, "lead_key", f"no scored lead {lead_key!r}")
    return history
