"""GET /api/stream: Server-Sent Events, a `snapshot` of the top leads first, then a `score-update` per change."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from api.stream import ScoreStream
from leadscore_pipeline.db.engine import database_url

router = APIRouter(prefix="/api", tags=["stream"])
KEEPALIVE_SECONDS = 15


def _event(name: str, data: dict, event_id: int | None = None) -> str:
    head = f"event: {name}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return head + f"data: {json.dumps(data, default=str)}\n\n"


def score_stream(request: Request) -> ScoreStream:
    if getattr(request.app.state, "score_stream", None) is None:
        request.app.state.score_stream = ScoreStream(database_url())
    return request.app.state.score_stream


@router.get("/stream", response_class=StreamingResponse)
async def stream(request: Request) -> StreamingResponse:
    """Every client, new or reconnecting, gets a consistent picture: a snapshot, then the changes after it."""
    hub = score_stream(request)
    queue = await hub.subscribe()  # before the snapshot, so no change falls between the two

    async def events() -> AsyncIterator[str]:
        try:
            snapshot = await hub.snapshot()
            yield "retry: 2000\n\n" + _event("snapshot", snapshot, snapshot["change_id"])
            while not await request.is_disconnected():
                try:
                    update = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if update is None:  # fell too far behind: the client reconnects for a fresh snapshot
                    return
                if update["change_id"] > snapshot["change_id"]:
                    yield _event("score-update", update, update["change_id"])
        finally:
            hub.unsubscribe(queue)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
