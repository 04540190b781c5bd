"""Every pipeline step in dependency order, outside Dagster: for tests, the benchmark and scripts."""

from __future__ import annotations

from datetime import datetime

import psycopg

from leadscore_pipeline.refresh import Scope, decay_scores, dedup_deliveries, score_buckets
from leadscore_pipeline.refresh_analytics import count_daily_events, refresh_lead_stats
from leadscore_pipeline.settings import get_settings


def run_all_steps(conn: psycopg.Connection, scope: Scope, as_of: datetime | None = None) -> None:
    """What a Dagster run of the scoring job does, in the same order (the assets call the same steps)."""
    settings = get_settings()
    dedup_deliveries(conn, scope)
    count_daily_events(conn, scope)
    score_buckets(conn, scope, settings.scoring)
    decay_scores(conn, scope, settings.scoring, settings.tiers, as_of=as_of)
    refresh_lead_stats(conn, scope)
