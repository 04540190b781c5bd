"""Every pipeline step in dependency order, outside Dagster: for tests, the benchmark and scripts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import psycopg

from leadscore_pipeline.refresh import Scope, StepResult, decay_scores, dedup_deliveries, score_buckets
from leadscore_pipeline.refresh_analytics import count_daily_events, refresh_lead_stats
from leadscore_pipeline.settings import get_settings


def pipeline_steps(
    conn: psycopg.Connection, scope: Scope, as_of: datetime | None = None
) -> list[tuple[str, Callable[[], StepResult]]]:
    """What a Dagster run of the scoring job does, in the same order (its assets call the same steps)."""
    settings = get_settings()
    return [
        ("dedup", lambda: dedup_deliveries(conn, scope)),
        ("daily counts", lambda: count_daily_events(conn, scope)),
        ("score", lambda: score_buckets(conn, scope, settings.scoring)),
        ("decay", lambda: decay_scores(conn, scope, settings.scoring, settings.tiers, as_of=as_of)),
        ("lead type stats", lambda: refresh_lead_stats(conn, scope)),
    ]


def run_all_steps(conn: psycopg.Connection, scope: Scope, as_of: datetime | None = None) -> None:
    for _, step in pipeline_steps(conn, scope, as_of):
        step()
