"""Sensors: score new deliveries, rescore everything after a rules change, land dropped CSV files."""

import json

import dagster as dg

from leadscore_pipeline.dropzone import complete_files
from leadscore_pipeline.ingest.land import landed_through
from leadscore_pipeline.jobs import land_dropped_files, score_deliveries
from leadscore_pipeline.partitions import MICROBATCH, MODE_TAG, THROUGH_SEQ_TAG, all_buckets_tags
from leadscore_pipeline.resources import PostgresResource
from leadscore_pipeline.settings import get_settings

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
TRIGGER_TAG = "leadscore/trigger"


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
        landed = landed_through(conn, patience=1.0)
    if landed is None:
        return dg.SkipReason("a landing (a large upload?) is still committing; the next tick looks again")
    if landed <= requested_through:
        return dg.SkipReason(f"nothing new: landed through {landed}, requested through {requested_through}")
    running = context.instance.get_runs_count(dg.RunsFilter(tags={MODE_TAG: MICROBATCH}, statuses=IN_FLIGHT))
    if running:
        # The next run takes everything landed meanwhile: batches grow with load instead of runs piling up.
        return dg.SkipReason(f"{running} micro-batch run(s) in flight; deliveries through {landed} wait")
    context.update_cursor(str(landed))
    return microbatch_request(requested_through + 1, landed)


@dg.sensor(
    job=score_deliveries,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Rescores every bucket when the rules (or scoring settings) changed since its scores.",
)
def rules_change_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource):
    with postgres.connect() as conn:
        rules_version, scored_version = conn.execute(
            "select rules_version, (select min(rules_version) from bucket_state) from pipeline_state"
        ).fetchone()
    if scored_version >= rules_version:
        return dg.SkipReason(f"scores reflect rules version {rules_version}")
    return dg.RunRequest(
        run_key=f"rules-v{rules_version}",
        tags={**all_buckets_tags(), TRIGGER_TAG: f"rules-v{rules_version}"},
    )


@dg.sensor(
    job=land_dropped_files,
    minimum_interval_seconds=2,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Lands CSV files dropped in the drop folder once their size and mtime stop changing.",
)
def dropzone_sensor(context: dg.SensorEvaluationContext):
    folder = get_settings().dropzone
    folder.mkdir(parents=True, exist_ok=True)
    ready, seen = complete_files(folder, json.loads(context.cursor or "{}"))
    context.update_cursor(json.dumps(seen))
    if not ready:
        return dg.SkipReason(f"no complete .csv file in {folder}")
    return [
        dg.RunRequest(
            # One run per file version: a rewritten file is a new version, the same one is not run twice.
            run_key=f"drop:{path.name}:{seen[path.name][0]}:{seen[path.name][1]}",
            run_config=dg.RunConfig(ops={"land_file": {"config": {"path": str(path)}}}),
            tags={TRIGGER_TAG: "dropzone"},
        )
        for path in ready
    ]
