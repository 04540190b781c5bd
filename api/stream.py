"""Live score updates: per API process one Postgres LISTEN and one reader, shared by every connected client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row

from api import reads
from leadscore_pipeline.db.urls import libpq_url

log = logging.getLogger(__name__)

APPLICATION_NAME = "leadscore-stream"  # shown in pg_stat_activity
QUEUE_SIZE = 10_000  # a client this far behind is dropped; it reconnects and gets a fresh snapshot
LISTEN_TIMEOUT_SECONDS = 30
RECONNECT_SECONDS = 2


@dataclass(frozen=True)
class Message:
    change_id: int
    data: str  # JSON, serialized once for every client


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "last_event_at": row["last_event_at"].isoformat() if row.get("last_event_at") else None}


class ScoreStream:
    def __init__(self, database_url: str):
        self.url = libpq_url(database_url)
        self.subscribers: set[asyncio.Queue] = set()
        self.task: asyncio.Task | None = None
        self.reader: psycopg.AsyncConnection | None = None
        self.ready = asyncio.Event()  # set while LISTEN runs: changes after that reach subscribers
        self.reading = asyncio.Lock()  # the reader serves one query at a time
        self.next_snapshot: asyncio.Task | None = None  # not started yet: every caller arriving now shares it

    async def subscribe(self) -> asyncio.Queue:
        """A queue of updates; once this returns, every later change reaches it (take the snapshot after)."""
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._listen())  # from the first client on, until shutdown
        async with asyncio.timeout(LISTEN_TIMEOUT_SECONDS):
            while not self.ready.is_set():  # set, then cleared again before we woke: wait for the next LISTEN
                await self.ready.wait()
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self.subscribers.discard(queue)

    async def snapshot(self) -> Message:
        """The top leads and the change id they reflect, read after this call began, so after the caller
        subscribed. Callers arriving before the read starts share it: 200 clients at once cost one query."""
        if self.next_snapshot is None:
            self.next_snapshot = asyncio.create_task(self._read_snapshot())
        # Shielded: a client that leaves does not cancel the read the others wait for.
        return await asyncio.shield(self.next_snapshot)

    async def close(self) -> None:
        for task in (self.task, self.next_snapshot):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _read_snapshot(self) -> Message:
        async with self.reading:
            self.next_snapshot = None  # the read starts now: later callers need a later one
            if self.reader is None:
                raise ConnectionError("the score stream has no database connection")
            async with self.reader.transaction():
                await self.reader.execute("set transaction isolation level repeatable read")
                change = await (await self.reader.execute(reads.STREAM_LAST_CHANGE)).fetchone()
                leads = await (await self.reader.execute(reads.STREAM_SNAPSHOT)).fetchall()
        ranked = [{**_json_row(lead), "rank": rank} for rank, lead in enumerate(leads, start=1)]
        return Message(change["id"], json.dumps({"change_id": change["id"], "leads": ranked}, default=str))

    def _drop(self, queue: asyncio.Queue) -> None:
        """Empty its queue and leave only the signal to reconnect for a fresh snapshot (None)."""
        self.subscribers.discard(queue)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(None)

    async def _listen(self) -> None:
        while True:
            try:
                await self._follow()
            except (psycopg.Error, OSError) as exc:
                log.warning("score stream lost its connection: %s", exc)
            # Changes made while we were away are never sent: every client starts again from a snapshot.
            for queue in list(self.subscribers):
                self._drop(queue)
            await asyncio.sleep(RECONNECT_SECONDS)

    async def _follow(self) -> None:
        connect = psycopg.AsyncConnection.connect
        async with (
            await connect(self.url, autocommit=True, application_name=APPLICATION_NAME) as listener,
            await connect(self.url, autocommit=True, row_factory=dict_row, application_name=APPLICATION_NAME) as reader,
        ):
            await listener.execute("listen score_updates")
            last = (await (await reader.execute(reads.STREAM_LAST_CHANGE)).fetchone())["id"]
            self.reader = reader
            self.ready.set()
            try:
                async for _ in listener.notifies():
                    async with self.reading:
                        last = await self._publish(reader, last)
            finally:
                self.ready.clear()
                self.reader = None

    async def _publish(self, reader: psycopg.AsyncConnection, last: int) -> int:
        rows = await (await reader.execute(reads.STREAM_CHANGES, (last,))).fetchall()
        if not rows:
            return last
        top = await (await reader.execute(reads.STREAM_TOP_KEYS)).fetchall()
        ranks = {r["lead_key"]: rank for rank, r in enumerate(top, start=1)}
        for row in rows:
            if row["score"] == row["previous_score"]:
                continue  # rewritten but unchanged: nothing to tell
            payload = {**_json_row(row), "rank": ranks.get(row["lead_key"])}
            update = Message(row["change_id"], json.dumps(payload, default=str))
            for queue in list(self.subscribers):
                try:
                    queue.put_nowait(update)
                except asyncio.QueueFull:
                    self._drop(queue)
        return rows[-1]["change_id"]
