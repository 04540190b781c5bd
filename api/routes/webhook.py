"""Ingestion over signed webhooks: the signature checked on the raw body, then landed all or nothing."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import SettingsDep
from api.errors import ClientError, field_error
from leadscore_pipeline.db.engine import get_engine
from leadscore_pipeline.ingest.accept import RejectedEvents, accept_events
from leadscore_pipeline.ingest.webhook import WebhookSignatureError, segment_records, verify_webhook
from leadscore_pipeline.settings import Settings

router = APIRouter(prefix="/api", tags=["webhook"])


class WebhookAccepted(BaseModel):
    accepted: int
    event_ids: list[str]
    webhook_id: str


def _header_parameter(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": True, "schema": {"type": "string"}, "description": description}


# The headers are read by the verifier, not declared as parameters: a missing one must be a 401, not a 422.
_WEBHOOK_DOC = {
    "parameters": [
        _header_parameter("webhook-id", "unique per message; the same on every redelivery"),
        _header_parameter("webhook-timestamp", "unix seconds; within the configured tolerance (300 s) both ways"),
        _header_parameter("webhook-signature", 'space-separated "v1,<base64 HMAC-SHA256 of {id}.{timestamp}.{body}>"'),
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "description": "one Segment-style event (track, identify, page, ...) or an array of them",
                    "oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}, "maxItems": 2000}],
                }
            }
        },
    },
}


def _land(records: list[Any], settings: Settings) -> list[str]:
    try:
        # The transaction commits when this block ends: only then is the webhook acknowledged.
        with get_engine().begin() as conn:
            return accept_events(conn.connection.driver_connection, records, channel="webhook", settings=settings)
    except RejectedEvents as rejected:
        raise ClientError(422, [e.as_dict(with_index=True) for e in rejected.errors]) from None


@router.post("/webhook", status_code=202, response_model=WebhookAccepted, openapi_extra=_WEBHOOK_DOC)
async def post_webhook(request: Request, settings: SettingsDep) -> WebhookAccepted:
    secrets = settings.webhook_secret_list
    if not secrets:
        raise field_error(503, "webhook", "no webhook secret configured (LEADSCORE_WEBHOOK_SECRETS)")
    body = await request.body()
    if len(body) > settings.max_batch_bytes:
        raise field_error(413, "body", f"larger than {settings.max_batch_bytes} bytes ({len(body)} bytes)")
    try:
        # On the raw bytes, before any parsing: the signature covers exactly what was sent.
        webhook_id = verify_webhook(
            body, request.headers, secrets, tolerance_seconds=settings.webhook_tolerance_seconds
        )
    except WebhookSignatureError as exc:
        raise ClientError(401, [{"field": exc.header, "error": exc.reason}]) from None
    except ValueError as exc:
        raise field_error(503, "webhook", f"webhook secret misconfigured (LEADSCORE_WEBHOOK_SECRETS): {exc}") from None
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise field_error(422, "body", f"not valid JSON: {exc}") from None
    records = segment_records(payload, webhook_id)
    if len(records) > settings.max_batch_events:
        raise field_error(413, "body", f"at most {settings.max_batch_events} events per webhook, got {len(records)}")
    if not records:
        raise field_error(422, "body", "the array of events is empty")
    event_ids = await run_in_threadpool(_land, records, settings)
    return WebhookAccepted(accepted=len(event_ids), event_ids=event_ids, webhook_id=webhook_id)
