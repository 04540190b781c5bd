"""Dagster assets for analytics: events per day (from clean events) and per-lead type stats (from history)."""

import dagster as dg

from leadscore_pipeline import refresh_analytics
from leadscore_pipeline.assets.results import step_metadata
from leadscore_pipeline.partitions import BY_BUCKET, scope_of
from leadscore_pipeline.resources import PostgresResource

_shared = dict(**BY_BUCKET, kinds={"polars", "postgres"}, group_name="analytics")


@dg.asset(deps=["clean_events"], description="Events per UTC day and event type: the trends chart.", **_shared)
def daily_event_counts(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    scope = scope_of(context)
    with postgres.connect() as conn:
        result = refresh_analytics.count_daily_events(conn, scope)
    return dg.MaterializeResult(metadata=step_metadata(result, scope))


@dg.asset(
    deps=["score_history"],
    description="Per lead and event type: events, points, and the purchases each type came just before.",
    **_shared,
)
def lead_event_stats(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    scope = scope_of(context)
    with postgres.connect() as conn:
        result = refresh_analytics.refresh_lead_stats(conn, scope)
    return dg.MaterializeResult(metadata=step_metadata(result, scope))
