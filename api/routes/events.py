"""Ingestion over REST: one event or a JSON batch, all or nothing, acknowledged after commit."""

from __future__ import annotations

import json
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, File, Request, UploadFile
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.auth import IngestKeyDep
from api.deps import SettingsDep
from api.errors import ClientError, field_error
from api.group_commit import GroupCommit
from api.schemas import BatchAccepted, EventAccepted, EventIn
from leadscore_pipeline.db.engine import get_engine
from leadscore_pipeline.ingest.accept import RejectedEvents, accept_events
from leadscore_pipeline.ingest.csv_batches import CsvResult, UnreadableCsv, land_csv
from leadscore_pipeline.settings import Settings

router = APIRouter(prefix="/api/events", tags=["events"], dependencies=[IngestKeyDep])

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


def _land_batch(records: list[Any], settings: Settings) -> list[str]:
    try:
        # The transaction commits when this block ends: only then is the request acknowledged.
        with get_engine().begin() as conn:
            return accept_events(conn.connection.driver_connection, records, channel="batch", settings=settings)
    except RejectedEvents as rejected:
        raise ClientError(422, [e.as_dict() for e in rejected.errors]) from None


def group_commit(request: Request, settings: Settings) -> GroupCommit:
    if getattr(request.app.state, "group_commit", None) is None:
        request.app.state.group_commit = GroupCommit(settings)
    return request.app.state.group_commit


@router.post("", status_code=202, response_model=EventAccepted, openapi_extra=_ONE_EVENT_BODY)
async def post_event(request: Request, settings: SettingsDep) -> EventAccepted:
    record = await _json_body(request, settings.max_event_bytes)
    if not isinstance(record, dict):
        raise field_error(422, "body", "must be a JSON object (one event); send arrays to /api/events/batch")
    try:
        event_id = await group_commit(request, settings).land(record)
    except RejectedEvents as rejected:
        raise ClientError(422, [e.as_dict(with_index=False) for e in rejected.errors]) from None
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
    event_ids = await run_in_threadpool(_land_batch, records, settings)
    return BatchAccepted(accepted=len(event_ids), event_ids=event_ids)


class CsvAccepted(BaseModel):
    accepted: int
    rejected: int
    errors: list[dict[str, object]]


def _land_upload(stream: BinaryIO, file_name: str, settings: Settings) -> CsvResult:
    try:
        with get_engine().begin() as conn:
            return land_csv(
                conn.connection.driver_connection, stream, file_name=file_name, channel="csv", settings=settings
            )
    except UnreadableCsv as exc:
        raise field_error(422, "file", str(exc)) from None


@router.post("/upload", status_code=202, response_model=CsvAccepted)
async def upload_csv(
    settings: SettingsDep,
    file: Annotated[
        UploadFile, File(description="CSV with columns event_id,event_type,lead_id,email,timestamp,metadata")
    ],
) -> CsvResult:
    """Good rows land, bad rows are kept (GET /api/ingest/rejections); an unreadable file lands nothing."""
    # The upload is spooled to disk by the server; land_csv streams it in chunks.
    return await run_in_threadpool(_land_upload, file.file, file.filename or "upload.csv", settings)
