"""Sensors: start a micro-batch run for every new range of landed deliveries."""

import dagster as dg

from leadscore_pipeline.ingest.land import landed_through
from leadscore_pipeline.jobs import score_deliveries
from leadscore_pipeline.partitions import MICROBATCH, MODE_TAG, THROUGH_SEQ_TAG, all_buckets_tags
from leadscore_pipeline.resources import PostgresResource

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def microbatch_request(first_seq: int, last_seq: int) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=f"deliveries-{first_seq}-{last_seq}",
        tags={**all_buckets_tags(), MODE_TAG: MICROBATCH, THROUGH_SEQ_TAG: str(last_seq)},
    )


@dg.sensor(
    job=score_deliveries,
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Scores newly landed deliveries: one micro-batch run per range of landing sequence numbers.",
)
def new_deliveries_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource):
    requested_through = int(context.cursor or 0)
    with postgres.connect() as conn:
        landed = landed_through(conn)
    if landed <= requested_through:
        return dg.SkipReason(f"nothing new: landed through {landed}, requested through {requested_through}")
    running = context.instance.get_runs_count(dg.RunsFilter(job_name=score_deliveries.name, statuses=IN_FLIGHT))
    if running:
        # The next run takes everything landed meanwhile: batches grow with load instead of runs piling up.
        return dg.SkipReason(f"{running} micro-batch run(s) in flight; deliveries through {landed} wait")
    context.update_cursor(str(landed))
    return microbatch_request(requested_through + 1, landed)
