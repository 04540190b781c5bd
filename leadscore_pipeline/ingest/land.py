"""Land validated events as raw deliveries: one COPY, in row order, for every channel."""

from __future__ import annotations

import time
from datetime import datetime

import polars as pl
import psycopg

from leadscore_pipeline.db.frames import copy_frame

# Landing transactions hold this advisory lock shared; the pipeline takes it exclusively for an instant
# to learn the highest sequence number below which every landing has committed (see `landed_through`).
LANDING_FENCE = 7_406_002

RAW_COLUMNS = (
    "event_id",
    "event_type",
    "event_time",
    "lead_key",
    "email",
    "external_id",
    "name",
    "company",
    "source",
    "metadata",
)


def land_events(conn: psycopg.Connection, events: pl.DataFrame, *, channel: str, received_at: datetime) -> int:
    """Append validated events (the output of `validate_events`) to raw_deliveries.

    Runs inside the caller's transaction: the caller acknowledges only after it commits.
    """
    if events.is_empty():
        return 0
    conn.execute("select pg_advisory_xact_lock_shared(%s)", (LANDING_FENCE,))
    rows = events.select(RAW_COLUMNS).with_columns(
        channel=pl.lit(channel), received_at=pl.lit(received_at).dt.convert_time_zone("UTC")
    )
    return copy_frame(conn, "raw_deliveries", rows)


def landed_through(conn: psycopg.Connection, *, patience: float | None = None) -> int | None:
    """The highest landing sequence number with no uncommitted landing below it.

    Takes the fence exclusively, at session level, and lets go at once (so it also works inside a long
    transaction). A waiting exclusive lock would queue every new landing behind it, so with `patience`
    it only tries, for that many seconds, and returns None if a landing (say a large upload) held on.
    """
    if patience is None:
        conn.execute("select pg_advisory_lock(%s)", (LANDING_FENCE,))
    else:
        deadline = time.monotonic() + patience
        while not conn.execute("select pg_try_advisory_lock(%s)", (LANDING_FENCE,)).fetchone()[0]:
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.01)
    try:
        return int(conn.execute("select coalesce(max(seq), 0) from raw_deliveries").fetchone()[0])
    finally:
        conn.execute("select pg_advisory_unlock(%s)", (LANDING_FENCE,))
