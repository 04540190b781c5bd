"""Ingestion over REST: one event or a JSON batch, all or nothing, acknowledged after commit."""

from __future__ import annotations

from typing import Annotated, BinaryIO

from fastapi import APIRouter, File, Request, UploadFile
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.auth import IngestKeyDep
from api.deps import SettingsDep
from api.errors import ClientError, field_error
from api.group_commit import GroupCommit
from api.ingestion import check_batch_size, land_all_or_nothing, parse_json, read_body
from api.schemas import INGEST_ERRORS, BatchAccepted, EventAccepted, EventIn, error_responses
from leadscore_pipeline.db.engine import get_engine
from leadscore_pipeline.ingest.accept import RejectedEvents
from leadscore_pipeline.ingest.csv_batches import CsvResult, UnreadableCsv, land_csv
from leadscore_pipeline.settings import Settings

router = APIRouter(prefix="/api/events", tags=["events"], dependencies=[IngestKeyDep], responses=INGEST_ERRORS)

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


def group_commit(request: Request, settings: Settings) -> GroupCommit:
    if getattr(request.app.state, "group_commit", None) is None:
        request.app.state.group_commit = GroupCommit(settings)
    return request.app.state.group_commit


@router.post("", status_code=202, response_model=EventAccepted, openapi_extra=_ONE_EVENT_BODY)
async def post_event(request: Request, settings: SettingsDep) -> EventAccepted:
    record = parse_json(await read_body(request, settings.max_event_bytes))
    if not isinstance(record, dict):
        raise field_error(422, "body", "must be a JSON object (one event); send arrays to /api/events/batch")
    try:
        event_id = await group_commit(request, settings).land(record)
    except RejectedEvents as rejected:
        raise ClientError(422, [e.as_dict(with_index=False) for e in rejected.errors]) from None
    return EventAccepted(event_id=event_id)


@router.post("/batch", status_code=202, response_model=BatchAccepted, openapi_extra=_BATCH_BODY)
async def post_batch(request: Request, settings: SettingsDep) -> BatchAccepted:
    body = parse_json(await read_body(request, settings.max_batch_bytes))
    records = body.get("events") if isinstance(body, dict) else body
    if not isinstance(records, list):
        raise field_error(422, "body", 'must be a JSON array of events or {"events": [...]}')
    check_batch_size(records, settings)
    event_ids = await run_in_threadpool(land_all_or_nothing, records, "batch", settings)
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


@router.post("/upload", status_code=202, response_model=CsvAccepted, responses=error_responses(400))
async def upload_csv(
    settings: SettingsDep,
    file: Annotated[
        UploadFile, File(description="CSV with columns event_id,event_type,lead_id,email,timestamp,metadata")
    ],
) -> CsvResult:
    """Good rows land, bad rows are kept (GET /api/ingest/rejections); an unreadable file lands nothing."""
    # The upload is spooled to disk by the server; land_csv streams it in chunks.
    return await run_in_threadpool(_land_upload, file.file, file.filename or "upload.csv", settings)
