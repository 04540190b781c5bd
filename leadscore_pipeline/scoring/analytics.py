"""Analytics from clean events and score history: events per UTC day, per-lead type stats, conversion drivers."""

from __future__ import annotations

import polars as pl

CONVERSION_TYPE = "PURCHASE"
DIRECT = "DIRECT"  # a purchase with no event before it


def daily_counts(events: pl.LazyFrame) -> pl.LazyFrame:
    """Events per (lead_bucket, UTC day, event_type) from clean events (lead_bucket, event_time, event_type)."""
    return (
        events.group_by(
            "lead_bucket", pl.col("event_time").dt.convert_time_zone("UTC").dt.date().alias("day"), "event_type"
        )
        .agg(events=pl.len().cast(pl.Int32))
        .sort("lead_bucket", "day", "event_type")
    )


def lead_type_stats(history: pl.LazyFrame) -> pl.LazyFrame:
    """Per (lead_key, event_type): events, points, and `conversions`: how many of the lead's purchases this
    type came just before (type DIRECT: purchases that were the lead's first event).

    `history` has lead_key, lead_bucket, event_id, event_type, event_time, points.
    """
    ordered = history.sort("lead_key", "event_time", "event_id")
    drivers = (
        ordered.with_columns(driver=pl.col("event_type").shift(1).over("lead_key").fill_null(DIRECT))
        .filter(pl.col("event_type") == CONVERSION_TYPE)
        .group_by("lead_key", "lead_bucket", pl.col("driver").alias("event_type"))
        .agg(conversions=pl.len().cast(pl.Int32))
    )
    per_type = ordered.group_by("lead_key", "lead_bucket", "event_type").agg(
        events=pl.len().cast(pl.Int32), points=pl.col("points").sum().cast(pl.Int32)
    )
    return (
        per_type.join(drivers, on=["lead_key", "lead_bucket", "event_type"], how="full", coalesce=True)
        .with_columns(pl.col("events", "points", "conversions").fill_null(0))
        .select("lead_key", "lead_bucket", "event_type", "events", "points", "conversions")
        .sort("lead_key", "event_type")
    )
