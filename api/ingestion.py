"""What the JSON ingestion endpoints share: a bounded body, JSON parsing, batch limits, and landing all or
nothing, acknowledged only after the commit."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from api.errors import ClientError, field_error
from leadscore_pipeline.db.engine import get_engine
from leadscore_pipeline.ingest.accept import RejectedEvents, accept_events
from leadscore_pipeline.settings import Settings


async def read_body(request: Request, max_bytes: int) -> bytes:
    body = await request.body()
    if len(body) > max_bytes:
        raise field_error(413, "body", f"larger than {max_bytes} bytes ({len(body)} bytes)")
    return body


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise field_error(422, "body", f"not valid JSON: {exc}") from None


def check_batch_size(records: list[Any], settings: Settings) -> None:
    if len(records) > settings.max_batch_events:
        raise field_error(413, "body", f"at most {settings.max_batch_events} events per request, got {len(records)}")
    if not records:
        raise field_error(422, "body", "no events: the array is empty")


def land_all_or_nothing(records: list[Any], channel: str, settings: Settings) -> list[str]:
    """Blocking: run it in the threadpool. Every record lands, or none and a 422 lists every bad index."""
    try:
        # The transaction commits when this block ends: only then is the request acknowledged.
        with get_engine().begin() as conn:
            return accept_events(conn.connection.driver_connection, records, channel=channel, settings=settings)
    except RejectedEvents as rejected:
        raise ClientError(422, [error.as_dict() for error in rejected.errors]) from None
