"""GET /api/stream: Server-Sent Events, a `snapshot` of the top leads first, then a `score-update` per change."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import psycopg
from fastapi import APIRouter
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.deps import ScoreStreamDep
from api.schemas import STREAM_ERRORS

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["stream"], responses=STREAM_ERRORS)
RETRY_MILLISECONDS = 2000  # how soon a browser reconnects after the stream ends


@router.get("/stream", response_class=EventSourceResponse)
async def stream(hub: ScoreStreamDep) -> AsyncIterator[ServerSentEvent]:
    """Every client, new or reconnecting, gets a consistent picture: a snapshot, then the changes after it.
    FastAPI sends a keepalive comment after 15 s without an event."""
    try:
        queue = await hub.subscribe()  # before the snapshot, so no change falls between the two
    except TimeoutError:
        log.warning("score stream: no LISTEN connection yet; the client will reconnect")
        return
    try:
        snapshot = await hub.snapshot()
        yield ServerSentEvent(
            raw_data=snapshot.data, event="snapshot", id=str(snapshot.change_id), retry=RETRY_MILLISECONDS
        )
        # None: too far behind, or the hub lost the database; the client reconnects for a fresh snapshot.
        while (update := await queue.get()) is not None:
            if update.change_id > snapshot.change_id:
                yield ServerSentEvent(raw_data=update.data, event="score-update", id=str(update.change_id))
    except (psycopg.Error, OSError) as exc:
        log.warning("score stream: snapshot failed (%s); the client will reconnect", exc)
    finally:
        hub.unsubscribe(queue)
