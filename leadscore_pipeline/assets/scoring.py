"""Dagster assets over the refresh steps: clean events -> lead scores + history -> current scores."""

import dagster as dg

from leadscore_pipeline import refresh
from leadscore_pipeline.assets.results import log_quarantined, step_metadata
from leadscore_pipeline.partitions import BY_BUCKET, scope_of
from leadscore_pipeline.resources import PostgresResource
from leadscore_pipeline.settings import get_settings

_shared = dict(**BY_BUCKET, kinds={"polars", "postgres"}, group_name="scoring")


@dg.asset(
    deps=["raw_deliveries"],
    description="Deduplicated events: the first delivery of each event_id, in landing order.",
    **_shared,
)
def clean_events(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    scope = scope_of(context)
    with postgres.connect() as conn:
        result = refresh.dedup_deliveries(conn, scope)
    log_quarantined(context, result)
    return dg.MaterializeResult(metadata=step_metadata(result, scope))


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "lead_scores",
            deps=["clean_events"],
            description="Per lead: profile, score at its last event (the fold of SPEC §4), event counts.",
            kinds={"polars", "postgres"},
        ),
        dg.AssetSpec(
            "score_history",
            deps=["clean_events"],
            description="One row per event: points, decay, change and score after, explaining every point.",
            kinds={"polars", "postgres"},
        ),
    ],
    **BY_BUCKET,
    group_name="scoring",
)
def lead_scores(context: dg.AssetExecutionContext, postgres: PostgresResource):
    scope = scope_of(context)
    with postgres.connect() as conn:
        result = refresh.score_buckets(conn, scope, get_settings().scoring)
    log_quarantined(context, result)
    metadata = step_metadata(result, scope)
    yield dg.MaterializeResult(asset_key="lead_scores", metadata=metadata)
    yield dg.MaterializeResult(asset_key="score_history", metadata=metadata)


@dg.asset(
    deps=["lead_scores"],
    description="Each lead's current score (decayed to now) and tier; refreshed daily after UTC midnight.",
    **_shared,
)
def current_scores(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    scope = scope_of(context)
    settings = get_settings()
    with postgres.connect() as conn:
        result = refresh.decay_scores(conn, scope, settings.scoring, settings.tiers)
    return dg.MaterializeResult(metadata=step_metadata(result, scope))
