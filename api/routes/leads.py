"""Reading scores: the leaderboard, the lead list, one lead, and the history that explains its score."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

import polars as pl
from fastapi import APIRouter, Query
from pydantic import BeforeValidator

from api import reads
from api.deps import OffsetQuery, ReaderDep, SettingsDep
from api.errors import field_error
from api.schemas import (
    READ_ERRORS,
    LeadDetail,
    Leaderboard,
    LeadHistory,
    LeadIdentities,
    LeadPage,
    ScoreCurve,
    Tier,
    error_responses,
)
from leadscore_pipeline import clock
from leadscore_pipeline.scoring.curve import score_curve
from leadscore_pipeline.scoring.fold import score_at, tier_of, utc_day_of

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


def _iso_only(value: object) -> object:
    # Lax pydantic reads a number as Unix seconds; the documented form is an ISO-8601 date-time.
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?[\d.eE+-]*\s*", value):
        raise ValueError("must be an ISO-8601 date-time such as 2026-11-01T00:00:00Z, not a number")
    return value


Moment = Annotated[datetime, BeforeValidator(_iso_only)]


def _moment(description: str) -> object:
    return Query(
        description=f"{description}; ISO-8601, no offset means UTC (send `+` in an offset as %2B)",
        examples=["2026-11-01T00:00:00Z"],
    )


def _utc(moment: datetime | None, name: str) -> datetime | None:
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first moment a datetime holds
        raise field_error(422, f"query.{name}", "is out of range once moved to UTC") from None


@router.get("/leaderboard", response_model=Leaderboard)
async def leaderboard(
    conn: ReaderDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    as_of: Annotated[
        Moment | None,
        _moment("the leaderboard as it was then: each lead's score after its last event by then, decayed to then"),
    ] = None,
) -> dict:
    moment = _utc(as_of, "as_of")
    if moment is None:
        return await reads.leaderboard(conn, limit)
    rows = await reads.leaderboard_as_of(conn, limit, moment, utc_day_of(moment), settings.scoring)
    leads = [{**row, "tier": tier_of(row["score"], settings.tiers), "rank": n} for n, row in enumerate(rows, 1)]
    return {"as_of": moment, "leads": leads}


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
async def lead_detail(
    lead_key: str,
    conn: ReaderDep,
    settings: SettingsDep,
    as_of: Annotated[Moment | None, _moment("the lead as it was then: the fold of its events by then, decayed")] = None,
) -> dict:
    """A joined key (an `id:` key seen with the lead's email, say) answers with the lead it counts for."""
    key, resolved_from = await _resolved(conn, lead_key)
    moment = _utc(as_of, "as_of")
    if moment is None:
        lead = await reads.lead_detail(conn, key)
        if lead is None:
            raise field_error(404, "lead_key", f"no scored lead {lead_key!r}")
        return {**lead, "resolved_from": resolved_from}
    lead = await reads.lead_as_of(conn, key, moment)
    if lead is None:
        raise field_error(404, "as_of", f"no scored event of lead {lead_key!r} at or before {moment.isoformat()}")
    score = score_at(lead["score_at_last_event"], lead["last_event_at"], moment, settings.scoring)
    return {
        **lead,
        "score": score,
        "tier": tier_of(score, settings.tiers),
        "as_of": moment,
        "resolved_from": resolved_from,
    }


@router.get("/leads/{lead_key}/identities", response_model=LeadIdentities, responses=error_responses(404))
async def lead_identities(lead_key: str, conn: ReaderDep, settings: SettingsDep) -> dict:
    """The emails and external ids joined into the lead and why, and the ids seen with its emails that the merge
    protection (LEADSCORE_MAX_EMAILS_PER_ID) leaves apart."""
    key, resolved_from = await _resolved(conn, lead_key)
    identities = await reads.lead_identities(conn, key, settings.max_emails_per_id)
    if identities is None:
        raise field_error(404, "lead_key", f"no scored lead {lead_key!r}")
    return {**identities, "resolved_from": resolved_from}


@router.get("/leads/{lead_key}/history", response_model=LeadHistory, responses=error_responses(404))
async def lead_history(
    lead_key: str,
    conn: ReaderDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: OffsetQuery = 0,
    until: Annotated[Moment | None, _moment("only the events at or before this moment, and the score then")] = None,
) -> dict:
    key, resolved_from = await _resolved(conn, lead_key)
    moment = _utc(until, "until")
    history = await reads.lead_history(conn, key, limit, offset, moment)
    if history is None:
        field, after = ("lead_key", "") if moment is None else ("until", f" at or before {moment.isoformat()}")
        raise field_error(404, field, f"no scored event of lead {lead_key!r}{after}")
    if moment is not None:
        last = await reads.last_scored_by(conn, key, moment)
        score = score_at(last["score_at_last_event"], last["last_event_at"], moment, settings.scoring)
        history |= {"until": moment, "score_at_until": score}
    return {**history, "resolved_from": resolved_from}


# Events a curve draws at most: the latest ones (a chart holds no more, and the read stays one index range).
CURVE_EVENTS = 1000


@router.get("/leads/{lead_key}/curve", response_model=ScoreCurve, responses=error_responses(404))
async def lead_curve(
    lead_key: str,
    conn: ReaderDep,
    settings: SettingsDep,
    until: Annotated[Moment | None, _moment("draw up to this moment (default: now)")] = None,
) -> dict:
    """The lead's score over time, to draw: after each event, and at each UTC midnight that decays it."""
    key, _ = await _resolved(conn, lead_key)
    moment = _utc(until, "until") or clock.utc_now()
    rows = await reads.recent_scores(conn, key, moment, CURVE_EVENTS + 1)
    if not rows:
        raise field_error(404, "lead_key", f"no scored event of lead {lead_key!r} at or before {moment.isoformat()}")
    drawn = rows[-CURVE_EVENTS:]
    history = pl.DataFrame(drawn, schema={"event_time": pl.Datetime("us", "UTC"), "score_after": pl.Int64})
    curve = score_curve(history, moment, settings.scoring)
    return {
        "lead_key": key,
        "as_of": moment,
        "truncated": len(rows) > CURVE_EVENTS,
        "events": len(drawn),
        "points": curve.to_dicts(),
    }
