"""Ingestion over signed webhooks: the signature checked on the raw body, then landed all or nothing."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import SettingsDep
from api.errors import ClientError, field_error
from api.ingestion import check_batch_size, land_all_or_nothing, parse_json, read_body
from api.schemas import WEBHOOK_ERRORS
from leadscore_pipeline.ingest.webhook import (
    WebhookConfigError,
    WebhookSignatureError,
    segment_records,
    verify_webhook,
)

router = APIRouter(prefix="/api", tags=["webhook"], responses=WEBHOOK_ERRORS)


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


@router.post("/webhook", status_code=202, response_model=WebhookAccepted, openapi_extra=_WEBHOOK_DOC)
async def post_webhook(request: Request, settings: SettingsDep) -> WebhookAccepted:
    secrets = settings.webhook_secret_list
    if not secrets:
        raise field_error(503, "webhook", "no webhook secret configured (LEADSCORE_WEBHOOK_SECRETS)")
    body = await read_body(request, settings.max_batch_bytes)
    try:
        # On the raw bytes, before any parsing: the signature covers exactly what was sent.
        webhook_id = verify_webhook(
            body, request.headers, secrets, tolerance_seconds=settings.webhook_tolerance_seconds
        )
    except WebhookSignatureError as exc:
        raise ClientError(401, [{"field": exc.header, "error": exc.reason}]) from None
    except WebhookConfigError as exc:
        raise field_error(503, "webhook", f"webhook secret misconfigured (LEADSCORE_WEBHOOK_SECRETS): {exc}") from None
    records = segment_records(parse_json(body), webhook_id)
    check_batch_size(records, settings)
    event_ids = await run_in_threadpool(land_all_or_nothing, records, "webhook", settings)
    return WebhookAccepted(accepted=len(event_ids), event_ids=event_ids, webhook_id=webhook_id)
