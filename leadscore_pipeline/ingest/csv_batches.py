"""Land a CSV batch (upload or dropped file), streamed in chunks: good rows land through the bulk path
(one validator, COPY), every bad row is kept in ingest_rejections with its file, line and raw text.

Polars parses the file; when it cannot (a row with more fields than the header, bad UTF-8), the file is
read again with Python's csv module, which finds the bad rows exactly. Rows with fewer fields than the
header are read with the missing trailing fields empty, as most CSV tools do. A physical line longer than
max_event_bytes is never read whole (see csv_lines): it is a bad row, and so is any record that spans it.
"""

from __future__ import annotations

import csv
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import polars as pl
import psycopg

from leadscore_pipeline import clock
from leadscore_pipeline.db.frames import copy_frame
from leadscore_pipeline.ingest.accept import validation_limits
from leadscore_pipeline.ingest.csv_lines import LongLine, find_long_lines, raw_texts, without_long_lines
from leadscore_pipeline.ingest.land import land_events
from leadscore_pipeline.ingest.validate import validate_events
from leadscore_pipeline.settings import Settings, get_settings

REQUIRED_COLUMNS = ("event_id", "event_type", "lead_id", "email", "timestamp", "metadata")
OPTIONAL_COLUMNS = ("source", "name", "company")
CHUNK_ROWS = 100_000
RESPONSE_ERRORS = 1000  # the response lists this many; GET /api/ingest/rejections has them all
MAX_COLUMNS = 64  # checked on the header line, before any parser builds a column per field
RAW_KEEP_BYTES = 2048  # of a rejected row's text, kept in ingest_rejections; the rest is marked as cut
_REJECTION_SCHEMA = {"first_line": pl.Int64, "line_count": pl.Int64, "reason": pl.String, "event_id": pl.String}


class UnreadableCsv(ValueError):
    """The file is not a CSV batch at all (not UTF-8 text, no header or one too long or too wide, missing
    required columns)."""


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


def _header(path: Path, max_line_bytes: int) -> tuple[list[str], list[str]]:
    """The header's column names (trimmed, lower-case) and the wanted columns present in it.

    The header is the first physical line, read only up to `max_line_bytes`."""
    with path.open("rb") as stream:
        line = stream.readline(max_line_bytes + 2).rstrip(b"\r\n")
    if len(line) > max_line_bytes:
        raise UnreadableCsv(f"the header line is longer than {max_line_bytes} bytes")
    try:
        header = next(csv.reader([line.decode("utf-8-sig")]), None)
    except UnicodeDecodeError as exc:
        raise UnreadableCsv(f"not UTF-8 text in the header line: {exc.reason}") from None
    except csv.Error as exc:
        raise UnreadableCsv(f"not a readable CSV file: {exc}") from None
    if not header:
        raise UnreadableCsv("the file is empty: expected a header line")
    if len(header) > MAX_COLUMNS:
        raise UnreadableCsv(f"at most {MAX_COLUMNS} columns, the header has {len(header)}")
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
    """The file's own text of each (first_line, line_count) span, cut to RAW_KEEP_BYTES, in one pass."""
    with path.open("rb") as stream:
        found = raw_texts(stream, dict(spans.select("first_line", "line_count").iter_rows()), RAW_KEEP_BYTES)
    return spans["first_line"].replace_strict(found, default="", return_dtype=pl.String)


def _without_spanning(chunk: _Chunk, long_lines: pl.DataFrame, max_line_bytes: int) -> tuple[_Chunk, pl.DataFrame]:
    """The chunk without its records that span a line too long to read, and those records as rejections."""
    records = pl.DataFrame({"first_line": chunk.first_line, "line_count": chunk.line_count})
    # The first long line at or after each record's first line; the record spans it when it ends after it.
    nearest = records.join_asof(long_lines, left_on="first_line", right_on="long_line", strategy="forward")
    spanning = (pl.col("long_line") < pl.col("first_line") + pl.col("line_count")).fill_null(False)
    readable = nearest.select(~spanning).to_series()
    rejected = nearest.filter(spanning).select(
        "first_line",
        "line_count",
        reason=pl.format("line {} is longer than {} bytes: not read", "long_line", pl.lit(max_line_bytes)),
        event_id=pl.lit(None, dtype=pl.String),
    )
    kept = replace(
        chunk,
        frame=chunk.frame.filter(readable),
        first_line=chunk.first_line.filter(readable),
        line_count=chunk.line_count.filter(readable),
    )
    return kept, rejected


