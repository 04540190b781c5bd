"""Each lead's current score and tier at a moment, from its score at its last event (SPEC §4)."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from leadscore_pipeline.ingest.validate import MAX_COMPANY_CHARS, MAX_EMAIL_CHARS, MAX_NAME_CHARS
from leadscore_pipeline.scoring.fold import current_score, tier
from leadscore_pipeline.scoring.params import ScoringParams, TierThresholds


def current_rows(
    leads: pl.LazyFrame, previous: pl.LazyFrame, as_of: datetime, params: ScoringParams, tiers: TierThresholds
) -> pl.LazyFrame:
    """Per lead: its profile, score and tier as of `as_of`, and its `previous_score` (from `previous`, else null).

    `leads` are lead_scores rows (lead_key, profile, score_at_last_event, last_event_at, ..., scored_seq, which
    is dropped); `previous` has lead_key and previous_score.
    """
    return (
        leads.drop("scored_seq")
        # Display values within the validator's limits, so the read indexes hold even rows landed before them.
        .with_columns(
            pl.col("email").str.slice(0, MAX_EMAIL_CHARS),
            pl.col("name").str.slice(0, MAX_NAME_CHARS),
            pl.col("company").str.slice(0, MAX_COMPANY_CHARS),
        )
        .with_columns(score=current_score(pl.col("score_at_last_event"), pl.col("last_event_at"), as_of, params))
        .with_columns(tier=tier(pl.col("score"), tiers), as_of=pl.lit(as_of).dt.convert_time_zone("UTC"))
        .join(previous, on="lead_key", how="left")
    )
