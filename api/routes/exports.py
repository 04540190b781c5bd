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

from api import reads
from api.schemas import READ_ERRORS, Tier
from leadscore_pipeline.db.engine import connect

router = APIRouter(prefix="/api/export", tags=["export"], responses=READ_ERRORS)

# Shown in pg_stat_activity, so an export holding a connection is easy to spot.
APPLICATION_NAME = "leadscore-export"
# COPY hands over one row per block; gathering them spares a threadpool hop and an HTTP chunk per row.
CSV_CHUNK_BYTES = 64 * 1024
JSON_BATCH_ROWS = 5000

_MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"


_DOCUMENTED_CONTENT = {200: {"content": {"text/csv": {}, "application/json": {}}}}


def _csv_chunks(query: str, params: dict) -> Generator[bytes]:
    """Postgres writes the CSV (quoting included); this only gathers COPY's blocks into larger chunks."""
    conn = connect(application_name=APPLICATION_NAME, client_encoding="utf8")
    try:
        # The queries render their timestamps in UTC already; this keeps any column added later in UTC too.
        conn.execute("set timezone = 'UTC'")
        query = reads.spreadsheet_safe(conn, query, params)
        buffer = bytearray()
        with conn.cursor().copy(f"copy ({query}) to stdout with (format csv, header true)", params) as copy:
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


def _json_chunks(query: str, params: dict) -> Generator[bytes]:
    """A JSON array, one chunk per batch read from a server-side cursor."""
    conn = connect(application_name=APPLICATION_NAME, client_encoding="utf8")
    try:
        conn.execute("set timezone = 'UTC'")
        with conn.cursor(name="export") as cursor:
            cursor.itersize = JSON_BATCH_ROWS
            cursor.execute(query, params)
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


def _export(query: str, params: dict, export_format: ExportFormat, name: str) -> ExportResponse:
    chunks = _csv_chunks(query, params) if export_format is ExportFormat.csv else _json_chunks(query, params)
    return ExportResponse(
        chunks,
        media_type=_MEDIA_TYPES[export_format.value],
        headers={"Content-Disposition": f'attachment; filename="{name}.{export_format.value}"'},
    )


@router.get("/leads", response_class=StreamingResponse, responses=_DOCUMENTED_CONTENT)
def export_leads(
    export_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.csv,
    company: str | None = None,
    tier: Tier | None = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
) -> ExportResponse:
    """Every scored lead matching the filters (as in GET /api/leads), highest current score first (ties by lead_key)."""
    query, params = reads.export_leads_query(reads.LeadFilter(company=company, tier=tier, search=search))
    return _export(query, params, export_format, "leads")


@router.get("/events", response_class=StreamingResponse, responses=_DOCUMENTED_CONTENT)
def export_events(
    export_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.csv,
) -> ExportResponse:
    """Every deduplicated event with the points, decay and score it got, by lead and event time."""
    return _export(reads.EXPORT_EVENTS_QUERY, {}, export_format, "events")
