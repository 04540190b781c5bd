"""Reading scores: the leaderboard, the lead list, one lead, and the history that explains its score."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query

from api import reads
from api.deps import OffsetQuery, ReaderDep
from api.errors import field_error
from api.schemas import (
    READ_ERRORS,
    LeadDetail,
    Leaderboard,
    LeadHistory,
    LeadIdentities,
    LeadPage,
    Tier,
    error_responses,
)
from leadscore_pipeline.settings import get_settings

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


async def _resolved(conn, lead_key: str) -> tuple[str, str | None]:
    """The lead a key counts for, and the key itself when it was joined into another (SPEC §3)."""
    key = stored_lead_key(lead_key)
    lead = await reads.resolve_lead_key(conn, key)
    return lead, (key if lead != key else None)


@router.get("/leads/{lead_key}", response_model=LeadDetail, responses=error_responses(404))
async def lead_detail(lead_key: str, conn: ReaderDep) -> dict:
    """A joined key (an `id:` key seen with the lead's email, say) answers with the lead it counts for."""
    key, resolved_from = await _resolved(conn, lead_key)
    lead = await reads.lead_detail(conn, key)
    if lead is None:
        raise field_error(404, "lead_key", f"no scored lead {lead_key!r}")
    return {**lead, "resolved_from": resolved_from}


@router.get("/leads/{lead_key}/identities", response_model=LeadIdentities, responses=error_responses(404))
async def lead_identities(lead_key: str, conn: ReaderDep) -> dict:
    """The emails and external ids joined into the lead and why, and the ids seen with its emails that the merge
    protection (LEADSCORE_MAX_EMAILS_PER_ID) leaves apart."""
    key, resolved_from = await _resolved(conn, lead_key)
    identities = await reads.lead_identities(conn, key, get_settings().max_emails_per_id)
    if identities is None:
        raise field_error(404, "lead_key", f"no scored lead {lead_key!r}")
    return {**identities, "resolved_from": resolved_from}


@router.get("/leads/{lead_key}/history", response_model=LeadHistory, responses=error_responses(404))
async def lead_history(
    lead_key: str,
    conn: ReaderDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: OffsetQuery = 0,
) -> dict:
    key, resolved_from = await _resolved(conn, lead_key)
    history = await reads.lead_history(conn, key, limit, offset)
    if history is None:
        raise field_error(404, "lead_key", f"no scored lead {lead_key!r}")
    return {**history, "resolved_from": resolved_from}
