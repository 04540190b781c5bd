"""Ingestion over REST: one event or a JSON batch, all or nothing, acknowledged after commit."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import SettingsDep
from api.errors import ClientError, field_error
from api.schemas import BatchAccepted, EventAccepted, EventIn
from leadscore_pipeline.db.engine import get_engine
from leadscore_pipeline.ingest.accept import RejectedEvents, accept_events
from leadscore_pipeline.settings import Settings

router = APIRouter(prefix="/api/events", tags=["events"])

_ONE_EVENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": EventIn.model_json_schema()}},
    }
}
_BATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "array", "items": EventIn.model_json_schema(), "maxItems": 2000}}
        },
    }
}


async def _json_body(request: Request, max_bytes: int) -> Any:
    body = await request.body()
    if len(body) > max_bytes:
        raise field_error(413, "body", f"larger than {max_bytes} bytes ({len(body)} bytes)")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise field_error(422, "body", f"not valid JSON: {exc}") from None


def _land(records: list[Any], settings: Settings, *, single: bool) -> list[str]:
    try:
        # The transaction commits when this block ends: only then is the request acknowledged.
        with get_engine().begin() as conn:
            return accept_events(conn.connection.driver_connection, records, channel="api", settings=settings)
    except RejectedEvents as rejected:
        raise ClientError(422, [e.as_dict(with_index=not single) for e in rejected.errors]) from None


@router.post("", status_code=202, response_model=EventAccepted, openapi_extra=_ONE_EVENT_BODY)
async def post_event(request: Request, settings: SettingsDep) -> EventAccepted:
    record = await _json_body(request, settings.max_event_bytes)
    if not isinstance(record, dict):
        raise field_error(422, "body", "must be a JSON object (one event); send arrays to /api/events/batch")
    (event_id,) = await run_in_threadpool(_land, [record], settings, single=True)
    return EventAccepted(event_id=event_id)


@router.post("/batch", status_code=202, response_model=BatchAccepted, openapi_extra=_BATCH_BODY)
async def post_batch(request: Request, settings: SettingsDep) -> BatchAccepted:
    body = await _json_body(request, settings.max_batch_bytes)
    records = body.get("events") if isinstance(body, dict) else body
    if not isinstance(records, list):
        raise field_error(422, "body", 'must be a JSON array of events or {"events": [...]}')
    if len(records) > settings.max_batch_events:
        raise field_error(413, "body", f"at most {settings.max_batch_events} events per batch, got {len(records)}")
    if not records:
        raise field_error(422, "body", "the batch is empty")
    event_ids = await run_in_threadpool(_land, records, settings, single=False)
    return BatchAccepted(accepted=len(event_ids), event_ids=event_ids)
