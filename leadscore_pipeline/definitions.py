"""The one Dagster `Definitions` of LeadScore: assets, checks, jobs, sensors, schedules, resources."""

import dagster as dg

from leadscore_pipeline.assets.analytics import daily_event_counts, lead_event_stats
from leadscore_pipeline.assets.checks import stored_table_checks
from leadscore_pipeline.assets.raw import raw_deliveries
from leadscore_pipeline.assets.scoring import clean_events, current_scores, lead_scores
from leadscore_pipeline.assets.serving import company_totals, event_type_totals, serving_totals
from leadscore_pipeline.jobs import land_dropped_files, refresh_current_scores, score_deliveries
from leadscore_pipeline.resources import PostgresResource
from leadscore_pipeline.schedules import daily_decay_schedule
from leadscore_pipeline.sensors import dropzone_sensor, new_deliveries_sensor, rules_change_sensor
from leadscore_pipeline.settings import get_settings
from leadscore_pipeline.sql_models import sql_model_assets


def default_executor() -> dg.ExecutorDefinition:
    """The executor of runs that name none: the implicit asset job's, so a backfill's (a replay's) runs. The jobs
    (micro-batches, decay, dropped files) set their own, in-process."""
    settings = get_settings()
    if settings.executor == "celery":
        from dagster_celery import celery_executor  # here: celery's import is not paid by in-process runs

        # Each step becomes a task on the broker's `dagster` queue; its result (the step's events) comes back
        # through the same Redis. The workers must be started with the same broker (stack.py).
        return celery_executor.configured(
            {"broker": settings.celery_broker, "backend": settings.celery_broker}, name="celery"
        )
    return dg.in_process_executor


defs = dg.Definitions(
    assets=[
        raw_deliveries,
        clean_events,
        lead_scores,
        current_scores,
        daily_event_counts,
        lead_event_stats,
        serving_totals,
        company_totals,
        event_type_totals,
        *sql_model_assets,
    ],
    asset_checks=stored_table_checks,
    jobs=[score_deliveries, refresh_current_scores, land_dropped_files],
    sensors=[new_deliveries_sensor, rules_change_sensor, dropzone_sensor],
    schedules=[daily_decay_schedule],
    resources={"postgres": PostgresResource(database_url=dg.EnvVar("LEADSCORE_DATABASE_URL"))},
    executor=default_executor(),
)
