"""Land a CSV batch (upload or dropped file), streamed in chunks: good rows land through the bulk path
(one validator, COPY), every bad row is kept in ingest_rejections with its file, line and raw text."""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import polars as pl
import psycopg

from leadscore_pipeline.db.frames import copy_frame
from leadscore_pipeline.ingest.accept import validation_limits
from leadscore_pipeline.ingest.land import land_events
from leadscore_pipeline.ingest.validate import validate_events
from leadscore_pipeline.settings import Settings, get_settings

REQUIRED_COLUMNS = ("event_id", "event_type", "lead_id", "email", "timestamp", "metadata")
OPTIONAL_COLUMNS = ("source", "name", "company")
CHUNK_ROWS = 100_000
RESPONSE_ERRORS = 1000  # the response lists this many; GET /api/ingest/rejections has them all


class UnreadableCsv(ValueError):
    """The file is not a CSV batch at all (not text, no header, missing required columns)."""


@dataclass
class CsvResult:
    accepted: int = 0
    rejected: int = 0
    errors: list[dict[str, object]] = field(default_factory=list)  # {"line", "error"}, the first RESPONSE_ERRORS


@dataclass
class _Chunk:
    columns: dict[str, list[str | None]]
    lines: list[int]  # first physical line of each row
    raws: list[str]  # each row's text as it stood in the file
    ragged: list[tuple[int, str, str]]  # (line, raw, reason) for rows with the wrong number of fields


def _rows(stream: BinaryIO) -> Iterator[tuple[list[str], int, str]]:
    """(fields, first line number, raw text) per record, header first; multi-line quoted fields allowed."""
    text = codecs.getreader("utf-8-sig")(stream, errors="strict")
    pending: list[str] = []

    def lines() -> Iterator[str]:
        for line in text:
            pending.append(line)
            yield line

    reader = csv.reader(lines())
    next_line = 1
    try:
        for fields in reader:
            raw = "".join(pending).rstrip("\r\n")
            pending.clear()
            yield fields, next_line, raw
            next_line = reader.line_num + 1
    except UnicodeDecodeError as exc:
        raise UnreadableCsv(f"not UTF-8 text near line {next_line}: {exc.reason}") from None
    except csv.Error as exc:
        raise UnreadableCsv(f"not a readable CSV file near line {next_line}: {exc}") from None


def _chunks(stream: BinaryIO) -> Iterator[_Chunk]:
    rows = _rows(stream)
    try:
        header, _, _ = next(rows)
    except StopIteration:
        raise UnreadableCsv("the file is empty: expected a header line") from None
    header = [name.strip().lower() for name in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise UnreadableCsv(f"missing required column(s): {', '.join(missing)} (header: {','.join(header)[:200]})")
    wanted = [(name, header.index(name)) for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if name in header]

    def empty() -> _Chunk:
        return _Chunk({name: [] for name, _ in wanted}, [], [], [])

    chunk = empty()
    for fields, line, raw in rows:
        if len(fields) != len(header):
            if fields:  # a blank line is no row at all
                chunk.ragged.append((line, raw, f"expected {len(header)} fields, got {len(fields)}"))
            continue
        for name, position in wanted:
            chunk.columns[name].append(fields[position] or None)
        chunk.lines.append(line)
        chunk.raws.append(raw)
        if len(chunk.lines) >= CHUNK_ROWS:
            yield chunk
            chunk = empty()
    yield chunk


def land_csv(
    conn: psycopg.Connection,
    stream: BinaryIO,
    *,
    file_name: str,
    channel: str,
    settings: Settings,
    received_at: datetime | None = None,
) -> CsvResult:
    """Land the good rows and record the bad ones, inside the caller's transaction.

    Raises UnreadableCsv when the file as a whole cannot be read; the caller rolls back so nothing lands.
    """
    received_at = received_at or datetime.now(UTC)
    limits = validation_limits(settings)
    result = CsvResult()
    for chunk in _chunks(stream):
        frame = pl.DataFrame(chunk.columns, schema={name: pl.String for name in chunk.columns})
        validated = validate_events(frame, channel=channel, received_at=received_at, limits=limits)
        land_events(conn, validated.events, channel=channel, received_at=received_at)
        result.accepted += validated.events.height
        rejected = _rejections(chunk, validated.errors, frame)
        if not rejected.is_empty():
            copy_frame(
                conn,
                "ingest_rejections",
                rejected.with_columns(
                    file_name=pl.lit(file_name), channel=pl.lit(channel), received_at=pl.lit(received_at)
                ),
            )
            result.rejected += rejected.height
            room = RESPONSE_ERRORS - len(result.errors)
            result.errors += rejected.head(max(room, 0)).select("line", error=pl.col("reason")).to_dicts()
    result.errors.sort(key=lambda e: e["line"])
    return result


def _rejections(chunk: _Chunk, errors: pl.DataFrame, frame: pl.DataFrame) -> pl.DataFrame:
    """One row per bad record: its line, raw text, every reason joined, and the event_id it claimed."""
    invalid = errors.group_by("row", maintain_order=True).agg(
        reason=pl.format("{}: {}", "field", "reason").str.join("; ")
    )
    rows = invalid["row"]
    schema = {"line": pl.Int64, "raw": pl.String, "reason": pl.String, "event_id": pl.String}
    bad = pl.DataFrame(
        {
            "line": pl.Series(chunk.lines, dtype=pl.Int64).gather(rows),
            "raw": pl.Series(chunk.raws, dtype=pl.String).gather(rows),
            "reason": invalid["reason"],
            "event_id": frame["event_id"].gather(rows),
        },
        schema=schema,
    )
    ragged = pl.DataFrame(
        [(line, raw, reason, None) for line, raw, reason in chunk.ragged], schema=schema, orient="row"
    )
    return pl.concat([bad, ragged]).sort("line")


def land_csv_file(conn: psycopg.Connection, path: Path, *, channel: str, settings: Settings | None = None) -> CsvResult:
    """`land_csv` for a file on disk (the sample batch, a dropped file, the benchmark)."""
    with path.open("rb") as stream:
        return land_csv(conn, stream, file_name=path.name, channel=channel, settings=settings or get_settings())