def _land_chunks(
    conn: psycopg.Connection, chunks: Iterator[_Chunk], channel: str, *, long_lines: pl.DataFrame,
    settings: Settings, received_at: datetime,
) -> tuple[int, pl.DataFrame]:  # fmt: skip
    limits = validation_limits(settings)
    accepted, bad = 0, []
    for chunk in chunks:
        if long_lines.height:
            chunk, spanning = _without_spanning(chunk, long_lines, settings.max_event_bytes)
            bad.append(spanning)
        validated = validate_events(chunk.frame, channel=channel, received_at=received_at, limits=limits)
        land_events(conn, validated.events, channel=channel, received_at=received_at)
        accepted += validated.events.height
        invalid = validated.errors.group_by("row", maintain_order=True).agg(
            reason=pl.format("{}: {}", "field", "reason").str.join("; "),
            # A rejected event_id is not kept: it may be one the table cannot hold (NUL, too long to index).
            event_id_ok=(pl.col("field") != "event_id").all(),
        )
        rows = invalid["row"]
        event_ids = pl.select(pl.when(invalid["event_id_ok"]).then(chunk.frame["event_id"].gather(rows))).to_series()
        bad.append(
            pl.DataFrame(
                {
                    "first_line": chunk.first_line.gather(rows),
                    "line_count": chunk.line_count.gather(rows),
                    "reason": invalid["reason"],
                    "event_id": event_ids,
                },
                schema=_REJECTION_SCHEMA,
            )
        )
        bad.append(
            pl.DataFrame(
                [(first, count, reason, None) for first, count, reason in chunk.malformed],
                schema=_REJECTION_SCHEMA,
                orient="row",
            )
        )
    return accepted, pl.concat(bad)


def _long_line_frame(long_lines: list[LongLine]) -> pl.DataFrame:
    return pl.DataFrame(
        {"long_line": [line.number for line in long_lines], "size": [line.size for line in long_lines]},
        schema={"long_line": pl.Int64, "size": pl.Int64},
    )


def _unread_long_lines(long_lines: pl.DataFrame, bad: pl.DataFrame, max_line_bytes: int) -> pl.DataFrame:
    """A rejection for each line too long to read that no rejected record spans already."""
    nearest = long_lines.join_asof(bad.sort("first_line"), left_on="long_line", right_on="first_line")
    spanned = (pl.col("first_line") + pl.col("line_count") > pl.col("long_line")).fill_null(False)
    return nearest.filter(~spanned).select(
        first_line="long_line",
        line_count=pl.lit(1, dtype=pl.Int64),
        reason=pl.format("line longer than {} bytes ({} bytes): not read", pl.lit(max_line_bytes), "size"),
        event_id=pl.lit(None, dtype=pl.String),
    )


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
    file_name = file_name.replace("\x00", "\ufffd")  # an upload's name is the client's text, stored with rejections
    max_line_bytes = settings.max_event_bytes
    with _file_path(stream) as path:
        header, wanted = _header(path, max_line_bytes)
        with path.open("rb") as raw:
            found = find_long_lines(raw, max_line_bytes)
        long_lines = _long_line_frame(found)
        options = {"long_lines": long_lines, "settings": settings, "received_at": received_at}
        with without_long_lines(path, found) as readable:
            try:
                with conn.transaction():  # a savepoint: if Polars gives up half-way, start over row by row
                    accepted, bad = _land_chunks(conn, _polars_chunks(readable, header, wanted), channel, **options)
            except pl.exceptions.PolarsError:
                accepted, bad = _land_chunks(conn, _python_chunks(readable, header, wanted), channel, **options)
        if found:
            bad = pl.concat([bad, _unread_long_lines(long_lines, bad, max_line_bytes)])
        bad = bad.sort("first_line")
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
