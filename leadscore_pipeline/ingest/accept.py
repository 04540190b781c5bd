"""Accept JSON events: convert, validate, land. A request is all or nothing: any bad record rejects it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import psycopg

from leadscore_pipeline import clock
from leadscore_pipeline.ingest.land import land_events
from leadscore_pipeline.ingest.records import FieldError, records_to_frame
from leadscore_pipeline.ingest.validate import ValidationLimits, validate_events
from leadscore_pipeline.settings import Settings


class RejectedEvents(Exception):
    """The request had bad events; nothing from it landed."""

    def __init__(self, errors: list[FieldError]):
        super().__init__(f"{len(errors)} invalid field(s)")
        self.errors = errors


@dataclass(frozen=True)
class CheckedRecords:
    events: pl.DataFrame  # the valid records, normalized, with their index in `row`
    errors: list[FieldError]  # sorted by record index, then field


def validation_limits(settings: Settings) -> ValidationLimits:
    return ValidationLimits(
        max_event_bytes=settings.max_event_bytes, max_future=timedelta(seconds=settings.max_future_seconds)
    )


def check_records(records: list[Any], *, channel: str, settings: Settings, received_at: datetime) -> CheckedRecords:
    """Every record through the one validator, in one vectorized call."""
    raw, type_errors = records_to_frame(records)
    validated = validate_events(raw, channel=channel, received_at=received_at, limits=validation_limits(settings))
    # A field with a wrong JSON type also fails validation as missing: report only the type error.
    typed = {(e.index, e.field) for e in type_errors}
    errors = type_errors + [
        FieldError(int(row), field, reason)
        for row, field, reason in validated.errors.iter_rows()
        if (int(row), field) not in typed
    ]
    bad_rows = sorted({e.index for e in type_errors})
    events = validated.events.filter(~pl.col("row").is_in(bad_rows)) if bad_rows else validated.events
    return CheckedRecords(events.sort("row"), sorted(errors, key=lambda e: (e.index, e.field)))


def accept_events(
    conn: psycopg.Connection,
    records: list[Any],
    *,
    channel: str,
    settings: Settings,
    received_at: datetime | None = None,
) -> list[str]:
    """Land every record or none; returns the event ids in request order. The caller commits."""
    received_at = received_at or clock.utc_now()
    checked = check_records(records, channel=channel, settings=settings, received_at=received_at)
    if checked.errors:
        raise RejectedEvents(checked.errors)
    land_events(conn, checked.events, channel=channel, received_at=received_at)
    return checked.events["event_id"].to_list()
