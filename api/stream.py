"""Live score updates: one Postgres LISTEN per API process, fanned out to every connected client."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg
from psycopg.rows import dict_row

from leadscore_pipeline.db.urls import libpq_url

log = logging.getLogger(__name__)

TOP = 100  # ranks are given for leads in the top 100
QUEUE_SIZE = 10_000  # a client this far behind is dropped; it reconnects and gets a fresh snapshot
_LEADS = """
    select c.lead_key, c.score, c.tier, c.change_id, c.previous_score, s.name, s.company, s.email, s.last_event_at
    from current_scores c join lead_scores s using (lead_key)
"""
_TOP = f"select lead_key from current_scores order by score desc, lead_key limit {TOP}"


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "last_event_at": row["last_event_at"].isoformat() if row.get("last_event_at") else None}


class ScoreStream:
    def __init__(self, database_url: str):
        self.url = libpq_url(database_url)
        self.subscribers: set[asyncio.Queue] = set()
        self.task: asyncio.Task | None = None
        self.listening = asyncio.Event()  # set once LISTEN runs: changes after that reach subscribers

    async def snapshot(self) -> dict[str, Any]:
        """The top leads and the change id they reflect: updates after it follow on the queue."""
        async with (
            await psycopg.AsyncConnection.connect(self.url, row_factory=dict_row) as conn,
            conn.transaction(),
        ):
            await conn.execute("set transaction isolation level repeatable read")
            change = await (
                await conn.execute("select coalesce(max(change_id), 0) as id from current_scores")
            ).fetchone()
            leads = await (await conn.execute(f"{_LEADS} order by c.score desc, c.lead_key limit {TOP}")).fetchall()
        ranked = [{**_json_row(lead), "rank": rank} for rank, lead in enumerate(leads, start=1)]
        return {"change_id": change["id"], "leads": ranked}

    async def subscribe(self) -> asyncio.Queue:
        """A queue of updates; once this returns, every later change reaches it (take the snapshot after)."""
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self.subscribers.add(queue)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._listen())
        await asyncio.wait_for(self.listening.wait(), timeout=30)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self.subscribers.discard(queue)

    def _drop(self, queue: asyncio.Queue) -> None:
        """Too far behind: empty its queue and leave only the signal to reconnect (None)."""
        self.subscribers.discard(queue)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(None)

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _listen(self) -> None:
        try:
            while self.subscribers:
                try:
                    await self._follow()
                except (psycopg.Error, OSError) as exc:  # the database went away: try again shortly
                    self.listening.clear()
                    log.warning("score stream lost its connection: %s", exc)
                    await asyncio.sleep(2)
        finally:
            self.listening.clear()

    async def _follow(self) -> None:
        async with (
            await psycopg.AsyncConnection.connect(self.url, autocommit=True) as listener,
            await psycopg.AsyncConnection.connect(self.url, autocommit=True, row_factory=dict_row) as reader,
        ):
            await listener.execute("listen score_updates")
            cursor = await reader.execute("select coalesce(max(change_id), 0) as id from current_scores")
            last = (await cursor.fetchone())["id"]
            self.listening.set()
            async for _ in listener.notifies():
                last = await self._publish(reader, last)
                if not self.subscribers:
                    return

    async def _publish(self, reader: psycopg.AsyncConnection, last: int) -> int:
        rows = await (await reader.execute(f"{_LEADS} where c.change_id > %s order by c.change_id", (last,))).fetchall()
        if not rows:
            return last
        ranks = {r["lead_key"]: rank for rank, r in enumerate(await (await reader.execute(_TOP)).fetchall(), start=1)}
        for row in rows:
            if row["score"] == row["previous_score"]:
                continue  # rewritten but unchanged: nothing to tell
            update = {**_json_row(row), "rank": ranks.get(row["lead_key"])}
            for queue in list(self.subscribers):
                try:
                    queue.put_nowait(update)
                except asyncio.QueueFull:
                    self._drop(queue)
        return rows[-1]["change_id"]
