"""Write the Dagster instance config: runs, events and schedules stored in our Postgres server."""

from __future__ import annotations

import json
from pathlib import Path

from leadscore_pipeline.db.urls import dagster_url
from leadscore_pipeline.settings import get_settings

_TEMPLATE = """\
# Written by `leadscore up`; edits are overwritten on the next start.
storage:
  postgres:
    postgres_url: {url}
# Runs go through Dagster's queue, launched by 4 threads within a second: a bucket group's runs (a replay's
# backfill, a catch-up, a rules rescore) at most {parallel_runs} at once, so their memory adds up to that many
# groups' and they do not crowd the cores; micro-batches and dropped files are not capped.
run_coordinator:
  module: dagster._core.run_coordinator.queued_run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
    dequeue_use_threads: true
    dequeue_num_workers: 4
    tag_concurrency_limits:
      - key: dagster/backfill
        limit: {parallel_runs}
      - key: leadscore/buckets
        limit: {parallel_runs}
# The default launcher, able to tell run monitoring when a run's worker died with its code server.
run_launcher:
  module: leadscore_pipeline.run_launcher
  class: WorkerCheckingRunLauncher
# A run orphaned by a daemon (or webserver, or run worker) crash is failed within about a poll interval,
# then retried like any failed run; without this it stays STARTED forever and blocks the micro-batch sensor.
run_monitoring:
  enabled: true
  poll_interval_seconds: 10
  start_timeout_seconds: 90
  cancel_timeout_seconds: 60
  # Resuming needs a launcher that can start a new worker for the same run; ours fails the run instead.
  max_resume_run_attempts: 0
run_retries:
  enabled: true
  max_retries: 2
# A run's console output goes to the daemon's log: at Dagster's default (DEBUG) a line per step event, a hundred per
# micro-batch over 16 buckets. Every event stays in the run's event log (the UI); the console gets INFO and up.
python_logs:
  python_log_level: INFO
telemetry:
  enabled: false
nux:
  enabled: false
"""


def write_dagster_yaml(dagster_home: Path, database_url: str) -> Path:
    dagster_home.mkdir(parents=True, exist_ok=True)
    path = dagster_home / "dagster.yaml"
    parallel_runs = get_settings().parallel_runs
    path.write_text(_TEMPLATE.format(url=json.dumps(dagster_url(database_url)), parallel_runs=parallel_runs))
    return path


def create_dagster_storage(dagster_home: Path) -> None:
    """Create Dagster's tables in Postgres now, from this one process. On a new database, the processes that
    start together (webserver, daemon, Celery workers) each create them and race; Dagster retries a table that
    already exists but not a type, and a Celery worker died of `type "jobs" already exists`."""
    from dagster import DagsterInstance  # here, not at the top: the rest of this module needs no Dagster

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        instance.get_runs(limit=1)


def record_views_created(dagster_home: Path) -> None:
    """The SQL models' views that the migrations just (re)created, as materializations in the Dagster UI."""
    from dagster import DagsterInstance

    from leadscore_pipeline import sql_models

    with DagsterInstance.from_config(str(dagster_home)) as instance:
        sql_models.record_views_created(instance)
