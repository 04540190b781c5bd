"""Receipts: what happened to an event id, delivery by delivery, and which lead it went to."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api import reads
from api.deps import ReaderDep
from api.errors import field_error
from api.schemas import READ_ERRORS, error_responses

router = APIRouter(prefix="/api/events", tags=["events"], responses=READ_ERRORS)

DeliveryStatus = Literal["event", "duplicate", "conflict", "quarantined"]


class Delivery(BaseModel):
    seq: int
    channel: str
    received_at: datetime
    lead_key: str
    status: DeliveryStatus
    reason: str | None = Field(None, description="why a quarantined delivery was set aside")


class Rejection(BaseModel):
    file_name: str
    line: int
    reason: str
    received_at: datetime


class Receipt(BaseModel):
    event_id: str
    status: Literal["landed", "scored", "duplicate", "conflict", "quarantined", "rejected"]
    event_status: Literal["landed", "scored", "quarantined", "rejected"]
    lead_key: str | None = Field(description="the lead the event counts for (its key as sent, or the lead joined)")
    reason: str | None = Field(None, description="why the latest delivery was set aside, when it was")
    deliveries: list[Delivery]
    rejections: list[Rejection]


@router.get("/{event_id}", response_model=Receipt, responses=error_responses(404))
async def receipt(event_id: str, conn: ReaderDep) -> dict:
    """`status` is that of the latest delivery: the event itself (landed, then scored), a later `duplicate`
    (same content) or `conflict` (other content) that was ignored, or one `quarantined`: set aside because a
    pipeline step failed on it (the next delivery, if any, is the event)."""
    deliveries = await reads.event_deliveries(conn, event_id)
    rejections = await reads.event_rejections(conn, event_id)
    if not deliveries and not rejections:
        raise field_error(404, "event_id", f"no delivery or rejection of {event_id!r}")
    if not deliveries:
        return {"event_id": event_id, "status": "rejected", "event_status": "rejected", "lead_key": None,
                "deliveries": [], "rejections": rejections}  # fmt: skip

    first = next((d for d in deliveries if d["reason"] is None), None)
    served = await reads.event_served(conn, event_id)
    event_status = "quarantined" if first is None else "scored" if served else "landed"
    rows = []
    for delivery in deliveries:
        if delivery["reason"] is not None:
            # The stored key is cut short: the whole one may be what a step failed on.
            rows.append({**delivery, "lead_key": delivery["quarantined_lead_key"], "status": "quarantined"})
            continue
        same = all(delivery[c] == first[c] for c in reads.RECEIPT_CONTENT)
        status = "event" if delivery is first else "duplicate" if same else "conflict"
        rows.append({**delivery, "status": status})
    latest = rows[-1]
    return {
        "event_id": event_id,
        "status": event_status if latest["status"] == "event" else latest["status"],
        "event_status": event_status,
        # The lead it counts for: its key as sent, or the lead that key was joined into (SPEC §3).
        "lead_key": await reads.resolve_lead_key(conn, first["lead_key"]) if first else latest["lead_key"],
        "reason": latest["reason"],
        "deliveries": rows,
        "rejections": rejections,
    }
