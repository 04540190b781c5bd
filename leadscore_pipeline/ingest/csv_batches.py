"""Land a CSV batch (upload or dropped file), streamed in chunks: good rows land through the bulk path
(one validator, COPY), every bad row is kept in ingest_rejections with its file, line and raw text.

Polars parses the file; when it cannot (a row with more fields than the header, bad UTF-8), the file is
read again with Python's csv module, which finds the bad rows exactly. Rows with fewer fields than the
header are read with the missing trailing fields empty, as most CSV tools do.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import polars as pl
import psycopg

from leadscore_pipeline import clock
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
    """The file is not a CSV batch at all (not UTF-8 text, no header, missing required columns)."""


@dataclass
class CsvResult:
    accepted: int = 0
    rejected: int = 0
    errors: list[dict[str, object]] = field(default_factory=list)  # {"line", "error"}, the first RESPONSE_ERRORS


@dataclass
class _Chunk:
    frame: pl.DataFrame  # the wanted columns as text, one row per record
    first_line: pl.Series  # each record's first physical line
    line_count: pl.Series  # how many physical lines each record spans
    malformed: list[tuple[int, int, str]]  # (first line, line count, reason): records that are no rows at all


def _header(path: Path) -> tuple[list[str], list[str]]:
    """The header's column names (trimmed, lower-case) and the wanted columns present in it."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as text:
            header = next(csv.reader(text), None)
    except UnicodeDecodeError as exc:
        raise UnreadableCsv(f"not UTF-8 text in the header line: {exc.reason}") from None
    except csv.Error as exc:
        raise UnreadableCsv(f"not a readable CSV file: {exc}") from None
    if not header:
        raise UnreadableCsv("the file is empty: expected a header line")
    header = [name.strip().lower() for name in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise UnreadableCsv(f"missing required column(s): {', '.join(missing)} (header: {','.join(header)[:200]})")
    return header, [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in header]


def _polars_chunks(path: Path, header: list[str], wanted: list[str]) -> Iterator[_Chunk]:
    scan = pl.scan_csv(
        path,
        has_header=False,
        skip_rows=1,
        new_columns=header,
        infer_schema=False,
        encoding="utf8",
        raise_if_empty=False,
    )
    next_line = 2
    for batch in scan.collect_batches(chunk_size=CHUNK_ROWS):
        # Quoted fields may hold line breaks: a record spans one line more per break.
        line_count = batch.select(
            1 + pl.sum_horizontal(pl.col(c).str.count_matches("\n").fill_null(0) for c in header)
        ).to_series()
        first_line = next_line + line_count.cum_sum() - line_count
        next_line += int(line_count.sum())
        blank = batch.select(pl.all_horizontal(pl.all().is_null())).to_series()  # an empty line is no record
        yield _Chunk(
            batch.filter(~blank).select(wanted),
            first_line.filter(~blank).cast(pl.Int64),
            line_count.filter(~blank).cast(pl.Int64),
            [],
        )


def _python_chunks(path: Path, header: list[str], wanted: list[str]) -> Iterator[_Chunk]:
    positions = [header.index(name) for name in wanted]
    with path.open(encoding="utf-8-sig", newline="") as text:
        reader = csv.reader(text)
        next(reader)
        previous_end = 1
        chunk: tuple[list[list[str | None]], list[int], list[int], list] = ([], [], [], [])
        try:
            for fields in reader:
                first, count = previous_end + 1, reader.line_num - previous_end
                previous_end = reader.line_num
                if not fields:
                    continue
                if len(fields) > len(header):
                    chunk[3].append((first, count, f"expected {len(header)} fields, got {len(fields)}"))
                    continue
                fields += [""] * (len(header) - len(fields))
                chunk[0].append([fields[p] or None for p in positions])
                chunk[1].append(first)
                chunk[2].append(count)
                if len(chunk[0]) >= CHUNK_ROWS:
                    yield _python_chunk(chunk, wanted)
                    chunk = ([], [], [], [])
        except UnicodeDecodeError as exc:
            raise UnreadableCsv(f"not UTF-8 text after line {previous_end}: {exc.reason}") from None
        except csv.Error as exc:
            raise UnreadableCsv(f"not a readable CSV file after line {previous_end}: {exc}") from None
        yield _python_chunk(chunk, wanted)


def _python_chunk(chunk, wanted: list[str]) -> _Chunk:
    rows, first_lines, line_counts, malformed = chunk
    frame = pl.DataFrame(rows, schema={name: pl.String for name in wanted}, orient="row")
    return _Chunk(frame, pl.Series(first_lines, dtype=pl.Int64), pl.Series(line_counts, dtype=pl.Int64), malformed)


def _raw_text(path: Path, spans: pl.DataFrame) -> pl.Series:
    """The file's own text of each (first_line, line_count) span, in one pass over the file."""
    wanted = dict(spans.select("first_line", "line_count").iter_rows())
    found: dict[int, str] = {}
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as text:
        number = 0
        for line in text:
            number += 1
            if number in wanted:
                start, parts = number, [line]
                for _ in range(wanted[start] - 1):  # the further lines of a multi-line record
                    parts.append(next(text, ""))
                    number += 1
                found[start] = "".join(parts).rstrip("\r\n")
    return spans["first_line"].replace_strict(found, default="", return_dtype=pl.String)


def _land_chunks(
    conn: psycopg.Connection, chunks: Iterator[_Chunk], path: Path, *, channel: str, settings: Settings,
    received_at: datetime,
) -> tuple[int, pl.DataFrame]:  # fmt: skip
    limits = validation_limits(settings)
    accepted, bad = 0, []
    for chunk in chunks:
        validated = validate_events(chunk.frame, channel=channel, received_at=received_at, limits=limits)
        land_events(conn, validated.events, channel=channel, received_at=received_at)
        accepted += validated.events.height
        invalid = validated.errors.group_by("row", maintain_order=True).agg(
            reason=pl.format("{}: {}", "field", "reason").str.join("; ")
        )
        rows = invalid["row"]
        bad.append(
            pl.DataFrame(
                {
                    "first_line": chunk.first_line.gather(rows),
                    "line_count": chunk.line_count.gather(rows),
                    "reason": invalid["reason"],
                    "event_id": chunk.frame["event_id"].gather(rows),
                }
            )
        )
        bad.append(
            pl.DataFrame(
                [(first, count, reason, None) for first, count, reason in chunk.malformed],
                schema={"first_line": pl.Int64, "line_count": pl.Int64, "reason": pl.String, "event_id": pl.String},
                orient="row",
            )
        )
    return accepted, pl.concat(bad).sort("first_line")


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
    received_at = received_at or clock.utc_now()
    with _file_path(stream) as path:
        header, wanted = _header(path)
        options = {"channel": channel, "settings": settings, "received_at": received_at}
        try:
            with conn.transaction():  # a savepoint: if Polars gives up half-way, start over row by row
                accepted, bad = _land_chunks(conn, _polars_chunks(path, header, wanted), path, **options)
        except pl.exceptions.PolarsError:
            accepted, bad = _land_chunks(conn, _python_chunks(path, header, wanted), path, **options)
        rejections = bad.select(
            line=pl.col("first_line"), raw=_raw_text(path, bad) if bad.height else pl.lit(""), reason="reason",
            event_id="event_id",
        )  # fmt: skip
    if rejections.height:
        copy_frame(
            conn,
            "ingest_rejections",
            rejections.with_columns(
                file_name=pl.lit(file_name), channel=pl.lit(channel), received_at=pl.lit(received_at)
            ),
        )
    errors = rejections.head(RESPONSE_ERRORS).select("line", error="reason").to_dicts()
    return CsvResult(accepted=accepted, rejected=rejections.height, errors=errors)


@contextmanager
def _file_path(stream: BinaryIO) -> Iterator[Path]:
    """The stream's file on disk: its own path when it has one, else a temporary copy (Polars reads paths)."""
    name = getattr(stream, "name", None)
    if isinstance(name, str) and Path(name).is_file():
        yield Path(name)
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "batch.csv"
        with path.open("wb") as copy:
            shutil.copyfileobj(stream, copy, 1 << 20)
        yield path


def land_csv_file(conn: psycopg.Connection, path: Path, *, channel: str, settings: Settings | None = None) -> CsvResult:
    """`land_csv` for a file on disk (the sample batch, a dropped file, the benchmark)."""
    with path.open("rb") as stream:
        return land_csv(conn, stream, file_name=path.name, channel=channel, settings=settings or get_settings())
