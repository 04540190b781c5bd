"""Score a set of leads from their clean events: the history rows and one row per lead (score + profile)."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from leadscore_pipeline.scoring.fold import lead_totals, score_history
from leadscore_pipeline.scoring.identity import joined_keys
from leadscore_pipeline.scoring.params import ScoringParams
from leadscore_pipeline.scoring.profile import lead_profiles


@dataclass(frozen=True)
class ScoredLeads:
    history: pl.DataFrame  # SPEC §4 history rows, plus lead_bucket, identity_key and joins
    leads: pl.DataFrame  # lead_key, lead_bucket, profile, score_at_last_event, event counts and times


def score_leads(
    events: pl.LazyFrame, rules: pl.LazyFrame, params: ScoringParams, aliases: pl.LazyFrame | None = None
) -> ScoredLeads:
    """`events` are clean events (lead_key, lead_bucket, event_id, event_type, event_time, email, external_id, name,
    company) with the lead each resolves to as lead_key and lead_bucket, and the key it was sent under as
    identity_key; every lead in them is scored from all the events given for it. `aliases` (identity_key,
    lead_key): the keys resolving to these leads, to say in the history which event joined which key."""
    buckets = events.group_by("lead_key").agg(pl.col("lead_bucket").first())
    if aliases is None:
        aliases = pl.LazyFrame(schema={"identity_key": pl.String, "lead_key": pl.String})
    # The key an event was sent under, where it is not its lead's (an id or email joined into it).
    sent_as = events.select(
        "lead_key", "event_id", identity_key=pl.when(pl.col("identity_key") != pl.col("lead_key")).then("identity_key")
    )
    history = (
        score_history(events.select("lead_key", "event_id", "event_type", "event_time"), rules, params)
        .join(buckets, on="lead_key")
        .join(sent_as, on=["lead_key", "event_id"], how="left")
        .join(joined_keys(events, aliases), on=["lead_key", "event_id"], how="left")
        .collect()
    )
    leads = (
        lead_totals(history.lazy()).join(lead_profiles(events), on="lead_key").join(buckets, on="lead_key").collect()
    )
    return ScoredLeads(history=history, leads=leads)
