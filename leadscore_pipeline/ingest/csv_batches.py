"""Land a CSV batch (upload or dropped file): good rows land through the bulk path, bad rows are reported."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import polars as pl
import psycopg

from leadscore_pipeline.ingest.accept import validation_limits
from leadscore_pipeline.ingest.land import land_events
from leadscore_pipeline.ingest.validate import validate_events
from leadscore_pipeline.settings import get_settings

REQUIRED_COLUMNS = ("event_id", "event_type", "lead_id", "email", "timestamp", "metadata")
OPTIONAL_COLUMNS = ("source", "name", "company")
HEADER_LINES = 1


class UnreadableCsv(ValueError):
    """The file is not a CSV batch we can read (bad encoding, ragged rows, missing columns)."""


@dataclass
class CsvResult:
    accepted: int = 0
    rejected: int = 0
    errors: list[dict[str, object]] = field(default_factory=list)  # {"line", "field", "error"}


def read_csv_batch(source: Path | BinaryIO) -> pl.DataFrame:
    try:
        frame = pl.read_csv(source, infer_schema=False)
    except (pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise UnreadableCsv(f"not a readable CSV file: {exc}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise UnreadableCsv(f"missing required column(s): {', '.join(missing)}")
    return frame.select(c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in frame.columns)


def land_csv_file(
    conn: psycopg.Connection, source: Path | BinaryIO, *, channel: str, received_at: datetime | None = None
) -> CsvResult:
    """Validate every row; land the good ones in file order; return the bad ones with their line numbers."""
    received_at = received_at or datetime.now(UTC)
    frame = read_csv_batch(source)
    validated = validate_events(
        frame, channel=channel, received_at=received_at, limits=validation_limits(get_settings())
    )
    land_events(conn, validated.events, channel=channel, received_at=received_at)
    errors = validated.errors.select(
        line=pl.col("row").cast(pl.Int64) + 1 + HEADER_LINES, field=pl.col("field"), error=pl.col("reason")
    )
    return CsvResult(
        accepted=validated.events.height,
        rejected=errors["line"].n_unique(),
        errors=errors.to_dicts(),
    )
