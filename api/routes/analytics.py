"""Analytics: summary numbers, companies, event trends, event types and conversion drivers."""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api import reads
from api.deps import ReaderDep
from api.schemas import READ_ERRORS
from leadscore_pipeline import clock

router = APIRouter(prefix="/api/analytics", tags=["analytics"], responses=READ_ERRORS)


class Summary(BaseModel):
    leads: int
    events: int
    duplicates: int
    conflicts: int
    rejections: int
    active_rules: int
    total_points: int
    tiers: dict[str, int]


class Company(BaseModel):
    company: str
    leads: int
    average_score: float
    total_score: int


class Companies(BaseModel):
    companies: list[Company]


class TrendRange(StrEnum):
    week = "7d"
    month = "30d"
    half_year = "6m"
    year = "1y"


class TrendPoint(BaseModel):
    period: date
    events: int
    by_type: dict[str, int]


class Trends(BaseModel):
    range: TrendRange
    unit: str
    points: list[TrendPoint]


class EventTypeStats(BaseModel):
    event_type: str
    events: int
    unique_leads: int
    points: int


class Driver(BaseModel):
    event_type: str
    conversions: int


class EventTypes(BaseModel):
    event_types: list[EventTypeStats]
    conversion_drivers: list[Driver]


@router.get("/summary", response_model=Summary)
async def summary(conn: ReaderDep) -> dict:
    return await reads.summary(conn)


@router.get("/companies", response_model=Companies)
async def companies(conn: ReaderDep, limit: Annotated[int, Query(ge=1, le=1000)] = 10) -> dict:
    return {"companies": await reads.companies(conn, limit)}


def _periods(trend_range: TrendRange, today: date) -> tuple[str, list[date]]:
    if trend_range in (TrendRange.week, TrendRange.month):
        days = 7 if trend_range is TrendRange.week else 30
        return "day", [today - timedelta(days=offset) for offset in reversed(range(days))]
    months = 6 if trend_range is TrendRange.half_year else 12
    first = today.replace(day=1)
    periods = []
    for _ in range(months):
        periods.append(first)
        first = (first - timedelta(days=1)).replace(day=1)
    return "month", list(reversed(periods))


@router.get("/trends", response_model=Trends)
async def trends(conn: ReaderDep, range: TrendRange = TrendRange.week) -> dict:
    """Events per UTC day (7d, 30d) or month (6m, 1y) by event time, zero-filled, ending today."""
    unit, periods = _periods(range, clock.utc_now().date())
    rows = await reads.events_per_period(conn, unit, periods[0])
    by_period: dict[date, dict[str, int]] = {period: {} for period in periods}
    for row in rows:
        if row["period"] in by_period:
            by_period[row["period"]][row["event_type"]] = row["events"]
    points = [{"period": p, "events": sum(types.values()), "by_type": types} for p, types in by_period.items()]
    return {"range": range, "unit": unit, "points": points}


@router.get("/event-types", response_model=EventTypes)
async def event_types(conn: ReaderDep) -> dict:
    rows = await reads.event_type_totals(conn)
    return {
        "event_types": [row for row in rows if row["events"] > 0],
        "conversion_drivers": sorted(
            ({"event_type": r["event_type"], "conversions": r["conversions"]} for r in rows if r["conversions"] > 0),
            key=lambda driver: (-driver["conversions"], driver["event_type"]),
        ),
    }
