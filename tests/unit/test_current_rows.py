"""The decay step's rows: display values within the validator's limits, the score and tier as of a moment,
the previous score beside it; and the bound check on them."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import polars as pl
from polars.testing import assert_frame_equal

from leadscore_pipeline.ingest.validate import MAX_COMPANY_CHARS, MAX_EMAIL_CHARS, MAX_NAME_CHARS
from leadscore_pipeline.refresh import LEAD_SCORE_SCHEMA, TIMESTAMP
from leadscore_pipeline.scoring.current import current_rows
from leadscore_pipeline.scoring.params import ScoringParams, TierThresholds

PREVIOUS_SCHEMA = {"lead_key": pl.String, "previous_score": pl.Int64}
JAN_1 = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)
LONG = "x" * 300


def lead(
    key: str, score: int, last_event_at: datetime, email: str = "a@b.co", name: str | None = None, company: str = "Co"
) -> tuple:
    return (key, 3, email, name, company, score, 2, JAN_1, last_event_at, 7, 99)


def leads(*rows: tuple) -> pl.LazyFrame:
    return pl.LazyFrame(rows, schema=LEAD_SCORE_SCHEMA, orient="row")


def test_scores_decay_by_utc_midnights_and_fields_are_cut_to_the_validators_limits():
    # 00:30 in Berlin on 1 March is still 29 February in UTC: 59 midnights after 1 January, 29 past the window.
    as_of = datetime(2024, 3, 1, 0, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    long_email = "e" * 250 + "@example.com"
    recently = datetime(2024, 2, 28, 23, 0, tzinfo=UTC)
    given = leads(
        lead("decayed", 400, JAN_1, email=long_email, name=LONG, company=LONG),
        lead("floored", 100, JAN_1),
        lead("recent", 60, recently),
    )
    previous = pl.LazyFrame([("decayed", 390), ("gone", 5)], schema=PREVIOUS_SCHEMA, orient="row")
    params = ScoringParams(floor=0, cap=1000, inactivity_days=30, decay_points=5)
    tiers = TierThresholds(warm=50, hot=150, qualified=300)

    current = current_rows(given, previous, as_of, params, tiers).collect().sort("lead_key")

    expected = (
        leads(
            lead("decayed", 400, JAN_1, long_email[:MAX_EMAIL_CHARS], LONG[:MAX_NAME_CHARS], LONG[:MAX_COMPANY_CHARS]),
            lead("floored", 100, JAN_1),
            lead("recent", 60, recently),
        )
        .drop("scored_seq")
        .with_columns(
            score=pl.Series([400 - 5 * 29, 0, 60]),
            tier=pl.Series(["hot", "cold", "warm"]),
            as_of=pl.lit(datetime(2024, 2, 29, 23, 30, tzinfo=UTC), TIMESTAMP),
            previous_score=pl.Series([390, None, None], dtype=pl.Int64),
        )
        .collect()
    )
    assert_frame_equal(current, expected)
    assert len(current["email"][0]) == MAX_EMAIL_CHARS < len(long_email)
    assert len(current["company"][0]) == MAX_COMPANY_CHARS < len(LONG)
