"""Sensors: score new deliveries, rescore everything after a rules change, land dropped CSV files.

The scoring sensors ask the database what is left to do. Work whose run failed for good (Dagster's own run
retries used up) is requested again under a new run key after a backoff, so it gets done without a hand even
when nothing new lands.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dagster as dg

from leadscore_pipeline import clock
from leadscore_pipeline.buckets import ALL_BUCKETS, bucket_groups
from leadscore_pipeline.db.identity import pending_identity_work
from leadscore_pipeline.dropzone import complete_files, refuse_irregular
from leadscore_pipeline.ingest.land import landed_through
from leadscore_pipeline.jobs import land_dropped_files, score_deliveries
from leadscore_pipeline.partitions import (
    CATCH_UP,
    MICROBATCH,
    MODE_TAG,
    THROUGH_SEQ_TAG,
    all_buckets_tags,
    bucket_range_tags,
)
from leadscore_pipeline.refresh import catch_up_state, microbatched_through
from leadscore_pipeline.resources import PostgresResource
from leadscore_pipeline.settings import get_settings

IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
TRIGGER_TAG = "leadscore/trigger"
BUCKETS_TAG = "leadscore/buckets"  # the bucket range of a rules rescore's run, e.g. "04-07"
# Dagster tags a failed run "true" when its run retries will run it again (as a new run, with the same tags).
WILL_RETRY_TAG = "dagster/will_retry"
ENDED_BADLY = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)
RETRY_AFTER_SECONDS, RETRY_AFTER_MAX_SECONDS = 10, 300
RECENT_RUNS = 30  # of one piece of work: enough failures to reach the longest backoff


@dataclass(frozen=True)
class Failure:
    """The newest run of a piece of work that failed for good, and how many did since it last succeeded."""

    run_id: str
    ended_at: float  # unix seconds
    count: int

    def wait_seconds(self, now: float) -> float:
        """Until the work may be requested again: 10 s after a first failure, doubling, at most 5 minutes."""
        backoff = min(RETRY_AFTER_SECONDS * 2 ** (self.count - 1), RETRY_AFTER_MAX_SECONDS)
        return max(0.0, self.ended_at + backoff - now)

    def run_key_suffix(self) -> str:
        return f"-retry-{self.run_id[:8]}"  # a new key per failure: Dagster runs a key only once


def failure_since_success(records: Sequence[dg.RunRecord]) -> Failure | None:
    """From run records, newest first: the runs that failed for good since the last success. A failed run that
    Dagster's run retries will run again, or did (its retry is a run of its own), does not count."""
    failed = []
    for record in records:
        run = record.dagster_run
        if run.status == dg.DagsterRunStatus.SUCCESS:
            break
        if run.status in ENDED_BADLY and run.tags.get(WILL_RETRY_TAG) != "true":
            failed.append(record)
    if not failed:
        return None
    newest = failed[0]
    ended_at = newest.end_time or newest.update_timestamp.timestamp()
    return Failure(newest.dagster_run.run_id, ended_at, len(failed))


def runs_of(instance: dg.DagsterInstance, tags: Mapping[str, str]) -> tuple[int, Failure | None]:
    """Runs of the work with these tags in flight (waiting for a Dagster retry counts), and its failure."""
    records = instance.get_run_records(dg.RunsFilter(tags=tags), limit=RECENT_RUNS)
    in_flight = sum(
        r.dagster_run.status in IN_FLIGHT or r.dagster_run.is_complete_and_waiting_to_retry for r in records
    )
    return in_flight, failure_since_success(records)


def retry_wait_reason(what: str, failure: Failure | None) -> str | None:
    """Why not to request the work yet: it failed for good, and its backoff is not over."""
    if failure is None:
        return None
    wait = failure.wait_seconds(clock.utc_now().timestamp())
    if wait <= 0:
        return None
    return f"{what} failed {failure.count} time(s), last in run {failure.run_id}; requested again in {wait:.0f} s"


def microbatch_request(
    first_seq: int, last_seq: int, failure: Failure | None = None, identity_work: str = ""
) -> dg.RunRequest:
    # Leads queued by the identity graph (merges, splits) are a micro-batch's work too, with nothing new landed.
    work = f"deliveries-{first_seq}-{last_seq}" if last_seq >= first_seq else f"identity-{identity_work}"
    return dg.RunRequest(
        run_key=work + (failure.run_key_suffix() if failure else ""),
        tags={**all_buckets_tags(), MODE_TAG: MICROBATCH, THROUGH_SEQ_TAG: str(last_seq)},
    )


