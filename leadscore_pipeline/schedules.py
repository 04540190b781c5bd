"""Schedules: refresh current scores (inactivity decay) just after each UTC midnight."""

import dagster as dg

from leadscore_pipeline.jobs import refresh_current_scores
from leadscore_pipeline.partitions import all_buckets_tags


@dg.schedule(
    job=refresh_current_scores,
    cron_schedule="5 0 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Decay is counted in UTC midnights, so current scores change once a day.",
)
def daily_decay_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"decay-{context.scheduled_execution_time:%Y-%m-%d}",
        tags=all_buckets_tags(),
    )
