"""Jobs: scoring (micro-batch or full), the daily decay refresh, and landing a dropped file."""

from pathlib import Path

import dagster as dg

from leadscore_pipeline.dropzone import land_dropped_file
from leadscore_pipeline.replay import SCORING_ASSETS
from leadscore_pipeline.resources import PostgresResource
from leadscore_pipeline.settings import get_settings

# In-process: a micro-batch is small, and a subprocess per step would cost seconds of start-up.
score_deliveries = dg.define_asset_job(
    "score_deliveries",
    # Without the asset checks: each reads whole buckets, too much for every micro-batch (they run from the UI).
    selection=dg.AssetSelection.assets(*SCORING_ASSETS).without_checks(),
    executor_def=dg.in_process_executor,
    description="Dedup and score: micro-batches from the sensor (tagged), full rebuilds otherwise.",
)

refresh_current_scores = dg.define_asset_job(
    "refresh_current_scores",
    selection=dg.AssetSelection.assets("current_scores").without_checks(),
    executor_def=dg.in_process_executor,
    description="Apply inactivity decay as of now to every lead's current score.",
)


class DroppedFile(dg.Config):
    path: str


@dg.op(description="Land one dropped CSV file through the bulk path, then move it out of the drop folder.")
def land_file(context: dg.OpExecutionContext, config: DroppedFile, postgres: PostgresResource):
    path, folder = Path(config.path), get_settings().dropzone
    if path.parent.resolve() != folder:  # a run launched by hand names any path: only the drop folder's are landed
        raise dg.Failure(f"{config.path} is not a file of the drop folder {folder}")
    with postgres.connect() as conn:
        outcome = land_dropped_file(conn, path, get_settings())
    log = context.log.warning if outcome.error else context.log.info
    log(f"{outcome.file_name}: {outcome.outcome}" + (f" ({outcome.error})" if outcome.error else ""))
    if outcome.outcome == "landed":
        yield dg.AssetMaterialization(
            asset_key="raw_deliveries",
            description=f"landed {outcome.file_name}",
            metadata={"file": outcome.file_name, "accepted": outcome.accepted, "rejected": outcome.rejected},
        )
    yield dg.Output(outcome.outcome)


@dg.job(executor_def=dg.in_process_executor, description="Land a CSV file dropped in the drop folder.")
def land_dropped_files():
    land_file()
