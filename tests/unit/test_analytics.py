"""Analytics folds against hand-worked numbers."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
from polars.testing import assert_frame_equal

from leadscore_pipeline.scoring.analytics import daily_counts, lead_type_stats


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_daily_counts_group_by_utc_day_and_type():
    events = pl.LazyFrame(
        {
            "lead_bucket": [1, 1, 1, 2],
            "event_time": [
                at("2026-11-01T23:59:59"),
                at("2026-11-01T00:00:00"),
                at("2026-11-02T00:00:00"),
                at("2026-11-01T12:00:00"),
            ],
            "event_type": ["PAGE_VIEW", "PAGE_VIEW", "PAGE_VIEW", "PURCHASE"],
        },
        schema_overrides={"lead_bucket": pl.Int16, "event_time": pl.Datetime("us", "UTC")},
    )
    got = daily_counts(events).collect()
    assert got.rows() == [
        (1, datetime(2026, 11, 1).date(), "PAGE_VIEW", 2),
        (1, datetime(2026, 11, 2).date(), "PAGE_VIEW", 1),
        (2, datetime(2026, 11, 1).date(), "PURCHASE", 1),
    ]


def test_lead_type_stats_with_conversion_drivers():
    rows = [
        # ann: page view, purchase (driver PAGE_VIEW), email open, purchase (driver EMAIL_OPEN), refund
        ("ann", "a1", "PAGE_VIEW", "2026-11-01T00:00:00", 5),
        ("ann", "a2", "PURCHASE", "2026-11-02T00:00:00", 100),
        ("ann", "a3", "EMAIL_OPEN", "2026-11-03T00:00:00", 10),
        ("ann", "a4", "PURCHASE", "2026-11-04T00:00:00", 100),
        ("ann", "a5", "REFUND", "2026-11-05T00:00:00", -50),
        # bob: a purchase first (DIRECT), then another right after it (driver PURCHASE)
        ("bob", "b1", "PURCHASE", "2026-11-01T00:00:00", 100),
        ("bob", "b2", "PURCHASE", "2026-11-01T00:00:00", 100),  # same time: event_id orders
    ]
    history = pl.LazyFrame(
        {
            "lead_key": [r[0] for r in rows],
            "lead_bucket": [3] * len(rows),
            "event_id": [r[1] for r in rows],
            "event_type": [r[2] for r in rows],
            "event_time": [at(r[3]) for r in rows],
            "points": [r[4] for r in rows],
        },
        schema_overrides={"lead_bucket": pl.Int16, "event_time": pl.Datetime("us", "UTC")},
    )
    expected = pl.DataFrame(
        {
            "lead_key": ["ann", "ann", "ann", "ann", "bob", "bob"],
            "lead_bucket": [3] * 6,
            "event_type": ["EMAIL_OPEN", "PAGE_VIEW", "PURCHASE", "REFUND", "DIRECT", "PURCHASE"],
            "events": [1, 1, 2, 1, 0, 2],
            "points": [10, 5, 200, -50, 0, 200],
            "conversions": [1, 1, 0, 0, 1, 1],
        },
        schema_overrides={"lead_bucket": pl.Int16, "events": pl.Int32, "points": pl.Int32, "conversions": pl.Int32},
    )
    assert_frame_equal(lead_type_stats(history).collect(), expected)
