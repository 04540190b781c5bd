"""Write the Dagster instance config: runs, events and schedules stored in our Postgres server."""

from __future__ import annotations

import json
from pathlib import Path

from leadscore_pipeline.db.urls import dagster_url

_TEMPLATE = """\
# Written by `leadscore up`; edits are overwritten on the next start.
storage:
  postgres:
    postgres_url: {url}
# Launch runs directly: a queue adds seconds to every micro-batch, and our writers lock in Postgres.
run_coordinator:
  module: dagster._core.run_coordinator.default_run_coordinator
  class: DefaultRunCoordinator
run_retries:
  enabled: true
  max_retries: 2
telemetry:
  enabled: false
nux:
  enabled: false
"""


def write_dagster_yaml(dagster_home: Path, database_url: str) -> Path:
    dagster_home.mkdir(parents=True, exist_ok=True)
    path = dagster_home / "dagster.yaml"
    path.write_text(_TEMPLATE.format(url=json.dumps(dagster_url(database_url))))
    return path
