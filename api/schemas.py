"""Request and response shapes of the HTTP API (SPEC section 5)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field

from leadscore_pipeline.ingest.validate import (
    MAX_COMPANY_CHARS,
    MAX_EMAIL_CHARS,
    MAX_EVENT_TYPE_CHARS,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_SOURCE_CHARS,
)

Tier = Literal["cold", "warm", "hot", "qualified"]


def no_coercion_to_int(value: Any) -> Any:
    if isinstance(value, bool | str):  # lax pydantic would take true as 1 and "7" as 7
        raise ValueError(f"must be a JSON integer, not {'a boolean' if isinstance(value, bool) else 'a string'}")
    return value


# JSON Schema's integer, exactly: 7 and 7.0 are integers; 7.5, true and "7" are not.
JsonInt = Annotated[int, BeforeValidator(no_coercion_to_int)]


class ErrorItem(BaseModel):
    field: str = Field(description="what is at fault: a body field, `query.<name>`, a header, `body`, `path`, ...")
    error: str = Field(description="why, in words")
    index: int | None = Field(None, description="in a batch: the position of the event at fault")


class ErrorResponse(BaseModel):
    """The one shape of every error the API answers, framework errors included."""

    detail: list[ErrorItem]


# What each error status means; a route declares the ones it can answer through error_responses().
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "the request could not be read (e.g. a malformed multipart body)",
    401: "the bearer token or the webhook signature is missing or wrong",
    403: "the request is not allowed from where it came",
    404: "nothing is found under this path",
    409: "the request conflicts with the current state",
    413: "the body is larger than allowed",
    415: "the body's media type is not accepted here",
    422: "a field is invalid: each error names it and says why",
    429: "too many requests: retry after the Retry-After header's seconds",
    503: "something this request needs (the database, Dagster, a setting) is unavailable; retry later",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route or router: each status documented with the API's error shape."""
    return {status: {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[status]} for status in statuses}


def json_error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """error_responses() for a route whose own answer is not JSON (the event stream): given as a reference, since
    FastAPI files a `model` under the route's media type, and these errors are JSON."""
    schema = {"$ref": f"#/components/schemas/{ErrorResponse.__name__}"}
    return {
        status: {"description": ERROR_DESCRIPTIONS[status], "content": {"application/json": {"schema": schema}}}
        for status in statuses
    }


# The statuses each kind of route can answer besides its own, in one place: a guard added to a kind of route
# (a key, a rate limit, a media-type check) adds its status on that line.
# A Host off the allow-list (api/cross_site.py), a parameter holding NUL (deps.reject_unstorable_parameters).
EVERY_ROUTE_ERRORS = error_responses(400, 422)
READ_ERRORS = error_responses(401, 429, 503)  # the read key and the read rate limit when set, the database
STREAM_ERRORS = json_error_responses(400, 401, 422, 429)  # no 503: the stream ends and its client reconnects
# Besides the key, the body cap and the database: a foreign Origin (403), a body not JSON (415), the rate limit.
INGEST_ERRORS = error_responses(401, 403, 413, 415, 429, 503)
WEBHOOK_ERRORS = error_responses(401, 403, 413, 415, 429, 503)  # the signature where the ingest key would be
ADMIN_ERRORS = error_responses(401, 403, 415, 503)  # the admin token (503 when none is configured), Origin, body type


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


RESOLVED_FROM = Field(
    None,
    description="the key asked for, when it was joined into another lead (SPEC §3): lead_key is that lead's",
    examples=["id:crm-555"],
)


class LeadDetail(LeadRow):
    score_at_last_event: int
    first_event_at: datetime
    events: int
    as_of: datetime
    points_by_event_type: list[EventTypePoints]
    resolved_from: str | None = RESOLVED_FROM


class HistoryRow(BaseModel):
    event_id: str
    event_type: str
    event_time: datetime
    points: int
    decay: int
    change: int
    score_after: int
    sent_as: str | None = Field(
        None, description="the key the event was sent under, when another lead's joined into this one"
    )
    joins: list[str] = Field(
        default_factory=list, description="keys this event joined into the lead (an id seen with its email, ...)"
    )
    note: str | None = Field(None, description='why the event scored 0 when its rule has points: "daily limit reached"')


class LeadHistory(BaseModel):
    lead_key: str
    total: int
    history: list[HistoryRow]
    resolved_from: str | None = RESOLVED_FROM
    until: datetime | None = Field(None, description="the `until` asked for: only events at or before it")
    score_at_until: int | None = Field(
        None, description="with `until`: the lead's score then (its last score_after by then, decayed to `until`)"
    )


class JoinedEmail(BaseModel):
    email: str
    events: int = Field(description="events carrying this email")
    first_event_at: datetime
    why: str = Field(examples=["the lead's key: the email of its earliest event"])


class LinkedId(BaseModel):
    external_id: str
    emails: int = Field(description="distinct emails this id has been seen with")
    why: str = Field(examples=["seen with 1 email, at most LEADSCORE_MAX_EMAILS_PER_ID (1): joined"])


class LeadIdentities(BaseModel):
    lead_key: str
    resolved_from: str | None = RESOLVED_FROM
    max_emails_per_id: int = Field(description="the merge protection: LEADSCORE_MAX_EMAILS_PER_ID")
    emails: list[JoinedEmail]
    external_ids: list[LinkedId] = Field(description="ids joined into the lead")
    ambiguous_ids: list[LinkedId] = Field(description="ids seen with the lead's emails but with too many: left apart")


class CurvePoint(BaseModel):
    at: datetime
    score: int
    kind: Literal["event", "decay"] = Field(description="after an event, or a UTC midnight's decay step")


class ScoreCurve(BaseModel):
    lead_key: str
    as_of: datetime = Field(description="the curve runs to here: `until`, or now")
    truncated: bool = Field(description="true when only the latest events are drawn (see `events`)")
    events: int = Field(description="events drawn")
    points: list[CurvePoint]


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
