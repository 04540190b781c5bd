"""Receipts: what happened to an event id, delivery by delivery, and which lead it went to."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from api.deps import ConnDep
from api.errors import field_error

router = APIRouter(prefix="/api/events", tags=["events"])

DeliveryStatus = Literal["event", "duplicate", "conflict"]


class Delivery(BaseModel):
    seq: int
    channel: str
    received_at: datetime
    lead_key: str
    status: DeliveryStatus


class Rejection(BaseModel):
    file_name: str
    line: int
    reason: str
    received_at: datetime


class Receipt(BaseModel):
    event_id: str
    status: Literal["landed", "scored", "duplicate", "conflict", "rejected"]
    event_status: Literal["landed", "scored", "rejected"]
    lead_key: str | None
    deliveries: list[Delivery]
    rejections: list[Rejection]


_CONTENT = ("event_type", "event_time", "lead_key", "email", "external_id", "name", "company", "source", "metadata")


@router.get("/{event_id}", response_model=Receipt)
def receipt(event_id: str, conn: ConnDep) -> dict:
    """`status` is that of the latest delivery: the event itself (landed, then scored), or a later
    `duplicate` (same content) or `conflict` (other content) that was ignored."""
    columns = ", ".join(_CONTENT)
    deliveries = (
        conn.execute(
            text(f"select seq, channel, received_at, {columns} from raw_deliveries where event_id = :id order by seq"),
            {"id": event_id},
        )
        .mappings()
        .all()
    )
    rejections = (
        conn.execute(
            text("select file_name, line, reason, received_at from ingest_rejections where event_id = :id order by id"),
            {"id": event_id},
        )
        .mappings()
        .all()
    )
    if not deliveries and not rejections:
        raise field_error(404, "event_id", f"no delivery or rejection of {event_id!r}")
    if not deliveries:
        return {"event_id": event_id, "status": "rejected", "event_status": "rejected", "lead_key": None,
                "deliveries": [], "rejections": rejections}  # fmt: skip

    first = deliveries[0]
    served = conn.execute(
        text("select c.seq <= s.served_through from clean_events c, pipeline_state s where c.event_id = :id"),
        {"id": event_id},
    ).scalar()
    event_status = "scored" if served else "landed"
    rows = []
    for index, delivery in enumerate(deliveries):
        same = all(delivery[c] == first[c] for c in _CONTENT)
        status = "event" if index == 0 else "duplicate" if same else "conflict"
        rows.append({**delivery, "status": status})
    latest = rows[-1]["status"]
    return {
        "event_id": event_id,
        "status": event_status if latest == "event" else latest,
        "event_status": event_status,
        "lead_key": first["lead_key"],
        "deliveries": rows,
        "rejections": rejections,
    }
