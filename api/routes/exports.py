"""Exports: every lead or every deduplicated event with its scoring, streamed from Postgres as CSV or JSON."""

from __future__ import annotations

import json
from collections.abc import Generator
from enum import StrEnum
from typing import Annotated

import anyio
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from leadscore_pipeline.db.engine import connect

router = APIRouter(prefix="/api/export", tags=["export"])

# Shown in pg_stat_activity, so an export holding a connection is easy to spot.
APPLICATION_NAME = "leadscore-export"
# COPY hands over one row per block; gathering them spares a threadpool hop and an HTTP chunk per row.
CSV_CHUNK_BYTES = 64 * 1024
JSON_BATCH_ROWS = 5000

_MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"


def _iso(column: str) -> str:
    """A timestamptz as ISO-8601 UTC text ("2026-11-20T10:00:00Z", fractions only when present).

    Rendered in SQL so that the CSV and the JSON export carry the very same strings.
    """
    return f"""rtrim(rtrim(to_char({column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US'), '0'), '.') || 'Z'"""


_LEADS_QUERY = f"""
    select lead_key, email, name, company, score, tier, score_at_last_event, event_count,
        {_iso("first_event_at")} as first_event_at, {_iso("last_event_at")} as last_event_at
    from leaderboard
    order by score desc, lead_key
"""

# Left join: an event landed but not yet scored is exported with empty scoring columns.
_EVENTS_QUERY = f"""
    select e.event_id, e.lead_key, e.event_type, {_iso("e.event_time")} as event_time, e.source,
        h.points, h.decay, h.change, h.score_after, e.duplicates, e.conflicts
    from clean_events as e
    left join score_history as h
        on h.lead_key = e.lead_key and h.event_time = e.event_time and h.event_id = e.event_id
    order by e.lead_key, e.event_time, e.event_id
"""

_DOCUMENTED_CONTENT = {200: {"content": {"text/csv": {}, "application/json": {}}}}


def _csv_chunks(query: str) -> Generator[bytes]:
    """Postgres writes the CSV (quoting included); this only gathers COPY's blocks into larger chunks."""
    conn = connect(application_name=APPLICATION_NAME, client_encoding="utf8")
    try:
        # The queries render their timestamps in UTC already; this keeps any column added later in UTC too.
        conn.execute("set timezone = 'UTC'")
        buffer = bytearray()
        with conn.cursor().copy(f"copy ({query}) to stdout with (format csv, header true)") as copy:
            for block in copy:
                buffer += block
                if len(buffer) >= CSV_CHUNK_BYTES:
                    yield bytes(buffer)
                    buffer.clear()
        if buffer:
            yield bytes(buffer)
    finally:
        # Runs when the generator is closed too, so a client that hangs up early frees the connection.
        conn.close()


def _json_chunks(query: str) -> Generator[bytes]:
    """A JSON array, one chunk per batch read from a server-side cursor."""
    conn = connect(application_name=APPLICATION_NAME, client_encoding="utf8")
    try:
        conn.execute("set timezone = 'UTC'")
        with conn.cursor(name="export") as cursor:
            cursor.itersize = JSON_BATCH_ROWS
            cursor.execute(query)
            columns = [column.name for column in cursor.description]
            separator = "["
            while rows := cursor.fetchmany(JSON_BATCH_ROWS):
                items = ",".join(json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False) for row in rows)
                yield (separator + items).encode()
                separator = ","
        yield b"]" if separator == "," else b"[]"
    finally:
        conn.close()


class ExportResponse(StreamingResponse):
    """A StreamingResponse that closes its generator, and so the database connection, however the response ends."""

    def __init__(self, chunks: Generator[bytes], **kwargs) -> None:
        super().__init__(chunks, **kwargs)
        self._chunks = chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # Starlette leaves a hung-up stream's generator to the garbage collector, which may be much later.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._chunks.close)


def _export(query: str, export_format: ExportFormat, name: str) -> ExportResponse:
    chunks = _csv_chunks(query) if export_format is ExportFormat.csv else _json_chunks(query)
    return ExportResponse(
        chunks,
        media_type=_MEDIA_TYPES[export_format.value],
        headers={"Content-Disposition": f'attachment; filename="{name}.{export_format.value}"'},
    )


@router.get("/leads", response_class=StreamingResponse, responses=_DOCUMENTED_CONTENT)
def export_leads(export_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.csv) -> ExportResponse:
    """Every scored lead, highest current score first (ties by lead_key)."""
    return _export(_LEADS_QUERY, export_format, "leads")


@router.get("/events", response_class=StreamingResponse, responses=_DOCUMENTED_CONTENT)
def export_events(
    export_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.csv,
) -> ExportResponse:
    """Every deduplicated event with the points, decay and score it got, by lead and event time."""
    return _export(_EVENTS_QUERY, export_format, "events")
