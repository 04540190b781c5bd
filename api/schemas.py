"""Request and response shapes of the HTTP API (SPEC section 5)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from leadscore_pipeline.ingest.validate import (
    MAX_COMPANY_CHARS,
    MAX_EMAIL_CHARS,
    MAX_EVENT_TYPE_CHARS,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_SOURCE_CHARS,
)

Tier = Literal["cold", "warm", "hot", "qualified"]


class EventIn(BaseModel):
    """One event as a client sends it (documentation only: the body is validated field by field)."""

    event_id: str | None = Field(
        None, max_length=MAX_ID_CHARS, description="no control characters; derived from the content when absent"
    )
    event_type: str = Field(..., max_length=MAX_EVENT_TYPE_CHARS, examples=["PAGE_VIEW"])
    timestamp: str | None = Field(None, description="ISO-8601; no offset means UTC; absent: receive time")
    email: str | None = Field(None, max_length=MAX_EMAIL_CHARS)
    lead_id: str | None = Field(None, max_length=MAX_ID_CHARS, description="the sender's own id for the lead")
    source: str | None = Field(None, max_length=MAX_SOURCE_CHARS)
    name: str | None = Field(None, max_length=MAX_NAME_CHARS)
    company: str | None = Field(None, max_length=MAX_COMPANY_CHARS)
    metadata: dict[str, Any] | None = Field(
        None, description="metadata.name/company/email count against the name/company/email limits; no NUL"
    )


class EventAccepted(BaseModel):
    event_id: str
    status: Literal["accepted"] = "accepted"


class BatchAccepted(BaseModel):
    accepted: int
    event_ids: list[str]


class LeadRow(BaseModel):
    lead_key: str
    email: str | None
    name: str | None
    company: str | None
    score: int
    tier: Tier
    last_event_at: datetime


class RankedLead(LeadRow):
    rank: int


class Leaderboard(BaseModel):
    as_of: datetime | None
    leads: list[RankedLead]


class LeadPage(BaseModel):
    total: int = Field(description="leads matching the filters; a lower bound when total_exact is false")
    total_exact: bool = Field(description="false only for a search matching more than 1,000 leads")
    limit: int
    offset: int
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")
    leads: list[LeadRow]


class EventTypePoints(BaseModel):
    event_type: str
    events: int
    points: int


class LeadDetail(LeadRow):
    score_at_last_event: int
    first_event_at: datetime
    events: int
    as_of: datetime
    points_by_event_type: list[EventTypePoints]


class HistoryRow(BaseModel):
    event_id: str
    event_type: str
    event_time: datetime
    points: int
    decay: int
    change: int
    score_after: int


class LeadHistory(BaseModel):
    lead_key: str
    total: int
    history: list[HistoryRow]


class QuarantinedDelivery(BaseModel):
    seq: int
    event_id: str
    lead_key: str = Field(description="cut short to 200 characters")
    step: str = Field(description="the pipeline step that failed on it: dedup or score")
    reason: str = Field(description="the database's error, cut short to 1,000 characters")
    quarantined_at: datetime


class PipelineStatus(BaseModel):
    landed_through: int
    deduped_through: int
    scored_through: int
    lag: int
    rules_version: int
    scored_rules_version: int
    last_microbatch_at: datetime | None
    last_replay_at: datetime | None
    last_decay_at: datetime | None
    quarantined: int = Field(description="deliveries set aside because a pipeline step failed on their data")
    quarantined_latest: list[QuarantinedDelivery] = Field(description="the latest few, newest first")
