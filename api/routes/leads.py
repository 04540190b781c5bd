"""Reading scores: the leaderboard, the lead list, one lead, and the history that explains its score."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import text

from api.deps import ConnDep, OffsetQuery
from api.errors import field_error
from api.schemas import LeadDetail, Leaderboard, LeadHistory, LeadPage, Tier

router = APIRouter(prefix="/api", tags=["leads"])

_LEAD_COLUMNS = "lead_key, email, name, company, score, tier, last_event_at"


class SortBy(StrEnum):
    score = "score"
    last_event_at = "last_event_at"
    name = "name"
    company = "company"
    email = "email"


class Order(StrEnum):
    asc = "asc"
    desc = "desc"


@router.get("/leaderboard", response_model=Leaderboard)
def leaderboard(conn: ConnDep, limit: Annotated[int, Query(ge=1, le=1000)] = 10) -> dict:
    rows = conn.execute(
        text(f"select {_LEAD_COLUMNS}, as_of from leaderboard order by score desc, lead_key limit :limit"),
        {"limit": limit},
    ).mappings()
    leads = [{**row, "rank": rank} for rank, row in enumerate(rows, start=1)]
    return {"as_of": max((lead["as_of"] for lead in leads), default=None), "leads": leads}


@router.get("/leads", response_model=LeadPage)
def list_leads(
    conn: ConnDep,
    company: str | None = None,
    tier: Tier | None = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
    sort_by: SortBy = SortBy.score,
    order: Order = Order.desc,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: OffsetQuery = 0,
) -> dict:
    where, params = ["true"], {"limit": limit, "offset": offset}
    if company is not None:
        where.append("lower(company) = lower(:company)")
        params["company"] = company
    if tier is not None:
        where.append("tier = :tier")
        params["tier"] = tier
    if search:
        where.append("(lead_key ilike :search or name ilike :search or company ilike :search)")
        params["search"] = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    # sort_by and order are enums, so only whitelisted words reach the SQL text.
    nulls = "nulls last" if order is Order.desc else "nulls first"
    order_by = f"{sort_by.value} {order.value} {nulls}, lead_key"
    condition = " and ".join(where)
    total = conn.execute(text(f"select count(*) from leaderboard where {condition}"), params).scalar_one()
    rows = conn.execute(
        text(
            f"select {_LEAD_COLUMNS} from leaderboard where {condition} order by {order_by} limit :limit offset :offset"
        ),
        params,
    ).mappings()
    return {"total": total, "limit": limit, "offset": offset, "leads": list(rows)}


@router.get("/leads/{lead_key}", response_model=LeadDetail)
def lead_detail(lead_key: str, conn: ConnDep) -> dict:
    lead = (
        conn.execute(
            text(
                f"select {_LEAD_COLUMNS}, score_at_last_event, first_event_at, event_count as events, as_of "
                "from leaderboard where lead_key = :lead_key"
            ),
            {"lead_key": lead_key},
        )
        .mappings()
        .first()
    )
    if lead is None:
        raise field_error(404, "lead_key", f"no scored lead {lead_key!r}")
    by_type = conn.execute(
        text(
            "select event_type, events, points from lead_event_stats "
            "where lead_key = :lead_key and events > 0 order by points desc, event_type"
        ),
        {"lead_key": lead_key},
    ).mappings()
    return {**lead, "points_by_event_type": list(by_type)}


@router.get("/leads/{lead_key}/history", response_model=LeadHistory)
def lead_history(
    lead_key: str,
    conn: ConnDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: OffsetQuery = 0,
) -> dict:
    params = {"lead_key": lead_key, "limit": limit, "offset": offset}
    total = conn.execute(text("select count(*) from score_history where lead_key = :lead_key"), params).scalar_one()
    if total == 0:
        raise field_error(404, "lead_key", f"no scored lead {lead_key!r}")
    rows = conn.execute(
        text(
            "select event_id, event_type, event_time, points, decay, change, score_after from score_history "
            "where lead_key = :lead_key order by event_time desc, event_id desc limit :limit offset :offset"
        ),
        params,
    ).mappings()
    return {"lead_key": lead_key, "total": total, "history": list(rows)}
