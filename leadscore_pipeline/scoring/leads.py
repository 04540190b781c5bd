"""Score a set of leads from their clean events: the history rows and one row per lead (score + profile)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from leadscore_pipeline.scoring.fold import lead_totals, score_history
from leadscore_pipeline.scoring.params import ScoringParams
from leadscore_pipeline.scoring.profile import lead_profiles


@dataclass(frozen=True)
class ScoredLeads:
    history: pl.DataFrame  # SPEC §4 history rows, plus lead_bucket
    leads: pl.DataFrame  # lead_key, lead_bucket, profile, score_at_last_event, event counts and times


def score_leads(events: pl.LazyFrame, rules: pl.LazyFrame, params: ScoringParams) -> ScoredLeads:
    """`events` are clean events (lead_key, lead_bucket, event_id, event_type, event_time, email, name,
    company); every lead in them is scored from all the events given for it."""
    buckets = events.group_by("lead_key").agg(pl.col("lead_bucket").first())
    history = (
        score_history(events.select("lead_key", "event_id", "event_type", "event_time"), rules, params)
        .join(buckets, on="lead_key")
        .collect()
    )
    leads = (
        lead_totals(history.lazy()).join(lead_profiles(events), on="lead_key").join(buckets, on="lead_key").collect()
    )
    return ScoredLeads(history=history, leads=leads)
