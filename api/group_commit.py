"""Single events from concurrent requests, validated and landed together: one Polars call and one commit
for every request waiting at that moment, instead of one of each per request. Each request is still
accepted or rejected on its own, and answered only after the commit that holds its event. When a group fails
to land, it is split in halves until the requests at fault are alone: one bad request never fails its neighbours."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Any

import polars as pl

from api.database_errors import database_unavailable, landing_problem
from leadscore_pipeline import clock
from leadscore_pipeline.db.engine import get_engine
from leadscore_pipeline.ingest.accept import RejectedEvents, check_records
from leadscore_pipeline.ingest.land import land_events
from leadscore_pipeline.ingest.records import FieldError
from leadscore_pipeline.settings import Settings

MAX_GROUP = 500  # events per commit; more wait for the next round
CHANNEL = "api"

# A request's answer: its event id once committed, or the exception its request raises.
Outcome = str | Exception


class GroupCommit:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.waiting: asyncio.Queue[tuple[Any, asyncio.Future]] = asyncio.Queue()
        self.worker: asyncio.Task | None = None

    async def land(self, record: Any) -> str:
        """The event id once committed; raises RejectedEvents for a bad record (the validator's verdict, or a
        value Postgres refused), and the database's error when it is unavailable."""
        answer: asyncio.Future = asyncio.get_running_loop().create_future()
        await self.waiting.put((record, answer))
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._run())
        return await answer

    async def close(self) -> None:
        if self.worker is not None:
            self.worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.worker

    async def _run(self) -> None:
        while True:
            # No timer: whatever queued while the previous group was committing forms the next group.
            group = [await self.waiting.get()]
            while len(group) < MAX_GROUP and not self.waiting.empty():
                group.append(self.waiting.get_nowait())
            records = [record for record, _ in group]
            try:
                outcomes = await asyncio.to_thread(self._settle, records, clock.utc_now())
            except Exception as exc:  # a fault outside landing (the worker thread itself): every request gets it
                outcomes = [exc] * len(group)
            for (_, answer), outcome in zip(group, outcomes, strict=True):
                if answer.done():
                    continue
                if isinstance(outcome, Exception):
                    answer.set_exception(outcome)
                else:
                    answer.set_result(outcome)

    def _settle(self, records: list[Any], received_at: datetime) -> list[Outcome]:
        """Land `records` in one commit; if that fails, land each half on its own, down to single requests.

        A request that fails alone is answered with its own error: a 422 when Postgres refused its data, else the
        error itself. The database being unavailable fails the whole group at once: splitting would not help."""
        try:
            return self._land_group(records, received_at)
        except Exception as exc:
            if len(records) > 1 and not database_unavailable(exc):
                half = len(records) // 2
                return self._settle(records[:half], received_at) + self._settle(records[half:], received_at)
            problem = landing_problem(exc)
            return [RejectedEvents([problem]) if problem else exc] * len(records)

    def _land_group(self, records: list[Any], received_at: datetime) -> list[Outcome]:
        checked = check_records(records, channel=CHANNEL, settings=self.settings, received_at=received_at)
        errors: dict[int, list[FieldError]] = {}
        for error in checked.errors:
            errors.setdefault(error.index, []).append(error)
        good = checked.events.filter(~pl.col("row").is_in(list(errors))) if errors else checked.events
        with get_engine().begin() as conn:
            land_events(conn.connection.driver_connection, good, channel=CHANNEL, received_at=received_at)
        event_ids = dict(zip(good["row"].to_list(), good["event_id"].to_list(), strict=True))
        return [
            RejectedEvents([FieldError(0, e.field, e.error) for e in errors[index]])
            if index in errors
            else event_ids[index]
            for index in range(len(records))
        ]