@dg.sensor(
    job=score_deliveries,
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Scores newly landed deliveries: one micro-batch run per range of landing sequence numbers.",
)
def new_deliveries_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource):
    with postgres.connect() as conn:
        landed = landed_through(conn, patience=1.0)
        done = microbatched_through(conn)
        fence, finished = catch_up_state(conn)
        if fence > done:  # a catch-up is under way: its unfinished bucket groups, then micro-batches from its fence
            return catch_up(context, fence, set(ALL_BUCKETS) - finished)
        if landed is None:
            return dg.SkipReason("a landing (a large upload?) is still committing; the next tick looks again")
        identity_work = pending_identity_work(conn)
        if landed <= done and not identity_work:
            return dg.SkipReason(f"nothing to do: every micro-batch step is done through {done}, all that landed")
        running, failure = runs_of(context.instance, {MODE_TAG: MICROBATCH})
        if running:
            # The next run takes everything landed meanwhile: batches grow with load instead of runs piling up.
            return dg.SkipReason(f"{running} micro-batch run(s) in flight; deliveries through {landed} wait")
        if landed - done > get_settings().bulk_threshold:
            # Too much for one process to hold: rebuild it bucket group by bucket group, as a replay does.
            conn.execute("update pipeline_state set bulk_through = %s", (landed,))
            context.update_cursor(str(landed))
            return catch_up(context, landed, set(ALL_BUCKETS))
    if reason := retry_wait_reason("the micro-batch", failure):
        return dg.SkipReason(reason)
    context.update_cursor(str(landed))  # how far runs were requested, for the UI
    return microbatch_request(done + 1, landed, failure, identity_work)


def catch_up(context: dg.SensorEvaluationContext, fence: int, needed: set[int]) -> list[dg.RunRequest] | dg.SkipReason:
    requests, waiting = group_requests(
        context,
        needed,
        f"catch-up-{fence}",
        f"the catch-up through {fence}",
        {MODE_TAG: CATCH_UP, THROUGH_SEQ_TAG: str(fence)},
    )
    return requests or dg.SkipReason("; ".join(waiting))


@dg.sensor(
    job=score_deliveries,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Rescores the buckets whose scores predate the rules (or scoring settings): a run per bucket group.",
)
def rules_change_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource):
    with postgres.connect() as conn:
        (rules_version,) = conn.execute("select rules_version from pipeline_state").fetchone()
        stale = {
            bucket
            for (bucket,) in conn.execute(
                "select lead_bucket from bucket_state where rules_version < %s", (rules_version,)
            ).fetchall()
        }
    if not stale:
        return dg.SkipReason(f"scores reflect rules version {rules_version}")
    requests, waiting = group_requests(
        context, stale, f"rules-v{rules_version}", f"the rescore for rules version {rules_version}"
    )
    return requests or dg.SkipReason("; ".join(waiting))


def group_requests(
    context: dg.SensorEvaluationContext,
    needed: set[int],
    trigger: str,
    what: str,
    tags: Mapping[str, str] | None = None,
) -> tuple[list[dg.RunRequest], list[str]]:
    """A run per group of buckets holding one of `needed`, each followed (in flight, failed, backoff) on its own;
    and why the groups not requested wait."""
    requests, waiting = [], []
    for group in bucket_groups(get_settings().buckets_per_run):
        if needed.isdisjoint(group):
            continue
        label = f"{group[0]:02d}-{group[-1]:02d}"
        running, failure = runs_of(context.instance, {TRIGGER_TAG: trigger, BUCKETS_TAG: label})
        if running:
            waiting.append(f"buckets {label}: {what} is in flight")
        elif reason := retry_wait_reason(f"buckets {label}: {what}", failure):
            waiting.append(reason)
        else:
            requests.append(
                dg.RunRequest(
                    run_key=f"{trigger}-b{label}" + (failure.run_key_suffix() if failure else ""),
                    tags={**bucket_range_tags(group), TRIGGER_TAG: trigger, BUCKETS_TAG: label, **(tags or {})},
                )
            )
    return requests, waiting


@dg.sensor(
    job=land_dropped_files,
    minimum_interval_seconds=2,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Lands CSV files dropped in the drop folder once their size and mtime stop changing; moves anything"
    " else named *.csv (a symlink, a FIFO, a directory) to failed/ unread.",
)
def dropzone_sensor(context: dg.SensorEvaluationContext):
    folder = get_settings().dropzone
    folder.mkdir(parents=True, exist_ok=True)
    for reason in refuse_irregular(folder):
        context.log.warning(f"drop folder: {reason}")
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
