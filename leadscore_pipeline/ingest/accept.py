"""Accept JSON events all-or-nothing: convert, validate, land; any bad record rejects the whole request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from leadscore_pipeline.ingest.land import land_events
from leadscore_pipeline.ingest.records import FieldError, records_to_frame
from leadscore_pipeline.ingest.validate import ValidationLimits, validate_events
from leadscore_pipeline.settings import Settings


class RejectedEvents(Exception):
    """The request had bad events; nothing from it landed."""

    def __init__(self, errors: list[FieldError]):
        super().__init__(f"{len(errors)} invalid field(s)")
        self.errors = errors


def validation_limits(settings: Settings) -> ValidationLimits:
    return ValidationLimits(
        max_event_bytes=settings.max_event_bytes, max_future=timedelta(seconds=settings.max_future_seconds)
    )


def accept_events(
    conn: psycopg.Connection,
    records: list[Any],
    *,
    channel: str,
    settings: Settings,
    received_at: datetime | None = None,
) -> list[str]:
    """Land every record or none; returns the event ids in request order. The caller commits."""
    received_at = received_at or datetime.now(UTC)
    raw, type_errors = records_to_frame(records)
    validated = validate_events(raw, channel=channel, received_at=received_at, limits=validation_limits(settings))
    # A field with a wrong JSON type also fails validation as missing: report only the type error.
    typed = {(e.index, e.field) for e in type_errors}
    errors = type_errors + [
        FieldError(int(row), field, reason)
        for row, field, reason in validated.errors.iter_rows()
        if (int(row), field) not in typed
    ]
    if errors:
        raise RejectedEvents(sorted(errors, key=lambda e: (e.index, e.field)))
    land_events(conn, validated.events, channel=channel, received_at=received_at)
    return validated.events.sort("row")["event_id"].to_list()
